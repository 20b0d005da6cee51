/**
 * Remembers, per container, the last sequence of each aggregate this relay published and marked PUBLISHED, so the
 * predecessor lookup (predecessors.ts) can be skipped when the previous sequence is known to be PUBLISHED.
 *
 * Why this is safe: the walk back from sequence S stops at the first record before S that is not READY. When S - 1
 * is PUBLISHED, the walk finds nothing to publish and no SCHEDULED blocker (it never gets past S - 1), whatever
 * lies further back. PUBLISHED is final for the relay (a quarantined record is retried, a published one never goes
 * back to READY; `outbox replay` re-sends without touching the status), so the memory never goes stale: at worst
 * the item is gone (TTL), and the walk would find nothing either.
 *
 * In steady state an aggregate's next event reaches the same container (one stream shard per key range), so one
 * event per aggregate per batch costs no Query instead of one.
 */
export class PublishedSequences {
  readonly #last = new Map<string, number>();
  readonly #capacity: number;

  /** `capacity` aggregates are remembered; the least recently published are forgotten first. */
  constructor(capacity = 50_000) {
    this.#capacity = capacity;
  }

  /** True when `sequence` of `aggregate` is known to be PUBLISHED (this container marked it). */
  isPublished(aggregate: string, sequence: number): boolean {
    return this.#last.get(aggregate) === sequence;
  }

  /** Records that `sequence` of `aggregate` is PUBLISHED (keeps the highest sequence seen). */
  notePublished(aggregate: string, sequence: number): void {
    const current = this.#last.get(aggregate);
    if (current !== undefined && current > sequence) return;
    this.#last.delete(aggregate);
    this.#last.set(aggregate, sequence);
    if (this.#last.size > this.#capacity) {
      const oldest = this.#last.keys().next().value;
      if (oldest !== undefined) this.#last.delete(oldest);
    }
  }

  get size(): number {
    return this.#last.size;
  }
}
