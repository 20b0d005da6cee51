import { afterEach, describe, expect, it } from 'vitest';
import { type FunctionLogEntry, LambdaRuntime } from '../../local/runtime/lambda.ts';
import { MetricStore } from '../../local/runtime/metrics.ts';
import { useHandlerDirs } from './fixtures.ts';

const ESM_ECHO = `
let invocations = 0;
export const handler = async (event, context) => {
  invocations++;
  console.log('processing', event.n);
  return {
    event,
    invocations,
    env: { table: process.env.TABLE_NAME, ddb: process.env.AWS_ENDPOINT_URL_DYNAMODB, fn: process.env.AWS_LAMBDA_FUNCTION_NAME, home: process.env.SECRET_FROM_PARENT ?? null },
    context: { name: context.functionName, id: context.awsRequestId, remaining: context.getRemainingTimeInMillis() },
  };
};`;

const CJS_HANDLERS = `
"use strict";
exports.handler = async (event) => {
  if (event.mode === 'throw') { const e = new Error('boom'); e.name = 'OrderRejected'; throw e; }
  if (event.mode === 'sleep') await new Promise((r) => setTimeout(r, event.ms));
  if (event.mode === 'exit') process.exit(3);
  if (event.mode === 'reject-later') { Promise.reject(new Error('stray')); await new Promise((r) => setTimeout(r, 50)); }
  if (event.mode === 'emf') {
    console.log(JSON.stringify({ _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'Outbox', Dimensions: [['service']], Metrics: [{ Name: 'Relayed', Unit: 'Count' }] }] }, service: 'relay', Relayed: 3 }));
  }
  return { type: typeof module, ok: true };
};
exports.callbackStyle = (event, context, callback) => { setTimeout(() => callback(null, { viaCallback: event.x }), 5); };`;

describe('LambdaRuntime', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
  });

  it('runs an ESM handler with its own environment, a Lambda context, and reuses the warm environment', async () => {
    process.env.SECRET_FROM_PARENT = 'leak';
    const logs: FunctionLogEntry[] = [];
    runtime = new LambdaRuntime({ endpoints: { dynamodb: 'http://127.0.0.1:1' }, log: (e) => logs.push(e) });
    runtime.register({
      functionName: 'echo',
      codeDir: await handlerDir({ 'index.mjs': ESM_ECHO }),
      handler: 'index.handler',
      timeoutSeconds: 5,
      environment: { TABLE_NAME: 'outbox' },
    });

    const first = await runtime.invoke('echo', { n: 1 });
    const second = await runtime.invoke('arn:aws:lambda:us-east-1:000000000000:function:echo', { n: 2 });
    delete process.env.SECRET_FROM_PARENT;

    expect(first.error).toBeUndefined();
    expect(first.result).toMatchObject({
      event: { n: 1 },
      invocations: 1,
      env: { table: 'outbox', ddb: 'http://127.0.0.1:1', fn: 'echo', home: null },
      context: { name: 'echo', id: first.requestId },
    });
    const remaining = (first.result as { context: { remaining: number } }).context.remaining;
    expect(remaining).toBeGreaterThan(4000);
    expect(remaining).toBeLessThanOrEqual(5000);
    expect(second.result).toMatchObject({ invocations: 2 });
    expect(logs).toEqual([
      { functionName: 'echo', stream: 'stdout', message: 'processing 1', requestId: first.requestId },
      { functionName: 'echo', stream: 'stdout', message: 'processing 2', requestId: second.requestId },
    ]);
  });

  it('runs a CommonJS index.js even inside a "type": "module" package, and callback handlers', async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    const codeDir = await handlerDir({ 'index.js': CJS_HANDLERS, 'package.json': '{}' });
    runtime.register({ functionName: 'cjs', codeDir, handler: 'index.handler' });
    runtime.register({ functionName: 'cb', codeDir, handler: 'index.callbackStyle' });

    expect((await runtime.invoke('cjs', {})).result).toEqual({ type: 'object', ok: true });
    expect((await runtime.invoke('cb', { x: 7 })).result).toEqual({ viaCallback: 7 });
  });

  it('reports handler errors with their name, and init errors', async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    const codeDir = await handlerDir({ 'index.js': CJS_HANDLERS });
    runtime.register({ functionName: 'cjs', codeDir, handler: 'index.handler' });
    runtime.register({ functionName: 'missing', codeDir, handler: 'index.nope' });

    const failed = await runtime.invoke('cjs', { mode: 'throw' });
    expect(failed.error).toMatchObject({ errorType: 'OrderRejected', errorMessage: 'boom' });
    expect((await runtime.invoke('missing', {})).error).toMatchObject({
      errorType: 'Runtime.HandlerNotFound',
    });
  });

  it('enforces the timeout and replaces the killed environment', async () => {
    const metrics = new MetricStore();
    runtime = new LambdaRuntime({ log: () => {}, metrics });
    runtime.register({
      functionName: 'slow',
      codeDir: await handlerDir({ 'index.js': CJS_HANDLERS }),
      handler: 'index.handler',
      timeoutSeconds: 0.3,
    });

    const timedOut = await runtime.invoke('slow', { mode: 'sleep', ms: 5_000 });
    expect(timedOut.error?.errorType).toBe('Sandbox.Timedout');
    expect(timedOut.error?.errorMessage).toContain('Task timed out after 0.30 seconds');
    expect((await runtime.invoke('slow', { mode: 'sleep', ms: 1 })).result).toMatchObject({ ok: true });
    const errors = metrics.query({
      namespace: 'AWS/Lambda',
      metricName: 'Errors',
      dimensions: { FunctionName: 'slow' },
      startTime: 0,
      endTime: Date.now() + 1,
    });
    expect(errors).toHaveLength(1);
  });

  it('survives a handler that exits the process or leaves an unhandled rejection', async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'crashy',
      codeDir: await handlerDir({ 'index.js': CJS_HANDLERS }),
      handler: 'index.handler',
    });

    expect((await runtime.invoke('crashy', { mode: 'exit' })).error?.errorType).toBe('Runtime.ExitError');
    expect((await runtime.invoke('crashy', { mode: 'reject-later' })).error).toMatchObject({
      errorType: 'Runtime.UnhandledPromiseRejection',
      errorMessage: 'stray',
    });
    expect((await runtime.invoke('crashy', {})).result).toMatchObject({ ok: true });
  });

  it('enforces ReservedConcurrentExecutions: rejects or queues, and counts throttles', async () => {
    const metrics = new MetricStore();
    runtime = new LambdaRuntime({ log: () => {}, metrics });
    runtime.register({
      functionName: 'single',
      codeDir: await handlerDir({ 'index.js': CJS_HANDLERS }),
      handler: 'index.handler',
      reservedConcurrency: 1,
    });

    const slow = runtime.invoke('single', { mode: 'sleep', ms: 300 });
    const rejected = await runtime.invoke('single', {});
    expect(rejected).toMatchObject({ throttled: true, error: { errorType: 'TooManyRequestsException' } });
    const queued = runtime.invoke('single', {}, { onThrottle: 'queue' });
    const [slowResult, queuedResult] = await Promise.all([slow, queued]);
    expect(slowResult.error).toBeUndefined();
    expect(queuedResult.result).toMatchObject({ ok: true });
    const throttles = metrics.query({
      namespace: 'AWS/Lambda',
      metricName: 'Throttles',
      dimensions: { FunctionName: 'single' },
      startTime: 0,
      endTime: Date.now() + 1,
    });
    expect(throttles).toHaveLength(2);
  });

  it('captures EMF lines as metrics instead of logging them', async () => {
    const metrics = new MetricStore();
    const logs: FunctionLogEntry[] = [];
    runtime = new LambdaRuntime({ log: (e) => logs.push(e), metrics });
    runtime.register({
      functionName: 'emf',
      codeDir: await handlerDir({ 'index.js': CJS_HANDLERS }),
      handler: 'index.handler',
    });

    await runtime.invoke('emf', { mode: 'emf' });

    const relayed = metrics.query({
      namespace: 'Outbox',
      metricName: 'Relayed',
      dimensions: { service: 'relay' },
      startTime: 0,
      endTime: Date.now() + 1,
    });
    expect(relayed.map((d) => d.value)).toEqual([3]);
    expect(logs).toEqual([]);
  });
});
