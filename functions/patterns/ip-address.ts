/**
 * IP addresses and CIDR blocks as EventBridge's matcher (aws/event-ruler CIDR.java) reads them: only text that
 * looks like an IPv4 (`d+.d+.d+.d+`) or IPv6 (hex digits and colons) literal is an address; both sides compare
 * as numbers, so `2001:db8::1` equals `2001:0db8:0:0:0:0:0:1`.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { PatternSyntaxError } from './pattern-error.ts';

export interface IpAddress {
  readonly version: 4 | 6;
  readonly value: bigint;
}

const IPV4_SHAPE = /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/;
const IPV6_SHAPE = /^[0-9a-fA-F:]*:[0-9a-fA-F:]*$/;

/** The address, or undefined when `text` is not an IP literal EventBridge would recognise. */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (IPV4_SHAPE.test(text)) {
    if (!isIPv4(text)) return undefined;
    return { version: 4, value: text.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  }
  if (!IPV6_SHAPE.test(text) || !isIPv6(text)) return undefined;
  const toGroups = (s: string): bigint[] => (s === '' ? [] : s.split(':').map((g) => BigInt(`0x${g}`)));
  const doubleColon = text.indexOf('::');
  let groups: bigint[];
  if (doubleColon >= 0) {
    const head = toGroups(text.slice(0, doubleColon));
    const tail = toGroups(text.slice(doubleColon + 2));
    groups = [...head, ...new Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  } else {
    groups = toGroups(text);
  }
  return { version: 6, value: groups.reduce((acc, g) => (acc << 16n) | g, 0n) };
}

/** True when both texts are IP literals of the same address. */
export function sameIpAddress(a: IpAddress, text: string): boolean {
  const b = parseIpAddress(text);
  return b !== undefined && b.version === a.version && b.value === a.value;
}

/**
 * Compiles a `cidr` operand. Reasons and their order follow event-ruler's `CIDR.cidr` (AWS-recorded for
 * "Malformed CIDR, one '/' required", "... mask bits must be an integer" and "Nonstandard IP address: x";
 * the others are event-ruler's source text). Note event-ruler rejects /32 and /128 ("mask bits must be < 32").
 */
export function compileCidr(text: string): (value: string) => boolean {
  // Java's String.split drops trailing empty strings: "10.0.0.0/" is one part, "a/b/" two.
  const parts = text.split('/');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  const [address = '', maskText = ''] = parts;
  if (parts.length !== 2) throw new PatternSyntaxError("Malformed CIDR, one '/' required");
  if (!/^[+-]?\d+$/.test(maskText) || Math.abs(Number(maskText)) > 2 ** 31 - 1) {
    throw new PatternSyntaxError('Malformed CIDR, mask bits must be an integer');
  }
  const maskBits = Number(maskText);
  if (maskBits < 0) throw new PatternSyntaxError('Malformed CIDR, mask bits must not be negative');
  const network = parseIpAddress(address);
  if (!network) {
    const shaped = IPV4_SHAPE.test(address) || IPV6_SHAPE.test(address);
    throw new PatternSyntaxError(`${shaped ? 'Invalid' : 'Nonstandard'} IP address: ${address}`);
  }
  const width = network.version === 4 ? 32 : 128;
  if (maskBits > width - 1)
    throw new PatternSyntaxError(`IPv${network.version} mask bits must be < ${width}`);
  const shift = BigInt(width - maskBits);
  const prefix = network.value >> shift;
  return (value) => {
    const ip = parseIpAddress(value);
    return ip !== undefined && ip.version === network.version && ip.value >> shift === prefix;
  };
}
