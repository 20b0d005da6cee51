import { OutboxError } from '../runtime/errors.ts';

/**
 * Base of every error the idempotent consumer throws. `retryable` says whether a redelivery of the same
 * message can succeed (the batch handler reports the message as failed either way).
 */
export class ConsumerError extends OutboxError {
  override name = 'ConsumerError';
  /** The consumer name (first half of the dedup key). */
  readonly consumer: string;
  /** The event id (second half of the dedup key), when the event was identified. */
  readonly eventId: string | undefined;
  constructor(
    consumer: string,
    eventId: string | undefined,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options);
    this.consumer = consumer;
    this.eventId = eventId;
  }
}

/** The consumer is misconfigured (no dedup table, invalid option). Fix the deployment; retrying will not help. */
export class ConsumerConfigurationError extends ConsumerError {
  override name = 'ConsumerConfigurationError';
  constructor(consumer: string, message: string) {
    super(consumer, undefined, message, { retryable: false });
  }
}

/**
 * Lease mode: another worker holds an unexpired lease on this event and may be applying it right now.
 * Nothing was done; the message is retried after its visibility timeout.
 */
export class EventInProgressError extends ConsumerError {
  override name = 'EventInProgressError';
  /** Epoch milliseconds when the other worker's lease expires. */
  readonly leaseExpiresAt: number;
  constructor(consumer: string, eventId: string, leaseExpiresAt: number) {
    super(
      consumer,
      eventId,
      `Event ${eventId} is being processed by another ${consumer} worker whose lease runs until ${new Date(leaseExpiresAt).toISOString()}; the message will be retried after its visibility timeout.`,
      { retryable: true },
    );
    this.leaseExpiresAt = leaseExpiresAt;
  }
}

/** What the dedup record looked like when a lease holder's completion was rejected. */
/**
 * `expired`: this worker could not renew its lease (its heartbeats failed) before it ran out, so it can no
 * longer prove it is the only one applying the event.
 */
export type LeaseLossState = 'taken-over' | 'completed-by-other' | 'released' | 'expired';

/**
 * Lease mode: this worker lost its lease while (or after) applying the event: another worker claimed it, the
 * record is gone, or the lease could not be renewed. The handler's `signal` was aborted with this error, and the
 * record is never marked complete by a worker that no longer owns it. The side effect may have run (partly)
 * twice: the downstream system must deduplicate on the idempotency key (the event id) it received.
 */
export class LeaseLostError extends ConsumerError {
  override name = 'LeaseLostError';
  readonly leaseOwner: string;
  readonly state: LeaseLossState;
  constructor(consumer: string, eventId: string, leaseOwner: string, state: LeaseLossState) {
    const what =
      state === 'completed-by-other'
        ? 'another worker took over the expired lease and completed the event'
        : state === 'taken-over'
          ? 'another worker took over the expired lease and is still applying the event'
          : state === 'expired'
            ? 'the lease could not be renewed before it expired (heartbeats failed)'
            : 'the lease record no longer exists';
    super(
      consumer,
      eventId,
      `Completion of event ${eventId} by lease owner ${leaseOwner} was rejected: ${what}. The side effect may have run twice; the downstream must deduplicate on the idempotency key ${eventId}. Give the handler a longer lease (leaseMs / function timeout) if this repeats.`,
      { retryable: true },
    );
    this.leaseOwner = leaseOwner;
    this.state = state;
  }
}

/**
 * Ordered mode with `onGap: 'retry'`: the event's sequence is ahead of the next expected one, so an earlier
 * event of the aggregate has not been applied yet. Nothing was written; the message fails so the FIFO
 * queue redelivers it (after its visibility timeout) and, if the gap never closes, dead-letters it.
 */
export class SequenceGapError extends ConsumerError {
  override name = 'SequenceGapError';
  readonly partitionKey: string;
  readonly expectedSequence: number;
  readonly receivedSequence: number;
  constructor(consumer: string, eventId: string, partitionKey: string, expected: number, received: number) {
    super(
      consumer,
      eventId,
      `Event ${eventId} of aggregate "${partitionKey}" has sequence ${received} but ${consumer} expects ${expected} next; it will be retried until the missing events arrive. If they were filtered out or never will arrive, use onGap: 'accept'.`,
      { retryable: true },
    );
    this.partitionKey = partitionKey;
    this.expectedSequence = expected;
    this.receivedSequence = received;
  }
}

/**
 * Single-item mode: the effect's item already carries the cursor of another aggregate or another consumer. One
 * item can follow one aggregate for one consumer; applying this event there would mix two sequences and could
 * skip or repeat effects, so nothing was written. Key the item by the aggregate, or use mode 'ordered'.
 */
export class SingleItemConflictError extends ConsumerError {
  override name = 'SingleItemConflictError';
  /** `<consumer>#<partitionkey>` found on the item. */
  readonly foundStream: string;
  constructor(consumer: string, eventId: string, partitionKey: string, foundStream: string) {
    super(
      consumer,
      eventId,
      `Event ${eventId} of aggregate "${partitionKey}" targets an item that follows "${foundStream}", not "${consumer}#${partitionKey}": in single-item mode one item follows one aggregate for one consumer. Nothing was written; key the item by the aggregate, or use mode 'ordered' (the message will be retried and then dead-lettered).`,
      { retryable: false },
    );
    this.foundStream = foundStream;
  }
}

/** A condition on one of the handler's own writes failed; the transaction (and the dedup record) was cancelled. */
export class BusinessConditionFailedError extends ConsumerError {
  override name = 'BusinessConditionFailedError';
  /** Index into the writes the handler returned. */
  readonly writeIndex: number;
  constructor(consumer: string, eventId: string, writeIndex: number, cause: unknown) {
    super(
      consumer,
      eventId,
      `The condition of write #${writeIndex} returned by the ${consumer} handler for event ${eventId} failed, so nothing was written (the event is not marked as applied). Check the handler's condition; the message will be retried and then dead-lettered.`,
      { cause, retryable: false },
    );
    this.writeIndex = writeIndex;
  }
}

/** The handler returned something that is not a list of TransactWriteItems entries, or too many of them. */
export class InvalidWritesError extends ConsumerError {
  override name = 'InvalidWritesError';
  constructor(consumer: string, eventId: string, problem: string) {
    super(
      consumer,
      eventId,
      `The ${consumer} handler returned invalid writes for event ${eventId}: ${problem}. Nothing was written.`,
      {
        retryable: false,
      },
    );
  }
}

/** Throttling, a transaction conflict that outlasted the retries, or a 5xx: nothing was written. */
export class ConsumerRetryableError extends ConsumerError {
  override name = 'ConsumerRetryableError';
  constructor(consumer: string, eventId: string, message: string, cause: unknown) {
    super(consumer, eventId, `${message}; nothing was written and the message will be retried.`, {
      cause,
      retryable: true,
    });
  }
}

/** Why a large event's payload could not be used: `missing` object, `size` or `sha256` mismatch, `unreadable`. */
export type LargeEventPayloadProblem = 'missing' | 'size' | 'sha256' | 'not-json' | 'unreadable';

/**
 * The envelope references its data in S3 (claim-check) and that payload is missing, differs from what the
 * producer stored (size or SHA-256), or cannot be read. The handler was not called and nothing was written; the
 * message fails and, unless the problem was a transient read error, reaches the queue's DLQ after its retries.
 */
export class LargeEventPayloadError extends ConsumerError {
  override name = 'LargeEventPayloadError';
  readonly dataref: string;
  readonly problem: LargeEventPayloadProblem;
  constructor(
    consumer: string,
    eventId: string,
    dataref: string,
    problem: LargeEventPayloadProblem,
    detail: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    const advice =
      problem === 'unreadable'
        ? "the message will be retried; if it repeats, check the consumer's role may s3:GetObject under the outbox's prefix (a Subscription grants it to its consumer)"
        : 'the message will be retried and then dead-lettered; the object may have expired (bucket lifecycle = outbox retention) or been changed: restore it or drop the message from the DLQ';
    super(
      consumer,
      eventId,
      `Large event ${eventId}: its payload ${dataref} ${detail}. The handler was not called; ${advice}.`,
      {
        ...options,
        retryable: options.retryable ?? false,
      },
    );
    this.dataref = dataref;
    this.problem = problem;
  }
}
