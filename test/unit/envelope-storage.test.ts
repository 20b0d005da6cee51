import { gunzipSync } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { decodeImage, type Image } from '../../functions/relay/decode.ts';
import { attributesBytes, envelopeCompression } from '../../functions/runtime/envelope-storage.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';
import { OutboxWriter, type OutboxWriterOptions } from '../../functions/runtime/writer.ts';

const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));

/** An order whose envelope is about 1 KB of ordinary JSON. */
const order = {
  orderId: 'order-1',
  customerId: 'customer-7',
  lines: Array.from({ length: 8 }, (_, j) => ({
    sku: `SKU-${j}`,
    quantity: 1 + (j % 3),
    priceCents: 250 + j,
  })),
  notes: 'gift wrap, leave at the door, ring twice. '.repeat(8),
};

function recordOf(options: Partial<OutboxWriterOptions>, data: unknown) {
  const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client, ...options });
  const { command, events } = writer.buildTransaction(
    { aggregate: { key: 'order#1' }, events: [{ type: 'OrderPlaced', data }] },
    0,
  );
  const item = command.TransactItems?.find((t) => String(t.Put?.Item?.sk).startsWith('EVT#'))?.Put?.Item;
  if (!item) throw new Error('no event record in the transaction');
  return { item: item as Record<string, unknown>, envelope: events[0] };
}

describe("writer compressEnvelopes: 'when-cheaper' (the default) stores a ~1 KB envelope gzipped when the record gets fewer KB", () => {
  it('gzips a ~1 KB envelope so the record fits in one KB; the relay decodes the same envelope', () => {
    const { item, envelope } = recordOf({}, order);
    const plain = recordOf({ compressEnvelopes: 'large-only' }, order).item;
    expect(attributesBytes(plain)).toBeGreaterThan(1024);
    expect(item.envelope).toBeUndefined();
    expect(item.envelopeGzip).toBeInstanceOf(Uint8Array);
    expect(attributesBytes(item)).toBeLessThanOrEqual(1024);
    expect(JSON.parse(gunzipSync(item.envelopeGzip as Uint8Array).toString('utf8'))).toEqual(envelope);

    const decoded = decodeImage(marshall(item) as Image);
    expect(decoded.kind).toBe('publish');
    if (decoded.kind === 'publish') expect(JSON.parse(decoded.record.envelope)).toEqual(envelope);
  });

  it('keeps a small envelope as text: its record is one KB either way', () => {
    const { item } = recordOf({ compressEnvelopes: 'when-cheaper' }, { orderId: 'order-1' });
    expect(typeof item.envelope).toBe('string');
    expect(item.envelopeGzip).toBeUndefined();
  });

  it("gzips by default ('when-cheaper'); 'large-only' (option or OUTBOX_ENVELOPE_COMPRESSION) keeps text", () => {
    expect(recordOf({}, order).item.envelopeGzip).toBeInstanceOf(Uint8Array);
    expect(typeof recordOf({ compressEnvelopes: 'large-only' }, order).item.envelope).toBe('string');
    process.env.OUTBOX_ENVELOPE_COMPRESSION = 'large-only';
    try {
      expect(typeof recordOf({}, order).item.envelope).toBe('string');
      expect(recordOf({ compressEnvelopes: 'when-cheaper' }, order).item.envelopeGzip).toBeInstanceOf(
        Uint8Array,
      );
    } finally {
      delete process.env.OUTBOX_ENVELOPE_COMPRESSION;
    }
  });

  it('rejects an unknown mode with a configuration error naming the choices', () => {
    expect(() => envelopeCompression('always')).toThrow(OutboxConfigurationError);
    expect(() => envelopeCompression('always')).toThrow(/"large-only" or "when-cheaper"/);
  });
});
