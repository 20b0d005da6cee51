/** DynamoDB Streams shard iterators expire 15 minutes after they are issued. */
export const SHARD_ITERATOR_LIFETIME_MS = 15 * 60_000;

/**
 * Which stream each issued shard iterator reads (a GetRecords call names only its iterator). An iterator is
 * forgotten once used; one never used (a poller that failed and asked for a fresh one) is forgotten when it would
 * have expired on AWS, so a long run keeps only the live ones.
 */
export class StreamIterators {
  readonly #streams = new Map<string, { stream: string; issuedAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  remember(iterator: string, stream: string): void {
    const now = this.#now();
    // Insertion order is issue order: expired ones are at the front.
    for (const [key, entry] of this.#streams) {
      if (now - entry.issuedAt < SHARD_ITERATOR_LIFETIME_MS) break;
      this.#streams.delete(key);
    }
    this.#streams.set(iterator, { stream, issuedAt: now });
  }

  streamOf(iterator: string): string | undefined {
    return this.#streams.get(iterator)?.stream;
  }

  forget(iterator: string): void {
    this.#streams.delete(iterator);
  }

  get size(): number {
    return this.#streams.size;
  }
}
