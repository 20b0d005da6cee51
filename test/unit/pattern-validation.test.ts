import { describe, expect, it } from 'vitest';
import {
  compilePattern,
  InvalidEventPatternError,
  matchesPattern,
} from '../../functions/patterns/event-pattern.ts';

// Every invalid pattern with the exact `Reason:` text of AWS's InvalidEventPatternException. Sources:
// [rec]   recorded against AWS by LocalStack: github.com/localstack/localstack
//         tests/aws/services/events/test_events_patterns.snapshot.json (the case name follows)
// [ruler] the source text of aws/event-ruler, the matcher EventBridge runs (JsonRuleCompiler.java, CIDR.java,
//         input/WildcardParser.java, Range.java); AWS returns these texts verbatim, as the [rec] cases show.
// [docs]  the user guide's numeric limits (±5.0e9); the wording is event-ruler's from when that was its range.
// Where neither source gives a wording (invalid JSON: AWS quotes its Jackson parser), the test says so.

type BadCase = [name: string, pattern: unknown, reason: string, path?: string];

function reasonOf(pattern: unknown): InvalidEventPatternError {
  try {
    compilePattern(pattern);
  } catch (error) {
    if (error instanceof InvalidEventPatternError) return error;
    throw error;
  }
  throw new Error(`pattern was accepted: ${JSON.stringify(pattern)}`);
}

function runBadCases(cases: BadCase[]): void {
  it.each(cases)('%s', (_name, pattern, reason, path) => {
    const error = reasonOf(pattern);
    expect(error.reason).toBe(reason);
    expect(error.message.startsWith(`Event pattern is not valid. Reason: ${reason}`)).toBe(true);
    if (path !== undefined) expect(error.path).toBe(path);
  });
}

describe('structure', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[rec] invalid_json: not a dict', ['not', 'a', 'dict', 'but valid json'], 'Filter is not an object'],
    ['[ruler] null pattern', null, 'Filter is not an object'],
    ['[ruler] empty pattern', {}, 'Empty objects are not allowed', ''],
    ['[ruler] empty nested object', { detail: {} }, 'Empty objects are not allowed', 'detail'],
    ['[rec] int_nolist_EXC', { int: 42 }, '"int" must be an object or an array', 'int'],
    ['[rec] string_nolist_EXC', { string: 'my-value' }, '"string" must be an object or an array'],
    ['[ruler] null leaf', { detail: { n: null } }, '"n" must be an object or an array', 'detail.n'],
    ['[rec] arrays_empty_EXC', { resources: [] }, 'Empty arrays are not allowed', 'resources'],
    ['[ruler] nested array value', { source: [['a']] }, 'Match value must be String, number, true, false, or null'],
    ['[rec] content_numeric_operatorcasing_EXC', { detail: { equal: [{ NUMERIC: ['=', 5] }] } }, 'Unrecognized match type NUMERIC'],
    ['[rec] operator_case_sensitive_EXC', { my_key: [{ EXISTS: true }] }, 'Unrecognized match type EXISTS'],
    ['[ruler] unknown operator', { source: [{ contains: 'ec2' }] }, 'Unrecognized match type contains'],
    ['[ruler] empty operator object', { source: [{}] }, 'Match expression name not found'],
    ['[ruler] two operators in one object', { source: [{ prefix: 'a', suffix: 'b' }] }, 'Only one key allowed in match expression'],
    ['[ruler] first operator is checked first', { source: [{ prefix: 5, suffix: 'b' }] }, 'prefix match pattern must be a string'],
  ]);
});

describe('$or', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[ruler] not an array', { $or: { a: ['1'] } }, 'It must be an Array followed with $or.', '$or'],
    ['[ruler] one object', { $or: [{ a: ['1'] }] }, 'There must have at least 2 Objects in $or relationship.'],
    ['[ruler] empty array', { $or: [] }, 'There must have at least 2 Objects in $or relationship.'],
    ['[ruler] a non-object', { $or: [{ a: ['1'] }, 'b'] }, 'Only JSON object is allowed in array of $or relationship.', '$or[1]'],
    ['[ruler] an empty object', { $or: [{ a: ['1'] }, {}] }, 'Empty objects are not allowed', '$or[1]'],
    ['[ruler] operator name as a field', { $or: [{ numeric: [1] }, { a: ['a'] }] }, 'numeric is Ruler reserved fieldName which cannot be used inside $or.'],
    ['[ruler] reserved deeper inside $or', { $or: [{ a: { '>=': [1] } }, { b: ['a'] }] }, '>= is Ruler reserved fieldName which cannot be used inside $or.'],
    ['[ruler] reserved for the future', { $or: [{ regex: ['a'] }, { b: ['a'] }] }, 'regex is Ruler reserved fieldName which cannot be used inside $or.'],
    ['[ruler] error deep in $or names its path', { detail: { $or: [{ a: ['1'] }, { b: 'x' }] } }, '"b" must be an object or an array', 'detail.$or[1].b'],
  ]);

  it('[ruler] reserved names are fine as fields outside $or', () => {
    expect(matchesPattern({ numeric: ['x'] }, { numeric: 'x' })).toBe(true);
  });
});

describe('string operators', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[rec] content_prefix_int_EXC', { time: [{ prefix: 123 }] }, 'prefix match pattern must be a string'],
    ['[rec] content_prefix_list_EXC', { time: [{ prefix: ['2022-07-13'] }] }, 'prefix match pattern must be a string'],
    ['[rec] content_suffix_int_EXC', { FileName: [{ suffix: 123 }] }, 'suffix match pattern must be a string'],
    ['[rec] content_suffix_list_EXC', { FileName: [{ suffix: ['.png'] }] }, 'suffix match pattern must be a string'],
    ['[ruler] prefix with unknown modifier', { s: [{ prefix: { foo: 'a' } }] }, 'Unsupported prefix pattern: foo'],
    ['[ruler] suffix with unknown modifier', { s: [{ suffix: { wildcard: 'a' } }] }, 'Unsupported suffix pattern: wildcard'],
    ['[ruler] prefix with empty modifier', { s: [{ prefix: {} }] }, 'Prefix expression name not found'],
    ['[ruler] suffix with empty modifier', { s: [{ suffix: {} }] }, 'Suffix expression name not found'],
    ['[ruler] prefix equals-ignore-case not a string', { s: [{ prefix: { 'equals-ignore-case': 1 } }] }, 'equals-ignore-case match pattern must be a string'],
    ['[ruler] prefix equals-ignore-case with a second key', { s: [{ prefix: { 'equals-ignore-case': 'a', x: 1 } }] }, 'Only one key allowed in match expression'],
    ['[rec] content_ignorecase_EXC', { 'detail-type': [{ 'equals-ignore-case': ['ec2 instance state-change notification'] }] }, 'equals-ignore-case match pattern must be a string'],
    ['[rec] content_ignorecase_list_EXC', { 'detail-type': [{ 'equals-ignore-case': { prefix: 'ec2' } }] }, 'equals-ignore-case match pattern must be a string'],
    ['[ruler] exactly not a string', { s: [{ exactly: 5 }] }, 'exact match pattern must be a string'],
  ]);
});

describe('wildcard', () => {
  // Positions count UTF-8 bytes of the value with its opening quote ([ruler] WildcardParser).
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[rec] content_wildcard_int_EXC', { EventBusArn: [{ wildcard: 123 }] }, 'wildcard match pattern must be a string'],
    ['[rec] content_wildcard_list_EXC', { EventBusArn: [{ wildcard: ['arn:aws:events:us-east-1:**:event-bus/*'] }] }, 'wildcard match pattern must be a string'],
    ['[rec] content_wildcard_repeating_star_EXC', { EventBusArn: [{ wildcard: 'arn:aws:events:us-east-1:**:event-bus/*' }] }, 'Consecutive wildcard characters at pos 26'],
    ['[ruler] consecutive wildcards', { s: [{ wildcard: 'a**b' }] }, 'Consecutive wildcard characters at pos 2'],
    ['[ruler] positions count UTF-8 bytes', { s: [{ wildcard: 'é**' }] }, 'Consecutive wildcard characters at pos 3'],
    ['[ruler] bad escape', { s: [{ wildcard: 'a\\b' }] }, 'Invalid escape character at pos 2'],
    ['[ruler] trailing backslash', { s: [{ wildcard: 'ab\\' }] }, 'Invalid escape character at pos 3'],
    ['[rec] content_anything_wildcard_type_EXC', { detail: { FilePath: [{ 'anything-but': { wildcard: 123 } }] } }, 'wildcard match pattern must be a string'],
    ['[rec] content_anything_wildcard_list_type_EXC', { detail: { state: [{ 'anything-but': { wildcard: [123, '*/dir/*'] } }] } }, 'wildcard match pattern must be a string'],
    ['[ruler] anything-but wildcard consecutive', { s: [{ 'anything-but': { wildcard: ['a**'] } }] }, 'Consecutive wildcard characters at pos 2'],
  ]);
});

describe('anything-but', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[rec] content_anything_prefix_int_EXC', { detail: { state: [{ 'anything-but': { prefix: 123 } }] } }, 'prefix/suffix match pattern must be a string'],
    ['[rec] content_anything_prefix_list_type_EXC', { detail: { state: [{ 'anything-but': { prefix: [123, 'test'] } }] } }, 'prefix/suffix match pattern must be a string'],
    ['[rec] content_anything_suffix_int_EXC', { detail: { FileName: [{ 'anything-but': { suffix: 123 } }] } }, 'prefix/suffix match pattern must be a string'],
    ['[rec] content_anything_suffix_list_type_EXC', { detail: { FileName: [{ 'anything-but': { suffix: [123, '.txt'] } }] } }, 'prefix/suffix match pattern must be a string'],
    ['[rec] content_anything_prefix_ignorecase_EXC', { detail: { FileName: [{ 'anything-but': { prefix: { 'equals-ignore-case': 'file' } } }] } }, 'Value of anything-but must be an array or single string/number value.'],
    ['[rec] content_anything_suffix_ignorecase_EXC', { detail: { FileName: [{ 'anything-but': { suffix: { 'equals-ignore-case': '.png' } } }] } }, 'Value of anything-but must be an array or single string/number value.'],
    ['[rec] content_anything_but_ignorecase_EXC', { detail: { state: [{ 'anything-but': { 'equals-ignore-case': 123 } }] } }, 'Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.'],
    ['[rec] content_anything_but_ignorecase_list_EXC', { detail: { state: [{ 'anything-but': { 'equals-ignore-case': [123, 456] } }] } }, 'Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.'],
    ['[ruler] null', { s: [{ 'anything-but': null }] }, 'Value of anything-but must be an array or single string/number value.'],
    ['[ruler] boolean', { s: [{ 'anything-but': true }] }, 'Value of anything-but must be an array or single string/number value.'],
    ['[ruler] null in the list', { s: [{ 'anything-but': ['a', null] }] }, 'Inside anything but list, start|null|boolean is not supported.'],
    ['[ruler] mixed list', { s: [{ 'anything-but': ['a', 1] }] }, 'Inside anything but list, either all values are number or string, mixed type is not supported'],
    ['[ruler] empty list', { s: [{ 'anything-but': [] }] }, 'Inside anything but list, either all values are number or string, mixed type is not supported'],
    ['[ruler] unknown nested operator', { s: [{ 'anything-but': { numeric: ['>', 1] } }] }, 'Unsupported anything-but pattern: numeric'],
    ['[ruler] empty nested object', { s: [{ 'anything-but': {} }] }, 'Anything-But expression name not found'],
    ['[ruler] empty prefix', { s: [{ 'anything-but': { prefix: '' } }] }, 'Null prefix/suffix not allowed'],
    ['[ruler] empty suffix in a list', { s: [{ 'anything-but': { suffix: ['a', ''] } }] }, 'Null prefix/suffix not allowed'],
    ['[ruler] second key next to anything-but', { s: [{ 'anything-but': 'a', prefix: 'b' }] }, 'Too many elements in numeric expression'],
    ['[ruler] second key inside anything-but', { s: [{ 'anything-but': { prefix: 'a', suffix: 'b' } }] }, 'Too many elements in numeric expression'],
    ['[docs] number out of range', { s: [{ 'anything-but': 6e9 }] }, 'Value must be between -5.0E9 and 5.0E9, inclusive'],
  ]);
});

describe('numeric', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[rec] content_numeric_EXC', { detail: { 'c-count': [{ numeric: ['>', 0, '>', 0] }] } }, 'Bad numeric range operator: >'],
    ['[rec] content_numeric_syntax_EXC', { detail: { 'c-count': [{ numeric: ['>', 0, '<'] }] } }, 'Value of < must be numeric'],
    ['[ruler] not an array', { n: [{ numeric: 5 }] }, 'Value of numeric must be an array.'],
    ['[ruler] empty: Jackson shows the closing bracket', { n: [{ numeric: [] }] }, 'Invalid member in numeric match: ]'],
    ['[ruler] operator not a string', { n: [{ numeric: [5, '>'] }] }, 'Invalid member in numeric match: 5'],
    ['[ruler] unknown operator', { n: [{ numeric: ['!=', 5] }] }, 'Unrecognized numeric range operator: !='],
    ['[ruler] = value not a number', { n: [{ numeric: ['=', '5'] }] }, 'Value of equals must be numeric'],
    ['[ruler] > value not a number', { n: [{ numeric: ['>', '5'] }] }, 'Value of > must be numeric'],
    ['[ruler] <= value missing', { n: [{ numeric: ['<='] }] }, 'Value of <= must be numeric'],
    ['[ruler] = with extra terms', { n: [{ numeric: ['=', 5, '<', 6] }] }, 'Too many elements in numeric expression'],
    ['[ruler] upper bound first', { n: [{ numeric: ['<', 5, '>', 1] }] }, 'Too many elements in numeric expression'],
    ['[ruler] second key next to numeric', { n: [{ numeric: ['<', 5], exists: true }] }, 'Too many elements in numeric expression'],
    ['[ruler] range: third term not a string', { n: [{ numeric: ['>', 1, 5] }] }, 'Bad value in numeric range: 5'],
    ['[ruler] range: bottom above top', { n: [{ numeric: ['>', 10, '<', 5] }] }, 'Bottom must be less than top'],
    ['[ruler] range: bottom equals top', { n: [{ numeric: ['>=', 5, '<=', 5] }] }, 'Bottom must be less than top'],
    ['[ruler] range: too long', { n: [{ numeric: ['>', 1, '<', 5, 6] }] }, 'Too many terms in numeric range expression'],
    ['[docs] above 5e9', { n: [{ numeric: ['<', 5.000001e9] }] }, 'Value must be between -5.0E9 and 5.0E9, inclusive'],
    ['[docs] below -5e9', { n: [{ numeric: ['>', -6e9] }] }, 'Value must be between -5.0E9 and 5.0E9, inclusive'],
  ]);
});

describe('exists and cidr', () => {
  // biome-ignore format: one case per line reads as a table
  runBadCases([
    ['[ruler] exists not a boolean', { n: [{ exists: 'true' }] }, 'exists match pattern must be either true or false.'],
    ['[ruler] exists with a second key', { n: [{ exists: true, prefix: 'a' }] }, 'Only one key allowed in match expression'],
    ['[rec] content_ip_address_type_EXC (AWS says prefix)', { detail: { sourceIPAddress: [{ cidr: ['bad-type'] }] } }, 'prefix match pattern must be a string'],
    ['[rec] content_ip_address_EXC', { ip: [{ cidr: '10.0.0.0' }] }, "Malformed CIDR, one '/' required"],
    ['[ruler] two slashes', { ip: [{ cidr: '10.0.0.0/8/8' }] }, "Malformed CIDR, one '/' required"],
    ['[ruler] trailing slash (Java split drops it)', { ip: [{ cidr: '10.0.0.0/' }] }, "Malformed CIDR, one '/' required"],
    ['[rec] content_ip_address_bad_mask_EXC', { ip: [{ cidr: '10.0.0.0/x' }] }, 'Malformed CIDR, mask bits must be an integer'],
    ['[ruler] negative mask', { ip: [{ cidr: '10.0.0.0/-1' }] }, 'Malformed CIDR, mask bits must not be negative'],
    ['[rec] content_ip_address_bad_ip_EXC', { ip: [{ cidr: 'xx.11.xx/24' }] }, 'Nonstandard IP address: xx.11.xx'],
    ['[rec] content_ip_address_v6_bad_ip_EXC', { ip: [{ cidr: 'xxxx:db8:1234:1a00::/64' }] }, 'Nonstandard IP address: xxxx:db8:1234:1a00::'],
    ['[ruler] embedded IPv4 is not an IPv6 literal', { ip: [{ cidr: '::ffff:10.0.0.0/120' }] }, 'Nonstandard IP address: ::ffff:10.0.0.0'],
    ['[ruler] address shaped but invalid', { ip: [{ cidr: '10.0.0.256/8' }] }, 'Invalid IP address: 10.0.0.256'],
    ['[ruler] IPv4 /32', { ip: [{ cidr: '192.168.1.1/32' }] }, 'IPv4 mask bits must be < 32'],
    ['[ruler] IPv6 /128', { ip: [{ cidr: '::1/128' }] }, 'IPv6 mask bits must be < 128'],
  ]);
});

describe('the error', () => {
  it('invalid JSON text is rejected (AWS quotes its Jackson parser; that wording is not reproduced)', () => {
    expect(reasonOf('{"source": [').reason).toMatch(/^Pattern is not valid JSON: /);
  });

  it('carries the reason and the path separately', () => {
    const error = reasonOf({ detail: { n: [{ numeric: ['>', 'x'] }] } });
    expect(error.name).toBe('InvalidEventPatternError');
    expect(error.reason).toBe('Value of > must be numeric');
    expect(error.path).toBe('detail.n');
    expect(error.message).toBe(
      'Event pattern is not valid. Reason: Value of > must be numeric (at pattern path "detail.n")',
    );
  });

  it('matchesPattern throws on an invalid pattern instead of returning false', () => {
    expect(() => matchesPattern({ source: 'aws.ec2' }, {})).toThrow(InvalidEventPatternError);
  });
});
