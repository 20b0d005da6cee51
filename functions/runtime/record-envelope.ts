/** The envelope stored in an outbox record, read back (plain or gzipped): for the operator tools, the audit and your own readers of the table. */
import { gunzipSync } from 'node:zlib';
import { isOutboxEnvelope, type OutboxEnvelope } from './envelope.ts';
import { RecordAttribute } from './record-format.ts';

/** The stored envelope JSON of an outbox item (`envelope`, or gunzipped `envelopeGzip`); undefined if absent. */
export function envelopeJsonOf(item: Record<string, unknown>): string | undefined {
  const text = item[RecordAttribute.envelope];
  if (typeof text === 'string') return text;
  const zipped = item[RecordAttribute.envelopeGzip];
  if (zipped instanceof Uint8Array) {
    return gunzipSync(zipped, { maxOutputLength: 1_048_576 }).toString('utf8');
  }
  return undefined;
}

/** The record's envelope when it is readable and a valid outbox envelope; undefined otherwise. */
export function storedEnvelopeOf(item: Record<string, unknown>): OutboxEnvelope | undefined {
  try {
    const json = envelopeJsonOf(item);
    if (json === undefined) return undefined;
    const value: unknown = JSON.parse(json);
    return isOutboxEnvelope(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
