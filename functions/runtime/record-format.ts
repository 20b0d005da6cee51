/**
 * The outbox record format: the public, language-agnostic contract between writers (any language,
 * plain PutItem / TransactWriteItems) and the relay, sweeper and operator tools.
 * Dependency-free so CDK code may import the attribute names too.
 */

/** Partition key: the aggregate key (the envelope's `partitionkey`), so one aggregate = one stream shard. */
/** Environment variable the writer reads the outbox table name from (set by `Outbox.producerEnvironment`). */
export const OUTBOX_TABLE_ENV = 'OUTBOX_TABLE_NAME';

export const PARTITION_KEY = 'pk';
/** Sort key: `EVT#` + the sequence zero-padded to 12 digits, or `HEAD` for the aggregate's head item. */
export const SORT_KEY = 'sk';
export const EVENT_SORT_KEY_PREFIX = 'EVT#';
export const HEAD_SORT_KEY = 'HEAD';
/** Sort key of a prepared (two-phase) message: `PRE#<event id>`. Its sequence is assigned at confirm time. */
export const PREPARED_SORT_KEY_PREFIX = 'PRE#';
export const SEQUENCE_DIGITS = 12;
/**
 * Sort key of a request record, `REQ#<requestId>`: written in the same transaction as the events when the caller
 * passes a requestId, so a retry of the call finds it and returns the first commit instead of writing again.
 */
export const REQUEST_SORT_KEY_PREFIX = 'REQ#';
/** The largest sequence the sort key holds; prepare() sizes a message as if it got this one. */
export const MAX_SEQUENCE = 10 ** SEQUENCE_DIGITS - 1;

/** Sparse GSI of records that still need work (ready, prepared, scheduled); removed when done. */
export const PENDING_INDEX_NAME = 'pending-by-due-time';
/** GSI partition key: `P#` + the last hex digit of the event id: 16 shards, no hot partition. */
export const PENDING_SHARD = 'pendingShard';
/** GSI sort key: epoch milliseconds when the record becomes due (creation, deliverAt, or next retry). */
export const PENDING_DUE_AT = 'pendingDueAt';
export const PENDING_SHARD_PREFIX = 'P#';
export const PENDING_SHARD_COUNT = 16;
/**
 * Quarantined records stay in the same sparse index under `Q#<digit>` shards, so operators list them with
 * 16 Queries (no Scan) and the sweeper, which queries only `P#` shards, never sees them.
 */
export const QUARANTINE_SHARD_PREFIX = 'Q#';

/**
 * Partition key prefix of delivery acknowledgement items (`ACK#<event id>`, see acks.ts). IAM policies scope the
 * consumers' and the relay's ack writes to it with `dynamodb:LeadingKeys`.
 */
export const ACK_PARTITION_PREFIX = 'ACK#';

/**
 * Partition key prefixes an aggregate key must not start with: the table's own item kinds (`ACK#`) and every
 * prefix of its sort keys and index shards, so no aggregate key can be mistaken for, or collide with, a key the
 * outbox uses itself. Case-sensitive, as DynamoDB keys and IAM `dynamodb:LeadingKeys` conditions are.
 */
export const RESERVED_PARTITION_KEY_PREFIXES = [
  ACK_PARTITION_PREFIX,
  EVENT_SORT_KEY_PREFIX,
  PREPARED_SORT_KEY_PREFIX,
  PENDING_SHARD_PREFIX,
  QUARANTINE_SHARD_PREFIX,
  REQUEST_SORT_KEY_PREFIX,
  `${HEAD_SORT_KEY}#`,
] as const;

/**
 * True when `pk` lies in the outbox's reserved key space: it is `HEAD` or starts with one of
 * RESERVED_PARTITION_KEY_PREFIXES. Writers refuse such aggregate keys; the relay, the sweeper and IAM conditions
 * use the same definition.
 */
export function isReservedPartitionKey(pk: string): boolean {
  return pk === HEAD_SORT_KEY || RESERVED_PARTITION_KEY_PREFIXES.some((prefix) => pk.startsWith(prefix));
}

/** TTL attribute (epoch seconds). Set when a record is finished (published, cancelled), never before. */
export const EXPIRES_AT = 'expiresAt';

export const OutboxStatus = {
  /** Committed and waiting for the relay. The stream filter forwards records that are or become READY. */
  Ready: 'READY',
  /** Stored by prepare(); never published until confirm(). */
  Prepared: 'PREPARED',
  /** Written with deliverAt in the future; the sweeper makes it READY when due. */
  Scheduled: 'SCHEDULED',
  /** A prepared message whose event was confirmed: it now lives as a READY `EVT#` record. Expires by TTL. */
  Confirmed: 'CONFIRMED',
  /** Delivered to every target. Expires by TTL. */
  Published: 'PUBLISHED',
  /** Rolled back by cancel() or check-back. Never published. Expires by TTL. */
  Cancelled: 'CANCELLED',
  /** Unpublishable or retries exhausted; stays until an operator retries it. */
  Quarantined: 'QUARANTINED',
} as const;
export type OutboxStatus = (typeof OutboxStatus)[keyof typeof OutboxStatus];

/** Attribute names of an outbox event record. */
export const RecordAttribute = {
  id: 'id',
  type: 'type',
  source: 'source',
  sequence: 'sequence',
  status: 'status',
  /** The CloudEvents JSON envelope as a string; exactly the bytes that are published. */
  envelope: 'envelope',
  /** Alternative to `envelope` for large events: gzip of the UTF-8 JSON (binary). */
  envelopeGzip: 'envelopeGzip',
  createdAt: 'createdAt',
  deliverAt: 'deliverAt',
  attempts: 'attempts',
  publishedAt: 'publishedAt',
  lastError: 'lastError',
  lastSequence: 'lastSequence',
  /** On a `PRE#` item: the event input (JSON) to publish on confirm. */
  preparedEvent: 'preparedEvent',
  /** Instead of `preparedEvent` when it is over 300 KB: gzip of its UTF-8 JSON (binary). */
  preparedEventGzip: 'preparedEventGzip',
  /** On a `PRE#` item: how many times the sweeper asked the producer's check-back function. */
  checkbackAttempts: 'checkbackAttempts',
  confirmedSequence: 'confirmedSequence',
} as const;

export const DEFAULT_RETENTION_DAYS = 7;

export function eventSortKey(sequence: number): string {
  return EVENT_SORT_KEY_PREFIX + String(sequence).padStart(SEQUENCE_DIGITS, '0');
}

export function requestSortKey(requestId: string): string {
  return REQUEST_SORT_KEY_PREFIX + requestId;
}

export function preparedSortKey(eventId: string): string {
  return PREPARED_SORT_KEY_PREFIX + eventId;
}

export function pendingShardOf(eventId: string): string {
  return PENDING_SHARD_PREFIX + eventId.charAt(eventId.length - 1).toLowerCase();
}

/** Every shard value, for the sweeper's fan-out query. */
export function allPendingShards(): string[] {
  return Array.from({ length: PENDING_SHARD_COUNT }, (_, i) => PENDING_SHARD_PREFIX + i.toString(16));
}

export function quarantineShardOf(eventId: string): string {
  return QUARANTINE_SHARD_PREFIX + eventId.charAt(eventId.length - 1).toLowerCase();
}

/** Every quarantine shard value, for listing quarantined records. */
export function allQuarantineShards(): string[] {
  return Array.from({ length: PENDING_SHARD_COUNT }, (_, i) => QUARANTINE_SHARD_PREFIX + i.toString(16));
}
