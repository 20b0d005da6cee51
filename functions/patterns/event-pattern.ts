/**
 * EventBridge event-pattern engine for event buses, written from the AWS user guide pages
 * "Amazon EventBridge event patterns", "Content filtering in Amazon EventBridge event patterns",
 * "Comparison operators for use in event patterns", "Arrays in ... event patterns" and
 * "Matching null values and empty strings", plus the documented behaviour of AWS's open-source
 * matcher (aws/event-ruler README) where the guide is silent (numeric limits, wildcard escaping).
 *
 * Semantics in short:
 * - A pattern is a JSON object. Every field named in it must match (AND); a leaf is an array of
 *   values/operators, any of which may match (OR). `$or: [p1, p2, ...]` ORs sub-patterns at its level.
 * - Leaf values of the event are its strings, numbers, booleans and nulls. An array in the event
 *   matches if any element matches; objects inside arrays are matched element by element, so fields
 *   from different array elements never combine.
 * - A missing field, an empty array and an object (not a leaf) all count as "absent":
 *   only `{"exists": false}` matches them.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Thrown by `compilePattern` for a pattern AWS would reject with `InvalidEventPatternException`. */
export class InvalidEventPatternError extends Error {
  /** What is wrong, phrased like the `Reason:` part of AWS's message. */
  readonly reason: string;
  /** Dotted path of the offending field in the pattern (`""` for the pattern itself). */
  readonly path: string;
  constructor(reason: string, path: string, options?: { cause?: unknown }) {
    super(
      `Event pattern is not valid. Reason: ${reason}${path ? ` (at pattern path "${path}")` : ''}`,
      options,
    );
    this.name = 'InvalidEventPatternError';
    this.reason = reason;
    this.path = path;
  }
}

export interface CompiledPattern {
  /** The validated pattern, as a parsed JSON object. */
  readonly pattern: Readonly<Record<string, unknown>>;
  /** True when the event (a parsed JSON object) matches the pattern. */
  matches(event: unknown): boolean;
}

type Leaf = string | number | boolean | null;

type LeafMatcher =
  | { readonly kind: 'exists'; readonly present: boolean }
  | { readonly kind: 'test'; readonly test: (value: Leaf) => boolean };

interface ObjectNode {
  readonly fields: readonly FieldNode[];
  /** Each entry is one `$or`: at least one alternative must match. */
  readonly ors: readonly (readonly ObjectNode[])[];
}

type FieldNode =
  | { readonly key: string; readonly kind: 'object'; readonly node: ObjectNode }
  | { readonly key: string; readonly kind: 'leaf'; readonly matchers: readonly LeafMatcher[] };

/** Numeric matching limits of EventBridge (aws/event-ruler README: ±5.0e9, six decimal places). */
const NUMERIC_LIMIT = 5e9;
const NUMERIC_SCALE = 1e6;

/** Keywords that cannot be field names inside `$or` (they would be read as operators). */
const OPERATOR_KEYWORDS = new Set([
  'prefix',
  'suffix',
  'anything-but',
  'numeric',
  'exists',
  'equals-ignore-case',
  'wildcard',
  'cidr',
]);

/**
 * Validates an event pattern (a JSON object, or its JSON text) and compiles it into a matcher.
 * Throws `InvalidEventPatternError` when AWS would reject the pattern.
 */
export function compilePattern(pattern: unknown): CompiledPattern {
  let parsed = pattern;
  if (typeof pattern === 'string') {
    try {
      parsed = JSON.parse(pattern);
    } catch (error) {
      throw new InvalidEventPatternError(
        `Pattern is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
        '',
        { cause: error },
      );
    }
  }
  if (!isPlainObject(parsed)) {
    throw new InvalidEventPatternError('Filter is not an object; an event pattern must be a JSON object', '');
  }
  const root = compileObject(parsed, '', false);
  return {
    pattern: parsed,
    matches: (event: unknown) => matchObject(root, event),
  };
}

/** Convenience: compiles `pattern` (throws `InvalidEventPatternError`) and matches one event. */
export function matchesPattern(pattern: unknown, event: unknown): boolean {
  return compilePattern(pattern).matches(event);
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

function compileObject(obj: Record<string, unknown>, path: string, insideOr: boolean): ObjectNode {
  const keys = Object.keys(obj);
  if (keys.length === 0) throw new InvalidEventPatternError('Empty objects are not allowed', path);
  const fields: FieldNode[] = [];
  const ors: ObjectNode[][] = [];
  for (const key of keys) {
    const value = obj[key];
    const fieldPath = path ? `${path}.${key}` : key;
    if (key === '$or') {
      ors.push(compileOr(value, fieldPath));
      continue;
    }
    if (insideOr && OPERATOR_KEYWORDS.has(key)) {
      throw new InvalidEventPatternError(
        `"${key}" is a reserved keyword and cannot be used as a field name inside $or`,
        fieldPath,
      );
    }
    if (Array.isArray(value)) {
      fields.push({ key, kind: 'leaf', matchers: compileLeaf(value, fieldPath) });
    } else if (isPlainObject(value)) {
      fields.push({ key, kind: 'object', node: compileObject(value, fieldPath, insideOr) });
    } else {
      throw new InvalidEventPatternError(
        `"${key}" must be an object or an array; put match values in an array, e.g. "${key}": [${JSON.stringify(value)}]`,
        fieldPath,
      );
    }
  }
  return { fields, ors };
}

function compileOr(value: unknown, path: string): ObjectNode[] {
  if (!Array.isArray(value)) {
    throw new InvalidEventPatternError('$or must be followed by an array of at least 2 objects', path);
  }
  const alternatives = value.map((item, i) => {
    if (!isPlainObject(item)) {
      throw new InvalidEventPatternError(
        'Only JSON objects are allowed in the array of $or',
        `${path}[${i}]`,
      );
    }
    return compileObject(item, `${path}[${i}]`, true);
  });
  if (alternatives.length < 2) {
    throw new InvalidEventPatternError('There must be at least 2 objects in the array of $or', path);
  }
  return alternatives;
}

function compileLeaf(values: unknown[], path: string): LeafMatcher[] {
  if (values.length === 0) throw new InvalidEventPatternError('Empty arrays are not allowed', path);
  return values.map((value): LeafMatcher => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') {
      return { kind: 'test', test: (v) => v === value };
    }
    if (typeof value === 'number') {
      return { kind: 'test', test: (v) => typeof v === 'number' && numbersEqual(v, value) };
    }
    if (isPlainObject(value)) return compileOperator(value, path);
    throw new InvalidEventPatternError('Match value must be String, number, true, false, or null', path);
  });
}

function compileOperator(expr: Record<string, unknown>, path: string): LeafMatcher {
  const keys = Object.keys(expr);
  const name = keys[0];
  if (name === undefined) throw new InvalidEventPatternError('Match expression name not found', path);
  if (keys.length > 1) {
    throw new InvalidEventPatternError(
      `Only one key allowed in match expression, found ${keys.map((k) => `"${k}"`).join(', ')}`,
      path,
    );
  }
  const operand = expr[name];
  switch (name) {
    case 'prefix':
    case 'suffix': {
      const test = compileAffix(name, operand, path, false);
      return { kind: 'test', test: (v) => typeof v === 'string' && test(v) };
    }
    case 'equals-ignore-case': {
      const expected = requireString(operand, 'equals-ignore-case match pattern must be a string', path);
      return { kind: 'test', test: (v) => typeof v === 'string' && equalsIgnoreCase(v, expected) };
    }
    case 'wildcard': {
      const regex = compileWildcard(
        requireString(operand, 'wildcard match pattern must be a string', path),
        path,
      );
      return { kind: 'test', test: (v) => typeof v === 'string' && regex.test(v) };
    }
    case 'anything-but': {
      const excluded = compileAnythingBut(operand, path);
      return { kind: 'test', test: (v) => !excluded(v) };
    }
    case 'numeric': {
      const test = compileNumeric(operand, path);
      return { kind: 'test', test: (v) => typeof v === 'number' && Math.abs(v) <= NUMERIC_LIMIT && test(v) };
    }
    case 'exists': {
      if (typeof operand !== 'boolean') {
        throw new InvalidEventPatternError('exists match pattern must be either true or false', path);
      }
      return { kind: 'exists', present: operand };
    }
    case 'cidr': {
      const test = compileCidr(operand, path);
      return { kind: 'test', test: (v) => typeof v === 'string' && test(v) };
    }
    default:
      throw new InvalidEventPatternError(
        `Unrecognized match type ${name}; use one of ${[...OPERATOR_KEYWORDS].join(', ')}`,
        path,
      );
  }
}

/** `prefix`/`suffix` with a string, or with `{ "equals-ignore-case": string }`. */
function compileAffix(
  kind: 'prefix' | 'suffix',
  operand: unknown,
  path: string,
  forbidEmpty: boolean,
): (value: string) => boolean {
  let affix: string;
  let ignoreCase = false;
  if (typeof operand === 'string') {
    affix = operand;
  } else if (isPlainObject(operand) && !forbidEmpty) {
    const keys = Object.keys(operand);
    const inner = operand['equals-ignore-case'];
    if (keys.length !== 1 || keys[0] !== 'equals-ignore-case' || typeof inner !== 'string') {
      throw new InvalidEventPatternError(
        `${kind} match pattern must be a string or { "equals-ignore-case": string }`,
        path,
      );
    }
    affix = inner;
    ignoreCase = true;
  } else {
    throw new InvalidEventPatternError(`${kind} match pattern must be a string`, path);
  }
  if (forbidEmpty && affix === '') {
    throw new InvalidEventPatternError('Null prefix/suffix not allowed in anything-but', path);
  }
  if (ignoreCase) {
    const lower = affix.toLowerCase();
    return kind === 'prefix'
      ? (v) => v.toLowerCase().startsWith(lower)
      : (v) => v.toLowerCase().endsWith(lower);
  }
  return kind === 'prefix' ? (v) => v.startsWith(affix) : (v) => v.endsWith(affix);
}

/** Returns the predicate for the *excluded* values. */
function compileAnythingBut(operand: unknown, path: string): (value: Leaf) => boolean {
  if (typeof operand === 'string') return (v) => v === operand;
  if (typeof operand === 'number') {
    checkNumericRange(operand, path);
    return (v) => typeof v === 'number' && numbersEqual(v, operand);
  }
  if (Array.isArray(operand)) {
    if (operand.length > 0 && operand.every((x) => typeof x === 'string')) {
      const set = new Set<string>(operand);
      return (v) => typeof v === 'string' && set.has(v);
    }
    if (operand.length > 0 && operand.every((x) => typeof x === 'number')) {
      for (const n of operand) checkNumericRange(n, path);
      return (v) => typeof v === 'number' && operand.some((n) => numbersEqual(v, n));
    }
    throw new InvalidEventPatternError(
      'Inside anything-but list, either all values are number or string; null, boolean, objects, ' +
        'empty lists and mixed types are not supported',
      path,
    );
  }
  if (isPlainObject(operand)) {
    const keys = Object.keys(operand);
    const name = keys[0];
    if (name === undefined || keys.length > 1) {
      throw new InvalidEventPatternError('Only one key allowed in anything-but match expression', path);
    }
    const inner = operand[name];
    switch (name) {
      case 'prefix':
      case 'suffix': {
        const test = compileAffix(name, inner, path, true);
        return (v) => typeof v === 'string' && test(v);
      }
      case 'equals-ignore-case': {
        const list = stringOrStringList(inner, 'equals-ignore-case', path);
        const lowered = new Set(list.map((s) => s.toLowerCase()));
        return (v) => typeof v === 'string' && lowered.has(v.toLowerCase());
      }
      case 'wildcard': {
        const regexes = stringOrStringList(inner, 'wildcard', path).map((w) => compileWildcard(w, path));
        return (v) => typeof v === 'string' && regexes.some((r) => r.test(v));
      }
      default:
        throw new InvalidEventPatternError(
          `Unsupported anything-but pattern: ${name}; use prefix, suffix, equals-ignore-case or wildcard`,
          path,
        );
    }
  }
  throw new InvalidEventPatternError(
    'Value of anything-but must be an array or single string/number value, or an object with prefix, ' +
      'suffix, equals-ignore-case or wildcard',
    path,
  );
}

function stringOrStringList(value: unknown, kind: string, path: string): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'string')) return value;
  throw new InvalidEventPatternError(
    `anything-but/${kind} match pattern must be a string or a non-empty list of strings`,
    path,
  );
}

const NUMERIC_OPERATORS = new Set(['=', '<', '<=', '>', '>=']);

function compileNumeric(operand: unknown, path: string): (value: number) => boolean {
  if (!Array.isArray(operand) || operand.length === 0) {
    throw new InvalidEventPatternError('Value of numeric must be an array, e.g. [">", 0, "<=", 5]', path);
  }
  const [op, value, op2, value2] = operand as unknown[];
  if (typeof op !== 'string') {
    throw new InvalidEventPatternError(`Invalid member in numeric match: ${JSON.stringify(op)}`, path);
  }
  if (!NUMERIC_OPERATORS.has(op)) {
    throw new InvalidEventPatternError(`Unrecognized numeric range operator: ${op}`, path);
  }
  const first = requireNumber(value, op, path);
  const a = scaled(first);
  if (op === '=' || op === '<' || op === '<=') {
    if (operand.length !== 2)
      throw new InvalidEventPatternError('Too many elements in numeric expression', path);
    if (op === '=') return (v) => scaled(v) === a;
    return op === '<' ? (v) => scaled(v) < a : (v) => scaled(v) <= a;
  }
  const lower = op === '>' ? (v: number) => scaled(v) > a : (v: number) => scaled(v) >= a;
  if (operand.length === 2) return lower;
  if (typeof op2 !== 'string') {
    throw new InvalidEventPatternError(`Bad value in numeric range: ${JSON.stringify(op2)}`, path);
  }
  if (op2 !== '<' && op2 !== '<=') {
    throw new InvalidEventPatternError(
      `Bad numeric range operator: ${op2}; a range is [">" or ">=", low, "<" or "<=", high]`,
      path,
    );
  }
  const top = requireNumber(value2, op2, path);
  if (operand.length !== 4) {
    throw new InvalidEventPatternError('Too many terms in numeric range expression', path);
  }
  if (top <= first) throw new InvalidEventPatternError('Bottom must be less than top in numeric range', path);
  const b = scaled(top);
  const upper = op2 === '<' ? (v: number) => scaled(v) < b : (v: number) => scaled(v) <= b;
  return (v) => lower(v) && upper(v);
}

function requireNumber(value: unknown, op: string, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidEventPatternError(`Value of ${op} must be numeric`, path);
  }
  checkNumericRange(value, path);
  return value;
}

function checkNumericRange(value: number, path: string): void {
  if (!(Math.abs(value) <= NUMERIC_LIMIT)) {
    throw new InvalidEventPatternError(
      `Value must be between -5.0E9 and 5.0E9, inclusive (got ${value})`,
      path,
    );
  }
}

/** Numbers compare to six decimal places, as EventBridge documents; integers are exact below 2^53. */
function scaled(value: number): number {
  return Math.round(value * NUMERIC_SCALE);
}

function numbersEqual(a: number, b: number): boolean {
  if (Math.abs(a) <= NUMERIC_LIMIT && Math.abs(b) <= NUMERIC_LIMIT) return scaled(a) === scaled(b);
  return a === b;
}

function equalsIgnoreCase(a: string, b: string): boolean {
  return a === b || a.toLowerCase() === b.toLowerCase();
}

/**
 * `*` matches any run of characters (also none). `\*` is a literal asterisk and `\\` a literal
 * backslash; any other escape, and two unescaped `*` in a row, are rejected as EventBridge does.
 */
function compileWildcard(wildcard: string, path: string): RegExp {
  let source = '^';
  let previousWasStar = false;
  for (let i = 0; i < wildcard.length; i++) {
    const ch = wildcard.charAt(i);
    if (ch === '\\') {
      const next = wildcard.charAt(i + 1);
      if (next !== '*' && next !== '\\') {
        throw new InvalidEventPatternError(
          `Invalid escape character at pos ${i + 1} in wildcard "${wildcard}"; only \\* and \\\\ are allowed`,
          path,
        );
      }
      source += escapeRegExp(next);
      i++;
      previousWasStar = false;
    } else if (ch === '*') {
      if (previousWasStar) {
        throw new InvalidEventPatternError(
          `Consecutive wildcard characters at pos ${i} in wildcard "${wildcard}"`,
          path,
        );
      }
      source += '[\\s\\S]*';
      previousWasStar = true;
    } else {
      source += escapeRegExp(ch);
      previousWasStar = false;
    }
  }
  return new RegExp(`${source}$`, 'u');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compileCidr(operand: unknown, path: string): (value: string) => boolean {
  const text = requireString(operand, 'cidr match pattern must be a string', path);
  const parts = text.split('/');
  const [address, lengthText] = parts;
  if (parts.length !== 2 || address === undefined || lengthText === undefined) {
    throw new InvalidEventPatternError(`Malformed CIDR, one '/' required: ${text}`, path);
  }
  const network = parseIp(address);
  if (!network) throw new InvalidEventPatternError(`Invalid CIDR, bad IP address: ${text}`, path);
  const maxBits = network.version === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > maxBits) {
    throw new InvalidEventPatternError(
      `Invalid CIDR, prefix length must be 0-${maxBits} for IPv${network.version}: ${text}`,
      path,
    );
  }
  const shift = BigInt(maxBits - Number(lengthText));
  const prefix = network.value >> shift;
  return (value) => {
    const ip = parseIp(value);
    return ip !== undefined && ip.version === network.version && ip.value >> shift === prefix;
  };
}

function parseIp(text: string): { version: 4 | 6; value: bigint } | undefined {
  if (isIPv4(text)) return { version: 4, value: ipv4ToBigInt(text) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let normalized = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // Embedded IPv4 (e.g. ::ffff:10.0.0.1) stands for the last two 16-bit groups.
    const v4 = ipv4ToBigInt(tail);
    normalized = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const toGroups = (s: string): bigint[] => (s === '' ? [] : s.split(':').map((g) => BigInt(`0x${g}`)));
  let groups: bigint[];
  const doubleColon = normalized.indexOf('::');
  if (doubleColon >= 0) {
    const head = toGroups(normalized.slice(0, doubleColon));
    const rest = toGroups(normalized.slice(doubleColon + 2));
    groups = [...head, ...new Array<bigint>(8 - head.length - rest.length).fill(0n), ...rest];
  } else {
    groups = toGroups(normalized);
  }
  if (groups.length !== 8) return undefined;
  return { version: 6, value: groups.reduce((acc, g) => (acc << 16n) | g, 0n) };
}

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function requireString(value: unknown, reason: string, path: string): string {
  if (typeof value !== 'string') throw new InvalidEventPatternError(reason, path);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

function matchObject(node: ObjectNode, value: unknown): boolean {
  if (Array.isArray(value)) {
    const items = value.flat(Number.POSITIVE_INFINITY) as unknown[];
    if (items.length === 0) return matchObjectValue(node, undefined);
    return items.some((item) => matchObjectValue(node, item));
  }
  return matchObjectValue(node, value);
}

function matchObjectValue(node: ObjectNode, value: unknown): boolean {
  const obj = isPlainObject(value) ? value : undefined;
  for (const field of node.fields) {
    const child = obj && Object.hasOwn(obj, field.key) ? obj[field.key] : undefined;
    const ok = field.kind === 'object' ? matchObject(field.node, child) : matchLeaf(field.matchers, child);
    if (!ok) return false;
  }
  return node.ors.every((alternatives) => alternatives.some((alt) => matchObjectValue(alt, value)));
}

function matchLeaf(matchers: readonly LeafMatcher[], value: unknown): boolean {
  const leaves = collectLeaves(value);
  return matchers.some((m) =>
    m.kind === 'exists' ? leaves.length > 0 === m.present : leaves.some((leaf) => m.test(leaf)),
  );
}

function collectLeaves(value: unknown): Leaf[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) {
    return (value.flat(Number.POSITIVE_INFINITY) as unknown[]).filter(isLeaf);
  }
  return isLeaf(value) ? [value] : [];
}

function isLeaf(value: unknown): value is Leaf {
  return (
    value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the relay's PutEvents entry of an outbox event looks like to a rule's pattern. */
export interface OutboxEventForPattern {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly createdAt: number;
  /** The envelope: the event's `detail`. */
  readonly detail: unknown;
}

/**
 * The EventBridge event a rule matches for an outbox event (Source = source, DetailType = type, Detail = the
 * envelope), so offline checks evaluate patterns against what the relay really puts on the bus.
 */
export function eventBridgeEventOf(event: OutboxEventForPattern): Record<string, unknown> {
  return {
    version: '0',
    id: event.id,
    'detail-type': event.type,
    source: event.source,
    account: '000000000000',
    time: new Date(event.createdAt).toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: event.detail,
  };
}
