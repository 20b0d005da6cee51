/**
 * EventBridge event-pattern engine, written from the AWS user guide ("Amazon EventBridge event patterns",
 * "Content filtering in Amazon EventBridge event patterns", "Arrays in ... event patterns", "Matching null
 * values and empty strings") and, where the guide is silent, the source of aws/event-ruler, the matcher
 * EventBridge runs (validation order and reason texts, dot-joined field names, array consistency).
 *
 * Semantics in short:
 * - A pattern is a JSON object. Every field named in it must match (AND); a field's array lists values and
 *   operators, any of which may match (OR). `$or: [p1, p2, ...]` ORs sub-patterns at its level.
 * - Fields are named by dot-joined paths on both sides (see flat-match.ts): `{"a.b": [1]}` = `{"a": {"b": [1]}}`.
 * - An event's leaves are its strings, numbers, booleans and nulls; an array matches if any element matches.
 *   A missing field, an empty array and an object (not a leaf) are absent: only `{"exists": false}` matches them.
 */
import { type Alternative, flattenEvent, matchesAnyAlternative, pathsToWalk } from './flat-match.ts';
import { compileMatchValues, isPlainObject, type MatchDialect, type ValueMatcher } from './match-values.ts';
import { InvalidEventPatternError, PatternSyntaxError } from './pattern-error.ts';

export { InvalidEventPatternError } from './pattern-error.ts';

export interface CompiledPattern {
  /** The validated pattern, as a parsed JSON object. */
  readonly pattern: Readonly<Record<string, unknown>>;
  /** True when the event (a parsed JSON object) matches the pattern. */
  matches(event: unknown): boolean;
}

/**
 * EventBridge's operators. `exactly` is event-ruler's explicit exact match: the user guide does not list it;
 * it is accepted here as EventBridge's matcher accepts it (not verified against AWS).
 */
export const EVENTBRIDGE_DIALECT: MatchDialect = {
  // User guide, numeric matching: values between -5.0e9 and +5.0e9 inclusive, six decimal places.
  numeric: { limit: 5e9, decimals: 6 },
  operators: new Set([
    'exactly',
    'prefix',
    'suffix',
    'equals-ignore-case',
    'wildcard',
    'anything-but',
    'numeric',
    'exists',
    'cidr',
  ]),
  anythingButOperators: new Set(['prefix', 'suffix', 'equals-ignore-case', 'wildcard']),
};

/** Field names event-ruler reserves inside `$or` (Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP). */
const RESERVED_IN_OR = new Set([
  'exactly',
  'equals-ignore-case',
  'prefix',
  'suffix',
  'anything-but',
  'exists',
  'wildcard',
  'numeric',
  'cidr',
  '=',
  '<',
  '<=',
  '>',
  '>=',
  'regex',
  'not-wildcard',
  'not-equals-ignore-case',
  'date-after',
  'date-on-or-after',
  'date-before',
  'date-on-or-before',
  'in-date-range',
  'ip-address-in-range',
  'ip-address-not-in-range',
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
      // AWS quotes its JSON parser (Jackson) here; that wording is not reproduced.
      throw new InvalidEventPatternError(
        `Pattern is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
        '',
        { cause: error },
      );
    }
  }
  if (!isPlainObject(parsed)) throw new InvalidEventPatternError('Filter is not an object', '');
  const alternatives = compileRules(
    parsed,
    EVENTBRIDGE_DIALECT,
    { prefix: '', display: '', insideOr: false },
    [new Map()],
  ).map(toAlternative);
  const paths = pathsToWalk(alternatives);
  return {
    pattern: parsed,
    matches: (event: unknown) => matchesAnyAlternative(alternatives, flattenEvent(event, paths)),
  };
}

/** Convenience: compiles `pattern` (throws `InvalidEventPatternError`) and matches one event. */
export function matchesPattern(pattern: unknown, event: unknown): boolean {
  return compilePattern(pattern).matches(event);
}

/** One alternative of a pattern under construction: path → matchers (a later field of the same path wins). */
export type RuleSet = ReadonlyMap<string, readonly ValueMatcher[]>;

export function toAlternative(rules: RuleSet): Alternative {
  return [...rules].map(([path, matchers]) => ({ path, matchers }));
}

/** Where `compileRules` is in the pattern: the field path rules use, the path errors show, inside `$or`. */
export interface RuleContext {
  readonly prefix: string;
  readonly display: string;
  readonly insideOr: boolean;
}

type Fail = (reason: string, path: string) => Error;

/**
 * Compiles the fields of `object` into every alternative of `rules`, expanding `$or` as event-ruler does (each
 * `$or` branch copies the alternatives so far; later fields join all of them). Exported for the SNS
 * filter-policy engine, which shares the structure.
 */
export function compileRules(
  object: Record<string, unknown>,
  dialect: MatchDialect,
  at: RuleContext,
  rules: readonly RuleSet[],
  fail: Fail = (reason, path) => new InvalidEventPatternError(reason, path),
): RuleSet[] {
  const keys = Object.keys(object);
  if (keys.length === 0) throw fail('Empty objects are not allowed', at.display);
  let current = [...rules];
  for (const key of keys) {
    const value = object[key];
    const display = at.display ? `${at.display}.${key}` : key;
    if (key === '$or') {
      current = compileOr(value, dialect, { ...at, display }, current, fail);
      continue;
    }
    if (at.insideOr && RESERVED_IN_OR.has(key)) {
      throw fail(`${key} is Ruler reserved fieldName which cannot be used inside $or.`, display);
    }
    const path = at.prefix ? `${at.prefix}.${key}` : key;
    if (Array.isArray(value)) {
      const matchers = compileField(value, dialect, display, fail);
      current = current.map((rule) => new Map(rule).set(path, matchers));
    } else if (isPlainObject(value)) {
      current = compileRules(value, dialect, { ...at, prefix: path, display }, current, fail);
    } else {
      throw fail(`"${key}" must be an object or an array`, display);
    }
  }
  return current;
}

function compileOr(
  value: unknown,
  dialect: MatchDialect,
  at: RuleContext,
  rules: readonly RuleSet[],
  fail: Fail,
) {
  if (!Array.isArray(value)) throw fail('It must be an Array followed with $or.', at.display);
  const branches: RuleSet[] = [];
  value.forEach((item, i) => {
    const display = `${at.display}[${i}]`;
    if (!isPlainObject(item))
      throw fail('Only JSON object is allowed in array of $or relationship.', display);
    branches.push(
      ...compileRules(item, dialect, { prefix: at.prefix, display, insideOr: true }, rules, fail),
    );
  });
  if (value.length < 2) throw fail('There must have at least 2 Objects in $or relationship.', at.display);
  return branches;
}

function compileField(values: unknown[], dialect: MatchDialect, path: string, fail: Fail): ValueMatcher[] {
  try {
    return compileMatchValues(values, dialect);
  } catch (error) {
    if (error instanceof PatternSyntaxError) throw fail(error.reason, path);
    throw error;
  }
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
