import { afterEach, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { useHandlerDirs } from './fixtures.ts';

// What a function's code sees of the clock; `now` is captured at module load, as `options.now ?? Date.now` does.
const CLOCK_HANDLER = `
const now = Date.now;
export const handler = async (event, context) => ({
  dateNow: Date.now(),
  captured: now(),
  constructed: new Date().getTime(),
  parsed: new Date('2026-01-01T00:00:00.000Z').getTime(),
  called: Date(),
  isDate: new Date() instanceof Date,
  utc: Date.UTC(2026, 0, 1),
  remaining: context.getRemainingTimeInMillis(),
});`;

interface ClockReading {
  dateNow: number;
  captured: number;
  constructed: number;
  parsed: number;
  called: string;
  isDate: boolean;
  utc: number;
  remaining: number;
}

describe('LambdaRuntime clockSkewMs', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
  });

  it("skews each function's Date by its own offset, leaving explicit dates and the invocation deadline alone", async () => {
    const skews: Record<string, number> = { ahead: 5_000, behind: -3_000 };
    runtime = new LambdaRuntime({ log: () => {}, clockSkewMs: (name) => skews[name] ?? 0 });
    const codeDir = await handlerDir({ 'index.mjs': CLOCK_HANDLER });
    for (const functionName of ['ahead', 'behind', 'true'])
      runtime.register({ functionName, codeDir, handler: 'index.handler', timeoutSeconds: 30 });

    for (const [name, skew] of [
      ['ahead', 5_000],
      ['behind', -3_000],
      ['true', 0],
    ] as const) {
      const before = Date.now();
      const outcome = await runtime.invoke(name, {});
      const after = Date.now();
      const clock = outcome.result as ClockReading;
      for (const reading of [clock.dateNow, clock.captured, clock.constructed]) {
        expect(reading).toBeGreaterThanOrEqual(before + skew);
        expect(reading).toBeLessThanOrEqual(after + skew);
      }
      const called = Date.parse(clock.called);
      expect(called).toBeGreaterThanOrEqual(Math.floor((before + skew) / 1000) * 1000);
      expect(called).toBeLessThanOrEqual(after + skew);
      expect(clock.parsed).toBe(Date.UTC(2026, 0, 1));
      expect(clock.utc).toBe(Date.UTC(2026, 0, 1));
      expect(clock.isDate).toBe(true);
      // The deadline is the runtime's: a skewed clock neither shortens nor stretches the remaining time.
      expect(clock.remaining).toBeGreaterThan(25_000);
      expect(clock.remaining).toBeLessThanOrEqual(30_000);
    }
  });
});
