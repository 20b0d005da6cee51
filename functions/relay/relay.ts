import type { Bookkeeper } from './bookkeeping.ts';
import type { Decoded, OutboxRecord, RecordKey } from './decode.ts';
import { type PublishOptions, type PublishStats, publishInOrder } from './publish.ts';
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
  /** Not an outbox record the relay acts on. */
  | { readonly status: 'ignored'; readonly reason: string }
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
 * Tracked mode: writes the pending delivery acknowledgements of a published event (one per subscriber tracked for
 * its type; none for an untracked type). Must be idempotent and never reset an ack already completed.
 */
export interface AckRecorder {
  /** Returns how many ack items this call created. */
  recordPublished(record: OutboxRecord, publishedAt: number): Promise<number>;
}

export interface RelayDependencies {
  readonly publishers: readonly Publisher[];
  readonly bookkeeper: Bookkeeper;
  /**
   * Tracked mode: called after a record is marked PUBLISHED (also when an earlier delivery had marked it, so an
   * ack write that failed before is completed). A failure reports the record as `retry`.
   * @default - no delivery acknowledgements
   */
  readonly acks?: AckRecorder;
  /** @default - nothing remembered between calls */
  readonly memory?: FinishedMemory;
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

/**
 * The publishing core shared by the stream relay and the recovery sweeper: publishes READY records to every
 * target in per-aggregate order, quarantines what can never be published, and records the outcome in the outbox.
 * Never throws for a record's failure: it reports it as `retry`.
 */
export async function relay(
  candidates: readonly RelayCandidate[],
  deps: RelayDependencies,
  options: RelayOptions,
): Promise<RelayReport> {
  const now = options.now ?? Date.now;
  const results: RelayResult[] = new Array(candidates.length);
  const memory = deps.memory;
  const toPublish: OutboxRecord[] = [];
  const publishIndex: number[] = [];
  const duplicates = new Map<number, number>();
  const firstByKey = new Map<string, number>();
  const tasks: (() => Promise<void>)[] = [];

  const quarantineTask = (
    i: number,
    key: RecordKey,
    eventId: string | undefined,
    reason: string,
    changeId?: string,
  ) =>
    tasks.push(async () => {
      try {
        const marked = (await deps.bookkeeper.quarantine(key, reason)) === 'updated';
        memory?.set(changeId, 'done');
        results[i] = {
          status: 'quarantined',
          key,
          reason,
          marked,
          ...(eventId === undefined ? {} : { eventId }),
        };
      } catch (error) {
        results[i] = {
          status: 'retry',
          key,
          eventId: eventId ?? '',
          code: errorCode(error),
          reason: `quarantining failed: ${errorMessage(error)}`,
        };
      }
    });

  const markTask = (
    i: number,
    record: OutboxRecord,
    at: number,
    changeId: string | undefined,
    sent: boolean,
  ) =>
    tasks.push(async () => {
      let stage = 'marking it PUBLISHED';
      try {
        const marked = (await deps.bookkeeper.markPublished(record, at)) === 'updated';
        if (deps.acks) {
          stage = 'writing its delivery acknowledgements';
          await deps.acks.recordPublished(record, at);
        }
        memory?.set(changeId, 'done');
        results[i] = { status: 'published', record, ageMs: Math.max(0, at - record.createdAt), sent, marked };
      } catch (error) {
        results[i] = {
          status: 'retry',
          key: record,
          eventId: record.id,
          code: errorCode(error),
          reason: `published, but ${stage} failed: ${errorMessage(error)}`,
        };
      }
    });

  for (let i = 0; i < candidates.length; i++) {
    const { decoded, changeId } = candidates[i] as RelayCandidate;
    if (decoded.kind === 'ignore') {
      results[i] = { status: 'ignored', reason: decoded.reason };
      continue;
    }
    const remembered = memory?.get(changeId);
    if (remembered === 'done') {
      results[i] = { status: 'already-done' };
      continue;
    }
    if (decoded.kind === 'quarantine') {
      quarantineTask(i, decoded.key, decoded.eventId, decoded.reason, changeId);
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
      markTask(i, record, now(), changeId, false);
      continue;
    }
    toPublish.push(record);
    publishIndex.push(i);
  }

  const published = await publishInOrder(toPublish, deps.publishers, options);

  published.outcomes.forEach((outcome, p) => {
    const i = publishIndex[p] as number;
    const record = toPublish[p] as OutboxRecord;
    const { changeId } = candidates[i] as RelayCandidate;
    switch (outcome.status) {
      case 'published':
        memory?.set(changeId, 'published');
        markTask(i, record, outcome.at, changeId, true);
        break;
      case 'rejected':
        quarantineTask(i, record, record.id, `${outcome.target} refuses it: ${outcome.reason}`, changeId);
        break;
      case 'failed':
        results[i] = {
          status: 'retry',
          key: record,
          eventId: record.id,
          code: outcome.code,
          reason: `publishing to ${outcome.target} failed: ${outcome.message}`,
          target: outcome.target,
          attempts: outcome.attempts,
        };
        break;
      case 'blocked':
        results[i] = {
          status: 'retry',
          key: record,
          eventId: record.id,
          code: 'Blocked',
          reason: `an earlier event of its aggregate (${outcome.behind}) was not published`,
        };
        break;
    }
  });

  await runLimited(tasks, Math.max(1, deps.bookkeepingConcurrency ?? 16));
  for (const [i, first] of duplicates) {
    const original = results[first] as RelayResult;
    // Report the copy like the original, but count the publish and the quarantine once.
    results[i] =
      original.status === 'published' || original.status === 'quarantined'
        ? { ...original, marked: false, ...(original.status === 'published' ? { sent: false } : {}) }
        : original;
  }
  return { results, publish: published.stats };
}
