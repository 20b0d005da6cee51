import { describe, expect, it } from 'vitest';
import {
  compileFilterPolicy,
  type FilterPolicyScope,
  InvalidFilterPolicyError,
  matchesFilterPolicy,
  type SnsMessageAttribute,
} from '../../functions/patterns/sns-filter-policy.ts';

// Sources:
// [ex]     SNS guide "Amazon SNS example filter policies" (the customer transaction message)
// [str]    "String value matching"; [num] "Numeric value matching"; [key] "Key matching"; [or] "AND/OR logic"
// [cons]   "Filter policy constraints in Amazon SNS"
// [ls]     the texts of LocalStack's SNS validator (localstack-core/.../services/sns/filter.py) and moto's SNS
//          tests, both written against AWS's responses (LocalStack snapshots them in
//          tests/aws/services/sns/test_sns_filter_policy.snapshot.json); not re-recorded here
// [ruler]  event-ruler wording shared with EventBridge, where [ls] has none

const s = (value: string): SnsMessageAttribute => ({ DataType: 'String', StringValue: value });
const n = (value: number | string): SnsMessageAttribute => ({
  DataType: 'Number',
  StringValue: String(value),
});
const arr = (values: unknown[]): SnsMessageAttribute => ({
  DataType: 'String.Array',
  StringValue: JSON.stringify(values),
});

/** [ex] the transaction, as attributes and as a body. */
const attributes = {
  customer_interests: arr(['soccer', 'rugby', 'hockey']),
  store: s('example_corp'),
  event: s('order_placed'),
  price_usd: n(210.75),
};
const body = JSON.stringify({
  customer_interests: ['soccer', 'rugby', 'hockey'],
  store: 'example_corp',
  event: 'order_placed',
  price_usd: 210.75,
  customer: { address: { city: 'Seattle' } },
});

type Case = [name: string, policy: unknown, expected: boolean];

function runCases(scope: FilterPolicyScope, cases: Case[]): void {
  it.each(cases)('%s', (_name, policy, expected) => {
    expect(matchesFilterPolicy(policy, { attributes, message: body }, scope)).toBe(expected);
  });
}

describe('attribute-based (MessageAttributes)', () => {
  // biome-ignore format: one case per line reads as a table
  runCases('MessageAttributes', [
    ['[ex] the guide\'s policy matches', { store: ['example_corp'], event: [{ 'anything-but': 'order_cancelled' }], customer_interests: ['rugby', 'football', 'baseball'], price_usd: [{ numeric: ['>=', 100] }] }, true],
    ['[str] String.Array: any element matches', { customer_interests: ['rugby'] }, true],
    ['[str] String.Array: no element matches', { customer_interests: ['baseball'] }, false],
    ['[str] exact is case sensitive', { store: ['Example_Corp'] }, false],
    ['[str] equals-ignore-case', { store: [{ 'equals-ignore-case': 'EXAMPLE_CORP' }] }, true],
    ['[str] prefix', { event: [{ prefix: 'order-' }] }, false],
    ['[str] prefix matches', { event: [{ prefix: 'order_' }] }, true],
    ['[str] suffix', { event: [{ suffix: '_placed' }] }, true],
    ['[str] anything-but list', { event: [{ 'anything-but': ['order_cancelled', 'order_failed'] }] }, true],
    ['[str] anything-but excludes', { store: [{ 'anything-but': ['example_corp'] }] }, false],
    ['[str] anything-but prefix', { event: [{ 'anything-but': { prefix: 'order' } }] }, false],
    ['[str] anything-but suffix', { event: [{ 'anything-but': { suffix: '_cancelled' } }] }, true],
    ['[num] exact number on a Number attribute', { price_usd: [210.75] }, true],
    ['[num] 2.1075e2 is the same number', { price_usd: [2.1075e2] }, true],
    ['[num] numeric range', { price_usd: [{ numeric: ['>', 0, '<=', 210.75] }] }, true],
    ['[num] numeric range excludes', { price_usd: [{ numeric: ['>', 210.75] }] }, false],
    ['[num] five decimals of precision', { price_usd: [{ numeric: ['=', 210.750001] }] }, true],
    ['[num] a String attribute is not a number', { store: [{ numeric: ['>', 0] }] }, false],
    ['[num] a number does not equal its string', { price_usd: ['210.75'] }, false],
    ['[key] exists true', { store: [{ exists: true }] }, true],
    ['[key] exists false on a present attribute', { store: [{ exists: false }] }, false],
    ['[key] exists false on a missing attribute', { missing: [{ exists: false }] }, true],
    ['[key] a missing attribute fails any value', { missing: ['x'] }, false],
    ['[or] values of one key are OR', { store: ['other', 'example_corp'] }, true],
    ['[or] keys are AND', { store: ['example_corp'], event: ['order_cancelled'] }, false],
    ['[or] $or', { $or: [{ store: ['other'] }, { event: ['order_placed'] }] }, true],
    ['[or] $or with a common key', { store: ['example_corp'], $or: [{ price_usd: [{ numeric: ['>', 500] }] }, { customer_interests: ['hockey'] }] }, true],
    ['[or] $or: no branch', { $or: [{ store: ['other'] }, { event: ['other'] }] }, false],
    ['[cons] an empty policy accepts everything', {}, true],
  ]);

  it('[str] cidr on a String attribute', () => {
    const message = { attributes: { source_ip: s('10.0.0.255') } };
    expect(matchesFilterPolicy({ source_ip: [{ cidr: '10.0.0.0/24' }] }, message)).toBe(true);
    expect(matchesFilterPolicy({ source_ip: [{ cidr: '10.0.1.0/24' }] }, message)).toBe(false);
  });

  it('accepts notification-shaped attributes (Type/Value) and ignores Binary ones', () => {
    const message = {
      attributes: {
        store: { Type: 'String', Value: 'example_corp' },
        blob: { DataType: 'Binary', BinaryValue: 'AA==' },
      },
    };
    expect(matchesFilterPolicy({ store: ['example_corp'] }, message)).toBe(true);
    expect(matchesFilterPolicy({ blob: [{ exists: false }] }, message)).toBe(true);
  });

  it('an attribute named with a dot is one attribute', () => {
    expect(matchesFilterPolicy({ 'a.b': ['x'] }, { attributes: { 'a.b': s('x') } })).toBe(true);
  });
});

describe('payload-based (MessageBody)', () => {
  // biome-ignore format: one case per line reads as a table
  runCases('MessageBody', [
    ['[ex] the guide\'s policy on the body', { store: ['example_corp'], event: [{ 'anything-but': 'order_cancelled' }], customer_interests: ['rugby'], price_usd: [{ numeric: ['>=', 100] }] }, true],
    ['nested keys', { customer: { address: { city: ['Seattle'] } } }, true],
    ['nested keys: other value', { customer: { address: { city: ['Boston'] } } }, false],
    ['[ls] a dotted key reaches the nested property', { 'customer.address.city': ['Seattle'] }, true],
    ['arrays in the body: any element', { customer_interests: [{ prefix: 'hock' }] }, true],
    ['[num] numbers are JSON numbers', { price_usd: [210.75] }, true],
    ['[key] exists false on a nested missing key', { customer: { phone: [{ exists: false }] } }, true],
  ]);

  it('a body that is not a JSON object matches nothing but an empty policy', () => {
    expect(matchesFilterPolicy({ a: [{ exists: false }] }, { message: 'not json' }, 'MessageBody')).toBe(
      false,
    );
    expect(matchesFilterPolicy({}, { message: 'not json' }, 'MessageBody')).toBe(true);
  });

  it('attributes are not looked at for the body scope', () => {
    expect(
      matchesFilterPolicy({ store: ['example_corp'] }, { attributes, message: '{}' }, 'MessageBody'),
    ).toBe(false);
  });
});

describe('invalid policies', () => {
  type BadCase = [name: string, policy: unknown, scope: FilterPolicyScope, message: string];
  const sixKeys = { a: ['1'], b: ['1'], c: ['1'], d: ['1'], e: ['1'], f: ['1'] };
  const tooComplex = {
    a: ['1', '2', '3', '4', '5', '6'],
    b: ['1', '2', '3', '4', '5'],
    c: ['1', '2', '3', '4', '5', '6'],
  };
  // biome-ignore format: one case per line reads as a table
  const cases: BadCase[] = [
    ['[ls] more than five keys', sixKeys, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys'],
    ['[cons][ls] more than 150 combinations (6 x 5 x 6)', tooComplex, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Filter policy is too complex'],
    ['[cons] nesting multiplies by depth (4 x 3 x 3 x 2 x 3 = 216)', { a: { b: { c: ['1', '2', '3', '4'] } }, d: { e: ['1', '2', '3'] }, f: ['1', '2', '3'] }, 'MessageBody', 'Invalid parameter: FilterPolicy: Filter policy is too complex'],
    ['[ls] nested policy on attributes', { a: { b: ['1'] } }, 'MessageAttributes', 'Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy'],
    ['[ls] empty array', { a: [] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Empty arrays are not allowed'],
    ['[ls] value not in an array', { a: 'x' }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: "a" must be an object or an array'],
    ['[ls] unknown operator', { a: [{ contains: 'x' }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Unrecognized match type contains'],
    ['[ls] wildcard is not an SNS operator', { a: [{ wildcard: 'x*' }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Unrecognized match type wildcard'],
    ['[ls] exists not boolean', { a: [{ exists: 'yes' }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: exists match pattern must be either true or false.'],
    ['[ls] two operators', { a: [{ prefix: 'x', suffix: 'y' }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Only one key allowed in match expression'],
    ['[ls] prefix not a string', { a: [{ prefix: 1 }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: prefix match pattern must be a string'],
    ['[ls] anything-but wildcard unsupported', { a: [{ 'anything-but': { wildcard: 'x' } }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Unsupported anything-but pattern: wildcard'],
    ['[ls] numeric: empty', { a: [{ numeric: [] }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Invalid member in numeric match: ]'],
    ['[ls] numeric: = not a number', { a: [{ numeric: ['=', 'x'] }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Value of equals must be numeric'],
    ['[ls] numeric: bottom above top', { a: [{ numeric: ['>', 5, '<', 1] }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Bottom must be less than top'],
    ['[ls] cidr not a string (prefix wording)', { a: [{ cidr: 1 }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: prefix match pattern must be a string'],
    ['[ls] cidr without a mask', { a: [{ cidr: '10.0.0.1' }] }, 'MessageAttributes', "Invalid parameter: FilterPolicy: Malformed CIDR, one '/' required"],
    ['[ls] match value an array', { a: [['x']] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: Match value must be String, number, true, false, or null'],
    ['[ls] not JSON', '{"a": [', 'MessageAttributes', 'Invalid parameter: FilterPolicy: failed to parse JSON.'],
    ['[ruler] not an object', '["a"]', 'MessageAttributes', 'Invalid parameter: FilterPolicy: Filter is not an object'],
    ['[ruler] $or with one branch', { $or: [{ a: ['1'] }] }, 'MessageAttributes', 'Invalid parameter: FilterPolicy: There must have at least 2 Objects in $or relationship.'],
  ];
  it.each(cases)('%s', (_name, policy, scope, message) => {
    let caught: unknown;
    try {
      compileFilterPolicy(policy, scope);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidFilterPolicyError);
    expect((caught as Error).message.split(' (at policy path')[0]).toBe(message);
  });

  it('exactly 150 combinations and five keys are allowed', () => {
    const policy = {
      a: ['1', '2', '3', '4', '5'],
      b: ['1', '2', '3', '4', '5', '6'],
      c: ['1', '2', '3', '4', '5'],
    };
    expect(() => compileFilterPolicy(policy)).not.toThrow();
  });

  it('names the offending key', () => {
    expect(() => compileFilterPolicy({ a: ['1'], b: [{ prefix: 2 }] })).toThrow(/at policy path "b"/);
  });
});
