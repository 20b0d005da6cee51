import { describe, expect, it } from 'vitest';
import { SHARD_ITERATOR_LIFETIME_MS, StreamIterators } from '../../local/iam/stream-iterators.ts';

const STREAM = 'arn:aws:dynamodb:us-east-1:000000000000:table/outbox/stream/2026-11-30T00:00:00.000';

describe('the IAM gateway memory of shard iterators over a long run', () => {
  it('forgets an iterator once used and one never used once it would have expired on AWS', () => {
    let now = 0;
    const iterators = new StreamIterators(() => now);
    // A poller that fails every tenth read asks for a fresh iterator: the one it was handed is never used.
    let current = 'it-0';
    iterators.remember(current, STREAM);
    for (let read = 1; read <= 20_000; read++) {
      now += 250;
      expect(iterators.streamOf(current)).toBe(STREAM);
      iterators.forget(current);
      if (read % 10 === 0) iterators.remember(`abandoned-${read}`, STREAM);
      current = `it-${read}`;
      iterators.remember(current, STREAM);
    }
    // 20,000 reads at 4 a second span 83 minutes; only the last 15 minutes of abandoned iterators remain.
    const abandonedWithinLifetime = SHARD_ITERATOR_LIFETIME_MS / 250 / 10;
    expect(iterators.size).toBeLessThanOrEqual(abandonedWithinLifetime + 1);
    expect(iterators.streamOf('abandoned-10')).toBeUndefined();
    expect(iterators.streamOf('abandoned-20000')).toBe(STREAM);
  });
});
