import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSRecord } from 'aws-lambda';
import type { OutboxEnvelope } from '../runtime/envelope.ts';
import type { BusinessWrite } from '../runtime/writer.ts';

export type { BusinessWrite };

/** What the handler of one event receives besides the event. */
export interface EventContext {
  /** The consumer name. */
  readonly consumer: string;
  /**
   * The event id. Pass it on as the idempotency key of any downstream call (payment API, e-mail
   * provider...), so a repeated call is recognised there too.
   */
  readonly idempotencyKey: string;
  /** The SQS record the event arrived in, when it came from SQS. */
  readonly record?: SQSRecord;
  /** The Lambda context, when running in Lambda. */
  readonly lambdaContext?: Context;
  /**
   * The producer's W3C trace context: the envelope's `traceparent`, else the SQS record's `AWSTraceHeader`
   * system attribute (converted), else its `traceparent` message attribute. Use it to link or continue the
   * producer's trace (docs/tracing.md). Absent when the event carries none.
   */
  readonly traceparent?: string;
  /** The producer's trace id (the 32 hex digits of `traceparent`); also on every log line for this event. */
  readonly traceId?: string;
}

/** Lease mode: the handler also learns its lease. */
export interface LeaseEventContext extends EventContext {
  /** This worker's owner token on the dedup record. */
  readonly leaseOwner: string;
  /**
   * Epoch milliseconds when the lease expires unless renewed; after it another worker may take the event over.
   * A heartbeat renews it every leaseMs / 3 while the handler runs, so this moves forward.
   */
  readonly leaseExpiresAt: number;
  /**
   * Aborted (reason: a LeaseLostError) when this worker loses its lease: a renewal finds another owner, or the
   * lease runs out because renewals kept failing. Pass it to calls that accept one and stop work you can stop:
   * after an abort another worker may apply the event, and this one will not be marked complete.
   */
  readonly signal: AbortSignal;
}

/**
 * Transactional and ordered modes: returns the event's DynamoDB writes (DocumentClient TransactWriteItems
 * entries) instead of performing them; the consumer commits them with its dedup record or cursor in one
 * transaction. Must have no side effects of its own: it also runs for duplicates whose commit is refused.
 */
export type TransactionalHandler<TData = unknown> = (
  event: OutboxEnvelope<TData>,
  context: EventContext,
) => Promise<readonly BusinessWrite[]> | readonly BusinessWrite[];

/**
 * Single-item mode: the event's whole effect as one DocumentClient `Put` or `Update` (TransactWriteItems entry
 * shape). The consumer adds the aggregate's cursor to that item and the condition on it, and sends it as one
 * write. To move the cursor without changing anything else, return `{ Update: { TableName, Key } }`.
 */
export interface SingleItemWrite {
  readonly Put?: BusinessWrite['Put'];
  readonly Update?: Omit<NonNullable<BusinessWrite['Update']>, 'UpdateExpression'> & {
    readonly UpdateExpression?: string;
  };
}

/** Single-item mode: returns the event's one write instead of performing it. No side effects of its own. */
export type SingleItemHandler<TData = unknown> = (
  event: OutboxEnvelope<TData>,
  context: EventContext,
) => Promise<SingleItemWrite> | SingleItemWrite;

/** Lease mode: performs the side effect (e.g. calls an external API with `context.idempotencyKey`). */
export type LeaseHandler<TData = unknown> = (
  event: OutboxEnvelope<TData>,
  context: LeaseEventContext,
) => Promise<void> | void;

/** Names of the metrics the consumer emits (CloudWatch EMF, unit Count). */
export const ConsumerMetric = {
  /** The event's effect was applied (committed, or the side effect ran and its completion was recorded). */
  Processed: 'EventsProcessed',
  /** A repeated delivery of an already applied event was recognised and skipped. */
  DuplicatesSuppressed: 'DuplicatesSuppressed',
  /** Ordered mode: an event older than the aggregate's last applied sequence was skipped. */
  StaleSkipped: 'StaleEventsSkipped',
  /** Ordered mode: a sequence gap was seen (retried, or accepted with `onGap: 'accept'`). */
  SequenceGaps: 'SequenceGaps',
  /** A message whose body is not an outbox envelope was dead-lettered. */
  Poison: 'PoisonMessages',
  /** Lease mode: a completion was rejected because the lease was lost. */
  LeasesLost: 'LeasesLost',
  /** A message failed and will be retried (or dead-lettered by the queue's redrive policy). */
  Failed: 'EventsFailed',
} as const;
export type ConsumerMetric = (typeof ConsumerMetric)[keyof typeof ConsumerMetric];

/** Where counts go. The default writes CloudWatch EMF through Powertools Metrics. */
export interface ConsumerMetrics {
  count(metric: ConsumerMetric, value?: number): void;
  /** Flushes what was counted (called at the end of every batch). */
  publish(): void;
}

/** Structured logger; attributes never include event data or message bodies. */
export interface ConsumerLogger {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** Options shared by every mode. */
export interface ConsumerBaseOptions {
  /**
   * The consumer (subscription) name: first half of every dedup key. Letters, digits, `.`, `_`, `-`.
   * Renaming a consumer forgets what it applied.
   * @default process.env.OUTBOX_CONSUMER_NAME
   */
  readonly name?: string;
  /** @default process.env.DEDUP_TABLE_NAME */
  readonly tableName?: string;
  /** @default one DocumentClient shared by the Lambda container */
  readonly client?: DynamoDBDocumentClient;
  /**
   * How long a dedup record proves an event was applied, in seconds: a redelivery later than this is applied
   * again. Expired records are reclaimed by a condition on `expiresAt`, not by trusting TTL deletion.
   * @default 1209600 (14 days, SQS's longest retention)
   */
  readonly dedupTtlSeconds?: number;
  /**
   * Standard queues: messages processed at once. FIFO queues: message groups processed at once (a group's
   * messages always run one after another). 1 to 100.
   * @default 10
   */
  readonly concurrency?: number;
  /**
   * Messages not yet started when the invocation has less than this left are reported as failed (retried
   * later) instead of being cut off by the timeout.
   * @default 1000
   */
  readonly minRemainingTimeMs?: number;
  /**
   * Where poison messages (bodies that are not outbox envelopes) are sent directly, then reported as
   * processed, so they do not burn every retry. Without it they are reported as failed and reach the DLQ
   * through the queue's redrive policy after `maxReceiveCount` receives.
   * @default process.env.OUTBOX_DEAD_LETTER_QUEUE_URL
   */
  readonly deadLetterQueueUrl?: string;
  /** @default a client shared by the Lambda container */
  readonly sqsClient?: SQSClient;
  /**
   * Reads the payload of large events (envelopes with a `dataref`) before the handler runs.
   * @default a client shared by the Lambda container (path-style when an endpoint is configured)
   */
  readonly s3Client?: S3Client;
  /** @default CloudWatch EMF via Powertools Metrics (namespace from POWERTOOLS_METRICS_NAMESPACE, else `ServerlessOutbox`) */
  readonly metrics?: ConsumerMetrics;
  /** @default Powertools Logger */
  readonly logger?: ConsumerLogger;
  /** Clock for tests. @default Date.now */
  readonly now?: () => number;
  /**
   * Tracked mode (delivery acknowledgements): after an event's effect is applied — and also for a duplicate or a
   * stale event, so a redelivery after a lost acknowledgement completes it — the consumer marks its
   * `ACK#<event id>` item in the outbox table DONE (subscriber name = the consumer name). An acknowledgement that
   * fails fails the message, which is redelivered and acknowledged as a duplicate. `false` turns it off.
   * @default - on when process.env.OUTBOX_ACK_TABLE_NAME is set (types from OUTBOX_ACK_EVENT_TYPES), else off
   */
  readonly acknowledge?: AcknowledgeOptions | false;
}

/** Where and for which events a tracked consumer acknowledges. */
export interface AcknowledgeOptions {
  /** The outbox table holding the ack items. */
  readonly tableName: string;
  /**
   * Acknowledge only these event types (the types the subscription is tracked for). Each acknowledgement of an
   * untracked event is a conditional UpdateItem that finds no item: harmless, but 1 write unit.
   * @default - every event
   */
  readonly eventTypes?: readonly string[];
}

/**
 * Transactional mode: the handler returns its DynamoDB writes; they are committed with the event's dedup
 * record in one TransactWriteItems. The effect is applied exactly once even if the function dies at any point.
 */
export interface TransactionalConsumerOptions<TData = unknown> extends ConsumerBaseOptions {
  readonly mode: 'transactional';
  readonly handle: TransactionalHandler<TData>;
  readonly onGap?: never;
  readonly leaseMs?: never;
  readonly leaseMarginMs?: never;
}

/**
 * Lease mode, for effects outside DynamoDB: claim the event with an owner token, run the side effect while a
 * heartbeat renews the lease, then record completion only if the token still owns the record. At most one worker
 * applies an event at a time, provided the handler stops when its `signal` aborts; a worker that lost its lease
 * is never marked complete.
 */
export interface LeaseConsumerOptions<TData = unknown> extends ConsumerBaseOptions {
  readonly mode: 'lease';
  readonly handle: LeaseHandler<TData>;
  /**
   * Fixed lease length in milliseconds (use outside Lambda, e.g. in a container). While the handler runs, a
   * heartbeat renews the lease every leaseMs / 3, so an effect may take longer than this; leaseMs bounds how long
   * a crashed worker keeps the event blocked.
   * @default - the invocation's remaining time plus `leaseMarginMs` (60 s outside Lambda)
   */
  readonly leaseMs?: number;
  /**
   * Added to the remaining invocation time, to absorb clock skew between workers.
   * @default 1000
   */
  readonly leaseMarginMs?: number;
  readonly onGap?: never;
}

/** What ordered mode does when an event's sequence is ahead of the next expected one. */
export type GapPolicy = 'retry' | 'accept';

/**
 * Ordered mode: the consumer keeps the last applied `sequence` per aggregate (consumer + partitionkey) and
 * commits the handler's writes together with the advanced cursor in one TransactWriteItems. Stale and
 * repeated events are skipped and counted; gaps follow `onGap`.
 */
export interface OrderedConsumerOptions<TData = unknown> extends ConsumerBaseOptions {
  readonly mode: 'ordered';
  readonly handle: TransactionalHandler<TData>;
  /**
   * `retry`: fail the message so the FIFO queue redelivers it later (it dead-letters if the gap never
   * closes). `accept`: apply it, move the cursor past the gap and count a `SequenceGaps` metric. Use
   * `accept` when the subscription filters out some of an aggregate's events, or starts mid-history.
   * @default 'retry'
   */
  readonly onGap?: GapPolicy;
  readonly leaseMs?: never;
  readonly leaseMarginMs?: never;
}

/**
 * Single-item mode, for handlers whose effect is one DynamoDB item per aggregate (e.g. a read model row keyed by
 * the aggregate): the aggregate's cursor lives on that item and each event is one conditional Put or Update,
 * no dedup item and no transaction. Ordered like mode 'ordered' (stale and repeated events skipped, gaps follow
 * `onGap`). Needs no dedup table. Any other writer of the item must update it, never replace it (a replacement
 * drops the cursor and a redelivered event would apply again). An item found following another aggregate or
 * consumer fails the event with a SingleItemConflictError.
 */
export interface SingleItemConsumerOptions<TData = unknown> extends ConsumerBaseOptions {
  readonly mode: 'single-item';
  readonly handle: SingleItemHandler<TData>;
  /** As in mode 'ordered'. @default 'retry' */
  readonly onGap?: GapPolicy;
  readonly leaseMs?: never;
  readonly leaseMarginMs?: never;
}

export type ConsumerOptions<TData = unknown> =
  | TransactionalConsumerOptions<TData>
  | LeaseConsumerOptions<TData>
  | OrderedConsumerOptions<TData>
  | SingleItemConsumerOptions<TData>;

export type ConsumerMode = ConsumerOptions['mode'];

/** What happened to one event. Failures are thrown, not returned. */
export type EventOutcome =
  | { readonly status: 'applied'; readonly eventId: string; readonly skippedSequences?: number }
  | { readonly status: 'duplicate'; readonly eventId: string }
  | { readonly status: 'stale'; readonly eventId: string; readonly lastSequence: number };

/** Per-event options of `IdempotentConsumer.process`. */
export interface ProcessOptions {
  readonly record?: SQSRecord;
  readonly lambdaContext?: Context;
}
