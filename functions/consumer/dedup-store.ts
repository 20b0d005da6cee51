import { randomUUID } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { OutboxEnvelope } from '../runtime/envelope.ts';
import { MAX_TRANSACTION_ITEMS } from '../runtime/writer.ts';
import {
  cursorKey,
  DEDUP_EXPIRES_AT,
  DEDUP_PARTITION_KEY,
  DedupStatus,
  eventDedupKey,
} from './dedup-format.ts';
import {
  BusinessConditionFailedError,
  ConsumerRetryableError,
  EventInProgressError,
  InvalidWritesError,
  type LeaseLossState,
  LeaseLostError,
  SequenceGapError,
} from './errors.ts';
import type { BusinessWrite, GapPolicy } from './types.ts';

/** Extra items a consumer adds to the handler's transaction (the dedup record or the cursor). */
const CONSUMER_ITEMS = 1;
export const MAX_HANDLER_WRITES = MAX_TRANSACTION_ITEMS - CONSUMER_ITEMS;
/** A transaction that loses a race with a concurrent one (same dedup key) is retried this many times in-process. */
const CONFLICT_ATTEMPTS = 3;

export interface DedupStoreOptions {
  readonly tableName: string;
  readonly client: DynamoDBDocumentClient;
  readonly ttlSeconds: number;
  readonly now: () => number;
  /** Waits between transaction-conflict retries. @default setTimeout-based */
  readonly sleep?: (ms: number) => Promise<void>;
}

export type CommitResult =
  | { readonly status: 'applied' }
  | { readonly status: 'duplicate'; readonly existing: Record<string, unknown> | undefined };

export type CursorResult =
  | { readonly status: 'applied'; readonly skippedSequences: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'stale'; readonly lastSequence: number };

export interface Lease {
  readonly owner: string;
  readonly expiresAt: number;
}

export type ClaimResult =
  | { readonly status: 'claimed'; readonly lease: Lease }
  | { readonly status: 'duplicate' };

type RawItem = Record<string, AttributeValue>;

/** Items returned by ReturnValuesOnConditionCheckFailure arrive marshalled even through the DocumentClient. */
function plain(item: RawItem | Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!item) return undefined;
  const key = (item as Record<string, unknown>)[DEDUP_PARTITION_KEY];
  if (key !== null && typeof key === 'object') return unmarshall(item as RawItem);
  return item as Record<string, unknown>;
}

interface CancellationReason {
  readonly Code?: string;
  readonly Item?: RawItem;
}

function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if ((error as Error)?.name !== 'TransactionCanceledException') return undefined;
  return ((error as { CancellationReasons?: CancellationReason[] }).CancellationReasons ??
    []) as CancellationReason[];
}

function isConditionFailure(error: unknown): error is Error & { Item?: RawItem } {
  return (error as Error)?.name === 'ConditionalCheckFailedException';
}

const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TransactionInProgressException',
  'TransactionConflictException',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);

export function isRetryableAwsError(error: unknown): boolean {
  const e = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (e?.$retryable) return true;
  if ((e?.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return RETRYABLE_NAMES.has(e?.name ?? '');
}

const RETRYABLE_CANCELLATION_CODES = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

/** Checks the handler's writes are TransactWriteItems entries and fit in one transaction with ours. */
export function validateWrites(consumer: string, eventId: string, writes: unknown): readonly BusinessWrite[] {
  if (writes === undefined || writes === null) return [];
  if (!Array.isArray(writes)) {
    throw new InvalidWritesError(
      consumer,
      eventId,
      `expected an array of TransactWriteItems entries but got ${typeof writes}`,
    );
  }
  if (writes.length > MAX_HANDLER_WRITES) {
    throw new InvalidWritesError(
      consumer,
      eventId,
      `${writes.length} writes + 1 dedup item is over DynamoDB's ${MAX_TRANSACTION_ITEMS}-item transaction limit (at most ${MAX_HANDLER_WRITES} writes)`,
    );
  }
  writes.forEach((write, i) => {
    const kinds =
      write !== null && typeof write === 'object'
        ? ['Put', 'Update', 'Delete', 'ConditionCheck'].filter((k) => k in write)
        : [];
    if (kinds.length !== 1) {
      throw new InvalidWritesError(
        consumer,
        eventId,
        `writes[${i}] must have exactly one of Put, Update, Delete, ConditionCheck`,
      );
    }
  });
  return writes as readonly BusinessWrite[];
}

/** What a dedup record that is no longer ours says about who has it. */
function lossStateOf(existing: Record<string, unknown> | undefined): LeaseLossState {
  if (!existing) return 'released';
  return existing.status === DedupStatus.Completed ? 'completed-by-other' : 'taken-over';
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The dedup table operations. Every write is conditional; a failed condition returns the existing item
 * (ReturnValuesOnConditionCheckFailure: ALL_OLD), so learning why costs no extra read.
 */
export class DedupStore {
  readonly tableName: string;
  readonly #client: DynamoDBDocumentClient;
  readonly #ttlSeconds: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: DedupStoreOptions) {
    this.tableName = options.tableName;
    this.#client = options.client;
    this.#ttlSeconds = options.ttlSeconds;
    this.#now = options.now;
    this.#sleep = options.sleep ?? defaultSleep;
  }

  #expiresAt(nowMs: number): number {
    return Math.floor(nowMs / 1000) + this.#ttlSeconds;
  }

  /**
   * Transactional mode: puts the completed dedup record and the handler's writes in one transaction.
   * The record's condition admits a new key or an expired one (`expiresAt` in the past), never a live one.
   */
  async commitEvent(
    consumer: string,
    envelope: OutboxEnvelope,
    writes: readonly BusinessWrite[],
  ): Promise<CommitResult> {
    const now = this.#now();
    const put = {
      TableName: this.tableName,
      Item: {
        [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, envelope.id),
        status: DedupStatus.Completed,
        completedAt: now,
        [DEDUP_EXPIRES_AT]: this.#expiresAt(now),
      },
      ConditionExpression: `attribute_not_exists(${DEDUP_PARTITION_KEY}) OR ${DEDUP_EXPIRES_AT} < :nowSeconds`,
      ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000) },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
    if (writes.length === 0) {
      // Nothing to commit with it: a plain conditional put (half the write units of a transaction).
      try {
        await this.#client.send(new PutCommand(put));
        return { status: 'applied' };
      } catch (error) {
        if (isConditionFailure(error)) return { status: 'duplicate', existing: plain(error.Item) };
        throw this.#translate(consumer, envelope.id, error);
      }
    }
    const reasons = await this.#transact(consumer, envelope.id, [{ Put: put }, ...writes]);
    if (!reasons) return { status: 'applied' };
    if (reasons[0]?.Code === 'ConditionalCheckFailed')
      return { status: 'duplicate', existing: plain(reasons[0].Item) };
    throw this.#businessFailure(consumer, envelope.id, reasons);
  }

  /**
   * Ordered mode: advances the aggregate's cursor from `sequence - 1` to `sequence` together with the
   * handler's writes. On a refused condition the old cursor tells stale, duplicate and gap apart.
   */
  async advanceCursor(
    consumer: string,
    envelope: OutboxEnvelope,
    writes: readonly BusinessWrite[],
    onGap: GapPolicy,
  ): Promise<CursorResult> {
    let expected = envelope.sequence - 1;
    let skippedSequences = 0;
    for (let attempt = 1; ; attempt++) {
      const update = this.#cursorUpdate(consumer, envelope, expected);
      let existing: Record<string, unknown> | undefined;
      if (writes.length === 0) {
        try {
          await this.#client.send(new UpdateCommand(update));
          return { status: 'applied', skippedSequences };
        } catch (error) {
          if (!isConditionFailure(error)) throw this.#translate(consumer, envelope.id, error);
          existing = plain(error.Item);
        }
      } else {
        const reasons = await this.#transact(consumer, envelope.id, [{ Update: update }, ...writes]);
        if (!reasons) return { status: 'applied', skippedSequences };
        if (reasons[0]?.Code !== 'ConditionalCheckFailed')
          throw this.#businessFailure(consumer, envelope.id, reasons);
        existing = plain(reasons[0].Item);
      }
      const last = typeof existing?.lastSequence === 'number' ? existing.lastSequence : 0;
      if (last >= envelope.sequence) {
        return last === envelope.sequence && existing?.lastEventId === envelope.id
          ? { status: 'duplicate' }
          : { status: 'stale', lastSequence: last };
      }
      if (last === expected || attempt >= CONFLICT_ATTEMPTS) {
        // Same cursor as expected but refused anyway: cannot happen unless the item changed shape; retry later.
        throw new ConsumerRetryableError(
          consumer,
          envelope.id,
          'The aggregate cursor kept changing under the consumer',
          undefined,
        );
      }
      // A gap: the cursor is behind `sequence - 1`.
      if (onGap === 'retry') {
        throw new SequenceGapError(consumer, envelope.id, envelope.partitionkey, last + 1, envelope.sequence);
      }
      skippedSequences = envelope.sequence - last - 1;
      expected = last;
    }
  }

  #cursorUpdate(consumer: string, envelope: OutboxEnvelope, expected: number) {
    return {
      TableName: this.tableName,
      Key: { [DEDUP_PARTITION_KEY]: cursorKey(consumer, envelope.partitionkey) },
      UpdateExpression: 'SET lastSequence = :sequence, lastEventId = :eventId, updatedAt = :now',
      ConditionExpression: expected === 0 ? 'attribute_not_exists(lastSequence)' : 'lastSequence = :expected',
      ExpressionAttributeValues: {
        ':sequence': envelope.sequence,
        ':eventId': envelope.id,
        ':now': this.#now(),
        ...(expected === 0 ? {} : { ':expected': expected }),
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
  }

  /**
   * Lease mode: claims the event for `leaseMs` with a fresh owner token. Admits a new key, an expired record,
   * or an in-progress record whose lease has expired (its owner is presumed dead).
   */
  async claim(consumer: string, eventId: string, leaseMs: number): Promise<ClaimResult> {
    const now = this.#now();
    const lease: Lease = { owner: randomUUID(), expiresAt: now + leaseMs };
    try {
      await this.#client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, eventId),
            status: DedupStatus.InProgress,
            leaseOwner: lease.owner,
            leaseExpiresAt: lease.expiresAt,
            [DEDUP_EXPIRES_AT]: this.#expiresAt(now),
          },
          ConditionExpression:
            `attribute_not_exists(${DEDUP_PARTITION_KEY}) OR ${DEDUP_EXPIRES_AT} < :nowSeconds` +
            ' OR (#status = :inProgress AND leaseExpiresAt < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':nowSeconds': Math.floor(now / 1000),
            ':now': now,
            ':inProgress': DedupStatus.InProgress,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { status: 'claimed', lease };
    } catch (error) {
      if (!isConditionFailure(error)) throw this.#translate(consumer, eventId, error);
      const existing = plain(error.Item);
      if (existing?.status === DedupStatus.Completed) return { status: 'duplicate' };
      throw new EventInProgressError(consumer, eventId, Number(existing?.leaseExpiresAt ?? now));
    }
  }

  /** Marks the event completed, only if `lease.owner` still owns the record; otherwise throws LeaseLostError. */
  async complete(consumer: string, eventId: string, lease: Lease): Promise<void> {
    const now = this.#now();
    try {
      await this.#client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, eventId) },
          UpdateExpression: `SET #status = :completed, completedAt = :now, ${DEDUP_EXPIRES_AT} = :expiresAt REMOVE leaseOwner, leaseExpiresAt`,
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':completed': DedupStatus.Completed,
            ':now': now,
            ':expiresAt': this.#expiresAt(now),
            ':owner': lease.owner,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw this.#translate(consumer, eventId, error);
      throw new LeaseLostError(consumer, eventId, lease.owner, lossStateOf(plain(error.Item)));
    }
  }

  /**
   * Heartbeat: moves a held lease's expiry to now + `leaseMs`, only if `lease.owner` still owns the in-progress
   * record; otherwise throws LeaseLostError saying what happened.
   */
  async extend(consumer: string, eventId: string, lease: Lease, leaseMs: number): Promise<Lease> {
    const expiresAt = this.#now() + leaseMs;
    try {
      await this.#client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, eventId) },
          UpdateExpression: 'SET leaseExpiresAt = :expiresAt',
          ConditionExpression: 'leaseOwner = :owner AND #status = :inProgress',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':expiresAt': expiresAt,
            ':owner': lease.owner,
            ':inProgress': DedupStatus.InProgress,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { owner: lease.owner, expiresAt };
    } catch (error) {
      if (!isConditionFailure(error)) throw this.#translate(consumer, eventId, error);
      throw new LeaseLostError(consumer, eventId, lease.owner, lossStateOf(plain(error.Item)));
    }
  }

  /** How a lease this worker held stands now: undefined while `lease.owner` still holds it, else how it was lost. */
  async lossState(consumer: string, eventId: string, lease: Lease): Promise<LeaseLossState | undefined> {
    try {
      const { Item } = await this.#client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, eventId) },
          ConsistentRead: true,
        }),
      );
      if (Item?.leaseOwner === lease.owner && Item.status === DedupStatus.InProgress) return undefined;
      return lossStateOf(Item);
    } catch (error) {
      throw this.#translate(consumer, eventId, error);
    }
  }

  /** Deletes the claim after a failed side effect so a retry need not wait for the lease; false if not ours. */
  async release(consumer: string, eventId: string, lease: Lease): Promise<boolean> {
    try {
      await this.#client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { [DEDUP_PARTITION_KEY]: eventDedupKey(consumer, eventId) },
          ConditionExpression: 'leaseOwner = :owner',
          ExpressionAttributeValues: { ':owner': lease.owner },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw this.#translate(consumer, eventId, error);
    }
  }

  /** Sends a transaction; returns undefined on success or the cancellation reasons of a refused condition. */
  async #transact(
    consumer: string,
    eventId: string,
    items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>,
  ): Promise<CancellationReason[] | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client.send(new TransactWriteCommand({ TransactItems: items }));
        return undefined;
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (!reasons) throw this.#translate(consumer, eventId, error);
        if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) return reasons;
        const codes = reasons.map((r) => r.Code).filter((c) => c && c !== 'None');
        const retryable = codes.length === 0 || codes.every((c) => RETRYABLE_CANCELLATION_CODES.has(c ?? ''));
        if (retryable && attempt < CONFLICT_ATTEMPTS) {
          await this.#sleep(10 * 2 ** attempt + Math.floor(Math.random() * 20));
          continue;
        }
        if (retryable) {
          throw new ConsumerRetryableError(
            consumer,
            eventId,
            `The transaction was cancelled (${codes.join(', ') || 'no reason'})`,
            error,
          );
        }
        throw new InvalidWritesError(
          consumer,
          eventId,
          `DynamoDB rejected the transaction (${codes.join(', ')})`,
        );
      }
    }
  }

  #businessFailure(consumer: string, eventId: string, reasons: CancellationReason[]): Error {
    const index = reasons.findIndex((r, i) => i >= CONSUMER_ITEMS && r.Code === 'ConditionalCheckFailed');
    return new BusinessConditionFailedError(consumer, eventId, Math.max(0, index - CONSUMER_ITEMS), reasons);
  }

  #translate(consumer: string, eventId: string, error: unknown): unknown {
    if (isRetryableAwsError(error)) {
      return new ConsumerRetryableError(
        consumer,
        eventId,
        `DynamoDB call failed (${(error as Error).name})`,
        error,
      );
    }
    return error;
  }
}
