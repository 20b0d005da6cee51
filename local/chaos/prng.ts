/**
 * A small seeded PRNG (mulberry32) for chaos runs: every random decision of a run comes from one seed, so a
 * failing run is replayed by its seed. Not for cryptography.
 */

export interface SeededRandom {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (both included). */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** An independent generator for one concern (e.g. `fork('relay')`), so adding draws elsewhere keeps its stream. */
  fork(label: string): SeededRandom;
}

/** Accepts any integer seed (taken modulo 2^32). */
export function seededRandom(seed: number): SeededRandom {
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`A chaos seed must be an integer, but ${seed} was given`);
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const random: SeededRandom = {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick() needs at least one item');
      return items[Math.floor(next() * items.length)] as T;
    },
    fork: (label) => seededRandom(mix(seed, label)),
  };
  return random;
}

/** FNV-1a of the label folded into the seed: a stable, well-spread seed per (seed, label). */
function mix(seed: number, label: string): number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (const char of label) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
