import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DATAREF, parseDataRef } from '../contract/large-events.ts';
import { sha256Hex } from '../runtime/claim-check.ts';
import type { OutboxEnvelope } from '../runtime/envelope.ts';
import { LargeEventPayloadError } from './errors.ts';

/**
 * Claim-check, consumer side: an envelope with a `dataref` gets its `data` back from S3, verified against the
 * `datasize` and `datasha256` the producer wrote, so the handler sees the event as if `data` had been inline.
 * Any other envelope is returned as it is.
 */
export async function withLargeEventData<TData>(
  envelope: OutboxEnvelope<TData>,
  consumer: string,
  s3: () => Promise<S3Client>,
): Promise<OutboxEnvelope<TData>> {
  const dataref = envelope[DATAREF];
  // Inline data wins: only an envelope without `data` is claim-checked (see hasDataReference).
  if (dataref === undefined || Object.hasOwn(envelope, 'data')) return envelope;
  const fail = (
    problem: LargeEventPayloadError['problem'],
    detail: string,
    cause?: unknown,
    retryable = false,
  ) => new LargeEventPayloadError(consumer, envelope.id, dataref, problem, detail, { cause, retryable });
  const location = parseDataRef(dataref);
  if (!location) throw fail('unreadable', 'is not an s3://<bucket>/<key> URI');
  let body: string;
  try {
    const client = await s3();
    const object = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
    body = (await object.Body?.transformToString('utf-8')) ?? '';
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) {
      throw fail('missing', 'does not exist', error);
    }
    // Throttling, a network error, a 5xx or a missing grant: a redelivery may succeed.
    throw fail('unreadable', `could not be read (${e?.name ?? 'Error'})`, error, true);
  }
  const size = Buffer.byteLength(body, 'utf8');
  if (size !== envelope.datasize) {
    throw fail('size', `is ${size} bytes, but the event says ${String(envelope.datasize)}`);
  }
  const digest = sha256Hex(body);
  if (digest !== envelope.datasha256) {
    throw fail('sha256', `has SHA-256 ${digest}, but the event says ${String(envelope.datasha256)}`);
  }
  let data: TData;
  try {
    data = JSON.parse(body) as TData;
  } catch (error) {
    throw fail('not-json', 'is not JSON', error);
  }
  return { ...envelope, data };
}
