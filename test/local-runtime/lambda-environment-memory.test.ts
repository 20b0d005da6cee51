import { afterEach, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { useHandlerDirs } from './fixtures.ts';

// Holds ~8 MB per environment while warm: the heap report must see it.
const HOLDS_MEMORY = `
const kept = [];
export const handler = async () => {
  if (kept.length === 0) for (let i = 0; i < 100_000; i++) kept.push({ i, text: 'x'.repeat(20) + i });
  return kept.length;
};`;

describe('LambdaRuntime.environmentMemory (the soak reads worker-thread memory with it)', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
  });

  it("sums the live environments' V8 heaps, counts the ones started, and none once they are stopped", async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'holder',
      codeDir: await handlerDir({ 'index.mjs': HOLDS_MEMORY }),
      handler: 'index.handler',
      timeoutSeconds: 10,
    });
    const none = { environments: 0, heapUsedBytes: 0, heapTotalBytes: 0, mallocedBytes: 0 };
    expect(await runtime.environmentMemory()).toEqual({ ...none, environmentsStarted: 0 });
    expect((await runtime.invoke('holder', {})).result).toBe(100_000);
    const warm = await runtime.environmentMemory();
    expect(warm.environments).toBe(1);
    expect(warm.environmentsStarted).toBe(1);
    expect(warm.heapUsedBytes).toBeGreaterThan(5 * 2 ** 20);
    expect(warm.heapTotalBytes).toBeGreaterThanOrEqual(warm.heapUsedBytes);
    expect(warm.mallocedBytes).toBeGreaterThan(0);
    await runtime.stop();
    expect(await runtime.environmentMemory()).toEqual({ ...none, environmentsStarted: 1 });
  }, 60_000);
});
