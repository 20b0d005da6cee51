import { describe, expect, it } from 'vitest';
import { describeSchedule, drawSchedule } from '../../examples/orders/chaos/schedule.ts';
import { seededRandom } from '../../local/chaos/prng.ts';

const draws = (seed: number, n = 20) => {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => random.next());
};

describe('seededRandom (chaos runs)', () => {
  it('the same seed gives the same sequence; another seed another one', () => {
    expect(draws(42)).toEqual(draws(42));
    expect(draws(42)).not.toEqual(draws(43));
  });

  it('int stays within its bounds and reaches both ends; next stays in [0, 1)', () => {
    const random = seededRandom(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const n = random.int(3, 6);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(6);
      seen.add(n);
      const x = random.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });

  it('a fork is independent of draws made on its parent', () => {
    const a = seededRandom(9);
    const b = seededRandom(9);
    b.next();
    b.next();
    expect(a.fork('faults').next()).toBe(b.fork('faults').next());
    expect(a.fork('faults').next()).not.toBe(a.fork('workload').next());
  });

  it('refuses a seed that is not an integer', () => {
    expect(() => seededRandom(1.5)).toThrow(/integer/);
  });

  it('a chaos schedule is a function of its seed', () => {
    const schedule = (seed: number) => describeSchedule(drawSchedule(seededRandom(seed).fork('faults'), 300));
    expect(schedule(5)).toEqual(schedule(5));
    expect(schedule(5)).not.toEqual(schedule(6));
  });
});
