/**
 * `numeric` operands and number equality. Reasons and their order follow event-ruler's JsonRuleCompiler
 * (AWS-recorded: "Bad numeric range operator: >", "Value of < must be numeric"); the range and precision are the
 * service's documented ones (EventBridge: ±5.0e9 and six decimals; SNS: five decimals).
 */
import { PatternSyntaxError } from './pattern-error.ts';

export interface NumericRules {
  /** Largest magnitude a pattern may name and an event number may have to match; none = unchecked. */
  readonly limit?: number;
  /** Numbers compare after rounding to this many decimal places. */
  readonly decimals: number;
}

/** How Jackson's `getText()` shows a JSON value in a reason: `]` for the end of the array, `{`, `[`, `null`. */
export function tokenText(value: unknown): string {
  if (value === undefined) return ']';
  if (Array.isArray(value)) return '[';
  if (value !== null && typeof value === 'object') return '{';
  return typeof value === 'string' ? value : String(value);
}

export function checkNumber(value: number, rules: NumericRules): void {
  if (rules.limit !== undefined && !(Math.abs(value) <= rules.limit)) {
    // event-ruler's wording from when EventBridge's documented ±5.0e9 range was its own.
    throw new PatternSyntaxError(
      `Value must be between -${rules.limit.toExponential(1).replace('e+', 'E')} and ${rules.limit.toExponential(1).replace('e+', 'E')}, inclusive`,
    );
  }
}

export function scaled(value: number, rules: NumericRules): number {
  return Math.round(value * 10 ** rules.decimals);
}

export function inRange(value: number, rules: NumericRules): boolean {
  return rules.limit === undefined || Math.abs(value) <= rules.limit;
}

export function numbersEqual(a: number, b: number, rules: NumericRules): boolean {
  if (inRange(a, rules) && inRange(b, rules)) return scaled(a, rules) === scaled(b, rules);
  return a === b;
}

/** `[op, n]` or `[">"|">=", low, "<"|"<=", high]`; returns the test for an event number. */
export function compileNumeric(operand: unknown, rules: NumericRules): (value: number) => boolean {
  if (!Array.isArray(operand)) throw new PatternSyntaxError('Value of numeric must be an array.');
  const [op, first, op2, second] = operand as unknown[];
  if (typeof op !== 'string') {
    throw new PatternSyntaxError(`Invalid member in numeric match: ${tokenText(op)}`);
  }
  if (!['=', '<', '<=', '>', '>='].includes(op)) {
    throw new PatternSyntaxError(`Unrecognized numeric range operator: ${op}`);
  }
  const low = requireNumber(first, op === '=' ? 'equals' : op, rules);
  const a = scaled(low, rules);
  const within = (v: number) => inRange(v, rules);
  if (op === '=' || op === '<' || op === '<=') {
    if (operand.length > 2) throw new PatternSyntaxError('Too many elements in numeric expression');
    if (op === '=') return (v) => within(v) && scaled(v, rules) === a;
    return op === '<' ? (v) => within(v) && scaled(v, rules) < a : (v) => within(v) && scaled(v, rules) <= a;
  }
  const above = op === '>' ? (v: number) => scaled(v, rules) > a : (v: number) => scaled(v, rules) >= a;
  if (operand.length === 2) return (v) => within(v) && above(v);
  if (typeof op2 !== 'string') throw new PatternSyntaxError(`Bad value in numeric range: ${tokenText(op2)}`);
  if (op2 !== '<' && op2 !== '<=') throw new PatternSyntaxError(`Bad numeric range operator: ${op2}`);
  const high = requireNumber(second, op2, rules);
  if (operand.length > 4) throw new PatternSyntaxError('Too many terms in numeric range expression');
  const b = scaled(high, rules);
  if (b <= a) throw new PatternSyntaxError('Bottom must be less than top');
  const below = op2 === '<' ? (v: number) => scaled(v, rules) < b : (v: number) => scaled(v, rules) <= b;
  return (v) => within(v) && above(v) && below(v);
}

function requireNumber(value: unknown, op: string, rules: NumericRules): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new PatternSyntaxError(`Value of ${op} must be numeric`);
  }
  checkNumber(value, rules);
  return value;
}
