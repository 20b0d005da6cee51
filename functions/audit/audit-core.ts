/**
 * The delivery audit, shared by `outbox audit` (bin/commands/audit.ts), the scheduled audit function
 * (functions/audit/handler.ts) and the demo's closing audit: per subscription, the events committed in a window
 * that its filter selects, and what became of each: applied (the consumer's dedup record is COMPLETED, or its
 * ordered cursor is at or past the event's sequence), dead-lettered (in the subscription's DLQ, when the caller
 * peeks it), quarantined (the outbox record is QUARANTINED, never published), pending (still being delivered, when
 * the caller asks to skip those) or missing.
 *
 * Cost: one Scan of the outbox table (filtered to the window, billed for every item read: bounded by
 * `maxItemsRead`), then consistent BatchGetItem reads of the dedup table (two keys per selected event).
 */
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { cursorKey, DEDUP_PARTITION_KEY, DedupStatus, eventDedupKey } from '../consumer/dedup-format.ts';
import { describeFilter, type SubscriptionFilter, typeSelected } from '../contract/audit-filter.ts';
import { snsSubscriptionFilter } from '../contract/sns-subscription-filter.ts';
import { compilePattern, eventBridgeEventOf } from '../patterns/event-pattern.ts';
import { OutboxError } from '../runtime/errors.ts';
import { storedEnvelopeOf } from '../runtime/record-envelope.ts';
import { OutboxStatus, PARTITION_KEY, RecordAttribute } from '../runtime/record-format.ts';
import { scanEventWindow } from './window-scan.ts';

/** Statuses of a committed event record: everything but PREPARED/CONFIRMED/CANCELLED. */
export const COMMITTED_STATUSES = [
  OutboxStatus.Published,
  OutboxStatus.Ready,
  OutboxStatus.Scheduled,
  OutboxStatus.Quarantined,
] as const;

/** Missing event ids kept per subscription in a result. */
export const MAX_LISTED_MISSING = 1000;

export interface AuditClients {
  readonly dynamodb: DynamoDBDocumentClient;
}

/** A subscription's filter is not a valid EventBridge pattern: fix the subscription's eventPattern. */
export class AuditFilterError extends OutboxError {
  override name = 'AuditFilterError';
}

export interface AuditEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly aggregateKey: string;
  readonly sequence: number;
  readonly status: string;
  readonly createdAt: number;
  /** When the relay marked it PUBLISHED (epoch ms), if it did. */
  readonly publishedAt?: number;
  /** The parsed envelope, when readable (pattern filters match on it). */
  readonly envelope?: Readonly<Record<string, unknown>>;
}

export type Outcome = 'applied' | 'dead-lettered' | 'quarantined' | 'missing';

/** A filter as a predicate; no filter selects everything. Throws on an invalid pattern. */
export function selector(filter: SubscriptionFilter | undefined): (event: AuditEvent) => boolean {
  if (!filter) return () => true;
  if (filter.kind === 'event-types') return (event) => typeSelected(filter, event.type);
  if (filter.kind === 'sns-filter-policy') {
    const matches = snsSubscriptionFilter(filter.policy, filter.scope);
    return (event) => matches({ ...event, partitionKey: event.aggregateKey, envelope: event.envelope ?? {} });
  }
  const compiled = compilePattern(filter.pattern);
  // What EventBridge matches an outbox event as (the relay puts the envelope in `detail`).
  return (event) =>
    compiled.matches(
      eventBridgeEventOf({
        ...event,
        detail: event.envelope ?? {
          id: event.id,
          type: event.type,
          source: event.source,
          partitionkey: event.aggregateKey,
          sequence: event.sequence,
        },
      }),
    );
}

/** What the dedup table and the DLQ say about one subscription's events. */
export interface Evidence {
  /** Dedup items by key (`E#…` and `S#…`). */
  readonly dedup: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Event ids peeked in the subscription's DLQ. */
  readonly deadLettered: ReadonlySet<string>;
}

export function classify(consumer: string, event: AuditEvent, evidence: Evidence): Outcome {
  const record = evidence.dedup.get(eventDedupKey(consumer, event.id));
  if (record && record[RecordAttribute.status] === DedupStatus.Completed) return 'applied';
  const cursor = evidence.dedup.get(cursorKey(consumer, event.aggregateKey));
  const last = Number(cursor?.[RecordAttribute.lastSequence]);
  if (cursor && Number.isFinite(last) && last >= event.sequence) return 'applied';
  if (event.status === OutboxStatus.Quarantined) return 'quarantined';
  if (evidence.deadLettered.has(event.id)) return 'dead-lettered';
  return 'missing';
}

export function eventOf(item: Record<string, unknown>): AuditEvent | undefined {
  const envelope = storedEnvelopeOf(item) as unknown as Record<string, unknown> | undefined;
  const id = envelope?.id ?? item[RecordAttribute.id];
  const type = envelope?.type ?? item[RecordAttribute.type];
  const sequence = Number(envelope?.sequence ?? item[RecordAttribute.sequence]);
  if (typeof id !== 'string' || typeof type !== 'string' || !Number.isFinite(sequence)) return undefined;
  const source = envelope?.source ?? item[RecordAttribute.source];
  const publishedAt = Number(item[RecordAttribute.publishedAt]);
  return {
    id,
    type,
    source: typeof source === 'string' ? source : '',
    aggregateKey: String(envelope?.partitionkey ?? item[PARTITION_KEY]),
    sequence,
    status: String(item[RecordAttribute.status]),
    createdAt: Number(item[RecordAttribute.createdAt]),
    ...(Number.isFinite(publishedAt) ? { publishedAt } : {}),
    ...(envelope ? { envelope } : {}),
  };
}

export interface ScanBounds {
  /** TotalSegments of the Scan. */
  readonly segments: number;
  /** Scan only these segments, one after another. @default all, in parallel */
  readonly onlySegments?: readonly number[];
  /** Stop after this many events. @default unbounded */
  readonly maxEvents?: number;
  /** Stop after reading this many items (what the Scan is billed for). @default unbounded */
  readonly maxItemsRead?: number;
  readonly pageSize?: number;
}

export interface AuditScan {
  readonly events: AuditEvent[];
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly pages: number;
  readonly unreadable: number;
  readonly stoppedAtMax: boolean;
  /** Segments read to their end (all of them when the Scan was not cut short). */
  readonly segmentsCompleted: number;
}

/** Scan for committed `EVT#` records with from <= createdAt < to, within the bounds. */
export async function scanCommitted(
  clients: AuditClients,
  tableName: string,
  window: { from: number; to: number },
  bounds: ScanBounds,
): Promise<AuditScan> {
  const events: AuditEvent[] = [];
  const max = bounds.maxEvents ?? Number.POSITIVE_INFINITY;
  let scannedCount = 0;
  let readUnits = 0;
  let pages = 0;
  let unreadable = 0;
  let segmentsCompleted = 0;
  let stop = false;
  await scanEventWindow(
    clients,
    tableName,
    window,
    {
      segments: bounds.segments,
      statuses: COMMITTED_STATUSES,
      ...(bounds.onlySegments === undefined ? {} : { onlySegments: bounds.onlySegments }),
      ...(bounds.maxItemsRead === undefined ? {} : { maxItemsRead: bounds.maxItemsRead }),
      ...(bounds.pageSize === undefined ? {} : { pageSize: bounds.pageSize }),
    },
    (page) => {
      pages = page.page;
      scannedCount += page.scannedCount;
      readUnits += page.readUnits;
      for (const item of page.items) {
        if (events.length >= max) {
          stop = true;
          break;
        }
        const event = eventOf(item);
        if (event) events.push(event);
        else unreadable++;
      }
      if (page.segmentDone && !stop) segmentsCompleted++;
      return !stop;
    },
  );
  return { events, scannedCount, readUnits, pages, unreadable, stoppedAtMax: stop, segmentsCompleted };
}

/** Consistent BatchGetItem of the given keys (100 per call), retrying unprocessed keys. */
export async function readDedup(
  clients: AuditClients,
  tableName: string,
  keys: readonly string[],
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<{ items: Map<string, Record<string, unknown>>; readUnits: number; requests: number }> {
  const items = new Map<string, Record<string, unknown>>();
  let readUnits = 0;
  let requests = 0;
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += 100) {
    let pending: Record<string, unknown>[] = unique
      .slice(i, i + 100)
      .map((k) => ({ [DEDUP_PARTITION_KEY]: k }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(2000, 50 * 2 ** attempt));
      if (attempt > 8) {
        throw new OutboxError(
          `the dedup table ${tableName} kept throttling BatchGetItem; run the audit again later or raise the table's read capacity`,
          { retryable: true },
        );
      }
      requests++;
      const response = await clients.dynamodb.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      for (const c of response.ConsumedCapacity ?? []) readUnits += c.CapacityUnits ?? 0;
      for (const item of response.Responses?.[tableName] ?? []) {
        items.set(String(item[DEDUP_PARTITION_KEY]), item);
      }
      pending = (response.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  return { items, readUnits, requests };
}

export interface AuditedSubscription {
  /** The consumer name (the dedup keys' prefix). */
  readonly name: string;
  /** @default - unknown: every event counts */
  readonly filter?: SubscriptionFilter;
}

export interface AuditWindowInput {
  readonly outboxTableName: string;
  readonly dedupTableName: string;
  readonly window: { readonly from: number; readonly to: number };
  readonly subscriptions: readonly AuditedSubscription[];
  readonly scan: ScanBounds;
  /**
   * Skip events still being delivered, as pending: READY/SCHEDULED records, and PUBLISHED ones published at or
   * after this time (epoch ms), whose consumer may still be retrying them.
   * @default - every committed event is audited (the CLI's reading)
   */
  readonly settledBefore?: number;
  /** Event ids in a subscription's DLQ (peeked by the caller). @default - none looked at */
  readonly deadLetters?: (subscription: string) => Promise<{ eventIds: ReadonlySet<string>; peeked: number }>;
}

export interface SubscriptionAudit {
  readonly subscription: string;
  readonly filter: string;
  readonly filterKnown: boolean;
  readonly expected: number;
  readonly applied: number;
  readonly deadLettered: number;
  readonly quarantined: number;
  readonly missing: number;
  /** Selected events skipped as still in delivery (only with settledBefore). */
  readonly pending?: number;
  /** Missing events (at most MAX_LISTED_MISSING). */
  readonly missingEvents: readonly {
    id: string;
    type: string;
    aggregateKey: string;
    sequence: number;
    status: string;
  }[];
  /** DLQ messages peeked (at most the DLQ peek limit). */
  readonly dlqPeeked: number;
}

export interface AuditResult {
  readonly window: { readonly from: string; readonly to: string };
  readonly dedupTableName: string;
  readonly scannedCount: number;
  readonly pages: number;
  readonly events: number;
  readonly unreadable: number;
  readonly stoppedAtMax?: number;
  /** Set when the Scan stopped at its item budget before reading every segment it was given. */
  readonly stoppedAtItemBudget?: number;
  readonly readUnits: { readonly scan: number; readonly dedup: number };
  /** DynamoDB requests made (Scan pages + BatchGetItem calls). */
  readonly requests: number;
  readonly subscriptions: readonly SubscriptionAudit[];
}

function isSettled(event: AuditEvent, settledBefore: number | undefined): boolean {
  if (settledBefore === undefined) return true;
  if (event.status === OutboxStatus.Ready || event.status === OutboxStatus.Scheduled) return false;
  return !(event.publishedAt !== undefined && event.publishedAt >= settledBefore);
}

export async function auditWindow(clients: AuditClients, input: AuditWindowInput): Promise<AuditResult> {
  // Compile every filter first: an invalid pattern must fail before the Scan is paid for.
  const audited = input.subscriptions.map((sub) => {
    try {
      return { sub, selects: selector(sub.filter) };
    } catch (error) {
      throw new AuditFilterError(
        `the filter of subscription ${sub.name} is not a valid EventBridge pattern: ${(error as Error).message}`,
        { cause: error },
      );
    }
  });
  const scan = await scanCommitted(clients, input.outboxTableName, input.window, input.scan);
  let dedupUnits = 0;
  let dedupRequests = 0;
  const results: SubscriptionAudit[] = [];
  for (const { sub, selects } of audited) {
    const selected = scan.events.filter(selects);
    const expected = selected.filter((e) => isSettled(e, input.settledBefore));
    const keys = expected.flatMap((e) => [
      eventDedupKey(sub.name, e.id),
      cursorKey(sub.name, e.aggregateKey),
    ]);
    const dedup = await readDedup(clients, input.dedupTableName, keys);
    dedupUnits += dedup.readUnits;
    dedupRequests += dedup.requests;
    const peek = input.deadLetters
      ? await input.deadLetters(sub.name)
      : { eventIds: new Set<string>(), peeked: 0 };
    const counts = { applied: 0, 'dead-lettered': 0, quarantined: 0, missing: 0 };
    const missingEvents: SubscriptionAudit['missingEvents'][number][] = [];
    for (const event of expected) {
      const outcome = classify(sub.name, event, { dedup: dedup.items, deadLettered: peek.eventIds });
      counts[outcome]++;
      if (outcome === 'missing' && missingEvents.length < MAX_LISTED_MISSING) {
        const { id, type, aggregateKey, sequence, status } = event;
        missingEvents.push({ id, type, aggregateKey, sequence, status });
      }
    }
    results.push({
      subscription: sub.name,
      filter: describeFilter(sub.filter),
      filterKnown: sub.filter !== undefined,
      expected: expected.length,
      applied: counts.applied,
      deadLettered: counts['dead-lettered'],
      quarantined: counts.quarantined,
      missing: counts.missing,
      ...(input.settledBefore === undefined ? {} : { pending: selected.length - expected.length }),
      missingEvents,
      dlqPeeked: peek.peeked,
    });
  }
  const segmentsGiven = input.scan.onlySegments?.length ?? input.scan.segments;
  const cutByBudget =
    input.scan.maxItemsRead !== undefined && !scan.stoppedAtMax && scan.segmentsCompleted < segmentsGiven;
  return {
    window: {
      from: new Date(input.window.from).toISOString(),
      to: new Date(input.window.to).toISOString(),
    },
    dedupTableName: input.dedupTableName,
    scannedCount: scan.scannedCount,
    pages: scan.pages,
    events: scan.events.length,
    unreadable: scan.unreadable,
    ...(scan.stoppedAtMax && input.scan.maxEvents !== undefined
      ? { stoppedAtMax: input.scan.maxEvents }
      : {}),
    ...(cutByBudget ? { stoppedAtItemBudget: input.scan.maxItemsRead } : {}),
    readUnits: { scan: scan.readUnits, dedup: dedupUnits },
    requests: scan.pages + dedupRequests,
    subscriptions: results,
  };
}
