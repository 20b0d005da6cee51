import { describe, expect, it } from 'vitest';
import { compilePattern, matchesPattern } from '../../functions/patterns/event-pattern.ts';

// Sources of the cases below (cited per table):
// [ops]     https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
// [filter]  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
// [arrays]  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html
// [nulls]   https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html
// [pattern] https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
// [ruler]   https://github.com/aws/event-ruler (README: the matcher behind EventBridge; $or, wildcard, numeric)

type Case = [name: string, pattern: unknown, event: unknown, expected: boolean];

/** The EC2 example event of [pattern]. */
const ec2Event = {
  version: '0',
  id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '111122223333',
  time: '2017-12-22T18:43:48Z',
  region: 'us-west-1',
  resources: ['arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0'],
  detail: { 'instance-id': 'i-1234567890abcdef0', state: 'terminated' },
};

/** Wraps fields in `detail`, for patterns and events alike. */
const d = (detail: Record<string, unknown>) => ({ detail });

function runCases(cases: Case[]): void {
  it.each(cases)('%s', (_name, pattern, event, expected) => {
    expect(matchesPattern(pattern, event)).toBe(expected);
  });
}

describe('exact matching and structure', () => {
  // [pattern] EC2 instance-termination example; [ops] "And"
  // biome-ignore format: one case per line reads as a table
  runCases([
    [
      'EC2 termination pattern matches',
      { source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['terminated'] } },
      ec2Event,
      true,
    ],
    ['other state does not match', { source: ['aws.ec2'], detail: { state: ['running'] } }, ec2Event, false],
    ['several values are OR: aws.ec2 or aws.fargate', { source: ['aws.ec2', 'aws.fargate'] }, ec2Event, true],
    ['AND across fields: both match', { Location: ['New York'], Day: ['Monday'] }, { Location: 'New York', Day: 'Monday' }, true],
    ['AND across fields: one differs', { Location: ['New York'], Day: ['Monday'] }, { Location: 'New York', Day: 'Friday' }, false],
    ['field missing from event', { detail: { color: ['red'] } }, ec2Event, false],
    ['matching is case sensitive', { source: ['AWS.EC2'] }, ec2Event, false],
    ['nested objects must nest the same way', { state: ['terminated'] }, ec2Event, false],
    ['numbers equal numerically: 300 vs 3.0e2', { detail: { n: [300] } }, d({ n: 3.0e2 }), true],
    ['numbers equal numerically: 3.018e2 vs 301.8', { detail: { n: [3.018e2] } }, d({ n: 301.8 }), true],
    ['number does not match its string form', { detail: { n: [300] } }, d({ n: '300' }), false],
    ['string does not match the number', { detail: { n: ['300'] } }, d({ n: 300 }), false],
    ['boolean true matches true', { detail: { ok: [true] } }, d({ ok: true }), true],
    ['boolean true does not match "true"', { detail: { ok: [true] } }, d({ ok: 'true' }), false],
    ['pattern given as JSON text', '{"source":["aws.ec2"]}', ec2Event, true],
  ]);
});

describe('arrays in events', () => {
  // [arrays]: matches if the intersection of pattern array and event array is non-empty
  const pattern = {
    resources: [
      'arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f',
      'arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f',
      'arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f',
    ],
  };
  // biome-ignore format: one case per line reads as a table
  runCases([
    [
      'intersection non-empty',
      pattern,
      {
        resources: [
          'arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate',
          'arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f',
        ],
      },
      true,
    ],
    ['intersection empty', pattern, { resources: ['arn:aws:ec2:us-east-1:999999999999:instance/i-b188560f'] }, false],
    ['empty event array', pattern, { resources: [] }, false],
    // [ruler] "JSON Array Matching": objects in arrays match element by element
    [
      'objects inside an array: one element matches',
      { employees: { firstName: ['Anna'] } },
      { employees: [{ firstName: 'John' }, { firstName: 'Anna' }] },
      true,
    ],
    [
      'fields from different array elements do not combine',
      { employees: { firstName: ['Anna'], lastName: ['Jones'] } },
      {
        employees: [
          { firstName: 'Anna', lastName: 'Smith' },
          { firstName: 'Peter', lastName: 'Jones' },
        ],
      },
      false,
    ],
    [
      'nested arrays are flattened',
      { employees: { firstName: ['Peter'] } },
      { employees: [[{ firstName: 'John' }], [{ firstName: 'Peter' }]] },
      true,
    ],
  ]);
});

describe('null and empty string', () => {
  // [nulls] example event with eventVersion "" and responseElements null
  const event = { source: 'aws.autoscaling', detail: { eventVersion: '', responseElements: null } };
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[""] matches the empty string', { detail: { eventVersion: [''] } }, event, true],
    ['[null] matches null', { detail: { responseElements: [null] } }, event, true],
    ['[""] does not match null', { detail: { responseElements: [''] } }, event, false],
    ['[null] does not match ""', { detail: { eventVersion: [null] } }, event, false],
    ['[null] does not match a missing field', { detail: { missing: [null] } }, event, false],
    // [ops] "Null": UserID is null; "Empty": LastName is empty
    ['UserID is null', { UserID: [null] }, { UserID: null }, true],
    ['LastName is empty', { LastName: [''] }, { LastName: '' }, true],
    ['LastName not empty', { LastName: [''] }, { LastName: 'Doe' }, false],
  ]);
});

describe('prefix', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    // [filter] "time" starts with "2017-10-02"
    ['time prefix matches', { time: [{ prefix: '2017-10-02' }] }, { time: '2017-10-02T18:43:48Z' }, true],
    ['time prefix does not match', { time: [{ prefix: '2017-10-02' }] }, { time: '2017-10-03T18:43:48Z' }, false],
    // [ops] Begins with: Region is in the US
    ['Region us-', { Region: [{ prefix: 'us-' }] }, { Region: 'us-east-1' }, true],
    ['Region eu-', { Region: [{ prefix: 'us-' }] }, { Region: 'eu-west-1' }, false],
    ['prefix only works on strings', { n: [{ prefix: '1' }] }, { n: 123 }, false],
    // [ops] Begins with (ignore case): service starts with "eventb"
    ['ignore case: EventBridge', { service: [{ prefix: { 'equals-ignore-case': 'eventb' } }] }, { service: 'EventBridge' }, true],
    ['ignore case: EVENTBUS', { service: [{ prefix: { 'equals-ignore-case': 'eventb' } }] }, { service: 'EVENTBUS' }, true],
    ['ignore case: no match', { service: [{ prefix: { 'equals-ignore-case': 'eventb' } }] }, { service: 'Lambda' }, false],
  ]);
});

describe('suffix', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    // [ops] Ends with: FileName ends with a .png extension
    ['FileName .png', { FileName: [{ suffix: '.png' }] }, { FileName: 'image.png' }, true],
    ['FileName .PNG is case sensitive', { FileName: [{ suffix: '.png' }] }, { FileName: 'image.PNG' }, false],
    ['FileName .jpg', { FileName: [{ suffix: '.png' }] }, { FileName: 'image.jpg' }, false],
    // [ops] Ends with (ignore case): service ends with "tBridge"
    ['ignore case: EventBridge', { service: [{ suffix: { 'equals-ignore-case': 'tBridge' } }] }, { service: 'EventBridge' }, true],
    ['ignore case: EVENTBRIDGE', { service: [{ suffix: { 'equals-ignore-case': 'tBridge' } }] }, { service: 'EVENTBRIDGE' }, true],
    ['ignore case: no match', { service: [{ suffix: { 'equals-ignore-case': 'tBridge' } }] }, { service: 'Bridges' }, false],
  ]);
});

describe('equals-ignore-case', () => {
  // [ops] Equals (ignore case): Name is "Alice"
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['alice vs Alice', { Name: [{ 'equals-ignore-case': 'alice' }] }, { Name: 'Alice' }, true],
    ['alice vs ALICE', { Name: [{ 'equals-ignore-case': 'alice' }] }, { Name: 'ALICE' }, true],
    ['alice vs Alicia', { Name: [{ 'equals-ignore-case': 'alice' }] }, { Name: 'Alicia' }, false],
  ]);
});

describe('anything-but', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    // [filter] single string / number, list of strings / numbers, prefix
    ['string: running', d({ state: [{ 'anything-but': 'initializing' }] }), d({ state: 'running' }), true],
    ['string: initializing', d({ state: [{ 'anything-but': 'initializing' }] }), d({ state: 'initializing' }), false],
    ['string: field missing', d({ state: [{ 'anything-but': 'initializing' }] }), d({}), false],
    ['number: 124', d({ 'x-limit': [{ 'anything-but': 123 }] }), d({ 'x-limit': 124 }), true],
    ['number: 123', d({ 'x-limit': [{ 'anything-but': 123 }] }), d({ 'x-limit': 123 }), false],
    ['number: 1.23e2 is 123', d({ 'x-limit': [{ 'anything-but': 123 }] }), d({ 'x-limit': 1.23e2 }), false],
    ['list of strings: running', d({ state: [{ 'anything-but': ['stopped', 'overloaded'] }] }), d({ state: 'running' }), true],
    ['list of strings: stopped', d({ state: [{ 'anything-but': ['stopped', 'overloaded'] }] }), d({ state: 'stopped' }), false],
    ['list of numbers: 150', d({ 'x-limit': [{ 'anything-but': [100, 200, 300] }] }), d({ 'x-limit': 150 }), true],
    ['list of numbers: 200', d({ 'x-limit': [{ 'anything-but': [100, 200, 300] }] }), d({ 'x-limit': 200 }), false],
    // SNS/EventBridge array semantics: an event array with a value outside the list matches
    ['event array with an allowed value', d({ 'x-limit': [{ 'anything-but': [100, 500] }] }), d({ 'x-limit': [100, 50] }), true],
    ['event array of excluded values', d({ 'x-limit': [{ 'anything-but': [100, 500] }] }), d({ 'x-limit': [100, 500] }), false],
    ['prefix: running', d({ state: [{ 'anything-but': { prefix: 'init' } }] }), d({ state: 'running' }), true],
    ['prefix: initializing', d({ state: [{ 'anything-but': { prefix: 'init' } }] }), d({ state: 'initializing' }), false],
    // [ops] Anything-but (begins with): Region is not in the US
    ['Region eu-west-1', { Region: [{ 'anything-but': { prefix: 'us-' } }] }, { Region: 'eu-west-1' }, true],
    ['Region us-east-1', { Region: [{ 'anything-but': { prefix: 'us-' } }] }, { Region: 'us-east-1' }, false],
    // [ops] Anything-but (ends with): FileName does not end with .png
    ['suffix: .jpg', { FileName: [{ 'anything-but': { suffix: '.png' } }] }, { FileName: 'a.jpg' }, true],
    ['suffix: .png', { FileName: [{ 'anything-but': { suffix: '.png' } }] }, { FileName: 'a.png' }, false],
    // [ops] Anything-but (ignore case): state besides "initializing" in any casing
    ['ignore case: running', { state: [{ 'anything-but': { 'equals-ignore-case': 'initializing' } }] }, { state: 'running' }, true],
    ['ignore case: INITIALIZING', { state: [{ 'anything-but': { 'equals-ignore-case': 'initializing' } }] }, { state: 'INITIALIZING' }, false],
    ['ignore case list: Stopped', { state: [{ 'anything-but': { 'equals-ignore-case': ['stopped', 'overloaded'] } }] }, { state: 'Stopped' }, false],
    ['ignore case list: running', { state: [{ 'anything-but': { 'equals-ignore-case': ['stopped', 'overloaded'] } }] }, { state: 'running' }, true],
    // [ops] Anything-but using a wildcard: FilePath does not include /lib/
    ['wildcard: src path', { FilePath: [{ 'anything-but': { wildcard: '*/lib/*' } }] }, { FilePath: '/usr/src/a.c' }, true],
    ['wildcard: lib path', { FilePath: [{ 'anything-but': { wildcard: '*/lib/*' } }] }, { FilePath: '/usr/lib/a.so' }, false],
    ['wildcard list', { FilePath: [{ 'anything-but': { wildcard: ['*/lib/*', '*.tmp'] } }] }, { FilePath: 'x.tmp' }, false],
    // [ops] Not: Weather is anything but "Raining"
    ['Weather Sunny', { Weather: [{ 'anything-but': ['Raining'] }] }, { Weather: 'Sunny' }, true],
    ['Weather Raining', { Weather: [{ 'anything-but': ['Raining'] }] }, { Weather: 'Raining' }, false],
  ]);
});

describe('numeric', () => {
  // [filter] numeric matching example; [ops] "Numeric (equals)" and "Numeric (range)"
  const pattern = d({
    'c-count': [{ numeric: ['>', 0, '<=', 5] }],
    'd-count': [{ numeric: ['<', 10] }],
    'x-limit': [{ numeric: ['=', 3.018e2] }],
  });
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['all three true', pattern, d({ 'c-count': 5, 'd-count': 3, 'x-limit': 301.8 }), true],
    ['c-count 0 is not > 0', pattern, d({ 'c-count': 0, 'd-count': 3, 'x-limit': 301.8 }), false],
    ['c-count 6 is not <= 5', pattern, d({ 'c-count': 6, 'd-count': 3, 'x-limit': 301.8 }), false],
    ['d-count 10 is not < 10', pattern, d({ 'c-count': 1, 'd-count': 10, 'x-limit': 301.8 }), false],
    ['x-limit 301.81 is not = 301.8', pattern, d({ 'c-count': 1, 'd-count': 1, 'x-limit': 301.81 }), false],
    ['Price = 100', { Price: [{ numeric: ['=', 100] }] }, { Price: 100 }, true],
    ['Price = 100 vs 1e2', { Price: [{ numeric: ['=', 100] }] }, { Price: 1e2 }, true],
    ['Price > 10 <= 20: 20', { Price: [{ numeric: ['>', 10, '<=', 20] }] }, { Price: 20 }, true],
    ['Price > 10 <= 20: 10', { Price: [{ numeric: ['>', 10, '<=', 20] }] }, { Price: 10 }, false],
    ['Price >= 10 < 20: 10', { Price: [{ numeric: ['>=', 10, '<', 20] }] }, { Price: 10 }, true],
    ['Price >= 10 < 20: 20', { Price: [{ numeric: ['>=', 10, '<', 20] }] }, { Price: 20 }, false],
    ['numeric ignores strings', { Price: [{ numeric: ['>', 0] }] }, { Price: '5' }, false],
    ['numeric: any element of an array', { Price: [{ numeric: ['>', 100] }] }, { Price: [1, 500] }, true],
    ['precision is six decimals', { Price: [{ numeric: ['=', 0.1] }] }, { Price: 0.1000000001 }, true],
    ['event value beyond 5e9 never matches', { Price: [{ numeric: ['>', 0] }] }, { Price: 6e9 }, false],
    ['negative range', { t: [{ numeric: ['>=', -5e9, '<', -1] }] }, { t: -2.5 }, true],
  ]);
});

describe('exists', () => {
  // [filter] Exists matching; [ops] "Exists" / "Does not exist"
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['exists true: field present', d({ state: [{ exists: true }] }), d({ 'instance-id': 'i-abcd1111', state: 'pending' }), true],
    ['exists true: field missing', d({ state: [{ exists: true }] }), d({ 'c-count': { c1: 100 } }), false],
    ['exists true: null is a value', { ProductName: [{ exists: true }] }, { ProductName: null }, true],
    ['exists false: field missing', d({ 'c-count': [{ exists: false }] }), d({ state: ['initializing', 'running'] }), true],
    ['exists false: field present', d({ 'c-count': [{ exists: false }] }), d({ 'c-count': 3 }), false],
    // [filter]: exists only works on leaf nodes, so an object-valued c-count is "absent"
    ['exists false: c-count is not a leaf', d({ 'c-count': [{ exists: false }] }), d({ 'c-count': { c1: 100 } }), true],
    ['exists false: whole parent missing', d({ 'c-count': [{ exists: false }] }), { source: 'app' }, true],
    ['exists false: empty array', { ProductName: [{ exists: false }] }, { ProductName: [] }, true],
    ['exists true: empty array', { ProductName: [{ exists: true }] }, { ProductName: [] }, false],
    ['exists false OR a value', { ProductName: [{ exists: false }, 'Kindle'] }, { ProductName: 'Kindle' }, true],
  ]);
});

describe('wildcard', () => {
  // [ops] Wildcard: any file with a .png extension located within the folder "dir"; [ruler] escaping
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['dir/*.png matches dir/a.png', { FileName: [{ wildcard: 'dir/*.png' }] }, { FileName: 'dir/a.png' }, true],
    ['dir/*.png matches dir/sub/a.png', { FileName: [{ wildcard: 'dir/*.png' }] }, { FileName: 'dir/sub/a.png' }, true],
    ['dir/*.png does not match other/a.png', { FileName: [{ wildcard: 'dir/*.png' }] }, { FileName: 'other/a.png' }, false],
    ['dir/*.png does not match dir/a.png.bak', { FileName: [{ wildcard: 'dir/*.png' }] }, { FileName: 'dir/a.png.bak' }, false],
    ['Simple*Service', { source: [{ wildcard: 'Simple*Service' }] }, { source: 'SimpleQueueService' }, true],
    ['* matches the empty run', { source: [{ wildcard: 'Simple*Service' }] }, { source: 'SimpleService' }, true],
    ['several wildcards', { k: [{ wildcard: '*a*b*' }] }, { k: 'xxaYYbzz' }, true],
    ['escaped \\* is a literal asterisk', { k: [{ wildcard: 'a\\*b' }] }, { k: 'a*b' }, true],
    ['escaped \\* does not act as a wildcard', { k: [{ wildcard: 'a\\*b' }] }, { k: 'axb' }, false],
    ['escaped \\\\ is a literal backslash', { k: [{ wildcard: 'a\\\\*' }] }, { k: 'a\\anything' }, true],
    ['regex characters are literal', { k: [{ wildcard: 'a.c*' }] }, { k: 'abc' }, false],
    ['wildcard only works on strings', { k: [{ wildcard: '1*' }] }, { k: 123 }, false],
  ]);
});

describe('cidr', () => {
  // [filter] IP address matching: 10.0.0.0/24; IPv6 also supported
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['10.0.0.0/24 contains 10.0.0.255', d({ sourceIPAddress: [{ cidr: '10.0.0.0/24' }] }), d({ sourceIPAddress: '10.0.0.255' }), true],
    ['10.0.0.0/24 excludes 10.0.1.0', d({ sourceIPAddress: [{ cidr: '10.0.0.0/24' }] }), d({ sourceIPAddress: '10.0.1.0' }), false],
    ['10.0.0.0/8 contains 10.200.3.4', d({ ip: [{ cidr: '10.0.0.0/8' }] }), d({ ip: '10.200.3.4' }), true],
    ['/31 matches two addresses', d({ ip: [{ cidr: '192.168.1.0/31' }] }), d({ ip: '192.168.1.1' }), true],
    ['/31 excludes the next one', d({ ip: [{ cidr: '192.168.1.0/31' }] }), d({ ip: '192.168.1.2' }), false],
    ['/0 matches any IPv4', d({ ip: [{ cidr: '0.0.0.0/0' }] }), d({ ip: '8.8.8.8' }), true],
    ['not an IP address', d({ ip: [{ cidr: '10.0.0.0/8' }] }), d({ ip: 'localhost' }), false],
    ['IPv6 2001:db8::/32 contains 2001:db8:1::1', d({ ip: [{ cidr: '2001:db8::/32' }] }), d({ ip: '2001:db8:1::1' }), true],
    ['IPv6 2001:db8::/32 excludes 2001:db9::1', d({ ip: [{ cidr: '2001:db8::/32' }] }), d({ ip: '2001:db9::1' }), false],
    ['IPv6 full form', d({ ip: [{ cidr: '2001:db8::/64' }] }), d({ ip: '2001:0db8:0000:0000:abcd:0000:0000:0001' }), true],
    ['IPv4 CIDR does not match IPv6', d({ ip: [{ cidr: '10.0.0.0/8' }] }), d({ ip: '::1' }), false],
  ]);
});

describe('$or', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    // [ops] Or (multiple fields): Location is "New York", or Day is "Monday"
    ['first branch', { $or: [{ Location: ['New York'] }, { Day: ['Monday'] }] }, { Location: 'New York', Day: 'Friday' }, true],
    ['second branch', { $or: [{ Location: ['New York'] }, { Day: ['Monday'] }] }, { Location: 'Paris', Day: 'Monday' }, true],
    ['no branch', { $or: [{ Location: ['New York'] }, { Day: ['Monday'] }] }, { Location: 'Paris', Day: 'Friday' }, false],
    // [ruler] "source" && ("metricName" || "namespace")
    [
      'AND with an $or: matches',
      { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
      { source: 'aws.cloudwatch', namespace: 'AWS/EC2' },
      true,
    ],
    [
      'AND with an $or: AND part fails',
      { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
      { source: 'aws.ec2', namespace: 'AWS/EC2' },
      false,
    ],
    [
      '$or nested under detail',
      { detail: { $or: [{ state: ['running'] }, { 'c-count': [{ numeric: ['>', 5] }] }] } },
      d({ state: 'stopped', 'c-count': 9 }),
      true,
    ],
    [
      'branch with AND inside and nested $or',
      {
        source: ['aws.cloudwatch'],
        $or: [
          { metricName: ['CPUUtilization'] },
          { metricType: ['MetricType'], $or: [{ metricId: [1234] }, { spaceId: [1000] }] },
        ],
      },
      { source: 'aws.cloudwatch', metricType: 'MetricType', spaceId: 1000 },
      true,
    ],
    [
      'branch with AND inside: partial match fails',
      {
        source: ['aws.cloudwatch'],
        $or: [{ metricName: ['CPUUtilization'] }, { metricType: ['MetricType'], namespace: ['AWS/EC2'] }],
      },
      { source: 'aws.cloudwatch', metricType: 'MetricType', namespace: 'AWS/ES' },
      false,
    ],
  ]);
});

describe('complex pattern', () => {
  // [filter] "Complex example with multiple matching"
  const pattern = {
    time: [{ prefix: '2017-10-02' }],
    detail: {
      state: [{ 'anything-but': 'initializing' }],
      'c-count': [{ numeric: ['>', 0, '<=', 5] }],
      'd-count': [{ numeric: ['<', 10] }],
      'x-limit': [{ 'anything-but': [100, 200, 300] }],
      'source-ip': [{ cidr: '10.0.0.0/8' }],
    },
  };
  // [ruler] sample event
  const event = {
    time: '2017-10-02T16:24:49Z',
    detail: { 'c-count': 5, 'd-count': 3, 'x-limit': 301.8, 'source-ip': '10.0.0.33', state: 'running' },
  };
  it('matches the documented sample event', () => {
    expect(matchesPattern(pattern, event)).toBe(true);
  });
  it('fails when one field fails', () => {
    expect(matchesPattern(pattern, { ...event, detail: { ...event.detail, 'x-limit': 200 } })).toBe(false);
  });
  it('compiles once and matches many events', () => {
    const compiled = compilePattern(pattern);
    expect(compiled.pattern).toEqual(pattern);
    expect(compiled.matches(event)).toBe(true);
    expect(compiled.matches({ ...event, time: '2018-01-01T00:00:00Z' })).toBe(false);
    expect(compiled.matches('not an object')).toBe(false);
  });
});
