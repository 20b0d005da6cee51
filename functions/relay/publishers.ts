import { createHash } from 'node:crypto';
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { type MessageAttributeValue, PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { isTraceparent, xrayHeaderFromTraceparent } from '../runtime/envelope.ts';
import {
  EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES,
  EVENTBRIDGE_MAX_ENTRY_BYTES,
  EVENTBRIDGE_MAX_SOURCE_BYTES,
  EVENTBRIDGE_RESERVED_SOURCE_PREFIX,
  eventBridgeEntryBytes as entryBytesOf,
  eventBridgeTime,
  type PublishedMessage,
  snsMessageBytes,
} from '../runtime/message-limits.ts';
import type { OutboxRecord } from './decode.ts';

/** Every batch API the relay uses takes at most 10 entries. */
export const MAX_ENTRIES_PER_CALL = 10;

/**
 * How one entry failed:
 * - `retryable`: throttling, 5xx, timeouts; retried with backoff, never dropped.
 * - `rejected`: the target refuses this entry's content for good (invalid characters, too large); quarantined.
 * - `fatal`: the call cannot succeed as configured (permissions, missing topic, KMS); not retried in this
 *   invocation, the aggregate stops and Lambda retries the batch.
 */
export type FailureKind = 'retryable' | 'rejected' | 'fatal';

export type EntryResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly kind: FailureKind; readonly code: string; readonly message: string };

/** One fan-out target: builds entries, knows its limits, sends one batch and classifies every outcome. */
export interface Publisher {
  /** Metric dimension and log field, e.g. `sns`, `eventbridge`, `sqs:orders.fifo`. */
  readonly name: string;
  /** Byte limit of the sum of entry sizes in one call. */
  readonly maxBatchBytes: number;
  /**
   * Records of one aggregate allowed in one call. FIFO targets take 1: if entry k of an aggregate failed while a
   * later entry of the same group succeeded, the later one would already be delivered ahead of it.
   */
  readonly recordsPerGroupPerCall: number;
  /** Size the target counts for this record's entry. */
  entryBytes(record: OutboxRecord): number;
  /** Why the target can never accept this record (e.g. too large), or undefined. */
  problem(record: OutboxRecord): string | undefined;
  /** Sends ≤ 10 entries; resolves with one result per record, in order. Never rejects. */
  send(records: readonly OutboxRecord[], signal?: AbortSignal): Promise<EntryResult[]>;
}

const OK: EntryResult = { ok: true };

/** Throttling, server faults and timeouts, under any of the spellings SNS, SQS, EventBridge and KMS use. */
const RETRYABLE =
  /thrott|internal|unavailable|timeout|timedout|slowdown|toomanyrequests|^abort|^econn|^epipe|^socket/i;

/** Permissions, keys and missing resources: retrying within the invocation cannot help. */
const FATAL = /denied|notfound|doesnotexist|disabled|invalidstate|optinrequired|authoriz|forbidden/i;

/** Codes that mean "this content is refused", not "the target is misconfigured". */
const REJECTED_CODES = new Set([
  'InvalidMessageContents',
  'InvalidParameter',
  'InvalidParameterException',
  'InvalidParameterValue',
  'InvalidParameterValueException',
  'InvalidAttributeValue',
  'InvalidAttributeName',
  'MessageTooLong',
  'ValidationException',
  'ValidationError',
  'MalformedDetail',
  'InvalidArgument',
  'NotAuthorizedForSourceException',
]);

/** Call-level errors a smaller batch may avoid: split the batch to isolate the entry that causes them. */
const SPLITTABLE_NAMES = new Set([
  ...REJECTED_CODES,
  'BatchRequestTooLong',
  'BatchRequestTooLongException',
  'AWS.SimpleQueueService.BatchRequestTooLong',
]);

interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $retryable?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/**
 * Errors the SDK throws while building the request, before anything is sent (e.g. `URIError` when SNS's query
 * encoding meets a lone surrogate): one entry's content can cause them, so they are split to isolate it.
 */
const CLIENT_SIDE_ERRORS = new Set(['URIError', 'RangeError', 'TypeError', 'SyntaxError']);

/** Classifies a whole-call failure (the SDK threw). */
export function classifyCallError(error: unknown): {
  kind: FailureKind | 'split';
  code: string;
  message: string;
} {
  const e = (error ?? {}) as SdkError;
  const code = e.name ?? e.code ?? 'Error';
  const message = typeof e.message === 'string' ? e.message.slice(0, 500) : String(error).slice(0, 500);
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (
    e.$retryable ||
    status >= 500 ||
    status === 429 ||
    RETRYABLE.test(code) ||
    RETRYABLE.test(e.code ?? '')
  ) {
    return { kind: 'retryable', code, message };
  }
  if (SPLITTABLE_NAMES.has(code)) return { kind: 'split', code, message };
  if (CLIENT_SIDE_ERRORS.has(code) && e.$metadata?.httpStatusCode === undefined)
    return { kind: 'split', code, message };
  return { kind: 'fatal', code, message };
}

/** Classifies an entry-level failure reported in a 200 response. */
export function classifyEntryError(code: string | undefined, senderFault: boolean | undefined): FailureKind {
  if (code !== undefined && REJECTED_CODES.has(code)) return 'rejected';
  if (code !== undefined && RETRYABLE.test(code)) return 'retryable';
  if (code !== undefined && FATAL.test(code)) return 'fatal';
  // SQS/SNS say whether the caller is at fault: a server-side fault is worth retrying, a caller fault is not.
  if (senderFault === true) return 'fatal';
  return 'retryable';
}

/**
 * Sends with a split fallback: when a whole call is refused for a reason one entry can cause (invalid content,
 * batch too long), halves are sent separately so only the offending entry is rejected and the rest go through.
 * If every entry of a multi-entry batch is refused that way, the cause is the configuration, not the content:
 * the entries fail as `fatal` instead of being quarantined.
 */
async function sendSplitting(
  records: readonly OutboxRecord[],
  sendOnce: (records: readonly OutboxRecord[]) => Promise<EntryResult[]>,
  signal: AbortSignal | undefined,
): Promise<EntryResult[]> {
  const callLevel = new Set<EntryResult>();
  const attempt = async (batch: readonly OutboxRecord[]): Promise<EntryResult[]> => {
    try {
      return await sendOnce(batch);
    } catch (error) {
      const { kind, code, message } = classifyCallError(error);
      if (kind !== 'split') {
        const failure: EntryResult = { ok: false, kind, code, message };
        return batch.map(() => failure);
      }
      if (batch.length === 1) {
        const rejected: EntryResult = { ok: false, kind: 'rejected', code, message };
        callLevel.add(rejected);
        return [rejected];
      }
      if (signal?.aborted)
        return batch.map(() => ({ ok: false, kind: 'retryable', code: 'AbortError', message }));
      // A batch holds at most one record per FIFO group, so its halves are independent of each other.
      const half = Math.ceil(batch.length / 2);
      return [...(await attempt(batch.slice(0, half))), ...(await attempt(batch.slice(half)))];
    }
  };
  const results = await attempt(records);
  if (records.length > 1 && results.every((r) => callLevel.has(r))) {
    return results.map((r) => (r.ok ? r : { ...r, kind: 'fatal' }));
  }
  return results;
}

/** Results from an SNS/SQS style response: `Failed[]` entries carry the batch entry Id (its index here). */
function resultsFromFailed(
  count: number,
  failed: readonly { Id?: string; Code?: string; Message?: string; SenderFault?: boolean }[] | undefined,
  successfulIds: ReadonlySet<string> | undefined,
): EntryResult[] {
  const results: EntryResult[] = new Array(count).fill(OK);
  for (const f of failed ?? []) {
    const i = Number(f.Id);
    if (!Number.isInteger(i) || i < 0 || i >= count) continue;
    results[i] = {
      ok: false,
      kind: classifyEntryError(f.Code, f.SenderFault),
      code: f.Code ?? 'Unknown',
      message: (f.Message ?? '').slice(0, 500),
    };
  }
  if (successfulIds) {
    // An entry reported neither successful nor failed was not accepted: retry it rather than assume success.
    for (let i = 0; i < count; i++) {
      if (results[i] === OK && !successfulIds.has(String(i))) {
        results[i] = {
          ok: false,
          kind: 'retryable',
          code: 'MissingResult',
          message: 'no result for this entry',
        };
      }
    }
  }
  return results;
}

const GROUP_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * FIFO MessageGroupId for an aggregate key: the key itself when it is valid (≤ 128 printable ASCII characters),
 * otherwise a stable hash of it, so one aggregate always maps to one group.
 */
export function messageGroupId(aggregateKey: string): string {
  if (GROUP_ID.test(aggregateKey)) return aggregateKey;
  return `sha256:${createHash('sha256').update(aggregateKey, 'utf8').digest('hex')}`;
}

function stringAttribute(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value };
}

const traceparents = new WeakMap<OutboxRecord, string | null>();

/**
 * The producer's W3C traceparent from the record's envelope, when it carries a valid one (parsed once per
 * record; an envelope without the word `traceparent` is not parsed at all).
 */
export function recordTraceparent(record: OutboxRecord): string | undefined {
  let cached = traceparents.get(record);
  if (cached === undefined) {
    cached = null;
    if (record.envelope.includes('"traceparent"')) {
      try {
        const value = (JSON.parse(record.envelope) as { traceparent?: unknown }).traceparent;
        if (isTraceparent(value)) cached = value;
      } catch {
        // decode.ts only passes envelopes that parse; nothing to propagate otherwise.
      }
    }
    traceparents.set(record, cached);
  }
  return cached ?? undefined;
}

/** The X-Ray trace header for the record's traceparent (SQS `AWSTraceHeader`, EventBridge `TraceHeader`). */
export function recordXrayTraceHeader(record: OutboxRecord): string | undefined {
  return xrayHeaderFromTraceparent(recordTraceparent(record));
}

/**
 * The message attributes SNS filter policies and SQS consumers may use (the envelope stays the body), plus the
 * producer's `traceparent` when the envelope has one: SNS cannot take a trace header per published message, and
 * raw delivery forwards message attributes to SQS subscriptions.
 */
export function messageAttributes(record: OutboxRecord): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {
    type: stringAttribute(record.type),
    source: stringAttribute(record.source),
    partitionkey: stringAttribute(record.pk),
    sequence: { DataType: 'Number', StringValue: String(record.sequence) },
  };
  if (record.subject) attributes.subject = stringAttribute(record.subject);
  const traceparent = recordTraceparent(record);
  if (traceparent) attributes.traceparent = stringAttribute(traceparent);
  return attributes;
}

/** What a target sees of a record, in the terms of the limits the writer checks too (message-limits.ts). */
function publishedMessage(record: OutboxRecord): PublishedMessage {
  return {
    envelopeBytes: record.envelopeBytes,
    type: record.type,
    source: record.source,
    partitionKey: record.pk,
    sequence: record.sequence,
    ...(record.subject ? { subject: record.subject } : {}),
    ...(recordTraceparent(record) ? { traceparent: recordTraceparent(record) } : {}),
  };
}

/** Size SNS and SQS count for a message: body plus each attribute's name, data type and value (UTF-8). */
export function messageBytes(record: OutboxRecord): number {
  return snsMessageBytes(publishedMessage(record));
}

/** A lone UTF-16 surrogate: valid in a JS string, but no UTF-8 encoding exists (the SDK throws `URIError`). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why the SDK cannot even encode this record's entry (checked per entry before batching, so one bad entry is
 * quarantined alone instead of failing the whole call with the clean entries of other aggregates).
 */
export function unencodable(record: OutboxRecord): string | undefined {
  const fields: [string, string | undefined][] = [
    ['envelope', record.envelope],
    ['type', record.type],
    ['source', record.source],
    ['partition key', record.pk],
    ['id', record.id],
    ['subject', record.subject],
  ];
  for (const [name, value] of fields) {
    if (value !== undefined && LONE_SURROGATE.test(value))
      return `the ${name} contains a lone UTF-16 surrogate (invalid Unicode); no target can encode it`;
  }
  return undefined;
}

function tooLarge(bytes: number, limit: number, target: string): string | undefined {
  return bytes > limit
    ? `the ${target} message is ${bytes} bytes, over the ${limit}-byte limit; store large payloads elsewhere and publish a reference`
    : undefined;
}

export interface SnsFifoPublisherOptions {
  readonly client: SNSClient;
  readonly topicArn: string;
  /** @default 262144 */
  readonly maxMessageBytes?: number;
}

/** What SNS FIFO and SQS FIFO entries share: group = aggregate key, dedup id = event id, filter attributes. */
interface FifoEntry {
  readonly Id: string;
  readonly body: string;
  readonly MessageGroupId: string;
  readonly MessageDeduplicationId: string;
  readonly MessageAttributes: Record<string, MessageAttributeValue>;
  /** X-Ray trace header from the envelope's traceparent (SQS sends it as the `AWSTraceHeader` system attribute). */
  readonly traceHeader?: string;
}

type BatchResponse = {
  readonly Failed?: Parameters<typeof resultsFromFailed>[1];
  readonly Successful?: readonly { readonly Id?: string }[];
};

/** A FIFO publisher: one entry per message group per call, partial failures read entry by entry. */
function fifoPublisher(
  name: string,
  label: string,
  limit: number,
  sendBatch: (entries: FifoEntry[], signal?: AbortSignal) => Promise<BatchResponse>,
): Publisher {
  const sendOnce = async (records: readonly OutboxRecord[], signal?: AbortSignal): Promise<EntryResult[]> => {
    const response = await sendBatch(
      records.map((r, i) => ({
        Id: String(i),
        body: r.envelope,
        MessageGroupId: messageGroupId(r.pk),
        MessageDeduplicationId: r.id,
        MessageAttributes: messageAttributes(r),
        ...(recordXrayTraceHeader(r) ? { traceHeader: recordXrayTraceHeader(r) } : {}),
      })),
      signal,
    );
    return resultsFromFailed(
      records.length,
      response.Failed,
      new Set((response.Successful ?? []).map((s) => s.Id ?? '')),
    );
  };
  return {
    name,
    maxBatchBytes: limit,
    recordsPerGroupPerCall: 1,
    entryBytes: messageBytes,
    problem: (record) => unencodable(record) ?? tooLarge(messageBytes(record), limit, label),
    send: (records, signal) => sendSplitting(records, (r) => sendOnce(r, signal), signal),
  };
}

/** SNS FIFO `PublishBatch`: group = aggregate key, dedup id = event id, attributes for filter policies. */
export function snsFifoPublisher(options: SnsFifoPublisherOptions): Publisher {
  return fifoPublisher('sns', 'SNS', options.maxMessageBytes ?? 262_144, (entries, signal) =>
    options.client.send(
      new PublishBatchCommand({
        TopicArn: options.topicArn,
        // SNS takes no trace header per message: the traceparent travels as a message attribute.
        PublishBatchRequestEntries: entries.map(({ body, traceHeader: _, ...entry }) => ({
          ...entry,
          Message: body,
        })),
      }),
      signal ? { abortSignal: signal } : {},
    ),
  );
}

export interface SqsFifoPublisherOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** @default 1048576 */
  readonly maxMessageBytes?: number;
}

/** SQS FIFO `SendMessageBatch` to a point-to-point queue, with the same group and dedup ids as SNS. */
export function sqsFifoPublisher(options: SqsFifoPublisherOptions): Publisher {
  const queueName = options.queueUrl.slice(options.queueUrl.lastIndexOf('/') + 1);
  return fifoPublisher(`sqs:${queueName}`, 'SQS', options.maxMessageBytes ?? 1_048_576, (entries, signal) =>
    options.client.send(
      new SendMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: entries.map(({ body, traceHeader, ...entry }) => ({
          ...entry,
          MessageBody: body,
          // Excluded from the SQS message size and attribute quotas; Lambda consumers continue the trace from it.
          ...(traceHeader
            ? {
                MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: traceHeader } },
              }
            : {}),
        })),
      }),
      signal ? { abortSignal: signal } : {},
    ),
  );
}

export interface EventBridgePublisherOptions {
  readonly client: EventBridgeClient;
  readonly eventBusName: string;
  /** @default 1048576 (the per-entry limit since 2026-01-29; also applied to the whole call) */
  readonly maxEntryBytes?: number;
}

/** Size EventBridge counts for an entry: Time (14) + Source + DetailType + Detail, UTF-8. */
export function eventBridgeEntryBytes(record: OutboxRecord): number {
  return entryBytesOf(publishedMessage(record));
}

function eventBridgeEntry(record: OutboxRecord, eventBusName: string): PutEventsRequestEntry {
  // A foreign writer's absurd createdAt would serialise as "Time":NaN: leave Time out, EventBridge stamps it.
  const time = eventBridgeTime(record.createdAt);
  const traceHeader = recordXrayTraceHeader(record);
  return {
    EventBusName: eventBusName,
    Source: record.source,
    DetailType: record.type,
    Detail: record.envelope,
    ...(time === undefined ? {} : { Time: time }),
    ...(traceHeader === undefined ? {} : { TraceHeader: traceHeader }),
  };
}

/**
 * EventBridge `PutEvents` (rule-based fan-out; EventBridge does not keep order). The response is 200 even when
 * entries fail, so every `Entries[i].ErrorCode` is read.
 */
export function eventBridgePublisher(options: EventBridgePublisherOptions): Publisher {
  const limit = options.maxEntryBytes ?? EVENTBRIDGE_MAX_ENTRY_BYTES;
  const sendOnce = async (records: readonly OutboxRecord[], signal?: AbortSignal): Promise<EntryResult[]> => {
    const response = await options.client.send(
      new PutEventsCommand({ Entries: records.map((r) => eventBridgeEntry(r, options.eventBusName)) }),
      signal ? { abortSignal: signal } : {},
    );
    const entries = response.Entries ?? [];
    if ((response.FailedEntryCount ?? 0) === 0 && entries.length === records.length)
      return records.map(() => OK);
    return records.map((_, i): EntryResult => {
      const entry = entries[i];
      if (entry?.EventId && !entry.ErrorCode) return OK;
      const code = entry?.ErrorCode ?? 'MissingResult';
      return {
        ok: false,
        kind: entry ? classifyEntryError(code, undefined) : 'retryable',
        code,
        message: (entry?.ErrorMessage ?? 'no result for this entry').slice(0, 500),
      };
    });
  };
  return {
    name: 'eventbridge',
    maxBatchBytes: limit,
    // EventBridge does not keep order anyway; consecutive records of one aggregate may share a call.
    recordsPerGroupPerCall: MAX_ENTRIES_PER_CALL,
    entryBytes: eventBridgeEntryBytes,
    problem: (record) => {
      const broken = unencodable(record);
      if (broken !== undefined) return broken;
      if (record.source.startsWith(EVENTBRIDGE_RESERVED_SOURCE_PREFIX))
        return `EventBridge reserves sources starting with "${EVENTBRIDGE_RESERVED_SOURCE_PREFIX}"`;
      if (Buffer.byteLength(record.type) > EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES)
        return `the type is longer than EventBridge allows for DetailType (${EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES})`;
      if (Buffer.byteLength(record.source) > EVENTBRIDGE_MAX_SOURCE_BYTES)
        return `the source is longer than EventBridge allows for Source (${EVENTBRIDGE_MAX_SOURCE_BYTES})`;
      return tooLarge(eventBridgeEntryBytes(record), limit, 'EventBridge');
    },
    send: (records, signal) => sendSplitting(records, (r) => sendOnce(r, signal), signal),
  };
}
