import type { Bookkeeper } from './bookkeeping.ts';
import type { Decoded, OutboxRecord, RecordKey } from './decode.ts';
import { type PublishOptions, type PublishOutcome, type PublishStats, publishInOrder } from './publish.ts';
import type { PublishedSequences } from './published-memory.ts';
import type { Publisher } from './publishers.ts';

/** One input to `relay`: a decoded record plus the caller's handle on it. */
export interface RelayCandidate {
  /** The caller's identifier, returned untouched (the Lambda handler uses the stream SequenceNumber). */
  readonly ref: string;
  /**
   * Identity of this *change* (the stream record's eventID) for the finished-work memory: a redelivery carries the
   * same eventID, a later retry or replay of the record is a new change with a new one.
   * @default - not remembered
   */
  readonly changeId?: string;
  readonly decoded: Decoded;
}

export type RelayResult =
  /**
   * Accepted by every target and marked PUBLISHED. `sent` false: an earlier delivery had published it and only the
   * marking was left; `marked` false: an earlier delivery had marked it too.
   */
  | {
      readonly status: 'published';
      readonly record: OutboxRecord;
      readonly ageMs: number;
      readonly sent: boolean;
      readonly marked: boolean;
    }
  /** A redelivery of a change this container already finished: nothing sent, nothing written. */
  | { readonly status: 'already-done' }
  /** Marked QUARANTINED with `reason` (`marked` false: it was no longer READY). */
  | {
      readonly status: 'quarantined';
      readonly key: RecordKey;
      readonly eventId?: string;
      readonly reason: string;
      readonly marked: boolean;
    }
  /**
   * Held back behind an earlier SCHEDULED event of its aggregate (#10.1): set SCHEDULED, due when that event is,
   * so the sweeper releases it right after it (`marked` false: it was no longer READY).
   */
  | {
      readonly status: 'held';
      readonly key: RecordKey;
      readonly eventId: string;
      readonly behind: { readonly sequence: number; readonly id: string };
      readonly dueAt: number;
      readonly marked: boolean;
    }
  /** Not an outbox record the relay acts on (`reservedKey`: an item in the reserved key space, never published). */
  | { readonly status: 'ignored'; readonly reason: string; readonly reservedKey?: RecordKey }
  /** Not finished in this call: publishing failed, an earlier record of its aggregate failed, or bookkeeping failed. */
  | {
      readonly status: 'retry';
      readonly key: RecordKey;
      readonly eventId: string;
      readonly code: string;
      readonly reason: string;
      readonly target?: string;
      readonly attempts?: number;
    };

export interface RelayReport {
  /** One result per candidate, in input order. */
  readonly results: readonly RelayResult[];
  /**
   * Unpublished predecessors the relay found in the outbox table and handled before their successors: each one
   * `published`, `quarantined` or `retry`. They are not candidates (not in `results`); any at all means a stream
   * delivery was lost (or the sweeper's candidates had a gap).
   */
  readonly predecessors: readonly RelayResult[];
  /** Predecessor lookups made (one per aggregate whose lowest sequence in the call is above 1 and not preceded). */
  readonly predecessorLookups: number;
  readonly publish: PublishStats;
}

type Finished = 'published' | 'done';

/**
 * Remembers, per container, the changes already published (and marked) so a redelivered batch costs neither a
 * publish nor a write. Bounded; the oldest entries are forgotten first.
 */
export class FinishedMemory {
  readonly #entries = new Map<string, Finished>();
  readonly #capacity: number;
  constructor(capacity = 20_000) {
    this.#capacity = capacity;
  }
  get(changeId: string | undefined): Finished | undefined {
    return changeId === undefined ? undefined : this.#entries.get(changeId);
  }
  set(changeId: string | undefined, state: Finished): void {
    if (changeId === undefined) return;
    this.#entries.delete(changeId);
    this.#entries.set(changeId, state);
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Tracked mode: writes the pending delivery acknowledgements of an event (one per subscriber tracked for its type;
 * none for an untracked type). Must be idempotent and never reset an ack already completed.
 */
export interface AckRecorder {
  /**
   * Called BEFORE the event is sent (#10.6): a consumer that applies and acknowledges it before the relay is done
   * must find its ack item, or its acknowledgement is lost and the sweeper redelivers for nothing. Returns how many
   * ack items this call created.
   */
  recordExpected(record: OutboxRecord, at: number): Promise<number>;
}

/** What a walk back through an aggregate's records found. */
export interface PredecessorWalk {
  /** READY records, decoded (`publish`, or `quarantine` for one that can never be published), in sequence order. */
  readonly unpublished: readonly Decoded[];
  /**
   * The SCHEDULED record the walk stopped at, if it did: every later record of the aggregate waits for it.
   * `dueAt` is its `pendingDueAt` (its deliverAt, or its own blocker's when it is held back itself).
   */
  readonly scheduled?: { readonly sequence: number; readonly id: string; readonly dueAt: number };
}

/**
 * Finds an aggregate's unpublished predecessors in the outbox table (`createPredecessorFinder` in
 * predecessors.ts reads them with a strongly consistent Query).
 */
export interface PredecessorFinder {
  /**
   * Walks back from `beforeSequence - 1` to `afterSequence + 1` through `aggregate`'s event records, collecting
   * READY ones, and stops at the first record that is not READY: SCHEDULED is reported as `scheduled` (it holds
   * back what follows it); PUBLISHED, QUARANTINED and CANCELLED do not block. Throws when the table cannot be read.
   */
  findUnpublishedPredecessors(
    aggregate: string,
    beforeSequence: number,
    afterSequence?: number,
  ): Promise<PredecessorWalk>;
}

export interface RelayDependencies {
  readonly publishers: readonly Publisher[];
  readonly bookkeeper: Bookkeeper;
  /**
   * Tracked mode: called for every record before it is sent. A failure reports the record as `retry` and holds
   * back the rest of its aggregate (nothing is sent whose ack could be lost).
   * @default - no delivery acknowledgements
   */
  readonly acks?: AckRecorder;
  /** @default - nothing remembered between calls */
  readonly memory?: FinishedMemory;
  /**
   * Keeps per-aggregate order after a lost stream delivery: before publishing an aggregate whose lowest sequence
   * in this call is above 1 (and whose previous sequence is not in the call), reads its unpublished predecessors
   * and publishes them first. The stream relay and the recovery sweeper both set it.
   * @default - no lookup: a successor of a lost record is published before it
   */
  readonly predecessors?: PredecessorFinder;
  /**
   * The last sequence this container published per aggregate: a lookup is skipped when the previous sequence is
   * known to be PUBLISHED (published-memory.ts).
   * @default - nothing remembered: every such aggregate is looked up
   */
  readonly published?: PublishedSequences;
  /** Concurrent bookkeeping writes. @default 16 */
  readonly bookkeepingConcurrency?: number;
}

export type RelayOptions = PublishOptions;

async function runLimited(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++] as () => Promise<void>;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function errorCode(error: unknown): string {
  return (error as { name?: string })?.name ?? 'Error';
}

function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}

const EVENT_SORT_KEY = /^EVT#(\d{12})$/;

/** The sequence a record key stands for (also for a record that failed to decode), if its sort key says it. */
function sequenceOfKey(key: RecordKey): number | undefined {
  const match = EVENT_SORT_KEY.exec(key.sk);
  return match ? Number(match[1]) : undefined;
}

/** Concurrent predecessor lookups. */
const LOOKUP_CONCURRENCY = 16;

/** A record whose publishing still failed after retries: Lambda (or the next sweep) retries it. */
function publishFailed(
  record: OutboxRecord,
  outcome: Extract<PublishOutcome, { status: 'failed' }>,
): RelayResult {
  return {
    status: 'retry',
    key: record,
    eventId: record.id,
    code: outcome.code,
    reason: `publishing to ${outcome.target} failed: ${outcome.message}`,
    target: outcome.target,
    attempts: outcome.attempts,
  };
}

/** A record held back because an earlier event of its aggregate was not published. */
function blockedBehind(record: OutboxRecord, behind: string): RelayResult {
  return {
    status: 'retry',
    key: record,
    eventId: record.id,
    code: 'Blocked',
    reason: `an earlier event of its aggregate (${behind}) was not published`,
  };
}

/**
 * Tracked mode: writes the pending acks of every record to send, before sending it. An aggregate stops at its first
 * record whose acks could not be written: that one and the later ones are reported (`retry`) and not sent.
 * Returns the positions that may be sent.
 */
async function writePendingAcks(
  acks: AckRecorder,
  records: readonly OutboxRecord[],
  at: number,
  report: (position: number, result: RelayResult) => void,
): Promise<number[]> {
  const failures = new Map<number, unknown>();
  await runLimited(
    records.map((record, p) => async () => {
      try {
        await acks.recordExpected(record, at);
      } catch (error) {
        failures.set(p, error);
      }
    }),
    LOOKUP_CONCURRENCY,
  );
  if (failures.size === 0) return records.map((_, p) => p);
  const firstFailed = new Map<string, number>();
  for (const p of failures.keys()) {
    const record = records[p] as OutboxRecord;
    const current = firstFailed.get(record.pk);
    if (current === undefined || record.sequence < (records[current] as OutboxRecord).sequence)
      firstFailed.set(record.pk, p);
  }
  const kept: number[] = [];
  records.forEach((record, p) => {
    const first = firstFailed.get(record.pk);
    const blocker = first === undefined ? undefined : (records[first] as OutboxRecord);
    if (!blocker || record.sequence < blocker.sequence) {
      kept.push(p);
      return;
    }
    const error = failures.get(first as number);
    report(
      p,
      p === first
        ? {
            status: 'retry',
            key: record,
            eventId: record.id,
            code: errorCode(error),
            reason: `writing its pending delivery acknowledgements failed, so it was not sent: ${errorMessage(error)}`,
          }
        : blockedBehind(record, blocker.id),
    );
  });
  return kept;
}

/**
 * The publishing core shared by the stream relay and the recovery sweeper: publishes READY records to every
 * target in per-aggregate order, quarantines what can never be published, and records the outcome in the outbox.
 * With `deps.predecessors`, an aggregate's unpublished predecessors (READY in the table, but not in this call:
 * their stream delivery was lost) are published first. Never throws for a record's failure: it reports it as
 * `retry`.
 */
export async function relay(
  candidates: readonly RelayCandidate[],
  deps: RelayDependencies,
  options: RelayOptions,
): Promise<RelayReport> {
  const now = options.now ?? Date.now;
  const results: RelayResult[] = new Array(candidates.length);
  const predecessors: RelayResult[] = [];
  const memory = deps.memory;
  let toPublish: OutboxRecord[] = [];
  /** Per record to publish: the candidate's index, or `-1 - n` for the n-th predecessor. */
  let publishIndex: number[] = [];
  const duplicates = new Map<number, number>();
  const firstByKey = new Map<string, number>();
  const tasks: (() => Promise<void>)[] = [];
  const toCandidate = (i: number) => (result: RelayResult) => {
    results[i] = result;
  };
  const toPredecessor = (n: number) => (result: RelayResult) => {
    predecessors[n] = result;
  };

  const quarantineTask = (
    report: (result: RelayResult) => void,
    key: RecordKey,
    eventId: string | undefined,
    reason: string,
    changeId?: string,
  ) =>
    tasks.push(async () => {
      try {
        const marked = (await deps.bookkeeper.quarantine(key, reason, eventId)) === 'updated';
        memory?.set(changeId, 'done');
        report({
          status: 'quarantined',
          key,
          reason,
          marked,
          ...(eventId === undefined ? {} : { eventId }),
        });
      } catch (error) {
        report({
          status: 'retry',
          key,
          eventId: eventId ?? '',
          code: errorCode(error),
          reason: `quarantining failed: ${errorMessage(error)}`,
        });
      }
    });

  const markTask = (
    report: (result: RelayResult) => void,
    record: OutboxRecord,
    at: number,
    changeId: string | undefined,
    sent: boolean,
  ) =>
    tasks.push(async () => {
      try {
        const marked = (await deps.bookkeeper.markPublished(record, at)) === 'updated';
        memory?.set(changeId, 'done');
        report({ status: 'published', record, ageMs: Math.max(0, at - record.createdAt), sent, marked });
      } catch (error) {
        report({
          status: 'retry',
          key: record,
          eventId: record.id,
          code: errorCode(error),
          reason: `published, but marking it PUBLISHED failed: ${errorMessage(error)}`,
        });
      }
    });

  const holdTask = (
    report: (result: RelayResult) => void,
    record: OutboxRecord,
    behind: NonNullable<PredecessorWalk['scheduled']>,
    changeId?: string,
  ) =>
    tasks.push(async () => {
      try {
        const marked = (await deps.bookkeeper.hold(record, behind.dueAt, behind.sequence)) === 'updated';
        memory?.set(changeId, 'done');
        report({
          status: 'held',
          key: record,
          eventId: record.id,
          behind: { sequence: behind.sequence, id: behind.id },
          dueAt: behind.dueAt,
          marked,
        });
      } catch (error) {
        report({
          status: 'retry',
          key: record,
          eventId: record.id,
          code: errorCode(error),
          reason: `holding it back behind scheduled event ${behind.id} (sequence ${behind.sequence}) failed: ${errorMessage(error)}`,
        });
      }
    });

  /** Sequences of each aggregate present in this call (published, remembered or quarantined alike). */
  const known = new Map<string, Set<number>>();
  const note = (pk: string, sequence: number | undefined) => {
    if (sequence === undefined) return;
    const sequences = known.get(pk);
    if (sequences) sequences.add(sequence);
    else known.set(pk, new Set([sequence]));
  };

  for (let i = 0; i < candidates.length; i++) {
    const { decoded, changeId } = candidates[i] as RelayCandidate;
    if (decoded.kind === 'ignore') {
      results[i] = decoded.reservedKey
        ? { status: 'ignored', reason: decoded.reason, reservedKey: decoded.reservedKey }
        : { status: 'ignored', reason: decoded.reason };
      continue;
    }
    if (decoded.kind === 'publish') note(decoded.record.pk, decoded.record.sequence);
    else note(decoded.key.pk, sequenceOfKey(decoded.key));
    const remembered = memory?.get(changeId);
    if (remembered === 'done') {
      results[i] = { status: 'already-done' };
      continue;
    }
    if (decoded.kind === 'quarantine') {
      quarantineTask(toCandidate(i), decoded.key, decoded.eventId, decoded.reason, changeId);
      continue;
    }
    const { record } = decoded;
    const recordKey = `${record.pk}\u0000${record.sk}`;
    const first = firstByKey.get(recordKey);
    if (first !== undefined) {
      // The same record twice in one batch (it became READY twice): publish once, report the same outcome.
      duplicates.set(i, first);
      continue;
    }
    firstByKey.set(recordKey, i);
    if (remembered === 'published') {
      markTask(toCandidate(i), record, now(), changeId, false);
      continue;
    }
    toPublish.push(record);
    publishIndex.push(i);
  }

  // Unpublished predecessors: for every record to publish whose previous sequence is not in this call, the READY
  // records in the gap (down to the previous sequence in the call, or to the start) go first.
  let predecessorLookups = 0;
  if (deps.predecessors && toPublish.length > 0) {
    const finder = deps.predecessors;
    const publishable = new Map<string, Set<number>>();
    for (const record of toPublish) {
      const sequences = publishable.get(record.pk);
      if (sequences) sequences.add(record.sequence);
      else publishable.set(record.pk, new Set([record.sequence]));
    }
    const lookups: { pk: string; before: number; after: number; found?: PredecessorWalk }[] = [];
    for (const [pk, sequences] of publishable) {
      let previous = 0;
      for (const sequence of [...(known.get(pk) ?? [])].sort((a, b) => a - b)) {
        if (
          sequence - previous > 1 &&
          sequences.has(sequence) &&
          !deps.published?.isPublished(pk, sequence - 1)
        )
          lookups.push({ pk, before: sequence, after: previous });
        previous = sequence;
      }
    }
    predecessorLookups = lookups.length;
    const lookupFailures = new Map<string, unknown>();
    await runLimited(
      lookups.map((lookup) => async () => {
        try {
          lookup.found = await finder.findUnpublishedPredecessors(lookup.pk, lookup.before, lookup.after);
        } catch (error) {
          if (!lookupFailures.has(lookup.pk)) lookupFailures.set(lookup.pk, error);
        }
      }),
      LOOKUP_CONCURRENCY,
    );

    if (lookupFailures.size > 0) {
      // Without knowing its predecessors an aggregate cannot be published in order: none of it goes now.
      const lowest = new Map<string, number>();
      const keep: number[] = [];
      toPublish.forEach((record, p) => {
        if (!lookupFailures.has(record.pk)) {
          keep.push(p);
          return;
        }
        const current = lowest.get(record.pk);
        if (current === undefined || record.sequence < (toPublish[current] as OutboxRecord).sequence)
          lowest.set(record.pk, p);
      });
      toPublish.forEach((record, p) => {
        const error = lookupFailures.get(record.pk);
        if (error === undefined) return;
        const first = toPublish[lowest.get(record.pk) as number] as OutboxRecord;
        results[publishIndex[p] as number] =
          first === record
            ? {
                status: 'retry',
                key: record,
                eventId: record.id,
                code: errorCode(error),
                reason: `looking up its unpublished predecessors failed: ${errorMessage(error)}`,
              }
            : {
                status: 'retry',
                key: record,
                eventId: record.id,
                code: 'Blocked',
                reason: `an earlier event of its aggregate (${first.id}) was not published`,
              };
      });
      toPublish = keep.map((p) => toPublish[p] as OutboxRecord);
      publishIndex = keep.map((p) => publishIndex[p] as number);
    }

    // A SCHEDULED event holds back every later event of its aggregate (#10.1): per aggregate, the earliest blocker
    // any walk met. What follows it in this call, and the READY predecessors found after it, are held.
    const blockers = new Map<string, NonNullable<PredecessorWalk['scheduled']>>();
    for (const lookup of lookups) {
      const scheduled = lookup.found?.scheduled;
      if (lookupFailures.has(lookup.pk) || !scheduled) continue;
      const current = blockers.get(lookup.pk);
      if (!current || scheduled.sequence < current.sequence) blockers.set(lookup.pk, scheduled);
    }
    const heldBehind = (record: OutboxRecord) => {
      const scheduled = blockers.get(record.pk);
      return scheduled && record.sequence > scheduled.sequence ? scheduled : undefined;
    };
    if (blockers.size > 0) {
      const keep: number[] = [];
      toPublish.forEach((record, p) => {
        const scheduled = heldBehind(record);
        if (!scheduled) {
          keep.push(p);
          return;
        }
        const i = publishIndex[p] as number;
        holdTask(toCandidate(i), record, scheduled, (candidates[i] as RelayCandidate).changeId);
      });
      toPublish = keep.map((p) => toPublish[p] as OutboxRecord);
      publishIndex = keep.map((p) => publishIndex[p] as number);
    }

    for (const lookup of lookups) {
      if (lookupFailures.has(lookup.pk)) continue;
      for (const decoded of lookup.found?.unpublished ?? []) {
        if (decoded.kind === 'ignore') continue;
        const key = decoded.kind === 'publish' ? decoded.record : decoded.key;
        const recordKey = `${key.pk}\u0000${key.sk}`;
        if (firstByKey.has(recordKey)) continue;
        firstByKey.set(recordKey, -1);
        const n = predecessors.length;
        predecessors.length = n + 1;
        if (decoded.kind === 'quarantine') {
          // Quarantined, it does not block its successors (as a quarantined candidate does not).
          quarantineTask(toPredecessor(n), decoded.key, decoded.eventId, decoded.reason);
        } else if (heldBehind(decoded.record)) {
          holdTask(
            toPredecessor(n),
            decoded.record,
            heldBehind(decoded.record) as NonNullable<PredecessorWalk['scheduled']>,
          );
        } else {
          toPublish.push(decoded.record);
          publishIndex.push(-1 - n);
        }
      }
    }
  }

  if (deps.acks && toPublish.length > 0) {
    const kept = await writePendingAcks(deps.acks, toPublish, now(), (p, result) => {
      const slot = publishIndex[p] as number;
      if (slot < 0) predecessors[-1 - slot] = result;
      else results[slot] = result;
    });
    toPublish = kept.map((p) => toPublish[p] as OutboxRecord);
    publishIndex = kept.map((p) => publishIndex[p] as number);
  }

  const published = await publishInOrder(toPublish, deps.publishers, options);

  /** Predecessors that failed for good, by id: their successors in this call are reported with the cause. */
  const failedPredecessors = new Map<string, { record: OutboxRecord; outcome: PublishOutcome }>();
  /** Per aggregate, its first candidate held back behind a failed predecessor. */
  const firstBlocked = new Map<string, { i: number; record: OutboxRecord; behind: string }>();

  published.outcomes.forEach((outcome, p) => {
    const slot = publishIndex[p] as number;
    const record = toPublish[p] as OutboxRecord;
    if (slot < 0) {
      const n = -1 - slot;
      switch (outcome.status) {
        case 'published':
          markTask(toPredecessor(n), record, outcome.at, undefined, true);
          break;
        case 'rejected':
          quarantineTask(
            toPredecessor(n),
            record,
            record.id,
            `${outcome.target} refuses it: ${outcome.reason}`,
          );
          break;
        case 'failed':
          failedPredecessors.set(record.id, { record, outcome });
          predecessors[n] = publishFailed(record, outcome);
          break;
        case 'blocked':
          predecessors[n] = blockedBehind(record, outcome.behind);
          break;
      }
      return;
    }
    const i = slot;
    const { changeId } = candidates[i] as RelayCandidate;
    switch (outcome.status) {
      case 'published':
        memory?.set(changeId, 'published');
        markTask(toCandidate(i), record, outcome.at, changeId, true);
        break;
      case 'rejected':
        quarantineTask(
          toCandidate(i),
          record,
          record.id,
          `${outcome.target} refuses it: ${outcome.reason}`,
          changeId,
        );
        break;
      case 'failed':
        results[i] = publishFailed(record, outcome);
        break;
      case 'blocked': {
        results[i] = blockedBehind(record, outcome.behind);
        const first = firstBlocked.get(record.pk);
        if (first === undefined || record.sequence < first.record.sequence)
          firstBlocked.set(record.pk, { i, record, behind: outcome.behind });
        break;
      }
    }
  });

  // A predecessor that failed stops its aggregate: the first candidate behind it carries the failure.
  for (const { i, record, behind } of firstBlocked.values()) {
    const failed = failedPredecessors.get(behind);
    if (failed?.outcome.status !== 'failed') continue;
    const { outcome } = failed;
    results[i] = {
      status: 'retry',
      key: record,
      eventId: record.id,
      code: outcome.code,
      reason: `its unpublished predecessor ${failed.record.id} (sequence ${failed.record.sequence}) could not be published to ${outcome.target}: ${outcome.message}`,
      target: outcome.target,
      attempts: outcome.attempts,
    };
  }

  await runLimited(tasks, Math.max(1, deps.bookkeepingConcurrency ?? 16));
  for (const [i, first] of duplicates) {
    const original = results[first] as RelayResult;
    // Report the copy like the original, but count the publish, the quarantine and the hold once.
    results[i] =
      original.status === 'published' || original.status === 'quarantined' || original.status === 'held'
        ? { ...original, marked: false, ...(original.status === 'published' ? { sent: false } : {}) }
        : original;
  }
  for (const result of [...predecessors, ...results]) {
    if (result?.status === 'published')
      deps.published?.notePublished(result.record.pk, result.record.sequence);
  }
  return { results, predecessors, predecessorLookups, publish: published.stats };
}
