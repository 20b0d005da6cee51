import { gunzipSync } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { envelopeProblems } from '../runtime/envelope.ts';
import {
  EVENT_SORT_KEY_PREFIX,
  eventSortKey,
  OutboxStatus,
  PARTITION_KEY,
  RecordAttribute,
  SORT_KEY,
} from '../runtime/record-format.ts';
import { isReservedPartitionKey, RESERVED_KEY_REASON } from './reserved-keys.ts';

/**
 * A DynamoDB attribute value as found in a Lambda stream event (binary as base64 text) or in an SDK response
 * (binary as bytes). Only the shapes the outbox record format uses are read.
 */
export interface ImageValue {
  readonly S?: string;
  readonly N?: string;
  readonly B?: string | Uint8Array;
}
export type Image = Readonly<Record<string, ImageValue | object>>;

export interface RecordKey {
  readonly pk: string;
  readonly sk: string;
}

/** An outbox event record ready to publish: everything a publisher needs, and nothing to parse again. */
export interface OutboxRecord extends RecordKey {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly sequence: number;
  /** The exact envelope JSON to publish. */
  readonly envelope: string;
  /** UTF-8 size of `envelope`. */
  readonly envelopeBytes: number;
  /** Commit time (epoch ms), for the age-at-publish metric. */
  readonly createdAt: number;
  readonly subject?: string;
}

export type Decoded =
  | { readonly kind: 'publish'; readonly record: OutboxRecord }
  /** The record is an event that can never be published as stored: mark it QUARANTINED with `reason`. */
  | {
      readonly kind: 'quarantine';
      readonly key: RecordKey;
      readonly eventId?: string;
      readonly reason: string;
    }
  /**
   * Not for the relay (head item, removal, not READY): nothing to do. `reservedKey` is set for an item in the
   * reserved key space (reserved-keys.ts), which is counted and logged.
   */
  | { readonly kind: 'ignore'; readonly reason: string; readonly reservedKey?: RecordKey };

function text(value: ImageValue | object | undefined): string | undefined {
  const s = (value as ImageValue | undefined)?.S;
  return typeof s === 'string' ? s : undefined;
}

function number(value: ImageValue | object | undefined): number | undefined {
  const n = (value as ImageValue | undefined)?.N;
  if (typeof n !== 'string') return undefined;
  const parsed = Number(n);
  return Number.isFinite(parsed) ? parsed : undefined;
}

function bytes(value: ImageValue | object | undefined): Buffer | undefined {
  const b = (value as ImageValue | undefined)?.B;
  if (typeof b === 'string') return Buffer.from(b, 'base64');
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return undefined;
}

/** Maximum gunzipped envelope: DynamoDB's 400 KB item limit bounds the input; this bounds a zip bomb. */
export const MAX_UNZIPPED_BYTES = 1_048_576;

/** An `envelopeGzip` that is not gzip, or inflates past MAX_UNZIPPED_BYTES (a 397 KB item can hold ~400 MB). */
export class EnvelopeGzipError extends Error {
  override name = 'EnvelopeGzipError';
}

/**
 * The one gunzip of stored envelopes (relay, predecessor lookups, sweeper): capped, so a zip bomb costs at most
 * 1 MiB of memory instead of the function. Throws EnvelopeGzipError; the message never quotes the payload.
 */
export function gunzipEnvelope(zipped: Uint8Array): string {
  try {
    return gunzipSync(zipped, { maxOutputLength: MAX_UNZIPPED_BYTES }).toString('utf8');
  } catch (error) {
    throw new EnvelopeGzipError(
      `"envelopeGzip" is not a valid gzip stream of at most ${MAX_UNZIPPED_BYTES} bytes (1 MiB) once inflated; store large payloads elsewhere and publish a reference`,
      { cause: error },
    );
  }
}

/**
 * Decodes an item image (a stream NewImage, or an item read with the low-level client) into a record to
 * publish, a quarantine reason, or "ignore". Reasons never quote the payload (they end up in logs).
 */
export function decodeImage(image: Image): Decoded {
  const pk = text(image[PARTITION_KEY]);
  const sk = text(image[SORT_KEY]);
  if (pk === undefined || sk === undefined) return { kind: 'ignore', reason: 'the item has no outbox key' };
  if (!sk.startsWith(EVENT_SORT_KEY_PREFIX)) return { kind: 'ignore', reason: 'not an event record' };
  if (isReservedPartitionKey(pk))
    return { kind: 'ignore', reason: RESERVED_KEY_REASON, reservedKey: { pk, sk } };
  const status = text(image[RecordAttribute.status]);
  if (status !== OutboxStatus.Ready)
    return { kind: 'ignore', reason: `status is ${status ?? 'missing'}, not READY` };

  const key = { pk, sk };
  const id = text(image[RecordAttribute.id]);
  const quarantine = (reason: string): Decoded =>
    id === undefined ? { kind: 'quarantine', key, reason } : { kind: 'quarantine', key, eventId: id, reason };
  const type = text(image[RecordAttribute.type]);
  const source = text(image[RecordAttribute.source]);
  const sequence = number(image[RecordAttribute.sequence]);
  if (!id) return quarantine('attribute "id" is missing or not a string');
  if (!type) return quarantine('attribute "type" is missing or not a string');
  if (!source) return quarantine('attribute "source" is missing or not a string');
  if (sequence === undefined || !Number.isSafeInteger(sequence) || sequence < 1) {
    return quarantine('attribute "sequence" is missing or not a positive integer');
  }
  if (sk !== eventSortKey(sequence)) return quarantine(`sort key does not match sequence ${sequence}`);

  let envelope = text(image[RecordAttribute.envelope]);
  if (envelope === undefined) {
    const zipped = bytes(image[RecordAttribute.envelopeGzip]);
    if (zipped === undefined) return quarantine('neither "envelope" (S) nor "envelopeGzip" (B) is present');
    try {
      envelope = gunzipEnvelope(zipped);
    } catch (error) {
      return quarantine((error as EnvelopeGzipError).message);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(envelope);
  } catch {
    // The parser's message quotes the input: do not pass it on.
    return quarantine('the envelope is not valid JSON');
  }
  const problems = envelopeProblems(parsed);
  if (problems.length > 0) {
    return quarantine(
      `the envelope is not a CloudEvent: ${problems.map((p) => `${p.field} ${p.reason}`).join('; ')}`,
    );
  }
  const e = parsed as {
    id: string;
    type: string;
    source: string;
    partitionkey: string;
    sequence: number;
    subject?: unknown;
  };
  const mismatch = [
    e.id !== id && 'id',
    e.type !== type && 'type',
    e.source !== source && 'source',
    e.partitionkey !== pk && 'partitionkey',
    e.sequence !== sequence && 'sequence',
  ].filter(Boolean);
  if (mismatch.length > 0) {
    return quarantine(`the envelope disagrees with the record's attributes: ${mismatch.join(', ')}`);
  }
  const record: OutboxRecord = {
    pk,
    sk,
    id,
    type,
    source,
    sequence,
    envelope,
    envelopeBytes: Buffer.byteLength(envelope, 'utf8'),
    createdAt: number(image[RecordAttribute.createdAt]) ?? 0,
    ...(typeof e.subject === 'string' && e.subject !== '' ? { subject: e.subject } : {}),
  };
  return { kind: 'publish', record };
}

/**
 * Decodes an item as the DocumentClient returns it (plain values: strings, numbers, Uint8Array for binary), e.g.
 * what the recovery sweeper reads with BatchGetItem, by marshalling it back to an attribute-value image.
 */
export function decodeItem(item: Readonly<Record<string, unknown>>): Decoded {
  let image: Image;
  try {
    image = marshall(item, { removeUndefinedValues: true, convertClassInstanceToMap: true }) as Image;
  } catch {
    return { kind: 'ignore', reason: 'the item cannot be read as an outbox record' };
  }
  return decodeImage(image);
}

/**
 * Decodes one Lambda DynamoDB stream record. The event source mapping's filter should only deliver records that
 * are or became READY; anything else (a REMOVE, the head item) is ignored defensively rather than published.
 */
export function decodeStreamRecord(record: DynamoDBRecord): Decoded {
  if (record.eventName === 'REMOVE') return { kind: 'ignore', reason: 'a removal' };
  const image = record.dynamodb?.NewImage as Image | undefined;
  if (!image) return { kind: 'ignore', reason: 'no new image (the stream must use NEW_AND_OLD_IMAGES)' };
  return decodeImage(image);
}
