/**
 * The recovery sweeper's core: finds outbox records that still need work through the sparse
 * `pending-by-due-time` index (16 `P#` shards, never a Scan) and resolves each by its status:
 * - READY past the stuck threshold → republished through the relay's publishing code;
 * - SCHEDULED whose `deliverAt` has come → made READY (the stream then publishes it);
 * - PREPARED past the check-back threshold → the producer's check-back function decides.
 * Attempts are bounded; a record that exhausts them is quarantined (`Q#` shard) with its reason.
 */

import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { gunzipEnvelope } from '../relay/decode.ts';
import { isReservedPartitionKey } from '../relay/reserved-keys.ts';
import { ACK_PARTITION_PREFIX, AckStatus } from '../runtime/acks.ts';
import {
  allPendingShards,
  OutboxStatus,
  PENDING_DUE_AT,
  PENDING_INDEX_NAME,
  PENDING_SHARD,
  quarantineShardOf,
} from '../runtime/record-format.ts';

export interface PendingEntry {
  readonly pk: string;
  readonly sk: string;
  readonly id: string;
  readonly status: string;
  readonly attempts: number;
  readonly pendingDueAt: number;
  /** Projected into the index; missing on ack items. */
  readonly sequence?: number;
  /** Missing on records of writers that leave it out (the record format does not require it). */
  readonly createdAt?: number;
}

export type CheckbackAnswer = 'committed' | 'rolled-back' | 'unknown';

export interface SweeperDependencies {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly now: () => number;
  /**
   * Republishes full outbox items (as read from the table); returns the ids that reached every target, those
   * that failed (with the reason) and those held back behind an earlier SCHEDULED event (not a failure).
   */
  readonly republish: (items: readonly Record<string, unknown>[]) => Promise<{
    published: readonly string[];
    failed: ReadonlyMap<string, string>;
    held?: readonly string[];
  }>;
  /** Asks the producer's check-back function about a prepared message. */
  readonly checkback: (entry: {
    eventId: string;
    aggregateKey: string;
    source: string;
  }) => Promise<CheckbackAnswer>;
  readonly confirm: (message: { aggregateKey: string; id: string }) => Promise<unknown>;
  readonly cancel: (message: { aggregateKey: string; id: string }, reason: string) => Promise<void>;
  /** Sends an event again to one subscriber's queue (tracked mode: its ack is overdue). */
  readonly redeliver?: (
    target: { queueUrl: string; fifo: boolean; subscriber: string; attempt: number },
    envelopeJson: string,
  ) => Promise<void>;
}

export interface SweeperOptions {
  /** A READY record older than this was missed by the stream path. @default 120_000 */
  readonly stuckAfterMs: number;
  /** A PREPARED record older than this is resolved by check-back. @default 300_000 */
  readonly checkbackAfterMs: number;
  /** Republish / check-back attempts before quarantine. @default 5 */
  readonly maxAttempts: number;
  /** Base of the exponential backoff between attempts. @default 60_000 */
  readonly backoffBaseMs: number;
  /** Most entries handled per run (the rest wait for the next run). @default 500 */
  readonly maxEntriesPerRun: number;
  /** Tracked mode: wait this long for a subscriber's ack before redelivering to it. @default 300_000 */
  readonly ackTimeoutMs: number;
  /** Tracked mode: redeliveries to one subscriber before its ack is marked FAILED. @default 3 */
  readonly maxRedeliveries: number;
}

export const DEFAULT_SWEEPER_OPTIONS: SweeperOptions = {
  stuckAfterMs: 120_000,
  checkbackAfterMs: 300_000,
  maxAttempts: 5,
  backoffBaseMs: 60_000,
  maxEntriesPerRun: 500,
  ackTimeoutMs: 300_000,
  maxRedeliveries: 3,
};

export interface SweepResult {
  readonly republished: number;
  readonly released: number;
  readonly confirmed: number;
  readonly cancelled: number;
  readonly retried: number;
  readonly quarantined: number;
  /** Tracked mode: redeliveries made to subscribers whose ack was overdue. */
  readonly redelivered: number;
  /** Tracked mode: acks marked FAILED after the redelivery limit. */
  readonly acksFailed: number;
  /** How long the record that has been late the longest has been late (0 when none); see `lateSince`. */
  readonly oldestUnpublishedAgeMs: number;
  /**
   * Records that still need work and are due (READY, PREPARED, SCHEDULED with `pendingDueAt <= now`); records
   * scheduled for later are not read, so not counted.
   */
  readonly unpublishedCount: number;
  /** Read capacity the index queries consumed (a constant when nothing is due, whatever is scheduled later). */
  readonly indexReadUnits: number;
  /** False when the index could not be read: the age and count above are unknown (reported as 0). */
  readonly indexRead: boolean;
  /** Due entries in the reserved key space (reserved-keys.ts), never released or republished (#11.2). */
  readonly reservedKeyIgnored: number;
  /** Up to 10 of their keys, for the log. */
  readonly reservedKeys: readonly { readonly pk: string; readonly sk: string }[];
  /** Steps that failed; each failing entry had an attempt counted (or is retried next run). */
  readonly failures: readonly SweepFailure[];
}

const WORK_STATUSES: ReadonlySet<string> = new Set([
  OutboxStatus.Ready,
  OutboxStatus.Prepared,
  OutboxStatus.Scheduled,
]);

/**
 * Since when a record that still needs work is late (undefined: not late yet), for the oldest-age metric:
 * - READY: since it became due (`pendingDueAt`: its commit, its release from SCHEDULED, its confirm or an
 *   operator's retry); backoff leaves `pendingDueAt` alone, so a record being retried stays visible and late;
 * - SCHEDULED: since `pendingDueAt` (its `deliverAt`, or its predecessor's when it is held back) once passed;
 * - PREPARED: since the check-back threshold passed (before that, the producer may still confirm or cancel).
 */
export function lateSince(entry: PendingEntry, now: number, options: SweeperOptions): number | undefined {
  switch (entry.status) {
    case OutboxStatus.Ready:
      return Math.min(entry.pendingDueAt, now);
    case OutboxStatus.Scheduled:
      return entry.pendingDueAt <= now ? entry.pendingDueAt : undefined;
    case OutboxStatus.Prepared: {
      const due = entry.pendingDueAt + options.checkbackAfterMs;
      return due <= now ? due : undefined;
    }
    default:
      return undefined;
  }
}

const MAX_BACKOFF_MS = 3_600_000;
/** Reserved-key entries listed per run for the log (all are counted). */
const MAX_RESERVED_LISTED = 10;

/** Total backoff before attempt `attempts + 1`: base, 2 × base, 4 × base, ... each at most an hour. */
export function backoffBefore(attempts: number, options: SweeperOptions): number {
  let total = 0;
  for (let attempt = 1; attempt <= attempts; attempt++)
    total += Math.min(options.backoffBaseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return total;
}

/**
 * When the sweeper may act on an entry, from projected index attributes only (no item read): a SCHEDULED
 * record and an overdue ack at their due time; a READY record `stuckAfter` after it became due, a PREPARED
 * one `checkbackAfter` after it was prepared, each plus the backoff its counted attempts earned. The due time
 * itself never moves on a retry, so the Query's `pendingDueAt <= now` keeps returning a record being retried.
 */
export function actionableAt(entry: PendingEntry, options: SweeperOptions): number {
  if (entry.pk.startsWith(ACK_PARTITION_PREFIX)) return entry.pendingDueAt;
  switch (entry.status) {
    case OutboxStatus.Ready:
      return entry.pendingDueAt + options.stuckAfterMs + backoffBefore(entry.attempts, options);
    case OutboxStatus.Prepared:
      return entry.pendingDueAt + options.checkbackAfterMs + backoffBefore(entry.attempts, options);
    default:
      return entry.pendingDueAt;
  }
}

/** Oldest first; one aggregate's records in sequence order (a held-back successor after its predecessor). */
function compareDue(a: PendingEntry, b: PendingEntry): number {
  if (a.pendingDueAt !== b.pendingDueAt) return a.pendingDueAt - b.pendingDueAt;
  if (a.pk !== b.pk) return a.pk < b.pk ? -1 : 1;
  return (a.sequence ?? 0) - (b.sequence ?? 0);
}

/**
 * Queries every `P#` shard for entries due by `now` (`pendingDueAt <= now` in the key condition: records
 * scheduled for later and acks not yet overdue are never read, so a quiet run costs the same whatever the
 * future holds), and keeps the `maxEntriesPerRun` oldest actionable ones across all shards.
 */
async function dueEntries(
  deps: SweeperDependencies,
  now: number,
  options: SweeperOptions,
): Promise<{
  due: PendingEntry[];
  count: number;
  oldestLateSince: number | undefined;
  readUnits: number;
  reserved: { pk: string; sk: string }[];
  reservedCount: number;
}> {
  const limit = options.maxEntriesPerRun;
  const reserved: { pk: string; sk: string }[] = [];
  let reservedCount = 0;
  let readUnits = 0;
  let count = 0;
  let oldestLateSince: number | undefined;
  const candidates: PendingEntry[] = [];
  await Promise.all(
    allPendingShards().map(async (shard) => {
      let startKey: Record<string, unknown> | undefined;
      // A shard answers oldest first: past `limit` actionable entries, none of its later ones can make the cut.
      let kept = 0;
      do {
        const page = await deps.client.send(
          new QueryCommand({
            TableName: deps.tableName,
            IndexName: PENDING_INDEX_NAME,
            KeyConditionExpression: '#shard = :shard AND #due <= :now',
            ExpressionAttributeNames: { '#shard': PENDING_SHARD, '#due': PENDING_DUE_AT },
            ExpressionAttributeValues: { ':shard': shard, ':now': now },
            ReturnConsumedCapacity: 'TOTAL',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
        for (const item of page.Items ?? []) {
          const entry = item as PendingEntry;
          if (entry.pk.startsWith(ACK_PARTITION_PREFIX) && entry.status === AckStatus.Pending) {
            // An overdue ack item: the one kind of entry the reserved key space holds.
          } else if (isReservedPartitionKey(entry.pk)) {
            // Never released or republished from the reserved key space (#11.2): counted, listed, left alone.
            if (reserved.length < MAX_RESERVED_LISTED) reserved.push({ pk: entry.pk, sk: entry.sk });
            reservedCount++;
            continue;
          } else {
            // Defensive: only records that still need work (a QUARANTINED one lives in a `Q#` shard).
            if (!WORK_STATUSES.has(entry.status)) continue;
            count++;
            const late = lateSince(entry, now, options);
            if (late !== undefined && (oldestLateSince === undefined || late < oldestLateSince))
              oldestLateSince = late;
          }
          if (kept < limit && actionableAt(entry, options) <= now) {
            candidates.push(entry);
            kept++;
          }
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  candidates.sort(compareDue);
  return { due: candidates.slice(0, limit), count, oldestLateSince, readUnits, reserved, reservedCount };
}

/** A step of a run that failed; the run carried on with the other entries. */
export interface SweepFailure {
  readonly step:
    | 'index'
    | 'release'
    | 'republish'
    | 'check-back'
    | 'confirm'
    | 'cancel'
    | 'redeliver'
    | 'retry';
  readonly pk?: string;
  readonly sk?: string;
  readonly eventId?: string;
  readonly error: unknown;
}

/**
 * One run. Never throws: a failing entry (a confirm, cancel, release or redelivery that throws) counts as an
 * attempt of that entry (quarantined at the limit, which the Quarantined alarm reports) and is listed in
 * `failures`; the entries after it are still handled. When the index cannot be read at all, `indexRead` is false
 * and `failures` says why: the caller records the run's metrics and then fails the invocation.
 */
export async function sweep(
  deps: SweeperDependencies,
  options: SweeperOptions = DEFAULT_SWEEPER_OPTIONS,
): Promise<SweepResult> {
  const now = deps.now();
  const failures: SweepFailure[] = [];
  const result = {
    republished: 0,
    released: 0,
    confirmed: 0,
    cancelled: 0,
    retried: 0,
    quarantined: 0,
    redelivered: 0,
    acksFailed: 0,
  };
  let found: Awaited<ReturnType<typeof dueEntries>>;
  try {
    found = await dueEntries(deps, now, options);
  } catch (error) {
    failures.push({ step: 'index', error });
    return {
      ...result,
      oldestUnpublishedAgeMs: 0,
      unpublishedCount: 0,
      indexReadUnits: 0,
      indexRead: false,
      reservedKeyIgnored: 0,
      reservedKeys: [],
      failures,
    };
  }
  const { due, count, oldestLateSince, readUnits, reserved, reservedCount } = found;
  const failed = (step: SweepFailure['step'], entry: PendingEntry, error: unknown) =>
    failures.push({ step, pk: entry.pk, sk: entry.sk, eventId: entry.id, error });

  /** Counts a failed attempt of `entry`; a failure to count it is listed, never thrown. */
  const countAttempt = async (entry: PendingEntry, reason: string) => {
    try {
      if (await retryLater(deps, entry, now, options, reason)) result.quarantined++;
      else result.retried++;
    } catch (error) {
      failed('retry', entry, error);
    }
  };

  const overdueAcks = due.filter(
    (e) => e.pk.startsWith(ACK_PARTITION_PREFIX) && e.status === AckStatus.Pending,
  );
  if (overdueAcks.length > 0 && deps.redeliver) {
    let acks: Record<string, unknown>[] = [];
    try {
      acks = await readItems(deps, overdueAcks);
    } catch (error) {
      for (const entry of overdueAcks) failed('redeliver', entry, error);
    }
    for (const ack of acks) {
      try {
        const outcome = await redeliverAck(deps, ack, now, options);
        if (outcome === 'redelivered') result.redelivered++;
        else if (outcome === 'failed') result.acksFailed++;
      } catch (error) {
        failures.push({ step: 'redeliver', pk: String(ack.pk), sk: String(ack.sk), error });
      }
    }
  }

  // `due` holds only actionable entries: READY stuck since it became due (commit, release from SCHEDULED,
  // confirm, operator retry) and past its backoff, PREPARED past check-back and backoff, SCHEDULED due.
  const records = due.filter((e) => !e.pk.startsWith(ACK_PARTITION_PREFIX));
  const stuck = records.filter((e) => e.status === OutboxStatus.Ready);
  const scheduled = records.filter((e) => e.status === OutboxStatus.Scheduled);
  const prepared = records.filter((e) => e.status === OutboxStatus.Prepared);

  for (const entry of scheduled) {
    try {
      if (await release(deps, entry, now)) result.released++;
    } catch (error) {
      // Retried next run (the entry stays due); the index failing for good shows in the age metric.
      failed('release', entry, error);
    }
  }

  if (stuck.length > 0) {
    let outcome: Awaited<ReturnType<SweeperDependencies['republish']>> | undefined;
    let waiting = new Set<string>();
    let cause = 'republish failed';
    try {
      const read = await readItems(deps, stuck);
      const items = read.filter((item) => !backingOff(item, now));
      waiting = new Set(read.filter((item) => backingOff(item, now)).map((item) => String(item.id)));
      outcome = items.length > 0 ? await deps.republish(items) : { published: [], failed: new Map() };
    } catch (error) {
      cause = `republish failed: ${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;
      for (const entry of stuck) failed('republish', entry, error);
    }
    const published = new Set(outcome?.published ?? []);
    const held = new Set(outcome?.held ?? []);
    result.republished += published.size;
    for (const entry of stuck) {
      if (published.has(entry.id) || waiting.has(entry.id) || held.has(entry.id)) continue;
      await countAttempt(entry, outcome?.failed.get(entry.id) ?? cause);
    }
  }

  for (const entry of prepared) {
    let step: SweepFailure['step'] = 'check-back';
    try {
      const item = (await readItems(deps, [entry]))[0];
      if (item && backingOff(item, now)) continue;
      const source = String(item?.source ?? '');
      let answer: CheckbackAnswer;
      try {
        answer = await deps.checkback({ eventId: entry.id, aggregateKey: entry.pk, source });
      } catch {
        answer = 'unknown';
      }
      if (answer === 'committed') {
        step = 'confirm';
        await deps.confirm({ aggregateKey: entry.pk, id: entry.id });
        result.confirmed++;
      } else if (answer === 'rolled-back') {
        step = 'cancel';
        await deps.cancel({ aggregateKey: entry.pk, id: entry.id }, 'rolled back (check-back)');
        result.cancelled++;
      } else {
        await countAttempt(entry, 'check-back answered unknown');
      }
    } catch (error) {
      // One message's failure never blocks the others; it counts as an attempt and ends in quarantine.
      failed(step, entry, error);
      const e = error as Error;
      await countAttempt(
        entry,
        `${step} failed: ${e?.name ?? 'Error'}: ${e?.message ?? String(error)}`.slice(0, 900),
      );
    }
  }

  return {
    ...result,
    oldestUnpublishedAgeMs: oldestLateSince === undefined ? 0 : Math.max(0, now - oldestLateSince),
    unpublishedCount: count,
    indexReadUnits: readUnits,
    indexRead: true,
    reservedKeyIgnored: reservedCount,
    reservedKeys: reserved,
    failures,
  };
}

async function readItems(
  deps: SweeperDependencies,
  entries: readonly PendingEntry[],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < entries.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = entries
      .slice(i, i + 100)
      .map((e) => ({ pk: e.pk, sk: e.sk }));
    while (keys && keys.length > 0) {
      const page: BatchGetCommandOutput = await deps.client.send(
        new BatchGetCommand({ RequestItems: { [deps.tableName]: { Keys: keys, ConsistentRead: true } } }),
      );
      items.push(...(page.Responses?.[deps.tableName] ?? []));
      keys = page.UnprocessedKeys?.[deps.tableName]?.Keys;
    }
  }
  return items;
}

/** Redelivers an overdue tracked event to one subscriber, marks its ack FAILED, or waits for the event's publish. */
async function redeliverAck(
  deps: SweeperDependencies,
  ack: Record<string, unknown>,
  now: number,
  options: SweeperOptions,
): Promise<'redelivered' | 'failed' | 'waiting'> {
  const attempts = Number(ack.attempts ?? 0);
  const key = { pk: ack.pk, sk: ack.sk };
  if (attempts >= options.maxRedeliveries) {
    await failAck(deps, key, `not acknowledged after ${attempts} redeliveries`);
    return 'failed';
  }
  const event = (
    await readItems(deps, [{ pk: String(ack.eventPk), sk: String(ack.eventSk) } as PendingEntry])
  )[0];
  if (event && event.status !== OutboxStatus.Published) {
    // Acks are written before the event is sent (#10.6): until it is PUBLISHED there is nothing to redeliver.
    await postponeAck(deps, key, now + options.ackTimeoutMs);
    return 'waiting';
  }
  let envelope: string | undefined;
  try {
    envelope = event ? envelopeJson(event) : undefined;
  } catch (error) {
    // Inflating it would exhaust the function's memory; it can never be redelivered.
    await failAck(deps, key, (error as Error).message);
    return 'failed';
  }
  if (envelope && deps.redeliver) {
    await deps.redeliver(
      {
        queueUrl: String(ack.queueUrl),
        fifo: ack.fifo === true,
        subscriber: String(ack.sk),
        attempt: attempts + 1,
      },
      envelope,
    );
  }
  await deps.client
    .send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: key,
        UpdateExpression: `SET attempts = :attempts, ${PENDING_DUE_AT} = :next`,
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':attempts': attempts + 1,
          ':next': now + options.ackTimeoutMs,
          ':pending': AckStatus.Pending,
        },
      }),
    )
    .catch((error: Error) => {
      if (error.name !== 'ConditionalCheckFailedException') throw error;
    });
  return 'redelivered';
}

/** The stored envelope; a gzipped one through the relay's capped decoder (throws EnvelopeGzipError). */
function envelopeJson(item: Record<string, unknown>): string | undefined {
  if (typeof item.envelope === 'string') return item.envelope;
  if (item.envelopeGzip instanceof Uint8Array) return gunzipEnvelope(item.envelopeGzip);
  return undefined;
}

/** Updates an ack only while it is still PENDING; one the consumer acknowledged meanwhile is left alone. */
async function updatePendingAck(
  deps: SweeperDependencies,
  key: Record<string, unknown>,
  updateExpression: string,
  values: Record<string, unknown>,
): Promise<void> {
  await deps.client
    .send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: key,
        UpdateExpression: updateExpression,
        ConditionExpression: '#status = :pending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ...values, ':pending': AckStatus.Pending },
      }),
    )
    .catch((error: Error) => {
      if (error.name !== 'ConditionalCheckFailedException') throw error;
    });
}

/** Moves a pending ack's due time without counting a redelivery. */
function postponeAck(deps: SweeperDependencies, key: Record<string, unknown>, dueAt: number): Promise<void> {
  return updatePendingAck(deps, key, `SET ${PENDING_DUE_AT} = :due`, { ':due': dueAt });
}

/** PENDING → FAILED with the reason (the ack's end state: the AcksFailed alarm pages). */
function failAck(deps: SweeperDependencies, key: Record<string, unknown>, reason: string): Promise<void> {
  return updatePendingAck(
    deps,
    key,
    `SET #status = :failed, lastError = :reason REMOVE ${PENDING_SHARD}, ${PENDING_DUE_AT}`,
    { ':failed': AckStatus.Failed, ':reason': reason.slice(0, 1000) },
  );
}

/** SCHEDULED → READY: the MODIFY reaches the relay through the stream filter. */
async function release(deps: SweeperDependencies, entry: PendingEntry, now: number): Promise<boolean> {
  try {
    await deps.client.send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: { pk: entry.pk, sk: entry.sk },
        UpdateExpression: `SET #status = :ready, ${PENDING_DUE_AT} = :now`,
        ConditionExpression: '#status = :scheduled',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':ready': OutboxStatus.Ready,
          ':scheduled': OutboxStatus.Scheduled,
          ':now': now,
        },
      }),
    );
    return true;
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}

/**
 * Item attribute (not in the index) of the earliest time the next attempt may run: the index alone gives a lower
 * bound (`actionableAt`), which runs ahead of it when an attempt came late (a sweeper outage, the per-run cap).
 */
export const NEXT_ATTEMPT_AT = 'nextAttemptAt';

function backingOff(item: Record<string, unknown>, now: number): boolean {
  return typeof item[NEXT_ATTEMPT_AT] === 'number' && (item[NEXT_ATTEMPT_AT] as number) > now;
}

/**
 * Counts an attempt (the next one waits for `backoffBefore(attempts)`; the due time stays, so the record stays
 * visible to the Query and late in the age metric); past the limit the record is quarantined. True when quarantined.
 */
async function retryLater(
  deps: SweeperDependencies,
  entry: PendingEntry,
  now: number,
  options: SweeperOptions,
  reason: string,
): Promise<boolean> {
  const attempts = entry.attempts + 1;
  const quarantine = attempts >= options.maxAttempts;
  try {
    await deps.client.send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: { pk: entry.pk, sk: entry.sk },
        UpdateExpression: quarantine
          ? `SET attempts = :attempts, lastError = :reason, #status = :quarantined, ${PENDING_SHARD} = :qshard, ${PENDING_DUE_AT} = :now REMOVE ${NEXT_ATTEMPT_AT}`
          : `SET attempts = :attempts, lastError = :reason, ${NEXT_ATTEMPT_AT} = :next`,
        ConditionExpression: '#status = :status AND attempts = :previous',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':attempts': attempts,
          ':previous': entry.attempts,
          ':reason': `${reason} (attempt ${attempts} of ${options.maxAttempts})`,
          ':status': entry.status,
          ...(quarantine
            ? {
                ':quarantined': OutboxStatus.Quarantined,
                ':qshard': quarantineShardOf(entry.id),
                ':now': now,
              }
            : { ':next': now + backoffBefore(attempts, options) - backoffBefore(attempts - 1, options) }),
        },
      }),
    );
  } catch (error) {
    // Someone else (the relay, an operator) changed the record meanwhile: nothing to do this run.
    if ((error as Error).name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
  return quarantine;
}
