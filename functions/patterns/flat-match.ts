/**
 * Matching as EventBridge's matcher does it (aws/event-ruler `rulesForJSONEvent`): the event is flattened into
 * leaves named by their dot-joined path, so `{"a": {"b": 1}}` and `{"a.b": 1}` are the same field, and so are
 * the pattern fields `{"a": {"b": [1]}}` and `{"a.b": [1]}`. An array contributes each element; leaves chosen
 * for one match must come from the same element of every array they share ("array consistency"), so fields
 * of different array elements never combine.
 */
import { isPlainObject, type Leaf, type ValueMatcher } from './match-values.ts';

export interface FieldRule {
  /** Dot-joined path of the field. */
  readonly path: string;
  readonly matchers: readonly ValueMatcher[];
}

/** All fields must match (AND); a pattern with `$or` compiles to several alternatives (OR). */
export type Alternative = readonly FieldRule[];

interface FlatLeaf {
  readonly value: Leaf;
  /** `[array id, element index]` for every array on the way to this leaf. */
  readonly trail: readonly (readonly [number, number])[];
}

export type FlatEvent = ReadonlyMap<string, readonly FlatLeaf[]>;

/**
 * The dot-joined paths worth walking into for these alternatives: every field path and each of its prefixes
 * that ends at a dot. An event path outside this set can never lead to a field of the pattern.
 */
export function pathsToWalk(alternatives: readonly Alternative[]): ReadonlySet<string> {
  const paths = new Set<string>();
  for (const fields of alternatives) {
    for (const { path } of fields) {
      paths.add(path);
      for (let i = path.indexOf('.'); i >= 0; i = path.indexOf('.', i + 1)) paths.add(path.slice(0, i));
    }
  }
  return paths;
}

/** The event's leaves by path, walking only `paths` (all of it without). A non-object event has none. */
export function flattenEvent(event: unknown, paths?: ReadonlySet<string>): FlatEvent {
  const leaves = new Map<string, FlatLeaf[]>();
  if (!isPlainObject(event)) return leaves;
  let arrays = 0;
  const walk = (value: unknown, path: string, trail: FlatLeaf['trail']): void => {
    if (Array.isArray(value)) {
      const id = arrays++;
      value.forEach((item, index) => {
        walk(item, path, [...trail, [id, index]]);
      });
    } else if (isPlainObject(value)) {
      for (const [key, child] of Object.entries(value)) {
        const childPath = path ? `${path}.${key}` : key;
        if (!paths || paths.has(childPath)) walk(child, childPath, trail);
      }
    } else if (isLeaf(value)) {
      const list = leaves.get(path);
      if (list) list.push({ value, trail });
      else leaves.set(path, [{ value, trail }]);
    }
  };
  walk(event, '', []);
  return leaves;
}

/** Leaves given directly by path (SNS message attributes), outside any array. */
export function flatLeaves(entries: Iterable<readonly [string, readonly Leaf[]]>): FlatEvent {
  const leaves = new Map<string, FlatLeaf[]>();
  for (const [path, values] of entries) {
    leaves.set(
      path,
      values.map((value) => ({ value, trail: [] })),
    );
  }
  return leaves;
}

export function matchesAnyAlternative(alternatives: readonly Alternative[], event: FlatEvent): boolean {
  return alternatives.some((fields) => matchesAlternative(fields, event));
}

type Assignment = ReadonlyMap<number, number>;

function matchesAlternative(fields: Alternative, event: FlatEvent): boolean {
  const absent: FieldRule[] = [];
  const step = (i: number, assignment: Assignment): boolean => {
    const field = fields[i];
    if (field === undefined) {
      return absent.every((f) => !(event.get(f.path) ?? []).some((leaf) => consistent(leaf, assignment)));
    }
    for (const leaf of event.get(field.path) ?? []) {
      if (!consistent(leaf, assignment) || !field.matchers.some((m) => accepts(m, leaf.value))) continue;
      if (step(i + 1, extend(assignment, leaf))) return true;
    }
    if (field.matchers.some((m) => m.kind === 'exists' && !m.present)) {
      absent.push(field);
      if (step(i + 1, assignment)) return true;
      absent.pop();
    }
    return false;
  };
  return step(0, new Map());
}

function accepts(matcher: ValueMatcher, value: Leaf): boolean {
  return matcher.kind === 'exists' ? matcher.present : matcher.test(value);
}

function consistent(leaf: FlatLeaf, assignment: Assignment): boolean {
  return leaf.trail.every(([id, index]) => {
    const chosen = assignment.get(id);
    return chosen === undefined || chosen === index;
  });
}

function extend(assignment: Assignment, leaf: FlatLeaf): Assignment {
  if (leaf.trail.length === 0) return assignment;
  const next = new Map(assignment);
  for (const [id, index] of leaf.trail) next.set(id, index);
  return next;
}

function isLeaf(value: unknown): value is Leaf {
  return (
    value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
  );
}
