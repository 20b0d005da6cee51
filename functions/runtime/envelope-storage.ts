/**
 * How the writer stores an event's envelope in its outbox record: as text (`envelope`, S) or gzipped
 * (`envelopeGzip`, B). Every reader (relay, sweeper, CLI, offline check) accepts both.
 *
 * DynamoDB bills writes per started KB of the item, twice in a transaction, and the relay's PUBLISHED update is
 * billed on the whole item too. A ~1 KB JSON envelope usually gzips to about half, so its record drops from 2 KB to
 * 1 KB: 2 write units fewer at commit and 1 fewer at bookkeeping, for ~20 µs of CPU. `when-cheaper` gzips exactly
 * when that lowers the item's started KB (the default); `large-only` gzips only what would not fit DynamoDB's
 * 400 KB item otherwise.
 */
import { gzipSync } from 'node:zlib';
import { OutboxConfigurationError } from './errors.ts';

export type EnvelopeCompression = 'large-only' | 'when-cheaper';

/** Environment variable naming the writer's default compression mode. */
export const ENVELOPE_COMPRESSION_ENV = 'OUTBOX_ENVELOPE_COMPRESSION';

/** Envelopes above this are always stored gzipped, so the item fits DynamoDB's 400 KB limit. */
export const GZIP_THRESHOLD_BYTES = 300 * 1024;

/** `when-cheaper` tries gzip only up to this size: above it one saved KB is a small share of the item. */
const WHEN_CHEAPER_MAX_BYTES = 16 * 1024;
const ENVELOPE_ATTRIBUTE_BYTES = 'envelope'.length;
const GZIP_ATTRIBUTE_BYTES = 'envelopeGzip'.length;

export function envelopeCompression(value: string | undefined): EnvelopeCompression {
  if (value === undefined || value === '' || value === 'when-cheaper') return 'when-cheaper';
  if (value === 'large-only') return value;
  throw new OutboxConfigurationError(
    `${ENVELOPE_COMPRESSION_ENV} (or compressEnvelopes) must be "large-only" or "when-cheaper", but "${value}" was provided.`,
  );
}

/** DynamoDB's size of an item's other attributes: names plus values (strings in UTF-8, numbers ~ digits / 2 + 1). */
export function attributesBytes(item: Readonly<Record<string, unknown>>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name);
    if (typeof value === 'string') size += Buffer.byteLength(value);
    else if (typeof value === 'number') size += Math.ceil(String(value).replace(/^-|\./g, '').length / 2) + 1;
    else if (value instanceof Uint8Array) size += value.length;
    else size += Buffer.byteLength(JSON.stringify(value));
  }
  return size;
}

const startedKb = (bytes: number) => Math.ceil(bytes / 1024);

/** The envelope attribute of a record whose other attributes take `otherBytes`. */
export function storedEnvelope(
  json: string,
  jsonBytes: number,
  otherBytes: number,
  mode: EnvelopeCompression,
): { envelope: string } | { envelopeGzip: Uint8Array } {
  if (jsonBytes > GZIP_THRESHOLD_BYTES) return { envelopeGzip: gzipSync(json) };
  if (mode === 'when-cheaper' && jsonBytes <= WHEN_CHEAPER_MAX_BYTES) {
    const plainKb = startedKb(otherBytes + ENVELOPE_ATTRIBUTE_BYTES + jsonBytes);
    // Only an item that spills into another KB can get cheaper.
    if (plainKb > 1) {
      const zipped = gzipSync(json);
      if (startedKb(otherBytes + GZIP_ATTRIBUTE_BYTES + zipped.length) < plainKb)
        return { envelopeGzip: zipped };
    }
  }
  return { envelope: json };
}
