/**
 * The values of one pattern field (`"field": [value, {operator: operand}, ...]`), compiled into matchers of
 * event leaves. Shared by EventBridge event patterns and SNS filter policies, which differ only in the
 * `MatchDialect` (which operators exist, numeric range and precision).
 *
 * Reason texts and the order of checks follow aws/event-ruler's JsonRuleCompiler, the matcher EventBridge
 * runs; the ones LocalStack recorded against AWS are marked in test/unit/pattern-validation.test.ts.
 */
import { compileCidr, parseIpAddress, sameIpAddress } from './ip-address.ts';
import { checkNumber, compileNumeric, type NumericRules, numbersEqual } from './numeric-match.ts';
import { PatternSyntaxError } from './pattern-error.ts';

/** What an event holds at a path: a string, number, boolean or null. */
export type Leaf = string | number | boolean | null;

export type ValueMatcher =
  | { readonly kind: 'exists'; readonly present: boolean }
  | { readonly kind: 'test'; readonly test: (value: Leaf) => boolean };

export interface MatchDialect {
  readonly numeric: NumericRules;
  /** Operator names this service accepts at `{ "<operator>": ... }`. */
  readonly operators: ReadonlySet<string>;
  /** Operators accepted inside `{ "anything-but": { "<operator>": ... } }`. */
  readonly anythingButOperators: ReadonlySet<string>;
}

/** Compiles one field's array of values. Throws `PatternSyntaxError`. */
export function compileMatchValues(values: readonly unknown[], dialect: MatchDialect): ValueMatcher[] {
  if (values.length === 0) throw new PatternSyntaxError('Empty arrays are not allowed');
  return values.map((value): ValueMatcher => {
    if (typeof value === 'string') return { kind: 'test', test: exactString(value) };
    if (typeof value === 'number') {
      return { kind: 'test', test: (v) => typeof v === 'number' && numbersEqual(v, value, dialect.numeric) };
    }
    if (value === null || typeof value === 'boolean') return { kind: 'test', test: (v) => v === value };
    if (isPlainObject(value)) return compileOperator(value, dialect);
    throw new PatternSyntaxError('Match value must be String, number, true, false, or null');
  });
}

/** An IP literal in a pattern also matches the same address written differently (event-ruler CIDR ranges). */
function exactString(expected: string): (value: Leaf) => boolean {
  const ip = parseIpAddress(expected);
  if (!ip) return (v) => v === expected;
  return (v) => v === expected || (typeof v === 'string' && sameIpAddress(ip, v));
}

const onlyOneKey = () => new PatternSyntaxError('Only one key allowed in match expression');
const tooManyElements = () => new PatternSyntaxError('Too many elements in numeric expression');

function compileOperator(expression: Record<string, unknown>, dialect: MatchDialect): ValueMatcher {
  const keys = Object.keys(expression);
  const name = keys[0];
  if (name === undefined) throw new PatternSyntaxError('Match expression name not found');
  if (!dialect.operators.has(name)) throw new PatternSyntaxError(`Unrecognized match type ${name}`);
  const operand = expression[name];
  const extraKey = keys.length > 1;
  const strings = (test: (v: string) => boolean): ValueMatcher => ({
    kind: 'test',
    test: (v) => typeof v === 'string' && test(v),
  });
  switch (name) {
    case 'exactly': {
      const text = requireString(operand, 'exact match pattern must be a string');
      if (extraKey) throw onlyOneKey();
      return strings((v) => v === text);
    }
    case 'prefix':
    case 'suffix': {
      const test = compileAffix(name, operand);
      if (extraKey) throw onlyOneKey();
      return strings(test);
    }
    case 'equals-ignore-case': {
      const text = requireString(operand, 'equals-ignore-case match pattern must be a string');
      if (extraKey) throw onlyOneKey();
      const lowered = text.toLowerCase();
      return strings((v) => v.toLowerCase() === lowered);
    }
    case 'wildcard': {
      const regex = compileWildcard(requireString(operand, 'wildcard match pattern must be a string'));
      if (extraKey) throw onlyOneKey();
      return strings((v) => regex.test(v));
    }
    case 'cidr': {
      // event-ruler (and AWS, recorded) report a non-string cidr with the prefix wording.
      const test = compileCidr(requireString(operand, 'prefix match pattern must be a string'));
      if (extraKey) throw onlyOneKey();
      return strings(test);
    }
    case 'numeric': {
      const test = compileNumeric(operand, dialect.numeric);
      if (extraKey) throw tooManyElements();
      return { kind: 'test', test: (v) => typeof v === 'number' && test(v) };
    }
    case 'exists': {
      if (typeof operand !== 'boolean') {
        throw new PatternSyntaxError('exists match pattern must be either true or false.');
      }
      if (extraKey) throw onlyOneKey();
      return { kind: 'exists', present: operand };
    }
    case 'anything-but': {
      const excluded = compileAnythingBut(operand, dialect);
      if (extraKey) throw tooManyElements();
      return { kind: 'test', test: (v) => !excluded(v) };
    }
    default:
      throw new PatternSyntaxError(`Unrecognized match type ${name}`);
  }
}

/** `prefix`/`suffix` with a string, or with `{ "equals-ignore-case": string }`. */
function compileAffix(kind: 'prefix' | 'suffix', operand: unknown): (value: string) => boolean {
  if (isPlainObject(operand)) {
    const keys = Object.keys(operand);
    const inner = keys[0];
    const label = kind === 'prefix' ? 'Prefix' : 'Suffix';
    if (inner === undefined) throw new PatternSyntaxError(`${label} expression name not found`);
    if (inner !== 'equals-ignore-case') throw new PatternSyntaxError(`Unsupported ${kind} pattern: ${inner}`);
    const affix = requireString(operand[inner], 'equals-ignore-case match pattern must be a string');
    if (keys.length > 1) throw onlyOneKey();
    const lowered = affix.toLowerCase();
    return kind === 'prefix'
      ? (v) => v.toLowerCase().startsWith(lowered)
      : (v) => v.toLowerCase().endsWith(lowered);
  }
  const affix = requireString(operand, `${kind} match pattern must be a string`);
  return kind === 'prefix' ? (v) => v.startsWith(affix) : (v) => v.endsWith(affix);
}

/** Returns the predicate of the *excluded* values. */
function compileAnythingBut(operand: unknown, dialect: MatchDialect): (value: Leaf) => boolean {
  if (!isPlainObject(operand)) return excludedValues(simpleOperand(operand), dialect);
  const keys = Object.keys(operand);
  const setOperator = keys[0];
  if (setOperator === undefined) throw new PatternSyntaxError('Anything-But expression name not found');
  if (!dialect.anythingButOperators.has(setOperator)) {
    throw new PatternSyntaxError(`Unsupported anything-but pattern: ${setOperator}`);
  }
  const excluded = excludedBySet(setValues(simpleOperand(operand[setOperator]), setOperator), setOperator);
  if (keys.length > 1) throw tooManyElements();
  return excluded;
}

function excludedBySet(texts: string[], setOperator: string): (value: Leaf) => boolean {
  switch (setOperator) {
    case 'prefix':
      return (v) => typeof v === 'string' && texts.some((t) => v.startsWith(t));
    case 'suffix':
      return (v) => typeof v === 'string' && texts.some((t) => v.endsWith(t));
    case 'equals-ignore-case': {
      const lowered = new Set(texts.map((t) => t.toLowerCase()));
      return (v) => typeof v === 'string' && lowered.has(v.toLowerCase());
    }
    default: {
      const regexes = texts.map(compileWildcard);
      return (v) => typeof v === 'string' && regexes.some((r) => r.test(v));
    }
  }
}

function simpleOperand(value: unknown): string | number | unknown[] {
  if (Array.isArray(value) || typeof value === 'string' || typeof value === 'number') return value;
  throw new PatternSyntaxError('Value of anything-but must be an array or single string/number value.');
}

/** Plain `anything-but`: one string or number, or a list of only strings or only numbers. */
function excludedValues(value: string | number | unknown[], dialect: MatchDialect): (v: Leaf) => boolean {
  const list = Array.isArray(value) ? value : [value];
  for (const item of list) {
    if (typeof item !== 'string' && typeof item !== 'number') {
      throw new PatternSyntaxError('Inside anything but list, start|null|boolean is not supported.');
    }
    if (typeof item === 'number') checkNumber(item, dialect.numeric);
  }
  const numbers = list.filter((x): x is number => typeof x === 'number');
  const texts = new Set(list.filter((x): x is string => typeof x === 'string'));
  if (numbers.length > 0 === texts.size > 0) {
    throw new PatternSyntaxError(
      'Inside anything but list, either all values are number or string, mixed type is not supported',
    );
  }
  if (texts.size > 0) return (v) => typeof v === 'string' && texts.has(v);
  return (v) => typeof v === 'number' && numbers.some((n) => numbersEqual(v, n, dialect.numeric));
}

/** The strings of `anything-but` with prefix/suffix/equals-ignore-case/wildcard, one or a list. */
function setValues(value: string | number | unknown[], operator: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => {
    if (typeof item !== 'string') {
      if (operator === 'equals-ignore-case') {
        throw new PatternSyntaxError(
          'Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.',
        );
      }
      if (operator === 'wildcard') throw new PatternSyntaxError('wildcard match pattern must be a string');
      throw new PatternSyntaxError('prefix/suffix match pattern must be a string');
    }
    if ((operator === 'prefix' || operator === 'suffix') && item === '') {
      throw new PatternSyntaxError('Null prefix/suffix not allowed');
    }
    return item;
  });
}

/**
 * `*` matches any run of characters, also none; `\*` is a literal asterisk and `\\` a backslash. Positions in
 * the reasons count UTF-8 bytes of the value *with* its opening quote, as event-ruler's WildcardParser does
 * (AWS-recorded: "Consecutive wildcard characters at pos 26").
 */
export function compileWildcard(wildcard: string): RegExp {
  const position = (index: number) => Buffer.byteLength(wildcard.slice(0, index), 'utf8') + 1;
  let source = '^';
  for (let i = 0; i < wildcard.length; i++) {
    const ch = wildcard.charAt(i);
    if (ch === '*') {
      if (wildcard.charAt(i + 1) === '*') {
        throw new PatternSyntaxError(`Consecutive wildcard characters at pos ${position(i)}`);
      }
      source += '[\\s\\S]*';
    } else if (ch === '\\') {
      const next = wildcard.charAt(i + 1);
      if (next !== '*' && next !== '\\') {
        throw new PatternSyntaxError(`Invalid escape character at pos ${position(i)}`);
      }
      source += escapeRegExp(next);
      i++;
    } else {
      source += escapeRegExp(ch);
    }
  }
  return new RegExp(`${source}$`, 'u');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function requireString(value: unknown, reason: string): string {
  if (typeof value !== 'string') throw new PatternSyntaxError(reason);
  return value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
