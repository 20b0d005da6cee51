/**
 * Amazon SNS subscription filter policies, for attributes (`FilterPolicyScope: MessageAttributes`, the default)
 * and for the JSON message body (`MessageBody`, nested keys allowed). Written from the SNS developer guide
 * ("Amazon SNS message filtering", "subscription filter policies", "Filter policy constraints", the operator
 * pages). Validation texts are those of LocalStack's SNS validator and moto's tests, both written against AWS's
 * responses (localstack-core/.../services/sns/filter.py, test_sns_filter_policy.snapshot.json).
 * Operators, their reasons and the `$or`/dotted-path structure are those of EventBridge patterns (SNS's
 * filtering runs the same language); only the dialect below differs.
 */
import { compileRules, type RuleSet, toAlternative } from './event-pattern.ts';
import { flatLeaves, flattenEvent, matchesAnyAlternative, pathsToWalk } from './flat-match.ts';
import { isPlainObject, type Leaf, type MatchDialect } from './match-values.ts';

export type FilterPolicyScope = 'MessageAttributes' | 'MessageBody';

export const FILTER_POLICY_SCOPES: readonly FilterPolicyScope[] = ['MessageAttributes', 'MessageBody'];

/** Thrown for a policy SNS rejects with `InvalidParameter` on Subscribe / SetSubscriptionAttributes. */
export class InvalidFilterPolicyError extends Error {
  /** The part after `FilterPolicy: ` in SNS's message. */
  readonly reason: string;
  /** Dotted path of the offending key (`""` for the policy itself). */
  readonly path: string;
  constructor(reason: string, path: string, options?: { underFilterPolicy?: boolean; cause?: unknown }) {
    // SetSubscriptionAttributes' wording; Subscribe says "Invalid parameter: Attributes Reason: FilterPolicy: ...".
    const head =
      options?.underFilterPolicy === false ? 'Invalid parameter: ' : 'Invalid parameter: FilterPolicy: ';
    super(`${head}${reason}${path ? ` (at policy path "${path}")` : ''}`, { cause: options?.cause });
    this.name = 'InvalidFilterPolicyError';
    this.reason = reason;
    this.path = path;
  }
}

/** SNS's operators (no `wildcard`, `exactly`; `anything-but` nests only prefix and suffix). */
export const SNS_DIALECT: MatchDialect = {
  // "five digits of accuracy after the decimal point"; the documented ±1e9 range is not enforced by AWS
  // (LocalStack's recordings accept larger numbers), so it is not checked here.
  numeric: { decimals: 5 },
  operators: new Set(['prefix', 'suffix', 'equals-ignore-case', 'anything-but', 'numeric', 'exists', 'cidr']),
  anythingButOperators: new Set(['prefix', 'suffix']),
};

const MAX_KEYS = 5;
const MAX_COMBINATIONS = 150;
const MAX_POLICY_BYTES = 256 * 1024;

/** One message attribute, as the SDK sends it (`DataType`/`StringValue`) or a notification shows it. */
export interface SnsMessageAttribute {
  readonly DataType?: string;
  readonly StringValue?: string;
  readonly BinaryValue?: unknown;
  readonly Type?: string;
  readonly Value?: string;
}

export interface SnsMessageForFilter {
  /** The message body (for `MessageBody` scope). */
  readonly message?: string;
  readonly attributes?: Readonly<Record<string, SnsMessageAttribute>>;
}

export interface CompiledFilterPolicy {
  readonly policy: Readonly<Record<string, unknown>>;
  readonly scope: FilterPolicyScope;
  matches(message: SnsMessageForFilter): boolean;
}

/** Validates a filter policy (object or JSON text) for a scope; throws `InvalidFilterPolicyError`. */
export function compileFilterPolicy(
  policy: unknown,
  scope: FilterPolicyScope = 'MessageAttributes',
): CompiledFilterPolicy {
  let parsed = policy;
  if (typeof policy === 'string') {
    if (Buffer.byteLength(policy, 'utf8') > MAX_POLICY_BYTES) {
      throw new InvalidFilterPolicyError('Filter policy is too long', '');
    }
    try {
      parsed = JSON.parse(policy);
    } catch (error) {
      throw new InvalidFilterPolicyError('failed to parse JSON.', '', { cause: error });
    }
  }
  // SNS's wording for a non-object policy is not recorded; event-ruler's is used.
  if (!isPlainObject(parsed)) throw new InvalidFilterPolicyError('Filter is not an object', '');
  if (Object.keys(parsed).length === 0) return { policy: parsed, scope, matches: () => true };
  if (Object.keys(parsed).length > MAX_KEYS) {
    throw new InvalidFilterPolicyError(`Filter policy can not have more than ${MAX_KEYS} keys`, '');
  }
  if (combinationsOf(parsed, scope, 1, 1, '') > MAX_COMBINATIONS) {
    throw new InvalidFilterPolicyError('Filter policy is too complex', '');
  }
  const rules = compileRules(
    parsed,
    SNS_DIALECT,
    { prefix: '', display: '', insideOr: false },
    [new Map()] as RuleSet[],
    (reason, path) => new InvalidFilterPolicyError(reason, path),
  );
  const alternatives = rules.map(toAlternative);
  const paths = pathsToWalk(alternatives);
  return {
    policy: parsed,
    scope,
    matches: (message) => {
      if (scope === 'MessageAttributes')
        return matchesAnyAlternative(alternatives, attributeLeaves(message.attributes));
      const body = parseBody(message.message);
      return isPlainObject(body) && matchesAnyAlternative(alternatives, flattenEvent(body, paths));
    },
  };
}

/** Convenience: compiles (throws `InvalidFilterPolicyError`) and matches one message. */
export function matchesFilterPolicy(
  policy: unknown,
  message: SnsMessageForFilter,
  scope: FilterPolicyScope = 'MessageAttributes',
): boolean {
  return compileFilterPolicy(policy, scope).matches(message);
}

/**
 * The "total combination of values" (constraints page): values per array multiplied, times the nesting depth
 * of each array for payload policies (the guide's example: 3 x 4 x 2 x 3 = 72); `$or` branches add up.
 * Also rejects what the count cannot read: non-array leaves, empty arrays, nesting on attributes.
 */
function combinationsOf(
  policy: Record<string, unknown>,
  scope: FilterPolicyScope,
  depth: number,
  combinations: number,
  at: string,
): number {
  let total = combinations;
  for (const [key, value] of Object.entries(policy)) {
    const path = at ? `${at}.${key}` : key;
    if (key === '$or' && Array.isArray(value)) {
      let sum = 0;
      for (const branch of value)
        sum += isPlainObject(branch) ? combinationsOf(branch, scope, depth, total, path) : 0;
      total = sum;
    } else if (isPlainObject(value)) {
      if (scope === 'MessageAttributes') {
        throw new InvalidFilterPolicyError(
          'Filter policy scope MessageAttributes does not support nested filter policy',
          path,
          { underFilterPolicy: false },
        );
      }
      total = combinationsOf(value, scope, depth + 1, total, path);
    } else if (Array.isArray(value)) {
      if (value.length === 0) throw new InvalidFilterPolicyError('Empty arrays are not allowed', path);
      total *= value.length * depth;
    } else {
      throw new InvalidFilterPolicyError(`"${key}" must be an object or an array`, path);
    }
  }
  return total;
}

function parseBody(message: string | undefined): unknown {
  if (message === undefined) return undefined;
  try {
    return JSON.parse(message);
  } catch {
    return undefined; // SNS: body policies assume a JSON object; anything else matches nothing.
  }
}

/**
 * Attribute values as leaves by name: String → the string, Number → the number, String.Array → its elements;
 * Binary attributes are never compared (SNS compares String, String.Array and Number only).
 */
function attributeLeaves(attributes: SnsMessageForFilter['attributes']) {
  const entries: [string, Leaf[]][] = [];
  for (const [name, attribute] of Object.entries(attributes ?? {})) {
    const type = attribute.DataType ?? attribute.Type ?? '';
    const text = attribute.StringValue ?? attribute.Value;
    if (type.startsWith('Binary') || text === undefined) continue;
    if (type.startsWith('Number')) {
      const value = Number(text);
      entries.push([name, Number.isFinite(value) ? [value] : []]);
    } else if (type.startsWith('String.Array')) {
      entries.push([name, arrayLeaves(text)]);
    } else {
      entries.push([name, [text]]);
    }
  }
  return flatLeaves(entries);
}

function arrayLeaves(text: string): Leaf[] {
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter((v): v is Leaf => v === null || ['string', 'number', 'boolean'].includes(typeof v));
  } catch {
    return [];
  }
}
