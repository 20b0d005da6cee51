import { describe, expect, it } from 'vitest';
import type { Bookkeeper } from '../../functions/relay/bookkeeping.ts';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import { PublishedSequences } from '../../functions/relay/published-memory.ts';
import type { EntryResult, Publisher } from '../../functions/relay/publishers.ts';
import { type PredecessorFinder, type RelayCandidate, relay } from '../../functions/relay/relay.ts';
import { relayRecord } from '../support/relay-fixtures.ts';

const record = (pk: string, sequence: number) => relayRecord(pk, sequence);

const candidate = (r: OutboxRecord): RelayCandidate => ({
  ref: r.id,
  decoded: { kind: 'publish', record: r },
});
const forever = { deadline: Number.MAX_SAFE_INTEGER, random: () => 0 };

/** Accepts everything, or fails the records `failing` names. */
function publisher(failing: ReadonlySet<string> = new Set()): Publisher {
  return {
    name: 'fake',
    maxBatchBytes: 262_144,
    recordsPerGroupPerCall: 10,
    entryBytes: (r) => r.envelopeBytes,
    problem: () => undefined,
    send: async (batch) =>
      batch.map(
        (r): EntryResult =>
          failing.has(r.id)
            ? { ok: false, kind: 'fatal', code: 'InternalError', message: 'boom' }
            : { ok: true },
      ),
  };
}

const bookkeeper: Bookkeeper = {
  markPublished: async () => 'updated',
  quarantine: async () => 'updated',
  hold: async () => 'updated',
};

function finder() {
  const lookups: [string, number][] = [];
  const predecessors: PredecessorFinder = {
    findUnpublishedPredecessors: async (aggregate, before) => {
      lookups.push([aggregate, before]);
      return { unpublished: [] };
    },
  };
  return { predecessors, lookups };
}

describe('relay: remembered published sequences skip predecessor lookups', () => {
  it('skips the lookup when this container published the previous sequence, one event per aggregate per call', async () => {
    const published = new PublishedSequences();
    const { predecessors, lookups } = finder();
    const deps = { publishers: [publisher()], bookkeeper, predecessors, published };

    await relay([candidate(record('a', 1)), candidate(record('b', 4))], deps, forever);
    expect(lookups).toEqual([['b', 4]]);
    for (let sequence = 2; sequence <= 5; sequence++) {
      const report = await relay(
        [candidate(record('a', sequence)), candidate(record('b', sequence + 3))],
        deps,
        forever,
      );
      expect(report.results.map((r) => r.status)).toEqual(['published', 'published']);
      expect(report.predecessorLookups).toBe(0);
    }
    expect(lookups).toEqual([['b', 4]]);
  });

  it('still looks up when the previous sequence is not the one remembered (a gap: a lost delivery)', async () => {
    const published = new PublishedSequences();
    const { predecessors, lookups } = finder();
    const deps = { publishers: [publisher()], bookkeeper, predecessors, published };

    await relay([candidate(record('a', 1))], deps, forever);
    await relay([candidate(record('a', 3))], deps, forever);
    expect(lookups).toEqual([['a', 3]]);
  });

  it('does not remember a record whose publish failed: its successor is looked up', async () => {
    const published = new PublishedSequences();
    const { predecessors, lookups } = finder();

    await relay(
      [candidate(record('a', 1))],
      { publishers: [publisher(new Set(['a-1']))], bookkeeper, predecessors, published },
      forever,
    );
    expect(published.isPublished('a', 1)).toBe(false);
    await relay(
      [candidate(record('a', 2))],
      { publishers: [publisher()], bookkeeper, predecessors, published },
      forever,
    );
    expect(lookups).toEqual([['a', 2]]);
  });

  it('without the memory every such aggregate is looked up (the default for the sweeper)', async () => {
    const { predecessors, lookups } = finder();
    const deps = { publishers: [publisher()], bookkeeper, predecessors };
    await relay([candidate(record('a', 1))], deps, forever);
    await relay([candidate(record('a', 2))], deps, forever);
    expect(lookups).toEqual([['a', 2]]);
  });

  it('forgets the least recently published aggregates past its capacity', () => {
    const published = new PublishedSequences(2);
    published.notePublished('a', 1);
    published.notePublished('b', 1);
    published.notePublished('c', 1);
    expect(published.isPublished('a', 1)).toBe(false);
    expect(published.isPublished('c', 1)).toBe(true);
    published.notePublished('c', 0);
    expect(published.isPublished('c', 1)).toBe(true);
  });
});
