import { randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { DATAREF, type DataReference } from '../contract/large-events.ts';
import {
  readBusinessVersion,
  type VersionItemRef,
  versionOf,
  versionWriteIndex,
  withVersion,
} from './business-version.ts';
import {
  claimCheck,
  type LargeEventPayload,
  type LargeEventSettings,
  type LargeEventsOptions,
  largeEventSettings,
  referenceEnvelope,
} from './claim-check.ts';
import {
  type BuiltEnvelope,
  buildEnvelope,
  DEFAULT_MAX_EVENT_BYTES,
  type EventInput,
  isTraceparent,
  MAX_EVENT_BYTES_LIMIT,
  type OutboxEnvelope,
} from './envelope.ts';
import {
  attributesBytes,
  ENVELOPE_COMPRESSION_ENV,
  type EnvelopeCompression,
  envelopeCompression,
  GZIP_THRESHOLD_BYTES,
  storedEnvelope,
} from './envelope-storage.ts';
import {
  type ConflictKind,
  type ConflictReason,
  OutboxConfigurationError,
  OutboxConflictError,
  OutboxLimitError,
  OutboxOutcomeUnknownError,
  OutboxRetryableError,
  OutboxValidationError,
} from './errors.ts';
import { uuidv7 } from './ids.ts';
import {
  attributeTextProblem,
  type DeliveryProblem,
  deliveryProblems,
  PUBLISH_TARGETS,
  PUBLISH_TARGETS_ENV,
  type PublishTarget,
  parsePublishTargets,
} from './message-limits.ts';
import {
  DEFAULT_RETENTION_DAYS,
  EXPIRES_AT,
  eventSortKey,
  HEAD_SORT_KEY,
  isReservedPartitionKey,
  MAX_SEQUENCE,
  OUTBOX_TABLE_ENV,
  OutboxStatus,
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_SHARD,
  pendingShardOf,
  preparedSortKey,
  RESERVED_PARTITION_KEY_PREFIXES,
  requestSortKey,
  SORT_KEY,
} from './record-format.ts';

export { GZIP_THRESHOLD_BYTES };

/** One DocumentClient-style TransactWriteItems entry of the caller's own business writes. */
export type BusinessWrite = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export const MAX_TRANSACTION_ITEMS = 100;
const MAX_VERSION_RETRIES = 3;
/** Sends of one transaction (same ClientRequestToken) while its responses are lost, before "outcome unknown". */
const MAX_AMBIGUOUS_SENDS = 3;
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** DynamoDB's partition key limit. */
export const MAX_AGGREGATE_KEY_BYTES = 1024;

export interface OutboxWriterOptions {
  /** @default process.env.OUTBOX_TABLE_NAME */
  readonly tableName?: string;
  /** Default CloudEvents `source` for events that do not set one. @default process.env.OUTBOX_EVENT_SOURCE */
  readonly source?: string;
  /** Largest envelope accepted, in bytes (up to 1 MB). @default 262144 (256 KB) */
  readonly maxEventBytes?: number;
  /**
   * The kinds of target the relay publishes to: every event is checked at write time against all their limits,
   * so nothing is committed that the relay could never deliver.
   * @default process.env.OUTBOX_PUBLISH_TARGETS (comma-separated), else all of `sns`, `sqs`, `eventbridge`
   */
  readonly targets?: readonly PublishTarget[];
  /**
   * Claim-check: the `data` of an event whose message would exceed `maxEventBytes` or a target's limit is stored
   * in this S3 bucket before the transaction, and the envelope carries a `dataref` instead. `false`: such events
   * are refused (OutboxLimitError).
   * @default from OUTBOX_LARGE_EVENTS_BUCKET / _PREFIX / _MAX_BYTES (outbox.producerEnvironment); off when unset
   */
  readonly largeEvents?: LargeEventsOptions | false;
  /** @default one DocumentClient shared by the Lambda container */
  readonly client?: DynamoDBDocumentClient;
  /** Clock for tests. @default Date.now */
  readonly now?: () => number;
  /**
   * `when-cheaper`: gzip an envelope whenever that makes its record fewer started KB (a ~1 KB event: 3 write units
   * fewer per event); `large-only`: only past 300 KB (every reader decodes both). See envelope-storage.ts.
   * @default process.env.OUTBOX_ENVELOPE_COMPRESSION, else 'when-cheaper'
   */
  readonly compressEnvelopes?: EnvelopeCompression;
}

export interface AggregateRef {
  /** The aggregate key, e.g. `order#123`. Becomes the envelope's `partitionkey`. */
  readonly key: string;
  /**
   * The aggregate's version (its last event sequence) the caller read. The commit succeeds only if it
   * is still current; events get sequences expectedVersion+1, +2, ...
   * @default read the current version and retry up to 3 times on a race (no optimistic check)
   */
  readonly expectedVersion?: number;
  /**
   * Keep the aggregate's version on this item of the caller's `writes` (a Put or Update of it; attribute
   * `outboxVersion`) instead of a head item in the outbox table: 2 write units fewer per commit. Use it for every
   * commit of the aggregate (prepare/confirm keep using the head); a commit that mixes is refused, never lost.
   * @default the head item (`sk = HEAD`) in the outbox table
   */
  readonly versionOn?: VersionItemRef;
}

export interface OutboxEventInput<TData = unknown> extends EventInput<TData> {
  /** Publish no earlier than this time (delayed delivery, at most one sweeper period late). */
  readonly deliverAt?: Date | number;
}

export interface TransactInput {
  readonly aggregate: AggregateRef;
  readonly events: readonly OutboxEventInput[];
  /** The caller's business writes (Put, Update, Delete, ConditionCheck), committed atomically with the events. */
  readonly writes?: readonly BusinessWrite[];
  /**
   * Makes retries of this call safe: the same id (per aggregate) for every retry of one logical command, e.g.
   * the command id or the triggering message's id. A `REQ#<requestId>` record commits with the events, and a
   * later call with the same id returns that first commit (`replayed: true`) instead of writing again, for as
   * long as the record lives (7 days). 1-128 printable ASCII characters.
   */
  readonly requestId?: string;
}

/** Identifies a prepared message: what prepare() returns and confirm()/cancel() take. */
export interface PreparedMessage {
  readonly aggregateKey: string;
  readonly id: string;
}

export interface ConfirmResult {
  readonly id: string;
  /** The sequence the event got when it was confirmed. */
  readonly sequence: number;
  /** False when an earlier confirm() had already confirmed it (confirm is idempotent). */
  readonly confirmedNow: boolean;
}

export interface TransactResult {
  readonly events: readonly OutboxEnvelope[];
  /** The aggregate's version after the commit (the last event's sequence). */
  readonly version: number;
  /** True when an earlier call with the same requestId had committed: this call wrote nothing. */
  readonly replayed?: boolean;
}

let sharedClient: DynamoDBDocumentClient | undefined;

/** One client per Lambda container: created on first use and reused across invocations. */
export function sharedDocumentClient(): DynamoDBDocumentClient {
  sharedClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return sharedClient;
}

const RETRYABLE_CODES = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);

function isRetryableSdkError(error: unknown): boolean {
  const e = error as {
    name?: string;
    code?: string;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  if (e?.$retryable || NETWORK_ERROR_CODES.has(e?.code ?? '')) return true;
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (status >= 500) return true;
  return [
    'ThrottlingException',
    'ProvisionedThroughputExceededException',
    'RequestLimitExceeded',
    'TransactionInProgressException',
    'InternalServerError',
    'ServiceUnavailable',
    'TimeoutError',
  ].includes(e?.name ?? '');
}

/** Checks an aggregate key can be the outbox table's partition key; `field` names it in the error. */
function validateAggregateKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key.trim() === '') {
    throw new OutboxValidationError(field, 'the aggregate key is required and must be a non-empty string');
  }
  if (Buffer.byteLength(key) > MAX_AGGREGATE_KEY_BYTES) {
    throw new OutboxValidationError(
      field,
      `must be at most ${MAX_AGGREGATE_KEY_BYTES} bytes (DynamoDB partition key limit)`,
    );
  }
  const problem = attributeTextProblem(key);
  if (problem) throw new OutboxValidationError(field, problem);
  if (isReservedPartitionKey(key)) {
    throw new OutboxValidationError(
      field,
      `"${key.slice(0, 40)}" is in the outbox table's reserved key space (HEAD, or starting with ${RESERVED_PARTITION_KEY_PREFIXES.join(', ')}); give the aggregate key a prefix of its own, e.g. "order#123"`,
    );
  }
  return key;
}

function publishTargets(option: readonly PublishTarget[] | undefined): readonly PublishTarget[] {
  if (option !== undefined) {
    const parsed = Array.isArray(option) ? parsePublishTargets(option.join(',')) : undefined;
    if (!parsed) {
      throw new OutboxConfigurationError(
        `targets must be a non-empty list of ${PUBLISH_TARGETS.join(', ')}, but ${JSON.stringify(option)} was provided.`,
      );
    }
    return parsed;
  }
  const raw = process.env[PUBLISH_TARGETS_ENV]?.trim();
  if (!raw) return PUBLISH_TARGETS;
  const parsed = parsePublishTargets(raw);
  if (!parsed) {
    throw new OutboxConfigurationError(
      `${PUBLISH_TARGETS_ENV} must list ${PUBLISH_TARGETS.join(', ')} (comma-separated), but "${raw}" was provided; fix the function's environment.`,
    );
  }
  return parsed;
}

/**
 * How #build treats the events it is given. New events are checked against this writer's limits and targets and
 * get the caller's trace. A confirmed message was checked by prepare() (by the producer's writer, sized for the
 * longest sequence), so confirm commits it as prepared: whichever writer confirms it (the producer, or the
 * sweeper with its defaults and its own trace) must not refuse it or change it.
 */
interface EventOrigin {
  readonly checkLimits: boolean;
  readonly deriveTraceparent: boolean;
}
const NEW_EVENTS: EventOrigin = { checkLimits: true, deriveTraceparent: true };
/** A prepared event whose data prepare() already stored in S3: confirm commits its reference as it is. */
const STORED_REFERENCE = Symbol('storedReference');
type StoredEventInput = OutboxEventInput & { readonly [STORED_REFERENCE]?: DataReference };
const FROM_PREPARED: EventOrigin = { checkLimits: false, deriveTraceparent: false };

/** The event a PRE# item holds, as prepare() stored it (plain or gzipped JSON). */
function preparedEventOf(item: Record<string, unknown>, id: string): StoredEventInput {
  const zipped = item.preparedEventGzip as Uint8Array | undefined;
  const json = zipped === undefined ? (item.preparedEvent as string) : gunzipSync(zipped).toString('utf8');
  const stored = JSON.parse(json) as Partial<OutboxEnvelope>;
  const reference =
    typeof stored.dataref === 'string'
      ? {
          dataref: stored.dataref,
          datasize: stored.datasize as number,
          datasha256: stored.datasha256 as string,
        }
      : undefined;
  return {
    ...(reference ? { [STORED_REFERENCE]: reference } : {}),
    id,
    type: stored.type as string,
    source: stored.source as string,
    data: reference ? null : stored.data,
    time: stored.time as string,
    ...(stored.subject === undefined ? {} : { subject: stored.subject }),
    ...(stored.dataschema === undefined ? {} : { dataschema: stored.dataschema }),
    ...(stored.traceparent === undefined ? {} : { traceparent: stored.traceparent }),
  };
}

/**
 * True when the request may have been applied although it failed: no answer arrived (timeout, network error), the
 * service failed after receiving it (5xx), or a send with the same ClientRequestToken is still running. A 4xx
 * answer (throttling, a cancelled transaction, validation) means DynamoDB did not apply it.
 */
function isAmbiguousSdkError(error: unknown): boolean {
  const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (status >= 500) return true;
  const name = e?.name ?? '';
  if (
    ['TimeoutError', 'RequestTimeout', 'TransactionInProgressException', 'InternalServerError'].includes(name)
  )
    return true;
  return NETWORK_ERROR_CODES.has(e?.code ?? '') || NETWORK_ERROR_CODES.has(name);
}

/** Puts large-event payloads; the S3 client module loads on the first large event only. */
async function storePayloads(
  settings: LargeEventSettings,
  payloads: readonly LargeEventPayload[],
): Promise<void> {
  const { putPayloads } = await import('./claim-check-store.ts');
  await putPayloads(settings, payloads);
}

/** What a target sees of a built envelope (message-limits.ts sizes it). */
function publishedMessage({ envelope, bytes }: BuiltEnvelope) {
  return {
    envelopeBytes: bytes,
    type: envelope.type,
    source: envelope.source,
    partitionKey: envelope.partitionkey,
    sequence: envelope.sequence,
    ...(envelope.subject === undefined ? {} : { subject: envelope.subject }),
    // The relay sends a valid traceparent as a message attribute too (message-limits.ts).
    ...(isTraceparent(envelope.traceparent) ? { traceparent: envelope.traceparent } : {}),
  };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface PreparedEvent {
  readonly built: BuiltEnvelope;
  readonly deliverAt?: number;
}

/** A transaction as #build makes it: the command, the events, and the large-event payloads to put first. */
interface BuiltTransaction {
  readonly command: TransactWriteCommandInput;
  readonly events: OutboxEnvelope[];
  readonly payloads: readonly LargeEventPayload[];
}

/**
 * Commits business writes and outbox events in one TransactWriteItems: both happen or neither does.
 * Adds an aggregate head item (`sk = HEAD`) whose condition serialises writers of one aggregate.
 */
export class OutboxWriter {
  readonly tableName: string;
  readonly maxEventBytes: number;
  /** The targets every event is checked against. */
  readonly targets: readonly PublishTarget[];
  /** Claim-check settings; undefined when large events are off. */
  readonly largeEvents: LargeEventSettings | undefined;
  readonly #source: string | undefined;
  readonly #client: DynamoDBDocumentClient;
  readonly #now: () => number;
  readonly #compression: EnvelopeCompression;

  constructor(options: OutboxWriterOptions = {}) {
    const tableName = options.tableName ?? process.env[OUTBOX_TABLE_ENV];
    if (!tableName) {
      throw new OutboxConfigurationError(
        `No outbox table configured: pass { tableName } or set ${OUTBOX_TABLE_ENV} (in CDK: environment: outbox.producerEnvironment, and outbox.grantWrite(fn)).`,
      );
    }
    const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    if (!Number.isInteger(maxEventBytes) || maxEventBytes < 1024 || maxEventBytes > MAX_EVENT_BYTES_LIMIT) {
      throw new OutboxConfigurationError(
        `maxEventBytes must be an integer from 1024 to ${MAX_EVENT_BYTES_LIMIT} (1 MB), but ${maxEventBytes} was provided.`,
      );
    }
    this.tableName = tableName;
    this.maxEventBytes = maxEventBytes;
    this.targets = publishTargets(options.targets);
    this.largeEvents = largeEventSettings(options.largeEvents);
    this.#source = options.source ?? process.env.OUTBOX_EVENT_SOURCE;
    this.#client = options.client ?? sharedDocumentClient();
    this.#now = options.now ?? Date.now;
    this.#compression = envelopeCompression(
      options.compressEnvelopes ?? process.env[ENVELOPE_COMPRESSION_ENV],
    );
  }

  /** Commits `writes` and `events` atomically. Throws OutboxValidationError, OutboxConflictError or OutboxRetryableError. */
  async transact(input: TransactInput): Promise<TransactResult> {
    const { aggregate } = this.#validateShape(input);
    if (aggregate.expectedVersion !== undefined) return this.#commit(input, aggregate.expectedVersion);
    return this.#append(aggregate.key, () => input, NEW_EVENTS, aggregate.versionOn);
  }

  /**
   * Append without an expected version: reads the head, commits at that version, and retries a lost race
   * (a conflict on the head alone) up to MAX_VERSION_RETRIES times. Any other conflict is thrown at once.
   */
  async #append(
    aggregateKey: string,
    inputAt: (version: number) => TransactInput,
    origin: EventOrigin = NEW_EVENTS,
    versionOn?: VersionItemRef,
  ): Promise<TransactResult> {
    for (let attempt = 1; ; attempt++) {
      const version = await this.currentVersion(aggregateKey, versionOn);
      try {
        return await this.#commit(inputAt(version), version, origin);
      } catch (error) {
        // A lost race fails the version and, when the winner took the same sequences, the event records too.
        const onlyVersion =
          error instanceof OutboxConflictError &&
          error.reasons.some((r) => r.kind === 'aggregate-version') &&
          error.reasons.every((r) => r.kind === 'aggregate-version' || r.kind === 'outbox-record');
        if (!onlyVersion || attempt >= MAX_VERSION_RETRIES) throw error;
      }
    }
  }

  /** The aggregate's current version (0 when it has no events), read with strong consistency. */
  async currentVersion(aggregateKey: string, versionOn?: VersionItemRef): Promise<number> {
    try {
      if (versionOn) return await readBusinessVersion(this.#client, versionOn);
      const head = await this.#client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: aggregateKey, [SORT_KEY]: HEAD_SORT_KEY },
          ConsistentRead: true,
          ProjectionExpression: 'lastSequence',
        }),
      );
      return (head.Item?.lastSequence as number | undefined) ?? 0;
    } catch (error) {
      if (isRetryableSdkError(error))
        throw new OutboxRetryableError('Reading the aggregate version failed', error);
      throw error;
    }
  }

  /** Builds the TransactWriteItems input without sending it (used by tests and benchmarks). */
  buildTransaction(
    input: TransactInput,
    expectedVersion: number,
  ): {
    command: TransactWriteCommandInput;
    events: OutboxEnvelope[];
    payloads: readonly LargeEventPayload[];
  } {
    return this.#build(this.#validateShape(input), expectedVersion);
  }

  /** Builds the transaction of an input already checked by #validateShape. */
  #build(input: TransactInput, expectedVersion: number, origin: EventOrigin = NEW_EVENTS): BuiltTransaction {
    const { aggregate, writes = [] } = input;
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new OutboxValidationError(
        'aggregate.expectedVersion',
        `must be an integer ≥ 0, got ${expectedVersion}`,
      );
    }
    const now = this.#now();
    const payloads: LargeEventPayload[] = [];
    const prepared: PreparedEvent[] = input.events.map((event: StoredEventInput, i) => {
      const field = `events[${i}]`;
      let built = buildEnvelope(event, {
        partitionKey: aggregate.key,
        sequence: expectedVersion + i + 1,
        maxEventBytes: origin.checkLimits ? this.#envelopeLimit : MAX_EVENT_BYTES_LIMIT,
        field,
        now,
        deriveTraceparent: origin.deriveTraceparent,
        ...(this.#source === undefined ? {} : { defaultSource: this.#source }),
      });
      const stored = event[STORED_REFERENCE];
      if (stored) built = referenceEnvelope(built.envelope, stored);
      if (origin.checkLimits) {
        const deliverable = this.#deliverable(built, field);
        built = deliverable.built;
        if (deliverable.payload) payloads.push(deliverable.payload);
      }
      const deliverAt = event.deliverAt === undefined ? undefined : +event.deliverAt;
      if (deliverAt !== undefined && !Number.isFinite(deliverAt)) {
        throw new OutboxValidationError(`events[${i}].deliverAt`, 'must be a Date or epoch milliseconds');
      }
      return deliverAt === undefined ? { built } : { built, deliverAt };
    });
    const nextVersion = expectedVersion + prepared.length;
    const head = {
      Update: {
        TableName: this.tableName,
        Key: { [PARTITION_KEY]: aggregate.key, [SORT_KEY]: HEAD_SORT_KEY },
        UpdateExpression: 'SET lastSequence = :next, updatedAt = :now',
        ConditionExpression:
          expectedVersion === 0 ? 'attribute_not_exists(lastSequence)' : 'lastSequence = :expected',
        ExpressionAttributeValues: {
          ':next': nextVersion,
          ':now': now,
          ...(expectedVersion === 0 ? {} : { ':expected': expectedVersion }),
        },
      },
    };
    const versionOn = aggregate.versionOn;
    const records = prepared.map((p) => ({
      Put: {
        TableName: this.tableName,
        Item: this.#record(aggregate.key, p, now),
        // A sequence is never overwritten, also when head-based and versionOn commits of one aggregate mix.
        ConditionExpression: `attribute_not_exists(${SORT_KEY})`,
      },
    }));
    const request =
      input.requestId === undefined
        ? []
        : [this.#requestRecord(aggregate.key, input.requestId, prepared, nextVersion, now)];
    if (versionOn) {
      const index = versionWriteIndex(writes, versionOn);
      const versioned = writes.map((w, i) =>
        i === index ? withVersion(w, expectedVersion, nextVersion) : w,
      );
      return {
        command: { TransactItems: [...versioned, ...request, ...records] },
        events: prepared.map((p) => p.built.envelope),
        payloads,
      };
    }
    return {
      command: { TransactItems: [...writes, head, ...request, ...records] },
      events: prepared.map((p) => p.built.envelope),
      payloads,
    };
  }

  /** Largest envelope (data inline) #build accepts: the large-event maximum when claim-check is on. */
  get #envelopeLimit(): number {
    // With claim-check on, #claimCheckIfLarge gives the typed error for an event over the large-event maximum.
    return this.largeEvents ? Number.MAX_SAFE_INTEGER : this.maxEventBytes;
  }

  /**
   * Claim-check: when large events are on and the envelope is over maxEventBytes or a target's message size, the
   * payload to put in S3 and the small envelope that references it; undefined when it goes inline.
   */
  #claimCheckIfLarge(
    built: BuiltEnvelope,
    field: string,
    problems: readonly DeliveryProblem[],
  ): { built: BuiltEnvelope; payload: LargeEventPayload } | undefined {
    const settings = this.largeEvents;
    if (!settings) return undefined;
    const tooLarge = built.bytes > this.maxEventBytes || problems.some((p) => p.part === 'message');
    if (!tooLarge) return undefined;
    if (built.bytes > settings.maxEventBytes) {
      throw new OutboxLimitError(
        field,
        's3',
        `large event maximum (${settings.maxEventBytes} bytes)`,
        `the envelope is ${built.bytes} bytes, over the largest event the outbox accepts`,
        `store the payload yourself (e.g. in S3) and send a reference, or raise largeEvents.maxEventBytes (${DATAREF} payloads are read whole into the consumer's memory).`,
      );
    }
    return claimCheck(built, settings);
  }

  /**
   * Phase one of a two-phase message: stores the event as PREPARED. It is never published unless confirm()
   * is called (or the producer's check-back function answers "committed"). Its sequence is assigned at
   * confirm time, so a cancelled message leaves no gap in the aggregate's sequence.
   */
  async prepare(aggregateKey: string, event: OutboxEventInput): Promise<PreparedMessage> {
    validateAggregateKey(aggregateKey, 'aggregateKey');
    const id = event?.id ?? uuidv7(this.#now());
    const now = this.#now();
    // Validate and size it as it will be published: confirm assigns the sequence later, so take the longest one
    // the record format allows, and keep the producer's traceparent (or its absence) for confirm to reuse.
    let built = buildEnvelope(
      { ...event, id },
      {
        partitionKey: aggregateKey,
        sequence: MAX_SEQUENCE,
        maxEventBytes: this.#envelopeLimit,
        now,
        ...(this.#source === undefined ? {} : { defaultSource: this.#source }),
      },
    );
    // A large event's data goes to S3 now, before the PRE# item that references it; confirm reuses the reference.
    const deliverable = this.#deliverable(built, 'event');
    built = deliverable.built;
    if (deliverable.payload && this.largeEvents) await storePayloads(this.largeEvents, [deliverable.payload]);
    const { sequence: _assignedAtConfirm, ...stored } = JSON.parse(built.json) as OutboxEnvelope;
    const storedJson = JSON.stringify(stored);
    const put = new PutCommand({
      TableName: this.tableName,
      Item: {
        [PARTITION_KEY]: aggregateKey,
        [SORT_KEY]: preparedSortKey(id),
        id,
        type: built.envelope.type,
        source: built.envelope.source,
        status: OutboxStatus.Prepared,
        ...(Buffer.byteLength(storedJson) > GZIP_THRESHOLD_BYTES
          ? { preparedEventGzip: gzipSync(storedJson) }
          : { preparedEvent: storedJson }),
        createdAt: now,
        attempts: 0,
        checkbackAttempts: 0,
        [PENDING_SHARD]: pendingShardOf(id),
        [PENDING_DUE_AT]: now,
      },
      ConditionExpression: 'attribute_not_exists(sk)',
    });
    const message = { aggregateKey, id };
    const isSameMessage = (item: Record<string, unknown>) =>
      item.type === built.envelope.type && item.source === built.envelope.source;
    let lost: unknown;
    for (let send = 1; send <= MAX_AMBIGUOUS_SENDS; send++) {
      try {
        await this.#client.send(put);
        return message;
      } catch (error) {
        if (isAmbiguousSdkError(error)) {
          lost = error;
          if (send < MAX_AMBIGUOUS_SENDS) await pause(50 * 2 ** send);
          continue;
        }
        if ((error as Error).name !== 'ConditionalCheckFailedException') {
          throw isRetryableSdkError(error)
            ? new OutboxRetryableError(`Preparing message ${id} failed`, error)
            : error;
        }
        // Already there: our own earlier send (lost response) or the caller's retry is fine; another event is not.
        const existing = await this.#readPrepared(message);
        if (isSameMessage(existing)) return message;
        throw new OutboxValidationError(
          'event.id',
          `a message with id ${id} was already prepared for a different event (type "${String(existing.type)}"); use a new id`,
        );
      }
    }
    const found = await this.#readPrepared(message).catch(() => undefined);
    if (found && isSameMessage(found)) return message;
    throw new OutboxOutcomeUnknownError(aggregateKey, [id], lost, {
      ...(event?.id === undefined
        ? {}
        : {
            safeRetry: `Retry prepare() with the same event id ${id}: it finds the message if this call stored it.`,
          }),
    });
  }

  /**
   * Phase two: publishes a prepared message. Atomically marks the PRE# item CONFIRMED and appends the event
   * as a READY record with the aggregate's next sequence. Idempotent; throws OutboxConflictError if the
   * message was cancelled.
   */
  async confirm(message: PreparedMessage): Promise<ConfirmResult> {
    const prepared = await this.#readPrepared(message);
    if (prepared.status === OutboxStatus.Confirmed) {
      return { id: message.id, sequence: prepared.confirmedSequence as number, confirmedNow: false };
    }
    const event = preparedEventOf(prepared, message.id);
    try {
      const { version } = await this.#append(
        message.aggregateKey,
        (current) => ({
          aggregate: { key: message.aggregateKey },
          events: [event],
          writes: [this.#finishPrepared(message, OutboxStatus.Confirmed, { confirmedSequence: current + 1 })],
        }),
        FROM_PREPARED,
      );
      return { id: message.id, sequence: version, confirmedNow: true };
    } catch (error) {
      if (error instanceof OutboxOutcomeUnknownError) {
        // confirm() is idempotent (the PRE# item's status is its condition), so retrying it is always safe.
        throw new OutboxOutcomeUnknownError(message.aggregateKey, [message.id], error.cause, {
          safeRetry: `confirm() is idempotent: retry it. Do not cancel the message: the business change it announces is done.`,
        });
      }
      if (
        !(error instanceof OutboxConflictError) ||
        !error.reasons.some((r) => r.kind === 'business-write')
      ) {
        throw error;
      }
      // Someone else confirmed or cancelled it meanwhile: answer from the item.
      const now = await this.#readPrepared(message);
      if (now.status === OutboxStatus.Confirmed) {
        return { id: message.id, sequence: now.confirmedSequence as number, confirmedNow: false };
      }
      throw error;
    }
  }

  /** Rolls a prepared message back: it is never published. Idempotent; refuses a confirmed message. */
  async cancel(message: PreparedMessage, reason = 'cancelled by the producer'): Promise<void> {
    const update = this.#finishPrepared(message, OutboxStatus.Cancelled, { lastError: reason }).Update;
    try {
      await this.#client.send(new UpdateCommand(update));
    } catch (error) {
      if ((error as Error).name !== 'ConditionalCheckFailedException') {
        throw isRetryableSdkError(error)
          ? new OutboxRetryableError(`Cancelling ${message.id} failed`, error)
          : error;
      }
      const item = await this.#readPrepared(message);
      if (item.status === OutboxStatus.Cancelled) return;
      throw new OutboxConflictError(
        message.aggregateKey,
        [{ transactIndex: 0, inputIndex: 0, kind: 'outbox-record', code: `Already${String(item.status)}` }],
        error,
      );
    }
  }

  #finishPrepared(message: PreparedMessage, status: string, extra: Record<string, unknown>) {
    const names = Object.keys(extra);
    const retentionSeconds = DEFAULT_RETENTION_DAYS * 86_400;
    return {
      Update: {
        TableName: this.tableName,
        Key: { [PARTITION_KEY]: message.aggregateKey, [SORT_KEY]: preparedSortKey(message.id) },
        UpdateExpression: `SET #status = :status, ${EXPIRES_AT} = :expires${names.map((n) => `, ${n} = :${n}`).join('')} REMOVE ${PENDING_SHARD}, ${PENDING_DUE_AT}`,
        ConditionExpression: '#status = :prepared',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':status': status,
          ':prepared': OutboxStatus.Prepared,
          ':expires': Math.floor(this.#now() / 1000) + retentionSeconds,
          ...Object.fromEntries(names.map((n) => [`:${n}`, extra[n]])),
        },
      },
    };
  }

  async #readPrepared(message: PreparedMessage): Promise<Record<string, unknown>> {
    const result = await this.#client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [PARTITION_KEY]: message.aggregateKey, [SORT_KEY]: preparedSortKey(message.id) },
        ConsistentRead: true,
      }),
    );
    if (!result.Item) {
      throw new OutboxValidationError(
        'message',
        `no prepared message ${message.id} for aggregate "${message.aggregateKey}"`,
      );
    }
    return result.Item;
  }

  /** Throws OutboxLimitError when a configured target would refuse the event as built. */
  /**
   * The envelope as it will be stored and published: a large one's data offloaded (claim-check), then checked
   * against the targets. The targets' limits are computed once for an inline event (the write path's common case).
   */
  #deliverable(built: BuiltEnvelope, field: string): { built: BuiltEnvelope; payload?: LargeEventPayload } {
    const problems = deliveryProblems(publishedMessage(built), this.targets);
    const offloaded = this.#claimCheckIfLarge(built, field, problems);
    if (offloaded) {
      this.#assertDeliverable(deliveryProblems(publishedMessage(offloaded.built), this.targets), field);
      return offloaded;
    }
    this.#assertDeliverable(problems, field);
    return { built };
  }

  #assertDeliverable(problems: readonly DeliveryProblem[], field: string): void {
    const [problem] = problems;
    if (problem) {
      const at = problem.part === 'message' ? field : `${field}.${problem.part}`;
      throw new OutboxLimitError(at, problem.target, problem.limit, problem.reason);
    }
  }

  #record(aggregateKey: string, { built, deliverAt }: PreparedEvent, now: number): Record<string, unknown> {
    const { envelope } = built;
    const scheduled = deliverAt !== undefined && deliverAt > now;
    const item: Record<string, unknown> = {
      [PARTITION_KEY]: aggregateKey,
      [SORT_KEY]: eventSortKey(envelope.sequence),
      id: envelope.id,
      type: envelope.type,
      source: envelope.source,
      sequence: envelope.sequence,
      status: scheduled ? OutboxStatus.Scheduled : OutboxStatus.Ready,
      createdAt: now,
      ...(deliverAt === undefined ? {} : { deliverAt }),
      attempts: 0,
      [PENDING_SHARD]: pendingShardOf(envelope.id),
      [PENDING_DUE_AT]: scheduled ? deliverAt : now,
    };
    const stored = storedEnvelope(
      built.json,
      built.bytes,
      this.#compression === 'large-only' ? 0 : attributesBytes(item),
      this.#compression,
    );
    return { ...item, ...stored };
  }

  async #commit(
    input: TransactInput,
    expectedVersion: number,
    origin: EventOrigin = NEW_EVENTS,
  ): Promise<TransactResult> {
    const { command, events, payloads } = this.#build(input, expectedVersion, origin);
    // Large event payloads go first: an envelope is never committed before the object it references.
    if (payloads.length > 0 && this.largeEvents) await storePayloads(this.largeEvents, payloads);
    const committed: TransactResult = { events, version: expectedVersion + events.length };
    // One token for every send of this transaction: if an earlier send committed and only its response was lost,
    // DynamoDB answers a re-send with success (within 10 minutes) instead of applying it again.
    const request = new TransactWriteCommand({ ...command, ClientRequestToken: randomUUID() });
    let lost: unknown;
    for (let send = 1; send <= MAX_AMBIGUOUS_SENDS; send++) {
      try {
        await this.#client.send(request);
        return committed;
      } catch (error) {
        if (isAmbiguousSdkError(error)) {
          lost = error;
          if (send < MAX_AMBIGUOUS_SENDS) await pause(50 * 2 ** send);
          continue;
        }
        const translated = this.#translate(error, input, expectedVersion);
        if (translated instanceof OutboxConflictError) {
          if (translated.reasons.some((r) => r.kind === 'request')) return this.#replay(input);
          // After a lost response the conditions may be failing on our own earlier send.
          if (lost !== undefined && (await this.#isStored(events))) return committed;
        }
        throw translated;
      }
    }
    if (await this.#isStored(events)) return committed;
    throw new OutboxOutcomeUnknownError(
      input.aggregate.key,
      events.map((e) => e.id),
      lost,
      input.requestId === undefined ? {} : { requestId: input.requestId },
    );
  }

  /** Whether the transaction's first event is stored under its id; false when that cannot be read either. */
  async #isStored(events: readonly OutboxEnvelope[]): Promise<boolean> {
    const first = events[0];
    if (!first) return false;
    try {
      const { Item } = await this.#client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: first.partitionkey, [SORT_KEY]: eventSortKey(first.sequence) },
          ConsistentRead: true,
          ProjectionExpression: 'id',
        }),
      );
      return Item?.id === first.id;
    } catch {
      return false;
    }
  }

  /** The `REQ#<requestId>` record: proof that this request committed, and what it committed. */
  #requestRecord(
    aggregateKey: string,
    requestId: string,
    events: readonly PreparedEvent[],
    version: number,
    now: number,
  ) {
    return {
      Put: {
        TableName: this.tableName,
        Item: {
          [PARTITION_KEY]: aggregateKey,
          [SORT_KEY]: requestSortKey(requestId),
          requestId,
          firstSequence: version - events.length + 1,
          version,
          eventIds: events.map((e) => e.built.envelope.id),
          createdAt: now,
          [EXPIRES_AT]: Math.floor(now / 1000) + DEFAULT_RETENTION_DAYS * 86_400,
        },
        // An expired record (TTL deletion can lag) no longer counts.
        ConditionExpression: `attribute_not_exists(${SORT_KEY}) OR ${EXPIRES_AT} < :nowSeconds`,
        ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000) },
      },
    };
  }

  /** Answers a repeated requestId with what its first call committed. */
  async #replay(input: TransactInput): Promise<TransactResult> {
    const key = input.aggregate.key;
    const read = (sk: string) =>
      this.#client.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: key, [SORT_KEY]: sk },
          ConsistentRead: true,
        }),
      );
    try {
      const { Item: request } = await read(requestSortKey(input.requestId as string));
      const firstSequence = request?.firstSequence as number;
      const version = request?.version as number;
      const events: OutboxEnvelope[] = [];
      for (let sequence = firstSequence; sequence <= version; sequence++) {
        const { Item } = await read(eventSortKey(sequence));
        if (!Item) continue; // already expired after publishing
        const json =
          Item.envelopeGzip === undefined
            ? (Item.envelope as string)
            : gunzipSync(Item.envelopeGzip as Uint8Array).toString('utf8');
        events.push(JSON.parse(json) as OutboxEnvelope);
      }
      return { events, version, replayed: true };
    } catch (error) {
      if (isRetryableSdkError(error)) {
        throw new OutboxRetryableError(
          `Request "${input.requestId}" for aggregate "${key}" was committed earlier, but reading what it committed failed`,
          error,
        );
      }
      throw error;
    }
  }

  #translate(error: unknown, input: TransactInput, expectedVersion: number): unknown {
    if (
      error instanceof TransactionCanceledException ||
      (error as Error)?.name === 'TransactionCanceledException'
    ) {
      const reasons = (error as TransactionCanceledException).CancellationReasons ?? [];
      // Layout of #build: writes, head (unless versionOn), the request record (with a requestId), events.
      const writeCount = input.writes?.length ?? 0;
      const versionOn = input.aggregate.versionOn;
      const headCount = versionOn ? 0 : 1;
      const firstEvent = writeCount + headCount + (input.requestId === undefined ? 0 : 1);
      const versionIndex = versionOn ? versionWriteIndex(input.writes ?? [], versionOn) : -1;
      const failed: ConflictReason[] = [];
      reasons.forEach((reason, transactIndex) => {
        if (!reason.Code || reason.Code === 'None') return;
        const staleVersion =
          transactIndex === versionIndex &&
          reason.Code === 'ConditionalCheckFailed' &&
          versionOf((reason as { Item?: Record<string, unknown> }).Item) !== expectedVersion;
        const kind: ConflictKind = staleVersion
          ? 'aggregate-version'
          : transactIndex < writeCount
            ? 'business-write'
            : transactIndex === writeCount && headCount === 1
              ? 'aggregate-version'
              : transactIndex < firstEvent
                ? 'request'
                : 'outbox-record';
        const inputIndex =
          kind === 'business-write'
            ? transactIndex
            : kind === 'outbox-record'
              ? transactIndex - firstEvent
              : 0;
        failed.push({
          transactIndex,
          inputIndex,
          kind,
          code: reason.Code,
          ...(reason.Message ? { message: reason.Message } : {}),
        });
      });
      if (failed.some((r) => r.code === 'ConditionalCheckFailed')) {
        return new OutboxConflictError(
          input.aggregate.key,
          failed.filter((r) => r.code === 'ConditionalCheckFailed'),
          error,
        );
      }
      if (failed.length === 0 || failed.every((r) => RETRYABLE_CODES.has(r.code))) {
        return new OutboxRetryableError(
          `Transaction for aggregate "${input.aggregate.key}" was cancelled (${failed.map((r) => r.code).join(', ') || 'no reason given'})`,
          error,
        );
      }
      return new OutboxValidationError(
        'transaction',
        `DynamoDB rejected the transaction: ${failed.map((r) => `${r.kind}[${r.inputIndex}] ${r.code} ${r.message ?? ''}`).join('; ')}`,
      );
    }
    if (isRetryableSdkError(error)) {
      return new OutboxRetryableError(
        `DynamoDB refused the commit for aggregate "${input.aggregate.key}" (${(error as Error).name})`,
        error,
      );
    }
    return error;
  }

  #validateShape(input: TransactInput): TransactInput {
    if (input === null || typeof input !== 'object')
      throw new OutboxValidationError('input', 'must be an object');
    validateAggregateKey(input.aggregate?.key, 'aggregate.key');
    if (!Array.isArray(input.events) || input.events.length === 0) {
      throw new OutboxValidationError('events', 'at least one event is required');
    }
    const writes = input.writes ?? [];
    if (!Array.isArray(writes))
      throw new OutboxValidationError('writes', 'must be an array of TransactWriteItems entries');
    writes.forEach((write, i) => {
      const kinds = ['Put', 'Update', 'Delete', 'ConditionCheck'].filter((k) => write && k in write);
      if (kinds.length !== 1) {
        throw new OutboxValidationError(
          `writes[${i}]`,
          'must have exactly one of Put, Update, Delete, ConditionCheck',
        );
      }
    });
    const requestId = input.requestId;
    if (requestId !== undefined && (typeof requestId !== 'string' || !REQUEST_ID.test(requestId))) {
      throw new OutboxValidationError(
        'requestId',
        'must be 1-128 printable ASCII characters (no spaces), the same for every retry of one command',
      );
    }
    const requestRecords = requestId === undefined ? 0 : 1;
    const total = writes.length + input.events.length + 1 + requestRecords;
    if (total > MAX_TRANSACTION_ITEMS) {
      throw new OutboxValidationError(
        'transaction',
        `${writes.length} writes + ${input.events.length} events + 1 aggregate head${requestRecords ? ' + 1 request record' : ''} = ${total} items, over DynamoDB's ${MAX_TRANSACTION_ITEMS}-item transaction limit; split the command or use prepare/confirm`,
      );
    }
    return input;
  }
}
