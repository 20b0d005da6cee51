/**
 * Claim-check for large events: what the construct, the writer and the consumer agree on. Dependency-free.
 *
 * An event whose published message would exceed a target's limit has its `data` stored as an S3 object; the
 * envelope then carries no `data` but these CloudEvents extension attributes.
 */

/** Bucket the writer puts large payloads in (unset: large events are off and such events are refused). */
export const LARGE_EVENTS_BUCKET_ENV = 'OUTBOX_LARGE_EVENTS_BUCKET';
/** Key prefix of the payload objects, e.g. `outbox/orders/`. */
export const LARGE_EVENTS_PREFIX_ENV = 'OUTBOX_LARGE_EVENTS_PREFIX';
/** Largest envelope (with its data inline) the writer accepts when large events are on. */
export const LARGE_EVENTS_MAX_BYTES_ENV = 'OUTBOX_LARGE_EVENTS_MAX_BYTES';

/** 10 MiB. */
export const DEFAULT_LARGE_EVENT_MAX_BYTES = 10 * 1024 * 1024;
/** S3 PutObject takes up to 5 GiB in one request; a Lambda's memory is the practical bound well below that. */
export const LARGE_EVENT_MAX_BYTES_LIMIT = 100 * 1024 * 1024;
export const DEFAULT_LARGE_EVENTS_PREFIX = 'outbox-large-events/';

/** Extension attribute: `s3://<bucket>/<key>` of the payload (the CloudEvents `dataref` extension). */
export const DATAREF = 'dataref';
/** Extension attribute: UTF-8 bytes of the payload object (the JSON of `data`). */
export const DATASIZE = 'datasize';
/** Extension attribute: lower-case hex SHA-256 of the payload object. */
export const DATASHA256 = 'datasha256';

/** The claim-check extension attributes an envelope carries instead of `data`. */
export interface DataReference {
  readonly dataref: string;
  readonly datasize: number;
  readonly datasha256: string;
}

/** The object key of an event's payload: one key per event id, so a retry of the same event overwrites it. */
export function largeEventKey(prefix: string, eventId: string): string {
  return `${prefix}${eventId}.json`;
}

export function dataRefUri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** `s3://bucket/some/key` → `{ bucket, key }`; undefined for anything else. */
export function parseDataRef(dataref: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(dataref);
  return match ? { bucket: match[1] as string, key: match[2] as string } : undefined;
}

/**
 * Whether an envelope-like value is claim-checked: a `dataref` and no `data` (its data is in S3). An envelope with
 * `data` inline is inline, whatever else it carries (CloudEvents allows a `dataref` next to `data`).
 */
export function hasDataReference(value: Record<string, unknown>): boolean {
  return DATAREF in value && !('data' in value);
}

/** Problems of a claim-checked envelope's reference attributes (empty when it is not one, or they are valid). */
export function dataReferenceProblems(value: Record<string, unknown>): { field: string; reason: string }[] {
  if (!hasDataReference(value)) return [];
  const problems: { field: string; reason: string }[] = [];
  if (typeof value[DATAREF] !== 'string' || !parseDataRef(value[DATAREF] as string)) {
    problems.push({ field: DATAREF, reason: 'must be an s3://<bucket>/<key> URI' });
  }
  const size = value[DATASIZE];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    problems.push({ field: DATASIZE, reason: 'must be a whole number of bytes' });
  }
  if (typeof value[DATASHA256] !== 'string' || !/^[0-9a-f]{64}$/.test(value[DATASHA256] as string)) {
    problems.push({ field: DATASHA256, reason: 'must be 64 lower-case hex digits' });
  }
  return problems;
}
