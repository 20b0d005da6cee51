import { describe, expect, it } from 'vitest';
import type { Bookkeeper } from '../../functions/relay/bookkeeping.ts';
import type { Decoded } from '../../functions/relay/decode.ts';
import type { Publisher } from '../../functions/relay/publishers.ts';
import { type PredecessorWalk, relay } from '../../functions/relay/relay.ts';
import { relayRecord } from '../support/relay-fixtures.ts';

const record = (pk: string, sequence: number) => relayRecord(pk, sequence, '{}', 1);

describe('relay: an earlier SCHEDULED event holds back the rest of its aggregate (#10.1)', () => {
  it('holds every later record of the aggregate in the call, also those after a gap that is READY, and publishes other aggregates', async () => {
    const sent: string[] = [];
    const held: [string, number, number][] = [];
    const publisher: Publisher = {
      name: 'fake',
      maxBatchBytes: 262_144,
      recordsPerGroupPerCall: 1,
      entryBytes: () => 2,
      problem: () => undefined,
      send: async (batch) => {
        sent.push(...batch.map((r) => r.id));
        return batch.map(() => ({ ok: true }));
      },
    };
    const bookkeeper: Bookkeeper = {
      markPublished: async () => 'updated',
      quarantine: async () => 'updated',
      hold: async (key, dueAt, behind) => {
        held.push([key.sk, dueAt, behind]);
        return 'updated';
      },
    };
    // a#2 is SCHEDULED (due at 5000); a#4 is READY but its stream delivery was lost.
    const walks: Record<string, PredecessorWalk> = {
      'a:3': { unpublished: [], scheduled: { sequence: 2, id: 'a-2', dueAt: 5000 } },
      'a:5': { unpublished: [{ kind: 'publish', record: record('a', 4) } as Decoded] },
    };
    const report = await relay(
      [record('a', 3), record('a', 5), record('b', 1)].map((r) => ({
        ref: r.id,
        decoded: { kind: 'publish', record: r },
      })),
      {
        publishers: [publisher],
        bookkeeper,
        predecessors: {
          findUnpublishedPredecessors: async (aggregate, before) =>
            walks[`${aggregate}:${before}`] ?? { unpublished: [] },
        },
      },
      { deadline: Number.MAX_SAFE_INTEGER, random: () => 0 },
    );
    expect(sent).toEqual(['b-1']);
    expect(report.results.map((r) => r.status)).toEqual(['held', 'held', 'published']);
    expect(report.predecessors.map((r) => r.status)).toEqual(['held']);
    expect(held.sort()).toEqual([
      ['EVT#000000000003', 5000, 2],
      ['EVT#000000000004', 5000, 2],
      ['EVT#000000000005', 5000, 2],
    ]);
  });
});
