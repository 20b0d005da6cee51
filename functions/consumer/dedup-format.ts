/**
 * The dedup table's record format, shared by every consumer. Dependency-free so CDK code may import the
 * attribute names too.
 *
 * Two kinds of items live in one table (partition key `pk` only):
 * - `E#<consumer>#<eventId>`: one per applied event (transactional and lease modes);
 * - `S#<consumer>#<partitionkey>`: one cursor per aggregate (ordered mode), holding the last applied sequence.
 */

/** Partition key (string). */
export const DEDUP_PARTITION_KEY = 'pk';
/** TTL attribute (epoch seconds). Storage reclaim only: every condition compares it explicitly. */
export const DEDUP_EXPIRES_AT = 'expiresAt';

export const DEDUP_EVENT_PREFIX = 'E#';
export const DEDUP_CURSOR_PREFIX = 'S#';

export const DedupStatus = {
  /** A lease holder is applying the event. */
  InProgress: 'IN_PROGRESS',
  /** The event's effect is applied. */
  Completed: 'COMPLETED',
} as const;
export type DedupStatus = (typeof DedupStatus)[keyof typeof DedupStatus];

/** Environment variable the consumer reads the dedup table name from. */
export const DEDUP_TABLE_ENV = 'DEDUP_TABLE_NAME';
/** Environment variable holding the consumer (subscription) name. */
export const CONSUMER_NAME_ENV = 'OUTBOX_CONSUMER_NAME';
/** Environment variable holding the URL of the subscription's DLQ, used for poison messages. */
export const DEAD_LETTER_QUEUE_URL_ENV = 'OUTBOX_DEAD_LETTER_QUEUE_URL';

/**
 * Tracked mode: the outbox table where this consumer acknowledges events (`ACK#<event id>` items, see
 * functions/runtime/acks.ts). Set by the CDK Subscription when it is `tracked`.
 */
export const ACK_TABLE_ENV = 'OUTBOX_ACK_TABLE_NAME';
/** Tracked mode: comma-separated event types to acknowledge (unset: every event). */
export const ACK_EVENT_TYPES_ENV = 'OUTBOX_ACK_EVENT_TYPES';
/**
 * The consumer mode the Subscription was declared with (`consumer.mode`; a `single-item` consumer gets no dedup
 * table): the consumer refuses to start with another mode, whose wiring the Subscription did not make.
 */
export const CONSUMER_MODE_ENV = 'OUTBOX_CONSUMER_MODE';

/** Consumer names: letters, digits, `-`, `_`, `.`; no `#`, so keys cannot collide. */
export const CONSUMER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The default when neither the option nor OUTBOX_DEDUP_TTL_SECONDS says: 14 days, SQS's longest retention. A
 * Subscription sets the variable to what its queues can hold (queue retention + DLQ retention, at least).
 */
export const DEFAULT_DEDUP_TTL_SECONDS = 14 * 24 * 60 * 60;
/** Environment variable with the dedup retention in seconds (set by the CDK Subscription). */
export const DEDUP_TTL_ENV = 'OUTBOX_DEDUP_TTL_SECONDS';

export function eventDedupKey(consumer: string, eventId: string): string {
  return `${DEDUP_EVENT_PREFIX}${consumer}#${eventId}`;
}

export function cursorKey(consumer: string, partitionKey: string): string {
  return `${DEDUP_CURSOR_PREFIX}${consumer}#${partitionKey}`;
}
