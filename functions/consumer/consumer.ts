import { type MessageAttributeValue, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { acknowledge } from '../runtime/acks.ts';
import { envelopeProblems, type OutboxEnvelope } from '../runtime/envelope.ts';
import { sharedDocumentClient } from '../runtime/writer.ts';
import {
  ACK_EVENT_TYPES_ENV,
  ACK_TABLE_ENV,
  CONSUMER_MODE_ENV,
  CONSUMER_NAME_ENV,
  CONSUMER_NAME_PATTERN,
  DEAD_LETTER_QUEUE_URL_ENV,
  DEDUP_TABLE_ENV,
  DEDUP_TTL_ENV,
  DEFAULT_DEDUP_TTL_SECONDS,
} from './dedup-format.ts';
import { type CursorResult, DedupStore, type Lease, validateWrites } from './dedup-store.ts';
import { ConsumerConfigurationError, ConsumerError, LeaseLostError, SequenceGapError } from './errors.ts';
import { withLargeEventData } from './large-event-payload.ts';
import {
  eventLogKeys,
  eventScopedLogger,
  eventTrace,
  powertoolsConsumerLogger,
  powertoolsConsumerMetrics,
  withEventLogKeys,
} from './observability.ts';
import { applySingleItem, validateSingleWrite } from './single-item.ts';
import {
  type AcknowledgeOptions,
  type ConsumerLogger,
  ConsumerMetric,
  type ConsumerMetrics,
  type ConsumerMode,
  type ConsumerOptions,
  type EventContext,
  type EventOutcome,
  type GapPolicy,
  type ProcessOptions,
} from './types.ts';

export const DEFAULT_CONCURRENCY = 10;
export const DEFAULT_LEASE_MS = 60_000;
export const DEFAULT_LEASE_MARGIN_MS = 1_000;
export const DEFAULT_MIN_REMAINING_TIME_MS = 1_000;
/** Message attribute names set on a poison message sent to the DLQ (no payload, only why). */
export const POISON_REASON_ATTRIBUTE = 'outbox.poison-reason';
export const POISON_CONSUMER_ATTRIBUTE = 'outbox.consumer';
export const POISON_SOURCE_MESSAGE_ATTRIBUTE = 'outbox.source-message-id';
/** SQS allows 10 message attributes; three are ours. */
const MAX_COPIED_ATTRIBUTES = 7;

let sharedSqs: SQSClient | undefined;

/** The outcome of one SQS record inside a batch. */
export type RecordResult =
  | { readonly messageId: string; readonly status: EventOutcome['status'] }
  | { readonly messageId: string; readonly status: 'poison'; readonly deadLettered: boolean }
  | { readonly messageId: string; readonly status: 'failed'; readonly error: string }
  | { readonly messageId: string; readonly status: 'not-started' };

export interface BatchResult extends SQSBatchResponse {
  readonly results: readonly RecordResult[];
}

type Parsed =
  | { readonly ok: true; readonly envelope: OutboxEnvelope }
  | { readonly ok: false; readonly reason: string };

/** Parses an SQS body as an outbox envelope; the reason never quotes the payload. */
export function parseEnvelope(body: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'body is not JSON' };
  }
  const problems = envelopeProblems(value);
  if (problems.length > 0) {
    return {
      ok: false,
      reason: `not an outbox envelope: ${problems.map((p) => `${p.field} ${p.reason}`).join('; ')}`,
    };
  }
  return { ok: true, envelope: value as OutboxEnvelope };
}

/** Runs `worker` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  worker: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  });
  await Promise.all(lanes);
}

function isFifoRecord(record: SQSRecord): boolean {
  return record.attributes?.MessageGroupId !== undefined || (record.eventSourceARN ?? '').endsWith('.fifo');
}

/** Tracked mode from the options, else from OUTBOX_ACK_TABLE_NAME / OUTBOX_ACK_EVENT_TYPES. */
function acknowledgeSettings(
  consumer: string,
  option: AcknowledgeOptions | false | undefined,
): { tableName: string; eventTypes?: ReadonlySet<string> } | undefined {
  if (option === false) return undefined;
  const tableName = option ? option.tableName : process.env[ACK_TABLE_ENV]?.trim();
  if (option && (typeof tableName !== 'string' || tableName === '')) {
    throw new ConsumerConfigurationError(
      consumer,
      'acknowledge.tableName must name the outbox table, but it was empty.',
    );
  }
  if (!tableName) return undefined;
  const types = option
    ? option.eventTypes
    : process.env[ACK_EVENT_TYPES_ENV]
        ?.split(',')
        .map((t) => t.trim())
        .filter(Boolean);
  return types && types.length > 0 ? { tableName, eventTypes: new Set(types) } : { tableName };
}

function requireInteger(consumer: string, name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConsumerConfigurationError(
      consumer,
      `${name} must be an integer from ${min} to ${max}, but ${value} was provided.`,
    );
  }
  return value;
}

/** A held lease kept alive while the handler runs. */
interface LeaseKeeper {
  /** Aborted, with a LeaseLostError, when the lease is lost or lapses unrenewed. */
  readonly signal: AbortSignal;
  /** The lease as last renewed. */
  readonly lease: Lease;
  /** Set once the lease is lost: the handler must not be marked complete. */
  readonly lost: LeaseLostError | undefined;
  /** Stops the heartbeat and waits for a renewal in flight. */
  stop(): Promise<void>;
}

/**
 * Heartbeat: renews the lease every leaseMs / 3 (a conditional update on the owner token), so a slow effect keeps
 * it and no other worker starts the same event meanwhile. Aborts `signal` when a renewal finds another owner, or
 * when the lease runs out because renewals kept failing.
 */
function keepLease(
  store: DedupStore,
  consumer: string,
  eventId: string,
  claimed: Lease,
  leaseMs: number,
  now: () => number,
): LeaseKeeper {
  const controller = new AbortController();
  let lease = claimed;
  let lost: LeaseLostError | undefined;
  let stopped = false;
  let renewal: Promise<void> = Promise.resolve();
  let beatTimer: ReturnType<typeof setTimeout> | undefined;
  let expiryTimer: ReturnType<typeof setTimeout> | undefined;
  const lose = (error: LeaseLostError) => {
    if (lost) return;
    lost = error;
    controller.abort(error);
  };
  const armExpiry = () => {
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(
      () => lose(new LeaseLostError(consumer, eventId, lease.owner, 'expired')),
      Math.max(0, lease.expiresAt - now()),
    );
    expiryTimer.unref?.();
  };
  const renew = async () => {
    try {
      lease = await store.extend(consumer, eventId, lease, leaseMs);
      if (!stopped) armExpiry();
    } catch (error) {
      if (error instanceof LeaseLostError) lose(error);
      // Throttling or a network error: try again at the next beat; the expiry timer keeps running meanwhile.
    }
  };
  const scheduleBeat = () => {
    if (stopped || lost) return;
    beatTimer = setTimeout(
      () => {
        renewal = renew().then(scheduleBeat);
      },
      Math.max(1, Math.floor(leaseMs / 3)),
    );
    beatTimer.unref?.();
  };
  armExpiry();
  scheduleBeat();
  return {
    signal: controller.signal,
    get lease() {
      return lease;
    },
    get lost() {
      return lost;
    },
    async stop() {
      stopped = true;
      clearTimeout(beatTimer);
      await renewal;
      clearTimeout(expiryTimer);
    },
  };
}

/** A whole number from the environment, or undefined when unset (a malformed value fails validation as NaN). */
function envInteger(name: string): number | undefined {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? undefined : Number(raw);
}

/**
 * Applies each outbox event's effect at most once per consumer, although SQS delivers at least once.
 * Dedup key = consumer name + event id (never the SQS message id, which changes when a message is
 * republished). Use `handler` as the Lambda handler of an SQS event source with ReportBatchItemFailures,
 * `process` for one envelope from anywhere else, or the `outboxConsumer` middy middleware.
 */
export class IdempotentConsumer<TData = unknown> {
  readonly name: string;
  readonly mode: ConsumerMode;
  readonly store: DedupStore;
  readonly metrics: ConsumerMetrics;
  readonly logger: ConsumerLogger;
  readonly #options: ConsumerOptions<TData>;
  readonly #concurrency: number;
  readonly #minRemainingTimeMs: number;
  readonly #deadLetterQueueUrl: string | undefined;
  readonly #sqsClient: SQSClient | undefined;
  readonly #now: () => number;
  readonly #onGap: GapPolicy;
  readonly #client: DynamoDBDocumentClient;
  readonly #acknowledge: { tableName: string; eventTypes?: ReadonlySet<string> } | undefined;

  constructor(options: ConsumerOptions<TData>) {
    const name = options.name ?? process.env[CONSUMER_NAME_ENV] ?? '';
    if (!CONSUMER_NAME_PATTERN.test(name)) {
      throw new ConsumerConfigurationError(
        name || '(unnamed)',
        `The consumer name must be 1-64 letters, digits, '.', '_' or '-' (it is part of every dedup key), but "${name}" was provided. Pass { name } or set ${CONSUMER_NAME_ENV}.`,
      );
    }
    const mode = (options as { mode?: unknown }).mode;
    if (mode !== 'transactional' && mode !== 'lease' && mode !== 'ordered' && mode !== 'single-item') {
      throw new ConsumerConfigurationError(
        name,
        `mode must be 'transactional', 'lease', 'ordered' or 'single-item', but ${String(mode)} was provided.`,
      );
    }
    const declaredMode = process.env[CONSUMER_MODE_ENV]?.trim();
    if (declaredMode && declaredMode !== mode) {
      throw new ConsumerConfigurationError(
        name,
        `The Subscription declares this consumer with mode '${declaredMode}' (${CONSUMER_MODE_ENV}), but mode '${mode}' was provided: pass the same mode to createConsumer and to the Subscription's \`consumer.mode\` (a 'single-item' consumer is granted no dedup table; the other modes need one).`,
      );
    }
    if (typeof options.handle !== 'function') {
      throw new ConsumerConfigurationError(name, 'handle must be a function.');
    }
    // Single-item mode keeps its cursor on the effect's item: no dedup table.
    const tableName = options.tableName ?? process.env[DEDUP_TABLE_ENV] ?? '';
    if (!tableName && mode !== 'single-item') {
      throw new ConsumerConfigurationError(
        name,
        `No dedup table configured: pass { tableName } or set ${DEDUP_TABLE_ENV} (a Subscription sets it on its consumer).`,
      );
    }
    const ttl = requireInteger(
      name,
      'dedupTtlSeconds',
      options.dedupTtlSeconds ?? envInteger(DEDUP_TTL_ENV) ?? DEFAULT_DEDUP_TTL_SECONDS,
      60,
      10 * 365 * 86_400,
    );
    this.#concurrency = requireInteger(
      name,
      'concurrency',
      options.concurrency ?? DEFAULT_CONCURRENCY,
      1,
      100,
    );
    this.#minRemainingTimeMs = requireInteger(
      name,
      'minRemainingTimeMs',
      options.minRemainingTimeMs ?? DEFAULT_MIN_REMAINING_TIME_MS,
      0,
      900_000,
    );
    if (options.mode === 'lease') {
      if (options.leaseMs !== undefined) requireInteger(name, 'leaseMs', options.leaseMs, 1, 43_200_000);
      if (options.leaseMarginMs !== undefined)
        requireInteger(name, 'leaseMarginMs', options.leaseMarginMs, 0, 600_000);
    }
    const onGap =
      options.mode === 'ordered' || options.mode === 'single-item' ? (options.onGap ?? 'retry') : 'retry';
    if (onGap !== 'retry' && onGap !== 'accept') {
      throw new ConsumerConfigurationError(
        name,
        `onGap must be 'retry' or 'accept', but ${String(onGap)} was provided.`,
      );
    }
    this.name = name;
    this.mode = mode;
    this.#options = options;
    this.#onGap = onGap;
    this.#now = options.now ?? Date.now;
    this.#deadLetterQueueUrl = options.deadLetterQueueUrl ?? process.env[DEAD_LETTER_QUEUE_URL_ENV];
    this.#sqsClient = options.sqsClient;
    this.metrics = options.metrics ?? powertoolsConsumerMetrics(name);
    // Every line written while an event is processed carries its eventId and the producer's traceId.
    this.logger = eventScopedLogger(options.logger ?? powertoolsConsumerLogger(name));
    this.#client = options.client ?? sharedDocumentClient();
    this.#acknowledge = acknowledgeSettings(name, options.acknowledge);
    this.store = new DedupStore({
      tableName,
      client: this.#client,
      ttlSeconds: ttl,
      now: this.#now,
    });
  }

  /** The Lambda handler (SQS event source with ReportBatchItemFailures). */
  readonly handler = async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    const { batchItemFailures } = await this.processBatch(event, context);
    return { batchItemFailures };
  };

  /**
   * Applies one event (no SQS involved). Returns the outcome; throws a ConsumerError (or the handler's own
   * error) when the event was not applied and should be retried.
   */
  async process(envelope: OutboxEnvelope<TData>, options: ProcessOptions = {}): Promise<EventOutcome> {
    const trace = eventTrace(envelope, options.record);
    const context: EventContext = {
      consumer: this.name,
      idempotencyKey: envelope.id,
      ...(options.record ? { record: options.record } : {}),
      ...(options.lambdaContext ? { lambdaContext: options.lambdaContext } : {}),
      ...trace,
    };
    return withEventLogKeys(eventLogKeys(envelope.id, trace), async () => {
      try {
        const outcome = await this.#apply(envelope, context);
        this.#countOutcome(outcome);
        await this.#acknowledgeEvent(envelope);
        return outcome;
      } catch (error) {
        if (error instanceof SequenceGapError) this.metrics.count(ConsumerMetric.SequenceGaps);
        if (error instanceof LeaseLostError) this.metrics.count(ConsumerMetric.LeasesLost);
        throw error;
      }
    });
  }

  /**
   * Tracked mode: marks this consumer's ack of the event DONE. Runs for applied, duplicate and stale outcomes
   * alike (the effect is in place in every case), so a redelivery after a lost acknowledgement completes it.
   */
  async #acknowledgeEvent(envelope: OutboxEnvelope<TData>): Promise<void> {
    const settings = this.#acknowledge;
    if (!settings || (settings.eventTypes && !settings.eventTypes.has(envelope.type))) return;
    try {
      await acknowledge(this.#client, settings.tableName, envelope.id, this.name, this.#now());
    } catch (error) {
      throw new ConsumerError(
        this.name,
        envelope.id,
        `The effect of event ${envelope.id} is applied, but acknowledging it failed (${(error as Error)?.name ?? 'Error'}); the message is retried and acknowledged as a duplicate.`,
        { cause: error, retryable: true },
      );
    }
  }

  async #apply(envelope: OutboxEnvelope<TData>, context: EventContext): Promise<EventOutcome> {
    const options = this.#options;
    const eventId = envelope.id;
    if (options.mode === 'lease') {
      const remaining = context.lambdaContext?.getRemainingTimeInMillis();
      const leaseMs =
        options.leaseMs ??
        (remaining === undefined
          ? DEFAULT_LEASE_MS
          : Math.max(1, remaining) + (options.leaseMarginMs ?? DEFAULT_LEASE_MARGIN_MS));
      const claim = await this.store.claim(this.name, eventId, leaseMs);
      if (claim.status === 'duplicate') return { status: 'duplicate', eventId };
      const keeper = keepLease(this.store, this.name, eventId, claim.lease, leaseMs, this.#now);
      let failure: { error: unknown } | undefined;
      try {
        await options.handle(await this.#withData(envelope), {
          ...context,
          leaseOwner: claim.lease.owner,
          get leaseExpiresAt() {
            return keeper.lease.expiresAt;
          },
          signal: keeper.signal,
        });
      } catch (error) {
        failure = { error };
      } finally {
        await keeper.stop();
      }
      if (keeper.lost) {
        // Not (provably) ours any more: never mark it complete. Report how it stands now.
        const state = await this.store
          .lossState(this.name, eventId, keeper.lease)
          .catch(() => keeper.lost?.state ?? 'expired');
        if (state === undefined) {
          // Still ours, but it lapsed while unrenewable: give it up so a redelivery need not wait.
          await this.#release(eventId, keeper.lease);
        }
        throw new LeaseLostError(this.name, eventId, claim.lease.owner, state ?? 'expired');
      }
      if (failure) {
        await this.#release(eventId, keeper.lease);
        throw failure.error;
      }
      await this.store.complete(this.name, eventId, keeper.lease);
      return { status: 'applied', eventId };
    }
    const event = await this.#withData(envelope);
    if (options.mode === 'single-item') {
      const write = validateSingleWrite(this.name, eventId, await options.handle(event, context));
      return this.#cursorOutcome(
        envelope,
        await applySingleItem(this.#client, this.name, envelope, write, this.#onGap),
      );
    }
    const writes = validateWrites(this.name, eventId, await options.handle(event, context));
    if (options.mode === 'transactional') {
      const result = await this.store.commitEvent(this.name, envelope, writes);
      return result.status === 'applied' ? { status: 'applied', eventId } : { status: 'duplicate', eventId };
    }
    return this.#cursorOutcome(
      envelope,
      await this.store.advanceCursor(this.name, envelope, writes, this.#onGap),
    );
  }

  /** Ordered and single-item modes: the outcome of moving the aggregate's cursor, gaps counted and logged. */
  #cursorOutcome(envelope: OutboxEnvelope<TData>, result: CursorResult): EventOutcome {
    const eventId = envelope.id;
    if (result.status === 'applied') {
      if (result.skippedSequences > 0) {
        this.metrics.count(ConsumerMetric.SequenceGaps);
        this.logger.warn('Accepted an event after a sequence gap', {
          eventId,
          partitionkey: envelope.partitionkey,
          sequence: envelope.sequence,
          skippedSequences: result.skippedSequences,
        });
        return { status: 'applied', eventId, skippedSequences: result.skippedSequences };
      }
      return { status: 'applied', eventId };
    }
    if (result.status === 'stale') return { status: 'stale', eventId, lastSequence: result.lastSequence };
    return { status: 'duplicate', eventId };
  }

  /** Deletes the claim so a retry need not wait for the lease; a failure only means it expires on its own. */
  async #release(eventId: string, lease: Lease): Promise<void> {
    const released = await this.store.release(this.name, eventId, lease).catch((releaseError: unknown) => {
      this.logger.warn('Could not release the lease after a failed side effect; it expires on its own', {
        eventId,
        error: (releaseError as Error).name,
      });
      return true;
    });
    if (!released) this.logger.warn('The lease was no longer ours when releasing it', { eventId });
  }

  #countOutcome(outcome: EventOutcome): void {
    if (outcome.status === 'applied') this.metrics.count(ConsumerMetric.Processed);
    else if (outcome.status === 'duplicate') this.metrics.count(ConsumerMetric.DuplicatesSuppressed);
    else this.metrics.count(ConsumerMetric.StaleSkipped);
  }

  /**
   * Processes an SQS batch. FIFO (any record with a MessageGroupId): groups run concurrently, each group's
   * messages in order, and a failure fails that message and every later message of its group. Standard:
   * messages run with bounded concurrency and fail one by one. Always publishes the batch's metrics.
   */
  async processBatch(event: SQSEvent, lambdaContext?: Context): Promise<BatchResult> {
    const records = event?.Records ?? [];
    const results = new Map<string, RecordResult>();
    try {
      if (records.some(isFifoRecord)) {
        const groups = new Map<string, SQSRecord[]>();
        for (const record of records) {
          const group = record.attributes?.MessageGroupId ?? '';
          const list = groups.get(group);
          if (list) list.push(record);
          else groups.set(group, [record]);
        }
        await forEachLimit([...groups.values()], this.#concurrency, async (group) => {
          let failed = false;
          for (const record of group) {
            if (failed) {
              // Order: a later message of a failed group must not overtake the failed one.
              results.set(record.messageId, { messageId: record.messageId, status: 'not-started' });
              continue;
            }
            const result = await this.#processRecord(record, lambdaContext);
            results.set(record.messageId, result);
            failed =
              result.status === 'failed' ||
              result.status === 'not-started' ||
              (result.status === 'poison' && !result.deadLettered);
          }
        });
      } else {
        await forEachLimit(records, this.#concurrency, async (record) => {
          results.set(record.messageId, await this.#processRecord(record, lambdaContext));
        });
      }
    } finally {
      this.metrics.publish();
    }
    const ordered = records.map(
      (r) => results.get(r.messageId) ?? ({ messageId: r.messageId, status: 'not-started' } as const),
    );
    const batchItemFailures = ordered
      .filter(
        (r) =>
          r.status === 'failed' || r.status === 'not-started' || (r.status === 'poison' && !r.deadLettered),
      )
      .map((r) => ({ itemIdentifier: r.messageId }));
    return { batchItemFailures, results: ordered };
  }

  async #processRecord(record: SQSRecord, lambdaContext: Context | undefined): Promise<RecordResult> {
    const messageId = record.messageId;
    if (lambdaContext && lambdaContext.getRemainingTimeInMillis() < this.#minRemainingTimeMs) {
      this.logger.warn('Not starting a message this close to the timeout; it will be redelivered', {
        messageId,
      });
      return { messageId, status: 'not-started' };
    }
    const parsed = parseEnvelope(record.body ?? '');
    if (!parsed.ok) {
      const deadLettered = await this.#deadLetter(record, parsed.reason);
      this.metrics.count(ConsumerMetric.Poison);
      return { messageId, status: 'poison', deadLettered };
    }
    const { envelope } = parsed;
    return withEventLogKeys(eventLogKeys(envelope.id, eventTrace(envelope, record)), () =>
      this.#processEnvelope(record, envelope as OutboxEnvelope<TData>, lambdaContext),
    );
  }

  async #processEnvelope(
    record: SQSRecord,
    envelope: OutboxEnvelope<TData>,
    lambdaContext: Context | undefined,
  ): Promise<RecordResult> {
    const messageId = record.messageId;
    try {
      const outcome = await this.process(envelope, {
        record,
        ...(lambdaContext ? { lambdaContext } : {}),
      });
      return { messageId, status: outcome.status };
    } catch (error) {
      this.metrics.count(ConsumerMetric.Failed);
      const e = error as Error;
      const attributes = {
        messageId,
        eventId: envelope.id,
        type: envelope.type,
        partitionkey: envelope.partitionkey,
        sequence: envelope.sequence,
        receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 0),
        error: e?.name ?? 'Error',
        reason: e?.message,
        retryable: error instanceof ConsumerError ? error.retryable : undefined,
      };
      if (error instanceof ConsumerError && error.retryable)
        this.logger.warn('Event not applied; it will be retried', attributes);
      else this.logger.error('Event failed; it will be retried and then dead-lettered', attributes);
      return { messageId, status: 'failed', error: e?.name ?? 'Error' };
    }
  }

  /** Sends a poison message straight to the DLQ; true when it got there (so the source message can be deleted). */
  async #deadLetter(record: SQSRecord, reason: string): Promise<boolean> {
    const base = {
      messageId: record.messageId,
      reason,
      bodyBytes: Buffer.byteLength(record.body ?? '', 'utf8'),
      receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 0),
    };
    const queueUrl = this.#deadLetterQueueUrl;
    if (!queueUrl) {
      this.logger.error(
        `Poison message (not an outbox envelope); no DLQ URL configured (${DEAD_LETTER_QUEUE_URL_ENV}), so it is failed and reaches the DLQ through the redrive policy`,
        base,
      );
      return false;
    }
    const attributes: Record<string, MessageAttributeValue> = {
      [POISON_REASON_ATTRIBUTE]: { DataType: 'String', StringValue: reason.slice(0, 1024) },
      [POISON_CONSUMER_ATTRIBUTE]: { DataType: 'String', StringValue: this.name },
      [POISON_SOURCE_MESSAGE_ATTRIBUTE]: { DataType: 'String', StringValue: record.messageId },
    };
    let copied = 0;
    for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
      if (copied >= MAX_COPIED_ATTRIBUTES) break;
      if (value?.stringValue === undefined || !/^(String|Number)/.test(value.dataType)) continue;
      attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
      copied++;
    }
    try {
      await this.#sqs().send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          // Unchanged, so a DLQ redrive puts back exactly what arrived.
          MessageBody: record.body,
          MessageAttributes: attributes,
          ...(queueUrl.endsWith('.fifo')
            ? {
                MessageGroupId: record.attributes?.MessageGroupId ?? 'poison',
                // A retried invocation sends the same message again: let FIFO dedup drop the copy.
                MessageDeduplicationId: record.messageId,
              }
            : {}),
        }),
      );
      this.logger.error('Poison message (not an outbox envelope) sent to the DLQ without retries', base);
      return true;
    } catch (error) {
      this.logger.error(
        'Poison message could not be sent to the DLQ; failing it so the redrive policy moves it',
        {
          ...base,
          error: (error as Error).name,
        },
      );
      return false;
    }
  }

  /** The envelope with its large-event payload fetched and verified (claim-check); others unchanged. */
  #withData(envelope: OutboxEnvelope<TData>): Promise<OutboxEnvelope<TData>> {
    // The S3 client module loads with the first large event: consumers that never see one do not pay for it.
    return withLargeEventData(
      envelope,
      this.name,
      async () =>
        this.#options.s3Client ?? (await import('../runtime/claim-check-store.ts')).sharedS3Client(),
    );
  }

  #sqs(): SQSClient {
    if (this.#sqsClient) return this.#sqsClient;
    sharedSqs ??= new SQSClient({});
    return sharedSqs;
  }
}

/** Creates an idempotent consumer; see IdempotentConsumer. */
export function createConsumer<TData = unknown>(options: ConsumerOptions<TData>): IdempotentConsumer<TData> {
  return new IdempotentConsumer(options);
}
