/**
 * What a local EventBridge target receives: the event itself, a constant `Input`, the part an `InputPath`
 * selects, or an `InputTransformer`'s template filled from the event (EventBridge's own rules for each).
 */
import type { EventBridgeEvent, LocalTarget } from './bus.ts';
import { LocalEventBridgeConfigError } from './errors.ts';

/** Variables EventBridge predefines for input templates; a path map may not use the prefix. */
const PREDEFINED_PREFIX = 'aws.events.';

/** What an input template may name of the rule that matched. */
export interface RuleIdentity {
  readonly name: string;
  readonly arn: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

type PathSegment = string | number;

/** JSONPath-lite: `$`, `.name` (any characters but `.` and `[`), `[0]`, `['name']`, `["name"]`. */
export function parseJsonPath(path: string): PathSegment[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < path.length) {
    const ch = path.charAt(i);
    if (ch === '.') {
      const end = path.slice(i + 1).search(/[.[]/);
      const name = end < 0 ? path.slice(i + 1) : path.slice(i + 1, i + 1 + end);
      if (name === '') return undefined;
      segments.push(name);
      i += 1 + name.length;
    } else if (ch === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) return undefined;
      const inner = path.slice(i + 1, close);
      const quoted = /^'(.*)'$|^"(.*)"$/.exec(inner);
      if (quoted) segments.push(quoted[1] ?? quoted[2] ?? '');
      else if (/^\d+$/.test(inner)) segments.push(Number(inner));
      else return undefined;
      i = close + 1;
    } else {
      return undefined;
    }
  }
  return segments;
}

function readPath(value: unknown, segments: readonly PathSegment[]): unknown {
  let current = value;
  for (const segment of segments) {
    if (typeof segment === 'number' ? !Array.isArray(current) : !isObject(current)) return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

export function compileInput(
  target: LocalTarget,
  subject: string,
): (event: EventBridgeEvent, rule: RuleIdentity, ingestedAt: number) => unknown {
  if (target.input !== undefined) {
    let constant: unknown;
    try {
      constant = JSON.parse(target.input);
    } catch {
      throw new LocalEventBridgeConfigError(subject, 'input must be valid JSON text');
    }
    return () => structuredClone(constant);
  }
  if (target.inputPath !== undefined) {
    const segments = parseJsonPath(target.inputPath);
    if (!segments)
      throw new LocalEventBridgeConfigError(
        subject,
        `inputPath "${target.inputPath}" is not a valid JSON path`,
      );
    return (event) => structuredClone(readPath(event, segments) ?? null);
  }
  if (target.inputTransformer !== undefined) {
    const { inputPathsMap = {}, inputTemplate } = target.inputTransformer;
    if (typeof inputTemplate !== 'string') {
      throw new LocalEventBridgeConfigError(subject, 'inputTransformer.inputTemplate must be a string');
    }
    const names = Object.keys(inputPathsMap);
    if (names.length > 100)
      throw new LocalEventBridgeConfigError(subject, 'inputPathsMap allows at most 100 variables');
    const paths = new Map<string, PathSegment[]>();
    for (const name of names) {
      if (name.startsWith(PREDEFINED_PREFIX)) {
        throw new LocalEventBridgeConfigError(
          subject,
          `inputPathsMap variable "${name}" uses a reserved aws.events. name`,
        );
      }
      const segments = parseJsonPath(inputPathsMap[name] ?? '');
      if (!segments) {
        throw new LocalEventBridgeConfigError(
          subject,
          `inputPathsMap.${name} "${inputPathsMap[name]}" is not a valid JSON path`,
        );
      }
      paths.set(name, segments);
    }
    return (event, rule, ingestedAt) => {
      const variables = new Map<string, unknown>([
        ['aws.events.rule-arn', rule.arn],
        ['aws.events.rule-name', rule.name],
        ['aws.events.event', event],
        ['aws.events.event.json', JSON.stringify(event)],
        ['aws.events.event.ingestion-time', new Date(ingestedAt).toISOString()],
      ]);
      for (const [name, segments] of paths) variables.set(name, readPath(event, segments));
      const text = fillTemplate(inputTemplate, variables);
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    };
  }
  return (event) => structuredClone(event);
}

/**
 * Replaces `<name>` placeholders. Inside a JSON string literal a string value goes in as is
 * (EventBridge does not escape it) and other values as JSON text; outside, every value goes in
 * as JSON (so strings get their quotes). A variable whose path matched nothing becomes `null`
 * outside quotes and nothing inside them. Unknown `<...>` text is left alone.
 */
function fillTemplate(template: string, variables: ReadonlyMap<string, unknown>): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < template.length; i++) {
    const ch = template.charAt(i);
    if (ch === '"' && !isEscaped(template, i)) inString = !inString;
    if (ch === '<') {
      const close = template.indexOf('>', i + 1);
      const name = close > i ? template.slice(i + 1, close) : '';
      if (variables.has(name)) {
        const value = variables.get(name);
        if (inString)
          out += typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
        else out += value === undefined ? 'null' : JSON.stringify(value);
        i = close;
        continue;
      }
    }
    out += ch;
  }
  return out;
}

function isEscaped(text: string, index: number): boolean {
  let backslashes = 0;
  for (let j = index - 1; j >= 0 && text.charAt(j) === '\\'; j--) backslashes++;
  return backslashes % 2 === 1;
}
