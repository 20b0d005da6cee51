/**
 * The delivery check of `local.check()` / `outbox local --check`: for the events committed to the outbox tables
 * during the run, per subscription (a consumer function with `OUTBOX_CONSUMER_NAME` and the queue its event source
 * mapping reads): how many its filter expects, how many its consumer applied (dedup records or ordered cursors),
 * which are missing and which are in its DLQ.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type PublishedOutboxEvent,
  snsSubscriptionFilter,
} from '../../functions/contract/sns-subscription-filter.ts';
import { compilePattern, eventBridgeEventOf } from '../../functions/patterns/event-pattern.ts';
import { gunzipEnvelope } from '../../functions/relay/decode.ts';
import type { OfflineRuntime } from '../offline.ts';
import { functionNameOf } from '../runtime/event-source.ts';
import type { LocalRuntime, LocalStackRuntime } from '../runtime/runtime.ts';
import { isRecord, type ResolveContext, resolveIntrinsics } from '../runtime/template.ts';
import { scanTable } from '../services/scan-table.ts';

export interface DeliveryCheckOptions {
  /** How many missing event ids to list per subscription. @default 20 */
  readonly listMissing?: number;
}

export interface SubscriptionCheck {
  /** The consumer name (`OUTBOX_CONSUMER_NAME`). */
  readonly subscription: string;
  readonly stackName: string;
  readonly functionName: string;
  readonly queueUrl: string;
  /** How the filter was read: the SNS subscription's filter policy, the rule's event pattern, or none found. */
  readonly filter: 'sns-filter-policy' | 'event-pattern' | 'none';
  readonly expected: number;
  readonly applied: number;
  readonly deadLettered: number;
  /** Expected, not applied and not in the DLQ. */
  readonly missing: number;
  readonly missingEventIds: readonly string[];
  /** Applied by the consumer although its filter does not select them (a filter mismatch). */
  readonly unexpectedApplied: number;
}

export interface DeliveryCheck {
  /** Events found in the outbox tables. */
  readonly events: number;
  readonly outboxTables: readonly string[];
  readonly subscriptions: readonly SubscriptionCheck[];
  /** True when nothing is missing. */
  readonly ok: boolean;
}

/** An event as the relay publishes it (what the filters judge), plus what the check reports it by. */
interface OutboxEvent extends PublishedOutboxEvent {
  readonly id: string;
  readonly createdAt: number;
}

interface SubscriptionSpec {
  readonly name: string;
  readonly stack: LocalStackRuntime;
  readonly functionName: string;
  readonly dedupTable?: string;
  readonly queueArn: string;
  readonly queueUrl: string;
  readonly dlqName?: string;
  readonly filter: SubscriptionCheck['filter'];
  readonly matches: (event: OutboxEvent) => boolean;
}

const CONSUMER_NAME_ENV = 'OUTBOX_CONSUMER_NAME';
const DEDUP_TABLE_ENV = 'DEDUP_TABLE_NAME';

function tryResolve(value: unknown, ctx: ResolveContext): unknown {
  try {
    return resolveIntrinsics(value, ctx);
  } catch {
    return undefined;
  }
}

/** Subscriptions: consumer functions (OUTBOX_CONSUMER_NAME) with an SQS event source mapping. */
function findSubscriptions(runtime: LocalRuntime): SubscriptionSpec[] {
  const specs: SubscriptionSpec[] = [];
  const all = runtime.allResources;
  for (const stack of runtime.stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const ctx = { ...stack.ctx, resourceId: logicalId };
      const variables = tryResolve(
        isRecord(resource.Properties?.Environment) ? resource.Properties.Environment.Variables : undefined,
        ctx,
      );
      if (!isRecord(variables) || typeof variables[CONSUMER_NAME_ENV] !== 'string') continue;
      const functionName = stack.registry.ref(logicalId);
      if (!functionName) continue;
      for (const [mappingId, mapping] of Object.entries(stack.template.Resources)) {
        if (mapping.Type !== 'AWS::Lambda::EventSourceMapping') continue;
        const props = tryResolve(mapping.Properties ?? {}, { ...stack.ctx, resourceId: mappingId });
        if (!isRecord(props) || functionNameOf(String(props.FunctionName)) !== functionName) continue;
        const queueArn = String(props.EventSourceArn);
        const queue = all.findByValue(queueArn);
        if (queue?.type !== 'AWS::SQS::Queue') continue;
        specs.push({
          name: String(variables[CONSUMER_NAME_ENV]),
          stack,
          functionName,
          ...(typeof variables[DEDUP_TABLE_ENV] === 'string'
            ? { dedupTable: variables[DEDUP_TABLE_ENV] }
            : {}),
          queueArn,
          queueUrl: queue.ref,
          ...dlqOf(runtime, queueArn),
          ...filterOf(runtime, queueArn),
        });
      }
    }
  }
  return specs;
}

/** The DLQ of a queue (its RedrivePolicy's deadLetterTargetArn), by name. */
function dlqOf(runtime: LocalRuntime, queueArn: string): { dlqName?: string } {
  for (const stack of runtime.stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
      if (resource.Type !== 'AWS::SQS::Queue' || stack.registry.getAtt(logicalId, 'Arn') !== queueArn)
        continue;
      const props = tryResolve(resource.Properties ?? {}, { ...stack.ctx, resourceId: logicalId });
      const redrive = isRecord(props) ? props.RedrivePolicy : undefined;
      const parsed = typeof redrive === 'string' ? (JSON.parse(redrive) as unknown) : redrive;
      const target = isRecord(parsed) ? parsed.deadLetterTargetArn : undefined;
      if (typeof target !== 'string') return {};
      const dlq = runtime.allResources.findByValue(target);
      const name = dlq?.attributes.QueueName;
      return typeof name === 'string' ? { dlqName: name } : {};
    }
  }
  return {};
}

/** What feeds the queue: an SNS subscription's filter policy or an EventBridge rule's pattern. */
function filterOf(
  runtime: LocalRuntime,
  queueArn: string,
): { filter: SubscriptionCheck['filter']; matches: (event: OutboxEvent) => boolean } {
  const matchers: ((event: OutboxEvent) => boolean)[] = [];
  let filter: SubscriptionCheck['filter'] = 'none';
  for (const stack of runtime.stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
      const scoped = { ...stack.ctx, resourceId: logicalId };
      if (resource.Type === 'AWS::SNS::Subscription') {
        const props = tryResolve(resource.Properties ?? {}, scoped);
        if (!isRecord(props) || props.Endpoint !== queueArn) continue;
        filter = 'sns-filter-policy';
        matchers.push(snsSubscriptionFilter(props.FilterPolicy, props.FilterPolicyScope));
      } else if (resource.Type === 'AWS::Events::Rule') {
        const props = tryResolve(resource.Properties ?? {}, scoped);
        if (!isRecord(props) || props.EventPattern === undefined || props.State === 'DISABLED') continue;
        const targets = Array.isArray(props.Targets) ? props.Targets : [];
        if (!targets.some((t) => isRecord(t) && t.Arn === queueArn)) continue;
        filter = 'event-pattern';
        const compiled = compilePattern(props.EventPattern);
        matchers.push((event) => compiled.matches(eventBridgeEventOf({ ...event, detail: event.envelope })));
      }
    }
  }
  return { filter, matches: (event) => matchers.some((m) => m(event)) };
}

function toEvent(item: Record<string, unknown>): OutboxEvent | undefined {
  if (typeof item.sk !== 'string' || !item.sk.startsWith('EVT#') || typeof item.id !== 'string')
    return undefined;
  if (item.status === 'CANCELLED' || item.status === 'PREPARED') return undefined;
  let envelope: Record<string, unknown> = {};
  try {
    // A small envelope is text; a gzipped one (large, or stored compressed to save write units) is binary.
    const json =
      typeof item.envelope === 'string'
        ? item.envelope
        : item.envelopeGzip instanceof Uint8Array
          ? gunzipEnvelope(item.envelopeGzip)
          : undefined;
    if (json !== undefined) envelope = JSON.parse(json) as Record<string, unknown>;
  } catch {
    envelope = {};
  }
  return {
    id: item.id,
    type: String(item.type ?? envelope.type ?? ''),
    source: String(item.source ?? envelope.source ?? ''),
    partitionKey: String(item.pk),
    sequence: Number(item.sequence ?? 0),
    ...(typeof envelope.subject === 'string' ? { subject: envelope.subject } : {}),
    envelope,
    createdAt: Number(item.createdAt ?? Date.now()),
  };
}

/** The event id of a message in a DLQ: a raw envelope, an SNS notification or an EventBridge event. */
function eventIdOfMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    if (typeof parsed.specversion === 'string' && typeof parsed.id === 'string') return parsed.id;
    if (isRecord(parsed.detail) && typeof parsed.detail.id === 'string') return parsed.detail.id;
    if (typeof parsed.Message === 'string') return eventIdOfMessage(parsed.Message);
  } catch {
    return undefined;
  }
  return undefined;
}

export async function checkDeliveries(
  runtime: LocalRuntime,
  services: Pick<OfflineRuntime, 'dynamodb' | 'fauxqs'>,
  opts: DeliveryCheckOptions = {},
): Promise<DeliveryCheck> {
  const client = new DynamoDBClient({
    endpoint: services.dynamodb.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    const specs = findSubscriptions(runtime);
    const dedupTables = new Set(specs.flatMap((s) => (s.dedupTable ? [s.dedupTable] : [])));
    // Outbox tables: tables with a stream whose items are outbox records.
    const events: OutboxEvent[] = [];
    const outboxTables: string[] = [];
    const tableItems = new Map<string, Record<string, unknown>[]>();
    for (const table of runtime.allResources
      .ofType('AWS::DynamoDB::Table')
      .concat(runtime.allResources.ofType('AWS::DynamoDB::GlobalTable'))) {
      const items = await scanTable(client, table.ref);
      tableItems.set(table.ref, items);
      if (dedupTables.has(table.ref) || table.attributes.StreamArn === undefined) continue;
      const found = items.map(toEvent).filter((e): e is OutboxEvent => e !== undefined);
      if (found.length > 0) {
        outboxTables.push(table.ref);
        events.push(...found);
      }
    }
    const listMissing = opts.listMissing ?? 20;
    const subscriptions: SubscriptionCheck[] = [];
    for (const spec of specs) {
      const dedup = spec.dedupTable ? (tableItems.get(spec.dedupTable) ?? []) : [];
      const appliedIds = new Set<string>();
      const cursors = new Map<string, number>();
      for (const item of dedup) {
        const pk = String(item.pk ?? '');
        const eventPrefix = `E#${spec.name}#`;
        const cursorPrefix = `S#${spec.name}#`;
        if (pk.startsWith(eventPrefix) && (item.status === undefined || item.status === 'COMPLETED'))
          appliedIds.add(pk.slice(eventPrefix.length));
        else if (pk.startsWith(cursorPrefix))
          cursors.set(pk.slice(cursorPrefix.length), Number(item.lastSequence ?? 0));
      }
      const isApplied = (event: OutboxEvent): boolean =>
        appliedIds.has(event.id) || (cursors.get(event.partitionKey) ?? 0) >= event.sequence;
      const deadLetteredIds = new Set<string>();
      if (spec.dlqName) {
        const dlq = await services.fauxqs.inspectQueue(spec.dlqName);
        const messages = dlq
          ? [...dlq.messages.ready, ...dlq.messages.delayed, ...dlq.messages.inflight.map((m) => m.message)]
          : [];
        for (const message of messages) {
          const id = eventIdOfMessage(message.body);
          if (id) deadLetteredIds.add(id);
        }
      }
      const expected = events.filter((e) => spec.matches(e));
      const applied = expected.filter(isApplied);
      const deadLettered = expected.filter((e) => !isApplied(e) && deadLetteredIds.has(e.id));
      const missing = expected.filter((e) => !isApplied(e) && !deadLetteredIds.has(e.id));
      subscriptions.push({
        subscription: spec.name,
        stackName: spec.stack.stackName,
        functionName: spec.functionName,
        queueUrl: spec.queueUrl,
        filter: spec.filter,
        expected: expected.length,
        applied: applied.length,
        deadLettered: deadLettered.length,
        missing: missing.length,
        missingEventIds: missing.slice(0, listMissing).map((e) => e.id),
        unexpectedApplied: events.filter((e) => !spec.matches(e) && isApplied(e)).length,
      });
    }
    return {
      events: events.length,
      outboxTables,
      subscriptions,
      ok: subscriptions.every((s) => s.missing === 0),
    };
  } finally {
    client.destroy();
  }
}

/** The check as a table, one row per subscription. */
export function formatDeliveryCheck(check: DeliveryCheck): string {
  const header = ['subscription', 'stack', 'filter', 'expected', 'applied', 'missing', 'dead-lettered'];
  const rows = check.subscriptions.map((s) => [
    s.subscription,
    s.stackName,
    s.filter,
    String(s.expected),
    String(s.applied),
    String(s.missing),
    String(s.deadLettered),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ');
  const lines = [
    `${check.events} event(s) in ${check.outboxTables.length} outbox table(s): ${check.outboxTables.join(', ') || '-'}`,
    line(header),
    ...rows.map(line),
  ];
  for (const s of check.subscriptions) {
    if (s.missingEventIds.length > 0)
      lines.push(`missing for ${s.subscription}: ${s.missingEventIds.join(', ')}`);
  }
  if (check.subscriptions.length === 0)
    lines.push(
      'no subscriptions found (consumer functions with OUTBOX_CONSUMER_NAME and an SQS event source)',
    );
  lines.push(check.ok ? 'OK: nothing missing' : 'MISSING: some expected events were not applied');
  return lines.join('\n');
}
