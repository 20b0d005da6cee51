import { randomBytes } from 'node:crypto';

let lastMillis = 0;
let counter = 0;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function random(count: number): Buffer {
  // One syscall per 256 ids instead of one per id.
  if (poolOffset + count > pool.length) {
    pool = randomBytes(Math.max(4096, count));
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + count);
  poolOffset += count;
  return slice;
}

/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that keeps ids created in the
 * same millisecond strictly increasing within this process, then 62 random bits.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMillis) {
    lastMillis = now;
    counter = random(2).readUInt16BE(0) & 0x7ff; // start low so the counter rarely overflows
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMillis++;
      counter = 0;
    }
  }
  const bytes = Buffer.allocUnsafe(16);
  const ms = lastMillis;
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  random(8).copy(bytes, 8);
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isUuidV7(value: string): boolean {
  return UUID_V7.test(value);
}

/** The Unix milliseconds encoded in a UUIDv7. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
