import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  DATAREF,
  type DataReference,
  DEFAULT_LARGE_EVENT_MAX_BYTES,
  DEFAULT_LARGE_EVENTS_PREFIX,
  dataRefUri,
  LARGE_EVENT_MAX_BYTES_LIMIT,
  LARGE_EVENTS_BUCKET_ENV,
  LARGE_EVENTS_MAX_BYTES_ENV,
  LARGE_EVENTS_PREFIX_ENV,
  largeEventKey,
} from '../contract/large-events.ts';
import type { BuiltEnvelope, OutboxEnvelope } from './envelope.ts';
import { OutboxConfigurationError } from './errors.ts';

/**
 * Claim-check: the writer stores the `data` of an event too large for a publish target as an S3 object, before
 * the transaction, and the envelope carries a reference (`dataref`, `datasize`, `datasha256`) instead. The key is
 * derived from the event id, so a retry overwrites the same object; an aborted transaction leaves an object that
 * nothing references, which the bucket's lifecycle rule deletes after the outbox retention.
 */
export interface LargeEventsOptions {
  /** Bucket name. */
  readonly bucket: string;
  /** Key prefix of the payload objects. @default 'outbox-large-events/' */
  readonly prefix?: string;
  /** Largest envelope (data inline) accepted. @default 10485760 (10 MiB) */
  readonly maxEventBytes?: number;
  /** @default one S3 client per container (path-style when an endpoint is configured, e.g. offline) */
  readonly client?: S3Client;
}

export interface LargeEventSettings {
  readonly bucket: string;
  readonly prefix: string;
  readonly maxEventBytes: number;
  /** undefined: the container's shared client (claim-check-store.ts). */
  readonly client: S3Client | undefined;
}

/** An S3 object the writer must put before committing the envelope that references it. */
export interface LargeEventPayload {
  readonly bucket: string;
  readonly key: string;
  readonly body: string;
  readonly eventId: string;
}

/** The writer's large-event settings: from the option, else from the environment (unset bucket: off). */
export function largeEventSettings(
  option: LargeEventsOptions | false | undefined,
): LargeEventSettings | undefined {
  if (option === false) return undefined;
  const bucket = option ? option.bucket : process.env[LARGE_EVENTS_BUCKET_ENV]?.trim();
  if (option && (typeof bucket !== 'string' || bucket === '')) {
    throw new OutboxConfigurationError(
      'largeEvents.bucket must name the bucket of the large event payloads.',
    );
  }
  if (!bucket) return undefined;
  const prefix = option
    ? (option.prefix ?? DEFAULT_LARGE_EVENTS_PREFIX)
    : (process.env[LARGE_EVENTS_PREFIX_ENV] ?? DEFAULT_LARGE_EVENTS_PREFIX);
  const rawMax = option ? option.maxEventBytes : process.env[LARGE_EVENTS_MAX_BYTES_ENV];
  const maxEventBytes =
    rawMax === undefined || rawMax === '' ? DEFAULT_LARGE_EVENT_MAX_BYTES : Number(rawMax);
  if (
    !Number.isInteger(maxEventBytes) ||
    maxEventBytes < 1024 ||
    maxEventBytes > LARGE_EVENT_MAX_BYTES_LIMIT
  ) {
    throw new OutboxConfigurationError(
      `largeEvents.maxEventBytes (${LARGE_EVENTS_MAX_BYTES_ENV}) must be an integer from 1024 to ${LARGE_EVENT_MAX_BYTES_LIMIT}, but ${String(rawMax)} was provided.`,
    );
  }
  const client = option?.client;
  return { bucket, prefix, maxEventBytes, client };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The envelope with `data` replaced by `reference` (the order of the other attributes is kept). */
export function referenceEnvelope<TData>(
  envelope: OutboxEnvelope<TData>,
  reference: DataReference,
): BuiltEnvelope<TData> {
  const { data: _inS3, ...rest } = envelope;
  const stored = { ...rest, ...reference };
  const json = JSON.stringify(stored);
  // What the writer returns: the reference, plus the data the caller gave (what a consumer's handler sees).
  return { envelope: { ...stored, data: envelope.data }, json, bytes: Buffer.byteLength(json, 'utf8') };
}

/** Moves a built envelope's data to S3: the payload to put and the small envelope to store and publish. */
export function claimCheck<TData>(
  built: BuiltEnvelope<TData>,
  settings: LargeEventSettings,
): { built: BuiltEnvelope<TData>; payload: LargeEventPayload } {
  const body = JSON.stringify(built.envelope.data);
  const key = largeEventKey(settings.prefix, built.envelope.id);
  const reference: DataReference = {
    [DATAREF]: dataRefUri(settings.bucket, key),
    datasize: Buffer.byteLength(body, 'utf8'),
    datasha256: sha256Hex(body),
  };
  return {
    built: referenceEnvelope(built.envelope, reference),
    payload: { bucket: settings.bucket, key, body, eventId: built.envelope.id },
  };
}
