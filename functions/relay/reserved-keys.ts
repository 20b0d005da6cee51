/**
 * The reserved key space of the outbox table (record-format.ts): partition keys that are never an aggregate's, so
 * the relay and the sweeper never publish from them (#11.2). An item there that looks like a READY event (a
 * foreign writer's mistake, or a forged item) is ignored, counted and logged, never published.
 *
 * The writer refuses such aggregate keys with its own check (`isReservedPartitionKey` in
 * functions/runtime/record-format.ts, added separately); this one is the relay's until the two are unified.
 */
import { ACK_PARTITION_PREFIX } from '../recovery/contract.ts';
import {
  HEAD_SORT_KEY,
  PENDING_SHARD_PREFIX,
  PREPARED_SORT_KEY_PREFIX,
  QUARANTINE_SHARD_PREFIX,
} from '../runtime/record-format.ts';

/** Prefixes of partition keys that belong to the outbox itself: ack items, and the shapes of its other keys. */
export const RESERVED_PARTITION_KEY_PREFIXES: readonly string[] = [
  ACK_PARTITION_PREFIX,
  PREPARED_SORT_KEY_PREFIX,
  PENDING_SHARD_PREFIX,
  QUARANTINE_SHARD_PREFIX,
];

/** True when `pk` is in the outbox's reserved key space (`ACK#…`, `PRE#…`, `P#…`, `Q#…`, or `HEAD`). */
export function isReservedPartitionKey(pk: string): boolean {
  return pk === HEAD_SORT_KEY || RESERVED_PARTITION_KEY_PREFIXES.some((prefix) => pk.startsWith(prefix));
}

/** The `ignore` reason of a record in the reserved key space; the relay and the sweeper count it by this. */
export const RESERVED_KEY_REASON =
  'the partition key is in the outbox reserved key space (ACK#, PRE#, P#, Q#, HEAD)';
