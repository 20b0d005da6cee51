import { describe, expect, it } from 'vitest';
import { matchesPattern } from '../../functions/patterns/event-pattern.ts';

// How fields are named and which event values they see. Sources:
// [rec]   LocalStack's AWS-recorded pattern cases (tests/aws/services/events/event_pattern_templates/<name>)
// [ruler] aws/event-ruler (README and source), the matcher EventBridge runs
// [docs]  EventBridge user guide pages on event patterns, arrays, null values and content filtering

type Case = [name: string, pattern: unknown, event: unknown, expected: boolean];

function runCases(cases: Case[]): void {
  it.each(cases)('%s', (_name, pattern, event, expected) => {
    expect(matchesPattern(pattern, event)).toBe(expected);
  });
}

describe('field names with dots', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[rec] dot_joining_pattern: "state.status" reaches state.status', { detail: { 'state.status': ['running'] } }, { detail: { state: { status: 'running' } } }, true],
    ['[rec] dot_joining_pattern_NEG: other value', { detail: { 'state.status': ['running'] } }, { detail: { state: { status: 'stopped' } } }, false],
    ['[ruler] a nested pattern reaches a dotted event key', { detail: { state: { status: ['running'] } } }, { detail: { 'state.status': 'running' } }, true],
    ['[ruler] dotted on both sides', { 'detail.state': ['x'] }, { 'detail.state': 'x' }, true],
    ['[ruler] the same path twice: the later field wins', { 'a.b': ['x'], a: { b: ['y'] } }, { a: { b: 'y' } }, true],
    ['[ruler] the same path twice: the earlier is replaced', { 'a.b': ['x'], a: { b: ['y'] } }, { a: { b: 'x' } }, false],
  ]);
});

describe('arrays of objects (array consistency)', () => {
  const event = { a: [{ b: 1, c: 2 }, { b: 3 }] };
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[ruler] exists:false is judged in the element that matched', { a: { b: [3], c: [{ exists: false }] } }, event, true],
    ['[ruler] ... and fails in the element that has the field', { a: { b: [1], c: [{ exists: false }] } }, event, false],
    ['[ruler] two fields of one element', { a: { b: [1], c: [2] } }, event, true],
    ['[ruler] two fields of different elements never combine', { a: { b: [3], c: [2] } }, event, false],
    ['[ruler] elements of nested arrays', { a: { b: [{ numeric: ['>', 2] }] } }, { a: [[{ b: 1 }], [{ b: 5 }]] }, true],
    ['[ruler] fields outside the array combine with any element', { x: ['y'], a: { b: [3] } }, { x: 'y', ...event }, true],
  ]);
});

describe('exists:false inside arrays (event-ruler ACMachineTest, "exists:false on leaf node of interfaceName")', () => {
  const rule = {
    ctx: {
      tasks: {
        state: ['ACTIVE'],
        provider: { id: ['X'] },
        resources: { extra: { interfaces: { name: [{ exists: false }] } } },
      },
    },
  };
  const task = (state: string, id: string, name?: string) => ({
    state,
    provider: { id },
    resources: [{ kind: 'k', ...(name ? { extra: { interfaces: [{ name }] } } : {}) }],
  });
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[ruler] matches: the ACTIVE task has no interface name (another task has one)', rule, { ctx: { tasks: [task('ACTIVE', 'X'), task('INACTIVE', 'Y', 'n')] } }, true],
    ['[ruler] no match: the ACTIVE task has an interface name', rule, { ctx: { tasks: [task('ACTIVE', 'X', 'n'), task('INACTIVE', 'Y', 'n')] } }, false],
  ]);
});

describe('exists on nulls, objects and arrays', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[docs] exists:true matches a null value', { f: [{ exists: true }] }, { f: null }, true],
    ['[docs] exists:true matches an empty string', { f: [{ exists: true }] }, { f: '' }, true],
    ['[ruler] exists works on leaves only: an object is absent', { f: [{ exists: false }] }, { f: { g: 1 } }, true],
    ['[ruler] exists:true does not match an object', { f: [{ exists: true }] }, { f: { g: 1 } }, false],
    ['[docs] exists:false matches an empty array', { f: [{ exists: false }] }, { f: [] }, true],
    ['[docs] exists:true does not match an empty array', { f: [{ exists: true }] }, { f: [] }, false],
    ['[docs] exists:true matches a non-empty array', { f: [{ exists: true }] }, { f: ['x'] }, true],
    ['[rec] arrays_empty_null_NEG: [null] vs []', { resources: [null] }, { resources: [] }, false],
    ['[ruler] a value or absent', { f: ['x', { exists: false }] }, {}, true],
  ]);
});

describe('anything-but with prefix, suffix, equals-ignore-case, wildcard', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[docs] prefix list: excluded', { s: [{ 'anything-but': { prefix: ['init', 'pend'] } }] }, { s: 'pending' }, false],
    ['[docs] prefix list: kept', { s: [{ 'anything-but': { prefix: ['init', 'pend'] } }] }, { s: 'running' }, true],
    ['[docs] suffix list: excluded', { f: [{ 'anything-but': { suffix: ['.txt', '.png'] } }] }, { f: 'a.png' }, false],
    ['[docs] suffix list: kept', { f: [{ 'anything-but': { suffix: ['.txt', '.png'] } }] }, { f: 'a.jpg' }, true],
    ['[docs] equals-ignore-case list: excluded', { s: [{ 'anything-but': { 'equals-ignore-case': ['Stopped', 'OVERLOADED'] } }] }, { s: 'overloaded' }, false],
    ['[docs] equals-ignore-case list: kept', { s: [{ 'anything-but': { 'equals-ignore-case': ['Stopped'] } }] }, { s: 'running' }, true],
    ['[docs] wildcard list: excluded', { p: [{ 'anything-but': { wildcard: ['*/lib/*', '*/dir/*'] } }] }, { p: 'a/dir/b' }, false],
    ['[docs] wildcard list: kept', { p: [{ 'anything-but': { wildcard: ['*/lib/*', '*/dir/*'] } }] }, { p: 'a/src/b' }, true],
    ['[rec] content_anything_wildcard_empty: "" excludes only ""', { p: [{ 'anything-but': { wildcard: '' } }] }, { p: 'dir/init/file' }, true],
    ['[rec] content_anything_but_string_null: null is not "x"', { s: [{ 'anything-but': 'x' }] }, { s: null }, true],
    ['[rec] content_anything_but_string_missing_NEG: missing field', { s: [{ 'anything-but': 'x' }] }, {}, false],
    ['[ruler] a number is not excluded by a prefix', { s: [{ 'anything-but': { prefix: '1' } }] }, { s: 123 }, true],
    ['[ruler] a number list excludes numerically', { n: [{ 'anything-but': [100, 200] }] }, { n: 1e2 }, false],
  ]);
});

describe('more string matching', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[ruler] an IP literal matches the same address written differently', { ip: ['2001:db8::1'] }, { ip: '2001:0db8:0:0:0:0:0:1' }, true],
    ['[ruler] an IP literal still compares exactly otherwise', { ip: ['10.0.0.1'] }, { ip: '10.0.0.2' }, false],
    ['[ruler] exactly', { s: [{ exactly: 'a' }] }, { s: 'a' }, true],
    ['[ruler] exactly is case sensitive', { s: [{ exactly: 'a' }] }, { s: 'A' }, false],
    ['[docs] prefix equals-ignore-case', { s: [{ prefix: { 'equals-ignore-case': 'AB' } }] }, { s: 'abc' }, true],
    ['[docs] suffix equals-ignore-case', { s: [{ suffix: { 'equals-ignore-case': '.PNG' } }] }, { s: 'a.png' }, true],
    ['[ruler] wildcard \\* is a literal asterisk', { s: [{ wildcard: 'a\\*b' }] }, { s: 'a*b' }, true],
    ['[ruler] wildcard \\* does not match other characters', { s: [{ wildcard: 'a\\*b' }] }, { s: 'axb' }, false],
    ['[ruler] wildcard \\\\ is a literal backslash', { s: [{ wildcard: 'a\\\\*' }] }, { s: 'a\\bc' }, true],
    ['[docs] numeric at the 5e9 limit', { n: [{ numeric: ['>=', 5e9] }] }, { n: 5e9 }, true],
  ]);
});

describe('$or', () => {
  // biome-ignore format: one case per line reads as a table
  runCases([
    ['[ruler] nested $or', { $or: [{ a: ['1'] }, { $or: [{ b: ['2'] }, { c: ['3'] }] }] }, { c: '3' }, true],
    ['[ruler] fields before and after $or join every branch', { x: ['1'], $or: [{ a: ['1'] }, { b: ['1'] }], y: ['1'] }, { x: '1', b: '1', y: '1' }, true],
    ['[ruler] ... and are required in every branch', { x: ['1'], $or: [{ a: ['1'] }, { b: ['1'] }], y: ['1'] }, { x: '1', b: '1' }, false],
    ['[ruler] two $or at different levels', { $or: [{ a: ['1'] }, { b: ['1'] }], d: { $or: [{ e: ['1'] }, { f: ['1'] }] } }, { b: '1', d: { f: '1' } }, true],
  ]);
});
