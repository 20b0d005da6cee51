import type { OutboxRecord } from './decode.ts';
import { type EntryResult, MAX_ENTRIES_PER_CALL, type Publisher } from './publishers.ts';

export interface RetryPolicy {
  /** Attempts per entry, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** Backoff cap of the first retry, in ms; doubles each retry. @default 50 */
  readonly baseDelayMs?: number;
  /** Largest backoff cap, in ms. @default 2000 */
  readonly maxDelayMs?: number;
}

export interface PublishOptions {
  /** Epoch ms after which no call is started and no retry is scheduled (leave time for bookkeeping). */
  readonly deadline: number;
  readonly retry?: RetryPolicy;
  /** Calls in flight per target. @default 8 */
  readonly maxConcurrentCalls?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Source of the jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
}

export type PublishOutcome =
  /** Accepted by every target. */
  | { readonly status: 'published'; readonly at: number }
  /** A target can never accept it (too large, invalid content): quarantine it. */
  | { readonly status: 'rejected'; readonly target: string; readonly reason: string }
  /** Still failing after retries, or a fatal error: its aggregate stops here. */
  | {
      readonly status: 'failed';
      readonly target: string;
      readonly code: string;
      readonly message: string;
      readonly attempts: number;
    }
  /** Not published in this invocation because an earlier record of its aggregate failed. */
  | { readonly status: 'blocked'; readonly behind: string };

export interface PublishStats {
  /** API calls made, per target. */
  readonly calls: Record<string, number>;
  /** Entries accepted, per target. */
  readonly accepted: Record<string, number>;
  /** Entries sent again after a retryable failure (all targets). */
  readonly retried: number;
}

export interface PublishResult {
  /** One outcome per input record, in input order. */
  readonly outcomes: readonly PublishOutcome[];
  readonly stats: PublishStats;
}

/** The records of one aggregate, in sequence order, and how far every target may go. */
interface Lane {
  readonly items: readonly number[];
  /** Position of the first record that failed on any target; records from here on are not published now. */
  stop: number;
  failure?: {
    readonly position: number;
    readonly target: string;
    readonly result: FailedResult;
    readonly attempts: number;
  };
}

type FailedResult = Extract<EntryResult, { ok: false }>;

/** One target's progress through one lane. */
interface Cursor {
  readonly lane: Lane;
  position: number;
  /** Attempts made for the record at `position`. */
  attempts: number;
  notBefore: number;
  lastError?: FailedResult;
}

const ENTRY_DONE = 1;
const ENTRY_REJECTED = 2;

function compareRecords(a: OutboxRecord, b: OutboxRecord): number {
  return a.sequence - b.sequence;
}

/** Groups record indices by aggregate key and orders each group by sequence. */
export function lanesOf(records: readonly OutboxRecord[]): number[][] {
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < records.length; i++) {
    const key = (records[i] as OutboxRecord).pk;
    const lane = byKey.get(key);
    if (lane) lane.push(i);
    else byKey.set(key, [i]);
  }
  const lanes = [...byKey.values()];
  for (const lane of lanes) {
    if (lane.length > 1)
      lane.sort((a, b) => compareRecords(records[a] as OutboxRecord, records[b] as OutboxRecord));
  }
  return lanes;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Publishes records to every target, per aggregate in sequence order, aggregates concurrently, in full batches.
 *
 * - Each target runs its own pipeline; a record counts as published once every target accepted it.
 * - A batch holds up to 10 entries within the target's byte limit, drawn from different aggregates (FIFO
 *   targets take one record per aggregate per call, so a retried entry can never be overtaken by a later
 *   record of its own group).
 * - Only failed entries are retried, with full-jitter exponential backoff, while the deadline allows.
 * - When an entry fails for good, its aggregate stops there on every target: later records of that aggregate
 *   are not published in this call (`blocked`), other aggregates carry on.
 */
export async function publishInOrder(
  records: readonly OutboxRecord[],
  publishers: readonly Publisher[],
  options: PublishOptions,
): Promise<PublishResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 8);
  const baseDelay = options.retry?.baseDelayMs ?? 50;
  const maxDelay = options.retry?.maxDelayMs ?? 2000;
  const maxConcurrent = Math.max(1, options.maxConcurrentCalls ?? 8);
  const { deadline } = options;

  const stats = { calls: {} as Record<string, number>, accepted: {} as Record<string, number>, retried: 0 };
  // Records a target refuses for good are dropped by every target (quarantined, not half-published).
  const rejected = new Map<number, { target: string; reason: string }>();
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as OutboxRecord;
    for (const publisher of publishers) {
      const problem = publisher.problem(record);
      if (problem !== undefined) {
        rejected.set(i, { target: publisher.name, reason: problem });
        break;
      }
    }
  }
  const lanes: Lane[] = lanesOf(records).map((items) => ({ items, stop: items.length }));
  const acceptedBy = new Uint8Array(records.length);
  const publishedAt = new Float64Array(records.length);

  function failLane(cursor: Cursor, target: string, result: FailedResult): void {
    const { lane, position } = cursor;
    if (position < lane.stop) {
      lane.stop = position;
      lane.failure = { position, target, result, attempts: cursor.attempts };
    }
  }

  async function runTarget(publisher: Publisher): Promise<void> {
    const name = publisher.name;
    stats.calls[name] = 0;
    stats.accepted[name] = 0;
    const state = new Uint8Array(records.length);
    const perGroup = Math.max(1, Math.min(MAX_ENTRIES_PER_CALL, publisher.recordsPerGroupPerCall));
    let ready: Cursor[] = lanes.map((lane) => ({ lane, position: 0, attempts: 0, notBefore: 0 }));
    let head = 0;
    let delayed: Cursor[] = [];
    let inFlight = 0;
    let wake: (() => void) | undefined;

    /** Moves the cursor past records this target has finished; true if it still has work. */
    const pending = (c: Cursor): boolean => {
      const { items } = c.lane;
      while (c.position < c.lane.stop) {
        const index = items[c.position] as number;
        if (state[index] !== 0 || rejected.has(index)) c.position++;
        else return true;
      }
      return false;
    };

    const takeBatch = (
      force: boolean,
    ): { cursors: Cursor[]; counts: number[]; entries: number[] } | undefined => {
      const cursors: Cursor[] = [];
      const counts: number[] = [];
      const entries: number[] = [];
      let bytes = 0;
      let full = false;
      const start = head;
      while (head < ready.length && !full) {
        const cursor = ready[head] as Cursor;
        if (!pending(cursor)) {
          head++;
          continue;
        }
        let taken = 0;
        let position = cursor.position;
        while (position < cursor.lane.stop && taken < perGroup) {
          const index = cursor.lane.items[position] as number;
          if (state[index] !== 0 || rejected.has(index)) {
            position++;
            continue;
          }
          const size = publisher.entryBytes(records[index] as OutboxRecord);
          if (
            entries.length === MAX_ENTRIES_PER_CALL ||
            (entries.length > 0 && bytes + size > publisher.maxBatchBytes)
          ) {
            full = true;
            break;
          }
          entries.push(index);
          bytes += size;
          taken++;
          position++;
        }
        if (taken > 0) {
          cursors.push(cursor);
          counts.push(taken);
          head++;
        }
        if (entries.length === MAX_ENTRIES_PER_CALL) full = true;
      }
      if (entries.length === 0) return undefined;
      if (!full && !force) {
        // Wait for calls in flight to hand back more aggregates and send a fuller batch.
        head = start;
        return undefined;
      }
      return { cursors, counts, entries };
    };

    const settle = (cursors: Cursor[], counts: number[], entries: number[], results: EntryResult[]): void => {
      let offset = 0;
      const at = now();
      for (let c = 0; c < cursors.length; c++) {
        const cursor = cursors[c] as Cursor;
        const count = counts[c] as number;
        let firstFailure: FailedResult | undefined;
        for (let k = offset; k < offset + count; k++) {
          const index = entries[k] as number;
          const result: EntryResult = results[k] ?? {
            ok: false,
            kind: 'retryable',
            code: 'MissingResult',
            message: 'no result',
          };
          if (result.ok) {
            state[index] = ENTRY_DONE;
            stats.accepted[name] = (stats.accepted[name] ?? 0) + 1;
            acceptedBy[index] = (acceptedBy[index] ?? 0) + 1;
            if (acceptedBy[index] === publishers.length) publishedAt[index] = at;
          } else if (result.kind === 'rejected') {
            state[index] = ENTRY_REJECTED;
            if (!rejected.has(index))
              rejected.set(index, { target: name, reason: `${result.code}: ${result.message}` });
          } else {
            firstFailure ??= result;
          }
        }
        offset += count;
        const before = cursor.position;
        const more = pending(cursor);
        if (!firstFailure) {
          cursor.attempts = 0;
          if (more) ready.push(cursor);
          continue;
        }
        // pending() stopped at the first record this target has not finished: the one that failed.
        if (cursor.position !== before) cursor.attempts = 0;
        cursor.attempts++;
        cursor.lastError = firstFailure;
        if (!more) continue;
        const delay = Math.floor(random() * Math.min(maxDelay, baseDelay * 2 ** (cursor.attempts - 1)));
        if (firstFailure.kind === 'fatal' || cursor.attempts >= maxAttempts || at + delay >= deadline) {
          failLane(cursor, name, firstFailure);
          continue;
        }
        stats.retried++;
        cursor.notBefore = at + delay;
        delayed.push(cursor);
      }
    };

    const dispatch = (batch: { cursors: Cursor[]; counts: number[]; entries: number[] }): void => {
      inFlight++;
      stats.calls[name] = (stats.calls[name] ?? 0) + 1;
      const batchRecords = batch.entries.map((i) => records[i] as OutboxRecord);
      const remaining = deadline - now();
      // A call may not outlive the deadline (timers cap at 2^31-1 ms).
      const signal = AbortSignal.timeout(Math.min(0x7fffffff, Math.max(1, remaining)));
      publisher
        .send(batchRecords, signal)
        .catch((error: unknown): EntryResult[] => {
          // Publishers do not reject; if one does, treat it as a retryable failure of every entry.
          const message = error instanceof Error ? error.message : String(error);
          return batchRecords.map(() => ({ ok: false, kind: 'retryable', code: 'PublisherError', message }));
        })
        .then((results) => {
          settle(batch.cursors, batch.counts, batch.entries, results);
          inFlight--;
          wake?.();
        });
    };

    for (;;) {
      const t = now();
      if (delayed.length > 0) {
        const still: Cursor[] = [];
        for (const cursor of delayed) {
          if (cursor.notBefore <= t) ready.push(cursor);
          else still.push(cursor);
        }
        delayed = still;
      }
      if (head > 1024 && head * 2 > ready.length) {
        ready = ready.slice(head);
        head = 0;
      }
      if (t >= deadline) {
        // No new calls: whatever is still waiting fails where it stands.
        for (const cursor of [...ready.slice(head), ...delayed]) {
          if (pending(cursor)) {
            failLane(
              cursor,
              name,
              cursor.lastError ?? {
                ok: false,
                kind: 'retryable',
                code: 'DeadlineExceeded',
                message: 'no time left',
              },
            );
          }
        }
        ready = [];
        head = 0;
        delayed = [];
      } else {
        while (inFlight < maxConcurrent) {
          const batch = takeBatch(inFlight === 0);
          if (!batch) break;
          dispatch(batch);
        }
      }
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      if (head < ready.length) continue;
      if (delayed.length === 0) return;
      const next = Math.min(...delayed.map((c) => c.notBefore));
      await sleep(Math.max(0, Math.min(next, deadline) - now()));
    }
  }

  await Promise.all(publishers.map(runTarget));

  const outcomes: PublishOutcome[] = new Array(records.length);
  for (const lane of lanes) {
    const blockedBehind = lane.failure
      ? (records[lane.items[lane.failure.position] as number] as OutboxRecord).id
      : '';
    for (let position = 0; position < lane.items.length; position++) {
      const index = lane.items[position] as number;
      const refused = rejected.get(index);
      if (refused) {
        // Quarantining is not order-sensitive: do it even behind a failure.
        outcomes[index] = { status: 'rejected', target: refused.target, reason: refused.reason };
      } else if (position < lane.stop) {
        outcomes[index] = { status: 'published', at: publishedAt[index] || now() };
      } else if (position === lane.stop && lane.failure) {
        const { target, result, attempts } = lane.failure;
        outcomes[index] = { status: 'failed', target, code: result.code, message: result.message, attempts };
      } else {
        outcomes[index] = { status: 'blocked', behind: blockedBehind };
      }
    }
  }
  return { outcomes, stats };
}
