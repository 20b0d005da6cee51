import { describe, expect, it } from 'vitest';
import { decodeImage, type Image, type OutboxRecord } from '../../functions/relay/decode.ts';
import type { Publisher } from '../../functions/relay/publishers.ts';
import { relay } from '../../functions/relay/relay.ts';
import { isReservedPartitionKey } from '../../functions/relay/reserved-keys.ts';

/** A READY event image whose envelope agrees with its attributes: publishable but for its key. */
function readyImage(pk: string): Image {
  const id = '019a0000-0000-7000-8000-000000000001';
  const envelope = {
    specversion: '1.0',
    id,
    type: 'T',
    source: '/s',
    partitionkey: pk,
    sequence: 1,
    time: '2026-11-30T12:00:00Z',
    data: {},
  };
  return {
    pk: { S: pk },
    sk: { S: 'EVT#000000000001' },
    id: { S: id },
    type: { S: 'T' },
    source: { S: '/s' },
    sequence: { N: '1' },
    status: { S: 'READY' },
    envelope: { S: JSON.stringify(envelope) },
  };
}

describe('the reserved key space is never published (#11.2)', () => {
  it('recognises ACK#, PRE#, P#, Q# and HEAD partition keys, not ordinary aggregate keys', () => {
    for (const pk of ['ACK#e1', 'PRE#x', 'P#3', 'Q#a', 'HEAD']) expect(isReservedPartitionKey(pk)).toBe(true);
    for (const pk of ['order#1', 'ACK', 'HEADER', 'p#3', 'Pay#1'])
      expect(isReservedPartitionKey(pk)).toBe(false);
  });

  it('ignores a READY event record under a reserved partition key: nothing is sent, the result names the key', async () => {
    expect(decodeImage(readyImage('order#1')).kind).toBe('publish');
    const sent: OutboxRecord[] = [];
    const publisher: Publisher = {
      name: 'fake',
      maxBatchBytes: 262_144,
      recordsPerGroupPerCall: 1,
      entryBytes: (r) => r.envelopeBytes,
      problem: () => undefined,
      send: async (batch) => {
        sent.push(...batch);
        return batch.map(() => ({ ok: true }));
      },
    };
    const report = await relay(
      ['ACK#e1', 'P#3', 'HEAD'].map((pk) => ({ ref: pk, decoded: decodeImage(readyImage(pk)) })),
      {
        publishers: [publisher],
        bookkeeper: {
          markPublished: async () => 'updated',
          quarantine: async () => 'updated',
          hold: async () => 'updated',
        },
      },
      { deadline: Number.MAX_SAFE_INTEGER },
    );
    expect(sent).toEqual([]);
    expect(report.results).toEqual(
      ['ACK#e1', 'P#3', 'HEAD'].map((pk) => ({
        status: 'ignored',
        reason: expect.stringMatching(/reserved key space/),
        reservedKey: { pk, sk: 'EVT#000000000001' },
      })),
    );
  });
});
