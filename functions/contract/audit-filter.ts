/**
 * What a subscription selects, as the delivery audit (`outbox audit`) needs to know it, and the optional
 * deployment fields that carry it. Dependency-free: the CLI, the offline runtime and the CDK constructs may all
 * import it.
 *
 * Deployment file (`.local-runs/deployment.json` / `--deployment`), all optional:
 * - `dedupTableName`: the consumers' dedup table;
 * - `subscriptions[].filter`: `{ "kind": "event-types", "types": [...], "prefixes": [...] }`,
 *   `{ "kind": "event-pattern", "pattern": {...} }` or
 *   `{ "kind": "sns-filter-policy", "policy": {...}, "scope": "MessageAttributes" | "MessageBody" }`.
 *
 * Stack outputs (optional, read when present):
 * - `OutboxDedupTableName`: the dedup table name;
 * - `Sub<Name>Filter`: the JSON text of the subscription's filter (same shape as above).
 */

export type SubscriptionFilter =
  | { readonly kind: 'event-types'; readonly types: readonly string[]; readonly prefixes: readonly string[] }
  | { readonly kind: 'event-pattern'; readonly pattern: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'sns-filter-policy';
      readonly policy: Readonly<Record<string, unknown>>;
      readonly scope: 'MessageAttributes' | 'MessageBody';
    };

/** Stack output with the dedup table name. */
export const DEDUP_TABLE_OUTPUT_KEY = 'OutboxDedupTableName';
/** `Sub<Name>Filter`: the JSON of one subscription's filter, <Name> as in `Sub<Name>QueueUrl`. */
export const SUBSCRIPTION_FILTER_OUTPUT_PATTERN = /^Sub([A-Z][A-Za-z0-9]*?)Filter$/;
/**
 * `Sub<Name>ConsumerMode`: written only for a `single-item` consumer, which keeps no dedup records, so the audit
 * cannot tell its applied events and leaves it out.
 */
export const SUBSCRIPTION_CONSUMER_MODE_OUTPUT_PATTERN = /^Sub([A-Z][A-Za-z0-9]*?)ConsumerMode$/;
/** The consumer mode whose applied events are not in the dedup table. */
export const UNAUDITED_CONSUMER_MODE = 'single-item';

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Validates a filter (parsed JSON); returns a problem description instead of throwing. */
export function parseSubscriptionFilter(value: unknown): SubscriptionFilter | string {
  if (!isRecord(value)) return 'must be an object';
  if (value.kind === 'event-types') {
    const types = value.types ?? [];
    const prefixes = value.prefixes ?? [];
    if (!strings(types)) return 'types must be an array of strings';
    if (!strings(prefixes)) return 'prefixes must be an array of strings';
    if (types.length === 0 && prefixes.length === 0) return 'needs at least one of types or prefixes';
    return { kind: 'event-types', types, prefixes };
  }
  if (value.kind === 'event-pattern') {
    if (!isRecord(value.pattern)) return 'pattern must be an EventBridge event pattern (a JSON object)';
    return { kind: 'event-pattern', pattern: value.pattern };
  }
  if (value.kind === 'sns-filter-policy') {
    if (!isRecord(value.policy)) return 'policy must be an SNS filter policy (a JSON object)';
    const scope = value.scope ?? 'MessageAttributes';
    if (scope !== 'MessageAttributes' && scope !== 'MessageBody') {
      return 'scope must be "MessageAttributes" or "MessageBody"';
    }
    return { kind: 'sns-filter-policy', policy: value.policy, scope };
  }
  return 'kind must be "event-types", "event-pattern" or "sns-filter-policy"';
}

/** Whether an event type is selected by an `event-types` filter. */
export function typeSelected(
  filter: Extract<SubscriptionFilter, { kind: 'event-types' }>,
  type: string,
): boolean {
  return filter.types.includes(type) || filter.prefixes.some((p) => type.startsWith(p));
}

/** One line for people: `types a, b; prefixes x.` / `event pattern {...}` / `filter unknown`. */
export function describeFilter(filter: SubscriptionFilter | undefined): string {
  if (!filter) return 'filter unknown: every event counted';
  if (filter.kind === 'event-types') {
    const parts = [
      ...(filter.types.length > 0 ? [`types ${filter.types.join(', ')}`] : []),
      ...(filter.prefixes.length > 0 ? [`prefixes ${filter.prefixes.join(', ')}`] : []),
    ];
    return parts.join('; ');
  }
  if (filter.kind === 'sns-filter-policy') {
    return `SNS filter policy ${JSON.stringify(filter.policy)}${filter.scope === 'MessageBody' ? ' on the body' : ''}`;
  }
  return `event pattern ${JSON.stringify(filter.pattern)}`;
}
