import { dataReferenceProblems, hasDataReference } from '../contract/large-events.ts';
import { OutboxValidationError } from './errors.ts';
import { isUuidV7, uuidv7 } from './ids.ts';
import { attributeTextProblem } from './message-limits.ts';

/**
 * A CloudEvents 1.0 event in structured JSON mode, with the outbox's extension attributes.
 * Extension names are lower-case alphanumerics, as CloudEvents requires.
 */
export interface OutboxEnvelope<TData = unknown> {
  readonly specversion: '1.0';
  /** UUIDv7: unique and time-ordered. Consumers deduplicate on it. */
  readonly id: string;
  /** URI-reference of the producer, e.g. `/orders-service`. */
  readonly source: string;
  /** Event type, e.g. `com.example.orders.OrderPlaced`. */
  readonly type: string;
  readonly subject?: string;
  /** RFC 3339 time of the business change. */
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly dataschema?: string;
  /** Aggregate key: decides ordering scope, stream shard and FIFO message group. */
  readonly partitionkey: string;
  /** Position of this event in its aggregate's history: 1, 2, 3, ... with no gaps. */
  readonly sequence: number;
  /** W3C trace context of the producing request. */
  readonly traceparent?: string;
  /**
   * Claim-check (large events): `s3://<bucket>/<key>` of the payload. The published envelope then has no `data`;
   * the consumer library fetches, verifies and puts it back before calling the handler.
   */
  readonly dataref?: string;
  /** Claim-check: UTF-8 bytes of the payload object. */
  readonly datasize?: number;
  /** Claim-check: hex SHA-256 of the payload object. */
  readonly datasha256?: string;
  readonly data: TData;
}

export interface EventInput<TData = unknown> {
  readonly type: string;
  readonly data: TData;
  /** @default the writer's `source` option */
  readonly source?: string;
  readonly subject?: string;
  readonly dataschema?: string;
  /** @default a new UUIDv7 */
  readonly id?: string;
  /** @default now */
  readonly time?: Date | string;
  /** @default derived from the Lambda's X-Ray trace header when present */
  readonly traceparent?: string;
}

export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024;
export const MAX_EVENT_BYTES_LIMIT = 1024 * 1024;

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Rejects values JSON.stringify would silently drop or change (functions, undefined, NaN, BigInt...). */
function assertJsonValue(value: unknown, path: string, depth: number): void {
  if (depth > 64) throw new OutboxValidationError(path, 'data nests deeper than 64 levels');
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new OutboxValidationError(path, `${value} is not JSON-serialisable; send null or a string`);
      }
      return;
    case 'object': {
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) assertJsonValue(value[i], `${path}[${i}]`, depth + 1);
        return;
      }
      if (value instanceof Date) {
        // JSON.stringify turns an invalid Date into null without a word.
        if (Number.isNaN(value.getTime())) {
          throw new OutboxValidationError(
            path,
            'is an invalid Date; send a valid Date, an RFC 3339 string or null',
          );
        }
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new OutboxValidationError(
          path,
          `an instance of ${proto?.constructor?.name ?? 'a class'} is not plain JSON data; convert it to a plain object`,
        );
      }
      for (const key in value) {
        assertJsonValue((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
      }
      return;
    }
    default:
      throw new OutboxValidationError(path, `a ${typeof value} is not JSON-serialisable`);
  }
}

function requireText(value: unknown, field: string, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new OutboxValidationError(field, `${what} is required and must be a non-empty string`);
  }
  return value;
}

/** Text the relay also sends as a message attribute: it must be encodable there. */
function requireAttributeText<T extends string | undefined>(value: T, field: string): T {
  const problem = value === undefined ? undefined : attributeTextProblem(value);
  if (problem) throw new OutboxValidationError(field, problem);
  return value;
}

function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new OutboxValidationError(field, `must be a non-empty string when present, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40));
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** RFC 3339 `date-time`: full date, `T`, full time and a zone (`Z` or ±hh:mm). */
const RFC3339_DATE_TIME =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

function eventTime(value: unknown, field: string, now: number): string {
  if (value === undefined) return new Date(now).toISOString();
  if (value instanceof Date) {
    const ms = value.getTime();
    // toISOString throws a RangeError on an invalid Date and writes years past 9999 as "+010000-...".
    if (Number.isNaN(ms) || value.getUTCFullYear() < 0 || value.getUTCFullYear() > 9999) {
      throw new OutboxValidationError(field, `must be an RFC 3339 time; got an invalid or out-of-range Date`);
    }
    return value.toISOString();
  }
  if (typeof value !== 'string' || !RFC3339_DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw new OutboxValidationError(
      field,
      `must be an RFC 3339 time such as "2026-11-22T16:00:00.000Z" (or a Date), got ${describe(value)}`,
    );
  }
  return value;
}

/** W3C traceparent from the Lambda X-Ray header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=...;Sampled=1`). */
export function traceparentFromXRay(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const root = /Root=1-([0-9a-f]{8})-([0-9a-f]{24})/.exec(header);
  if (!root) return undefined;
  const parent = /Parent=([0-9a-f]{16})/.exec(header)?.[1] ?? '0000000000000001';
  const sampled = /Sampled=1/.test(header) ? '01' : '00';
  return `00-${root[1]}${root[2]}-${parent}-${sampled}`;
}

/** Whether `value` is a W3C traceparent the outbox accepts (version `00` form). */
export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value);
}

/**
 * The X-Ray trace header (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1`) for a W3C traceparent: the
 * inverse of traceparentFromXRay. The relay sends it as SQS `AWSTraceHeader` and EventBridge `TraceHeader`.
 * Undefined for anything that is not a version-00 traceparent with non-zero trace and parent ids.
 */
export function xrayHeaderFromTraceparent(traceparent: string | undefined): string | undefined {
  if (!traceparent) return undefined;
  const match = /^00-([0-9a-f]{8})([0-9a-f]{24})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (!match) return undefined;
  const [, epoch, unique, parent, flags] = match as unknown as [string, string, string, string, string];
  if (/^0+$/.test(epoch + unique) || /^0+$/.test(parent)) return undefined;
  const sampled = (Number.parseInt(flags, 16) & 1) === 1 ? '1' : '0';
  return `Root=1-${epoch}-${unique};Parent=${parent};Sampled=${sampled}`;
}

export interface BuildEnvelopeOptions {
  readonly partitionKey: string;
  readonly sequence: number;
  readonly defaultSource?: string;
  readonly maxEventBytes?: number;
  readonly field?: string;
  readonly now?: number;
  /**
   * Take `traceparent` from the Lambda's X-Ray header when the input has none. Off when rebuilding an event
   * another process created (confirm), whose trace is the producer's, not ours.
   * @default true
   */
  readonly deriveTraceparent?: boolean;
}

export interface BuiltEnvelope<TData = unknown> {
  readonly envelope: OutboxEnvelope<TData>;
  /** The exact JSON that is stored and published. */
  readonly json: string;
  readonly bytes: number;
}

/** Builds and validates one envelope; throws OutboxValidationError naming the field. */
export function buildEnvelope<TData>(
  input: EventInput<TData>,
  options: BuildEnvelopeOptions,
): BuiltEnvelope<TData> {
  const field = options.field ?? 'event';
  if (input === null || typeof input !== 'object')
    throw new OutboxValidationError(field, 'must be an object');
  const type = requireAttributeText(requireText(input.type, `${field}.type`, 'type'), `${field}.type`);
  const source = requireAttributeText(
    requireText(input.source ?? options.defaultSource, `${field}.source`, 'source'),
    `${field}.source`,
  );
  const partitionkey = requireAttributeText(
    requireText(options.partitionKey, `${field}.partitionkey`, 'the aggregate key'),
    `${field}.partitionkey`,
  );
  if (!Number.isSafeInteger(options.sequence) || options.sequence < 1) {
    throw new OutboxValidationError(
      `${field}.sequence`,
      `must be a positive integer, got ${options.sequence}`,
    );
  }
  if (input.data === undefined) {
    throw new OutboxValidationError(`${field}.data`, 'data is required (use null for an event without data)');
  }
  assertJsonValue(input.data, `${field}.data`, 0);
  const id = input.id ?? uuidv7(options.now);
  if (input.id !== undefined && !isUuidV7(input.id)) {
    throw new OutboxValidationError(`${field}.id`, 'must be a lower-case UUIDv7 so ids stay time-ordered');
  }
  const time = eventTime(input.time, `${field}.time`, options.now ?? Date.now());
  const subject = requireAttributeText(optionalText(input.subject, `${field}.subject`), `${field}.subject`);
  const dataschema = optionalText(input.dataschema, `${field}.dataschema`);
  const traceparent =
    input.traceparent ??
    (options.deriveTraceparent === false ? undefined : traceparentFromXRay(process.env._X_AMZN_TRACE_ID));
  if (traceparent !== undefined && !TRACEPARENT.test(traceparent)) {
    throw new OutboxValidationError(
      `${field}.traceparent`,
      'must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)',
    );
  }
  const envelope: OutboxEnvelope<TData> = {
    specversion: '1.0',
    id,
    source,
    type,
    ...(subject === undefined ? {} : { subject }),
    time,
    datacontenttype: 'application/json',
    ...(dataschema === undefined ? {} : { dataschema }),
    partitionkey,
    sequence: options.sequence,
    ...(traceparent === undefined ? {} : { traceparent }),
    data: input.data,
  };
  const json = JSON.stringify(envelope);
  const bytes = Buffer.byteLength(json, 'utf8');
  const limit = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (bytes > limit) {
    throw new OutboxValidationError(
      field,
      `the envelope is ${bytes} bytes, over the ${limit}-byte limit; store large payloads elsewhere (e.g. S3) and send a reference`,
    );
  }
  return { envelope, json, bytes };
}

export type EnvelopeProblem = { readonly field: string; readonly reason: string };

/** Checks a received value is an outbox envelope; returns the problems (empty when valid). */
export function envelopeProblems(value: unknown): EnvelopeProblem[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [{ field: '$', reason: 'not a JSON object' }];
  }
  const v = value as Record<string, unknown>;
  const problems: EnvelopeProblem[] = [];
  if (v.specversion !== '1.0') problems.push({ field: 'specversion', reason: 'must be "1.0"' });
  for (const key of ['id', 'source', 'type', 'time', 'partitionkey'] as const) {
    if (typeof v[key] !== 'string' || v[key] === '')
      problems.push({ field: key, reason: 'missing or not a string' });
  }
  if (typeof v.sequence !== 'number' || !Number.isSafeInteger(v.sequence) || v.sequence < 1) {
    problems.push({ field: 'sequence', reason: 'must be a positive integer' });
  }
  if (hasDataReference(v)) problems.push(...dataReferenceProblems(v));
  else if (!('data' in v)) problems.push({ field: 'data', reason: 'missing' });
  return problems;
}

export function isOutboxEnvelope(value: unknown): value is OutboxEnvelope {
  return envelopeProblems(value).length === 0;
}
