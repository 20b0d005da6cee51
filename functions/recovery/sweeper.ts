/**
 * The recovery sweeper's core: finds outbox records that still need work through the sparse
 * `pending-by-due-time` index (16 `P#` shards, never a Scan) and resolves each by its status:
 * - READY past the stuck threshold → republished through the relay's publishing code;
 * - SCHEDULED whose `deliverAt` has come → made READY (the stream then publishes it);
 * - PREPARED past the check-back threshold → the producer's check-back function decides.
 * Attempts are bounded; a record that exhausts them is quarantined (`Q#` shard) with its reason.
 */

import { gunzipSync } from 'node:zlib';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ACK_PARTITION_PREFIX, AckStatus } from '../runtime/acks.ts';
import { isUuidV7, uuidv7Time } from '../runtime/ids.ts';
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
  /** Missing on records of writers that leave it out (the record format does not require it). */
  readonly createdAt?: number;
}

/**
 * When a record was committed: `createdAt`, else the time in its UUIDv7 id, else its due time (a writer in
 * another language may leave `createdAt` out; `now - undefined` would make the record never stuck).
 */
export function committedAt(entry: Pick<PendingEntry, 'id' | 'createdAt' | 'pendingDueAt'>): number {
  if (typeof entry.createdAt === 'number' && Number.isFinite(entry.createdAt)) return entry.createdAt;
  if (typeof entry.id === 'string' && isUuidV7(entry.id.toLowerCase())) return uuidv7Time(entry.id);
  return entry.pendingDueAt;
}

export type CheckbackAnswer = 'committed' | 'rolled-back' | 'unknown';

export interface SweeperDependencies {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly now: () => number;
  /** Republishes full outbox items (as read from the table); returns the ids that reached every target. */
  readonly republish: (
    items: readonly Record<string, unknown>[],
  ) => Promise<{ published: readonly string[]; failed: ReadonlyMap<string, string> }>;
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
  /** Records that still need work (READY, PREPARED, SCHEDULED), due or not. */
  readonly unpublishedCount: number;
  /** Read capacity the index queries consumed (a constant when nothing is stuck). */
  readonly indexReadUnits: number;
}

const WORK_STATUSES: ReadonlySet<string> = new Set([
  OutboxStatus.Ready,
  OutboxStatus.Prepared,
  OutboxStatus.Scheduled,
]);

/**
 * Since when a record that still needs work is late (undefined: not late yet), for the oldest-age metric:
 * - READY: since it became due (`pendingDueAt`: its commit, its release from SCHEDULED, its confirm or an
 *   operator's retry); once the sweeper has counted attempts (backoff moves `pendingDueAt` ahead), since commit;
 * - SCHEDULED: since `deliverAt` once it has passed (a future delivery is not late);
 * - PREPARED: since the check-back threshold passed (before that, the producer may still confirm or cancel).
 */
export function lateSince(entry: PendingEntry, now: number, options: SweeperOptions): number | undefined {
  switch (entry.status) {
    case OutboxStatus.Ready:
      return entry.attempts > 0 ? committedAt(entry) : Math.min(entry.pendingDueAt, now);
    case OutboxStatus.Scheduled:
      return entry.pendingDueAt <= now ? entry.pendingDueAt : undefined;
    case OutboxStatus.Prepared: {
      const due = committedAt(entry) + options.checkbackAfterMs;
      return due <= now ? due : undefined;
    }
    default:
      return undefined;
  }
}

/** Queries every `P#` shard for entries due before `cutoff`, oldest first. */
async function dueEntries(
  deps: SweeperDependencies,
  cutoff: number,
  options: SweeperOptions,
): Promise<{ due: PendingEntry[]; count: number; oldestLateSince: number | undefined; readUnits: number }> {
  const limit = options.maxEntriesPerRun;
  let readUnits = 0;
  let count = 0;
  let oldestLateSince: number | undefined;
  const due: PendingEntry[] = [];
  await Promise.all(
    allPendingShards().map(async (shard) => {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await deps.client.send(
          new QueryCommand({
            TableName: deps.tableName,
            IndexName: PENDING_INDEX_NAME,
            KeyConditionExpression: `${PENDING_SHARD} = :shard`,
            ExpressionAttributeValues: { ':shard': shard },
            ReturnConsumedCapacity: 'TOTAL',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
        for (const item of page.Items ?? []) {
          const entry = item as PendingEntry;
          if (entry.pk.startsWith(ACK_PARTITION_PREFIX)) {
            if (entry.pendingDueAt <= cutoff && due.length < limit) due.push(entry);
            continue;
          }
          // Defensive: only records that still need work (a QUARANTINED one lives in a `Q#` shard).
          if (!WORK_STATUSES.has(entry.status)) continue;
          count++;
          const late = lateSince(entry, cutoff, options);
          if (late !== undefined && (oldestLateSince === undefined || late < oldestLateSince))
            oldestLateSince = late;
          if (entry.pendingDueAt <= cutoff && due.length < limit) due.push(entry);
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  due.sort((a, b) => a.pendingDueAt - b.pendingDueAt);
  return { due, count, oldestLateSince, readUnits };
}

export async function sweep(
  deps: SweeperDependencies,
  options: SweeperOptions = DEFAULT_SWEEPER_OPTIONS,
): Promise<SweepResult> {
  const now = deps.now();
  const { due, count, oldestLateSince, readUnits } = await dueEntries(deps, now, options);
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

  const overdueAcks = due.filter(
    (e) => e.pk.startsWith(ACK_PARTITION_PREFIX) && e.status === AckStatus.Pending,
  );
  if (overdueAcks.length > 0 && deps.redeliver) {
    for (const ack of await readItems(deps, overdueAcks)) {
      if (await redeliverAck(deps, ack, now, options)) result.redelivered++;
      else result.acksFailed++;
    }
  }

  // Stuck: READY for the threshold since it became due (commit, release from SCHEDULED, confirm, operator retry);
  // a record in backoff (attempts > 0) is due again once its pendingDueAt has come.
  const stuck = due.filter(
    (e) =>
      e.status === OutboxStatus.Ready && (e.attempts > 0 || now - e.pendingDueAt >= options.stuckAfterMs),
  );
  const scheduled = due.filter((e) => e.status === OutboxStatus.Scheduled);
  const prepared = due.filter(
    (e) => e.status === OutboxStatus.Prepared && now - committedAt(e) >= options.checkbackAfterMs,
  );

  for (const entry of scheduled) {
    if (await release(deps, entry, now)) result.released++;
  }

  if (stuck.length > 0) {
    const items = await readItems(deps, stuck);
    const outcome = await deps.republish(items);
    const published = new Set(outcome.published);
    result.republished += published.size;
    for (const entry of stuck) {
      if (published.has(entry.id)) continue;
      const reason = outcome.failed.get(entry.id) ?? 'republish failed';
      if (await retryLater(deps, entry, now, options, reason)) result.quarantined++;
      else result.retried++;
    }
  }

  for (const entry of prepared) {
    const item = (await readItems(deps, [entry]))[0];
    const source = String(item?.source ?? '');
    let answer: CheckbackAnswer;
    try {
      answer = await deps.checkback({ eventId: entry.id, aggregateKey: entry.pk, source });
    } catch (error) {
      answer = 'unknown';
      void error;
    }
    if (answer === 'committed') {
      await deps.confirm({ aggregateKey: entry.pk, id: entry.id });
      result.confirmed++;
    } else if (answer === 'rolled-back') {
      await deps.cancel({ aggregateKey: entry.pk, id: entry.id }, 'rolled back (check-back)');
      result.cancelled++;
    } else if (await retryLater(deps, entry, now, options, 'check-back answered unknown')) {
      result.quarantined++;
    } else {
      result.retried++;
    }
  }

  return {
    ...result,
    oldestUnpublishedAgeMs: oldestLateSince === undefined ? 0 : Math.max(0, now - oldestLateSince),
    unpublishedCount: count,
    indexReadUnits: readUnits,
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

/** Redelivers an overdue tracked event to one subscriber; returns false when the ack is marked FAILED instead. */
async function redeliverAck(
  deps: SweeperDependencies,
  ack: Record<string, unknown>,
  now: number,
  options: SweeperOptions,
): Promise<boolean> {
  const attempts = Number(ack.attempts ?? 0);
  const key = { pk: ack.pk, sk: ack.sk };
  if (attempts >= options.maxRedeliveries) {
    await deps.client
      .send(
        new UpdateCommand({
          TableName: deps.tableName,
          Key: key,
          UpdateExpression: `SET #status = :failed REMOVE ${PENDING_SHARD}, ${PENDING_DUE_AT}`,
          ConditionExpression: '#status = :pending',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':failed': AckStatus.Failed, ':pending': AckStatus.Pending },
        }),
      )
      .catch((error: Error) => {
        if (error.name !== 'ConditionalCheckFailedException') throw error;
      });
    return false;
  }
  const event = (
    await readItems(deps, [{ pk: String(ack.eventPk), sk: String(ack.eventSk) } as PendingEntry])
  )[0];
  const envelope = event ? await envelopeJson(event) : undefined;
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
  return true;
}

async function envelopeJson(item: Record<string, unknown>): Promise<string | undefined> {
  if (typeof item.envelope === 'string') return item.envelope;
  if (item.envelopeGzip instanceof Uint8Array) return gunzipSync(item.envelopeGzip).toString('utf8');
  return undefined;
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

/** Counts an attempt and backs off; past the limit the record is quarantined. Returns true when quarantined. */
async function retryLater(
  deps: SweeperDependencies,
  entry: PendingEntry,
  now: number,
  options: SweeperOptions,
  reason: string,
): Promise<boolean> {
  const attempts = entry.attempts + 1;
  const quarantine = attempts >= options.maxAttempts;
  const backoff = Math.min(options.backoffBaseMs * 2 ** (attempts - 1), 3_600_000);
  try {
    await deps.client.send(
      new UpdateCommand({
        TableName: deps.tableName,
        Key: { pk: entry.pk, sk: entry.sk },
        UpdateExpression: quarantine
          ? `SET attempts = :attempts, lastError = :reason, #status = :quarantined, ${PENDING_SHARD} = :qshard, ${PENDING_DUE_AT} = :now`
          : `SET attempts = :attempts, lastError = :reason, ${PENDING_DUE_AT} = :next`,
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
            : { ':next': now + backoff }),
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
