/**
 * The relay's and the sweeper's view of the reserved key space (#11.2): partition keys that are never an
 * aggregate's, so nothing is published from them. An item there that looks like a READY event (a foreign writer's
 * mistake, or a forged item) is ignored, counted and logged. One definition with the writer's refusal:
 * `isReservedPartitionKey` in functions/runtime/record-format.ts.
 */
export { isReservedPartitionKey, RESERVED_PARTITION_KEY_PREFIXES } from '../runtime/record-format.ts';

/** The `ignore` reason of a record in the reserved key space; the relay and the sweeper count it by this. */
export const RESERVED_KEY_REASON =
  'the partition key is in the outbox reserved key space (HEAD, ACK#, EVT#, PRE#, P#, Q#, REQ#, HEAD#)';
