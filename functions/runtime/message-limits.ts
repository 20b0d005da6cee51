/**
 * What the publish targets (SNS FIFO, SQS FIFO, EventBridge) accept: one definition for the writer, which refuses
 * at write time what a target would refuse, and for the relay, which checks again before publishing.
 * Dependency-free.
 */

/**
 * Whether a UTF-16 code unit (seen with its neighbours) cannot be sent: C0 and C1 controls, DEL, the
 * non-characters U+FFFE/U+FFFF, and surrogates that are not part of a pair (the SNS client's query-string
 * encoder throws URIError on those before sending anything).
 */
function isUnsendable(code: number, previous: number, next: number): boolean {
  if (code <= 0x1f || (code >= 0x7f && code <= 0x9f) || code === 0xfffe || code === 0xffff) return true;
  const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
  const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
  if (isHigh(code)) return !isLow(next);
  if (isLow(code)) return !isHigh(previous);
  return false;
}

/**
 * Why `value` cannot be a message attribute (`type`, `source`, `subject`, `partitionkey`), or undefined when it
 * can. The reason names the offending character's position, never the text itself.
 */
export function attributeTextProblem(value: string): string | undefined {
  let index = 0;
  while (
    index < value.length &&
    !isUnsendable(value.charCodeAt(index), value.charCodeAt(index - 1), value.charCodeAt(index + 1))
  ) {
    index++;
  }
  if (index === value.length) return undefined;
  const code = value.charCodeAt(index);
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const what =
    code >= 0xd800 && code <= 0xdfff
      ? 'a lone UTF-16 surrogate'
      : code >= 0xfffe
        ? 'the non-character'
        : 'the control character';
  return `contains ${what} ${hex} at index ${index}; SNS and SQS message attributes cannot carry it`;
}

/** SNS: body plus message attributes, per message (and per PublishBatch). */
export const SNS_MAX_MESSAGE_BYTES = 262_144;
/** SQS: body plus message attributes, per message (the queues OutboxRelay creates allow the maximum, 1 MiB). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;
/** EventBridge PutEvents entry (Time + Source + DetailType + Detail), 1 MB since 2026-01-29. */
export const EVENTBRIDGE_MAX_ENTRY_BYTES = 1_048_576;
/** EventBridge `DetailType` (the envelope's `type`). Counted in UTF-8 bytes, which is never fewer than characters. */
export const EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES = 128;
/** EventBridge `Source` (the envelope's `source`). */
export const EVENTBRIDGE_MAX_SOURCE_BYTES = 256;
/** EventBridge refuses custom events whose `Source` starts with this. */
export const EVENTBRIDGE_RESERVED_SOURCE_PREFIX = 'aws.';

/** The kinds of target the relay publishes to. */
export type PublishTarget = 'sns' | 'sqs' | 'eventbridge';
export const PUBLISH_TARGETS: readonly PublishTarget[] = ['sns', 'sqs', 'eventbridge'];
/** Comma-separated PublishTargets the writer checks events against (unset: all of them). */
export const PUBLISH_TARGETS_ENV = 'OUTBOX_PUBLISH_TARGETS';

/** What a target sees of one outbox event. */
export interface PublishedMessage {
  /** UTF-8 bytes of the envelope JSON (the message body / EventBridge Detail). */
  readonly envelopeBytes: number;
  readonly type: string;
  readonly source: string;
  /** The aggregate key. */
  readonly partitionKey: string;
  readonly sequence: number;
  readonly subject?: string;
  /**
   * The envelope's W3C traceparent when it has a valid one: the relay then sends it as a `traceparent` message
   * attribute on SNS and SQS (see docs/tracing.md), which counts toward the message size.
   */
  readonly traceparent?: string;
}

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');
/** SNS and SQS count each attribute's name, data type (`String`/`Number`) and value. */
const attributeBytes = (name: string, value: string): number => utf8(name) + 6 + utf8(value);

/**
 * Size SNS (and SQS) counts for the message the relay publishes: the envelope as body plus the attributes it
 * sends for filter policies: `type`, `source`, `partitionkey`, `sequence`, `subject` when non-empty, and the
 * `traceparent` it sends for trace propagation when the envelope has one.
 */
export function snsMessageBytes(message: PublishedMessage): number {
  return (
    message.envelopeBytes +
    attributeBytes('type', message.type) +
    attributeBytes('source', message.source) +
    attributeBytes('partitionkey', message.partitionKey) +
    attributeBytes('sequence', String(message.sequence)) +
    (message.subject ? attributeBytes('subject', message.subject) : 0) +
    (message.traceparent ? attributeBytes('traceparent', message.traceparent) : 0)
  );
}

/** Size EventBridge counts for a PutEvents entry: Time (14) + Source + DetailType + Detail, UTF-8. */
export function eventBridgeEntryBytes(message: PublishedMessage): number {
  return 14 + utf8(message.source) + utf8(message.type) + message.envelopeBytes;
}

/** One reason a target would refuse a message, naming the limit. */
export interface DeliveryProblem {
  readonly target: PublishTarget;
  /** Which part of the message is at fault: `message`, `type` or `source`. */
  readonly part: 'message' | 'type' | 'source';
  /** The limit, e.g. `SNS message size (262144 bytes incl. attributes)`. */
  readonly limit: string;
  readonly reason: string;
}

/** Everything the given targets would refuse about `message` (empty when every target accepts it). */
export function deliveryProblems(
  message: PublishedMessage,
  targets: readonly PublishTarget[] = PUBLISH_TARGETS,
): DeliveryProblem[] {
  const problems: DeliveryProblem[] = [];
  const tooLarge = (target: PublishTarget, name: string, bytes: number, limit: number) => {
    if (bytes > limit) {
      problems.push({
        target,
        part: 'message',
        limit: `${name} (${limit} bytes)`,
        reason: `the ${name} would be ${bytes} bytes, over the ${limit}-byte limit; store large payloads elsewhere (e.g. S3) and send a reference`,
      });
    }
  };
  if (targets.includes('sns')) {
    tooLarge('sns', 'SNS message incl. attributes', snsMessageBytes(message), SNS_MAX_MESSAGE_BYTES);
  }
  if (targets.includes('sqs')) {
    tooLarge('sqs', 'SQS message incl. attributes', snsMessageBytes(message), SQS_MAX_MESSAGE_BYTES);
  }
  if (targets.includes('eventbridge')) {
    tooLarge('eventbridge', 'EventBridge entry', eventBridgeEntryBytes(message), EVENTBRIDGE_MAX_ENTRY_BYTES);
    const typeBytes = utf8(message.type);
    if (typeBytes > EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES) {
      problems.push({
        target: 'eventbridge',
        part: 'type',
        limit: `EventBridge DetailType (${EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES} bytes)`,
        reason: `the type is ${typeBytes} bytes; EventBridge allows ${EVENTBRIDGE_MAX_DETAIL_TYPE_BYTES} for DetailType`,
      });
    }
    const sourceBytes = utf8(message.source);
    if (sourceBytes > EVENTBRIDGE_MAX_SOURCE_BYTES) {
      problems.push({
        target: 'eventbridge',
        part: 'source',
        limit: `EventBridge Source (${EVENTBRIDGE_MAX_SOURCE_BYTES} bytes)`,
        reason: `the source is ${sourceBytes} bytes; EventBridge allows ${EVENTBRIDGE_MAX_SOURCE_BYTES} for Source`,
      });
    }
    if (message.source.startsWith(EVENTBRIDGE_RESERVED_SOURCE_PREFIX)) {
      problems.push({
        target: 'eventbridge',
        part: 'source',
        limit: `EventBridge reserved source prefix "${EVENTBRIDGE_RESERVED_SOURCE_PREFIX}"`,
        reason: `EventBridge refuses custom events whose source starts with "${EVENTBRIDGE_RESERVED_SOURCE_PREFIX}"`,
      });
    }
  }
  return problems;
}

/** Parses a PUBLISH_TARGETS_ENV value; undefined when it names something that is not a PublishTarget. */
export function parsePublishTargets(raw: string): PublishTarget[] | undefined {
  const names = raw
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  if (names.length === 0 || names.some((name) => !PUBLISH_TARGETS.includes(name as PublishTarget))) {
    return undefined;
  }
  return [...new Set(names as PublishTarget[])];
}

/** 9999-12-31T23:59:59.999Z: the last instant an RFC 3339 timestamp can write. */
const LAST_RFC3339_MS = 253_402_300_799_999;

/**
 * The PutEvents `Time` for a record's `createdAt` (epoch ms), or undefined when a foreign writer left it missing,
 * non-numeric or absurd: EventBridge then stamps the entry itself. Passing `new Date(createdAt)` instead makes the
 * SDK write `"Time":NaN` for an invalid Date, and the request body is no longer JSON.
 */
export function eventBridgeTime(createdAt: unknown): Date | undefined {
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined;
  if (createdAt <= 0 || createdAt > LAST_RFC3339_MS) return undefined;
  return new Date(createdAt);
}
