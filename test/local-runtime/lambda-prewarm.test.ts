import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { useHandlerDirs } from './fixtures.ts';

/** Appends one line to INIT_LOG per initialized environment; `delayMs` makes the init slow. */
const COUNTED_INIT = (delayMs: number) => `
import { appendFileSync } from 'node:fs';
appendFileSync(process.env.INIT_LOG, 'init\\n');
await new Promise((resolve) => setTimeout(resolve, ${delayMs}));
let invocations = 0;
export const handler = async () => ({ invocations: ++invocations });`;

const FAILING_INIT = `throw new Error('no config');
export const handler = async () => 'unreachable';`;

describe('LambdaRuntime.prewarm', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
  });

  async function register(source: string): Promise<string> {
    const codeDir = await handlerDir({ 'index.mjs': source });
    runtime = new LambdaRuntime();
    runtime.register({
      functionName: 'fn',
      codeDir,
      handler: 'index.handler',
      timeoutSeconds: 5,
      environment: { INIT_LOG: path.join(codeDir, 'init.log') },
    });
    return path.join(codeDir, 'init.log');
  }

  const initializations = async (log: string) =>
    (await readFile(log, 'utf8')).split('\n').filter(Boolean).length;

  it('initializes one environment that the first invocation then uses, and only one', async () => {
    const log = await register(COUNTED_INIT(0));
    const lambda = runtime as LambdaRuntime;

    expect(await lambda.prewarm('fn')).toBe(true);
    expect(await initializations(log)).toBe(1);
    // The function has an environment now: a second prewarm starts nothing.
    expect(await lambda.prewarm('fn')).toBe(false);

    const first = await lambda.invoke('fn', {});
    expect(first.result).toEqual({ invocations: 1 });
    expect(await initializations(log)).toBe(1);
  });

  it('hands an environment still initializing to the invocation that arrives meanwhile', async () => {
    const log = await register(COUNTED_INIT(300));
    const lambda = runtime as LambdaRuntime;

    const prewarming = lambda.prewarm('fn');
    const invoked = await lambda.invoke('fn', {});
    expect(invoked.error).toBeUndefined();
    expect(invoked.result).toEqual({ invocations: 1 });
    expect(await prewarming).toBe(true);
    expect(await initializations(log)).toBe(1);
  });

  it('drops an environment whose init fails: the first invocation reports the init error', async () => {
    await register(FAILING_INIT);
    const lambda = runtime as LambdaRuntime;

    expect(await lambda.prewarm('fn')).toBe(false);
    const invoked = await lambda.invoke('fn', {});
    expect(invoked.error).toMatchObject({ errorMessage: expect.stringContaining('no config') });
  });
});
