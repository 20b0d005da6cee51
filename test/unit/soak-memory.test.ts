import { describe, expect, it } from 'vitest';
import { boundedStoresNote, grewAfterWarmup, type MemorySample, perWindow } from '../../bench/soak-memory.ts';

const sample = (at: number, nodeHeapAfterGc: number): MemorySample => ({
  at,
  nodeRss: 0,
  nodeHeapAfterGc,
  nodeHeapTotal: 0,
  nodeExternal: 0,
  workersHeap: 0,
  workersHeapTotal: 0,
  workersMalloced: 0,
  workers: 0,
  workersStarted: 0,
  jvmRss: 0,
  metricDatapoints: 0,
});

describe("the soak's memory verdict", () => {
  it('takes the median of each window from the workload start, ignoring samples before it', () => {
    const samples = [sample(0, 999), sample(100, 10), sample(150, 30), sample(160, 20), sample(250, 40)];
    expect(perWindow(samples, 'nodeHeapAfterGc', 100, 300, 100)).toEqual([20, 40]);
  });

  it('compares the second window with the last, ignoring the warm-up, with a 20% tolerance', () => {
    expect(grewAfterWarmup([10, 100, 119])).toBe('no (+19%)');
    expect(grewAfterWarmup([10, 100, 130])).toBe('yes (+30%)');
    expect(grewAfterWarmup([500, 100, 90])).toBe('no (-10%)');
    expect(grewAfterWarmup([100, 100])).toBe('n/a (needs 3 windows)');
  });

  it('says whether the metric store was still filling after the warm-up', () => {
    expect(boundedStoresNote([150_000, 199_000, 200_000])).toMatch(/^metric store full/);
    expect(boundedStoresNote([2_496, 8_726, 63_974])).toMatch(/still filling .*8726 -> 63974 of 200000/);
  });
});
