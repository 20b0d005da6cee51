import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import {
  EXPIRES_AT,
  OutboxStatus,
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_SHARD,
  pendingShardOf,
  quarantineShardOf,
  RecordAttribute,
  SORT_KEY,
} from '../runtime/record-format.ts';
import type { RecordKey } from './decode.ts';

/**
 * What the relay writes back to the outbox after publishing.
 *
 * Mark, not delete: a PUBLISHED record keeps the audit trail (who published what, when) for the retention period
 * and TTL removes it for free. Both options cost the same: UpdateItem is billed on the larger of the item before
 * and after (⌈size / 1 KB⌉ write units, about the same size here), DeleteItem on the item's size, and either one
 * removes the item from the `pending-by-due-time` index (one more write unit for the small index entry). So a
 * published event costs ⌈item KB⌉ + 1 write units: 2 for an item under 1 KB, 3 for a 1-2 KB item.
 *
 * Neither write re-triggers the relay: the stream filter only passes records whose new status is READY.
 */
export interface BookkeeperOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Days a published record is kept before TTL deletes it. */
  readonly retentionDays: number;
}

export type MarkResult =
  /** This call changed the record. */
  | 'updated'
  /** The record was no longer READY (already published or quarantined by an earlier delivery): nothing to do. */
  | 'unchanged';

const MAX_ERROR_CHARS = 1000;

function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

export interface Bookkeeper {
  /** READY → PUBLISHED, set publishedAt and expiresAt, leave the pending index. Throws on DynamoDB errors. */
  markPublished(key: RecordKey, publishedAt: number): Promise<MarkResult>;
  /**
   * READY → QUARANTINED with the reason; no expiry. It moves to the index's `Q#` shards: operators list it with
   * Queries, and the sweeper (which reads only `P#` shards) neither counts nor retries it.
   */
  quarantine(key: RecordKey, reason: string, eventId?: string): Promise<MarkResult>;
  /**
   * READY → SCHEDULED, due at `dueAt` with `heldBehind` = the SCHEDULED predecessor's sequence: the record waits
   * for that earlier delayed event, and the sweeper releases both when it is due, the earlier one first (#10.1).
   */
  hold(key: RecordKey & { readonly id: string }, dueAt: number, behindSequence: number): Promise<MarkResult>;
}

/** Item attribute of a record held back: the sequence of the SCHEDULED event it waits for. */
export const HELD_BEHIND = 'heldBehind';

/**
 * Conditional UpdateItems on the low-level client (no marshalling layer: smaller bundle, less CPU). The
 * condition `status = READY` makes a redelivered record a no-op; DynamoDB still bills a failed condition
 * (⌈item KB⌉ write units), which is why the relay remembers what it finished and skips redeliveries it saw.
 */
export function createBookkeeper(options: BookkeeperOptions): Bookkeeper {
  const retentionSeconds = options.retentionDays * 86_400;
  const key = (k: RecordKey) => ({ [PARTITION_KEY]: { S: k.pk }, [SORT_KEY]: { S: k.sk } });
  const names = { '#status': RecordAttribute.status };

  return {
    async markPublished(k, publishedAt) {
      try {
        await options.client.send(
          new UpdateItemCommand({
            TableName: options.tableName,
            Key: key(k),
            UpdateExpression: `SET #status = :published, ${RecordAttribute.publishedAt} = :at, ${EXPIRES_AT} = :expires REMOVE ${PENDING_SHARD}, ${PENDING_DUE_AT}`,
            ConditionExpression: '#status = :ready',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: {
              ':published': { S: OutboxStatus.Published },
              ':ready': { S: OutboxStatus.Ready },
              ':at': { N: String(publishedAt) },
              ':expires': { N: String(Math.floor(publishedAt / 1000) + retentionSeconds) },
            },
          }),
        );
        return 'updated';
      } catch (error) {
        if (isConditionFailure(error)) return 'unchanged';
        throw error;
      }
    },

    async hold(k, dueAt, behindSequence) {
      try {
        await options.client.send(
          new UpdateItemCommand({
            TableName: options.tableName,
            Key: key(k),
            // The shard too: a foreign writer may have left it out, and the sweeper finds the record by it.
            UpdateExpression: `SET #status = :scheduled, ${PENDING_DUE_AT} = :due, ${PENDING_SHARD} = :shard, ${HELD_BEHIND} = :behind`,
            ConditionExpression: '#status = :ready',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: {
              ':scheduled': { S: OutboxStatus.Scheduled },
              ':ready': { S: OutboxStatus.Ready },
              ':due': { N: String(dueAt) },
              ':shard': { S: pendingShardOf(k.id) },
              ':behind': { N: String(behindSequence) },
            },
          }),
        );
        return 'updated';
      } catch (error) {
        if (isConditionFailure(error)) return 'unchanged';
        throw error;
      }
    },

    async quarantine(k, reason, eventId) {
      try {
        await options.client.send(
          new UpdateItemCommand({
            TableName: options.tableName,
            Key: key(k),
            UpdateExpression: `SET #status = :quarantined, ${RecordAttribute.lastError} = :reason, ${PENDING_SHARD} = :shard REMOVE ${EXPIRES_AT}`,
            ConditionExpression: '#status = :ready',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: {
              ':quarantined': { S: OutboxStatus.Quarantined },
              ':ready': { S: OutboxStatus.Ready },
              ':reason': { S: reason.slice(0, MAX_ERROR_CHARS) },
              // Same shard rule as everywhere (last hex digit of the id), so `quarantine retry <id>` finds it;
              // a record whose id is unreadable is spread by its sort key's last digit instead.
              ':shard': { S: quarantineShardOf(eventId ?? k.sk) },
            },
          }),
        );
        return 'updated';
      } catch (error) {
        if (isConditionFailure(error)) return 'unchanged';
        throw error;
      }
    },
  };
}

/** DynamoDB's size of an item: attribute names plus values (strings/binary by bytes, numbers ≈ digits / 2 + 1). */
export function itemSizeBytes(
  item: Readonly<Record<string, string | number | Uint8Array | undefined>>,
): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name);
    if (typeof value === 'string') size += Buffer.byteLength(value);
    else if (typeof value === 'number')
      size += Math.ceil(String(Math.abs(value)).replace('.', '').length / 2) + 1;
    else size += value.byteLength;
  }
  return size;
}

/** Index entry overhead DynamoDB adds to each GSI item (keys of table and index + projection + 100 bytes). */
export const INDEX_ENTRY_OVERHEAD_BYTES = 100;

/**
 * Write units one markPublished costs: the table write (larger of before/after, per started KB) plus the
 * deletion of the record's pending-index entry (per started KB of that entry).
 */
export function markPublishedWriteUnits(
  beforeBytes: number,
  afterBytes: number,
  indexEntryBytes: number,
): number {
  return Math.ceil(Math.max(beforeBytes, afterBytes) / 1024) + Math.ceil(indexEntryBytes / 1024);
}
