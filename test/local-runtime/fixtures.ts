import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import type { FunctionInvoker } from '../../local/runtime/event-source.ts';
import type { InvokeResult, LambdaRuntime } from '../../local/runtime/lambda.ts';

/**
 * Writes tiny handler bundles into a temp dir, like CDK's asset directories (`index.js` CJS or
 * `index.mjs` ESM); removed after the file's tests.
 */
export function useHandlerDirs(): (files: Record<string, string>) => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async (files) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'local-runtime-fn-'));
    dirs.push(dir);
    for (const [name, source] of Object.entries(files)) await writeFile(path.join(dir, name), source);
    return dir;
  };
}

/** Polls `check` until it returns a non-undefined value. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface RecordedCall {
  readonly functionName: string;
  readonly event: unknown;
  readonly result: InvokeResult;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Wraps a LambdaRuntime so tests can see every event a poller sent and what came back. */
export function recordingInvoker(runtime: LambdaRuntime): {
  invoker: FunctionInvoker;
  calls: RecordedCall[];
} {
  const calls: RecordedCall[] = [];
  return {
    calls,
    invoker: {
      functionArn: (name) => runtime.functionArn(name),
      async invoke(functionName, event, opts) {
        const startedAt = Date.now();
        const result = await runtime.invoke(functionName, event, opts);
        calls.push({ functionName, event, result, startedAt, endedAt: Date.now() });
        return result;
      },
    },
  };
}
