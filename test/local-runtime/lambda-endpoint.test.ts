import {
  InvokeCommand,
  LambdaClient,
  ResourceNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { type LambdaEndpoint, startLambdaEndpoint } from '../../local/runtime/lambda-endpoint.ts';
import { eventually, useHandlerDirs } from './fixtures.ts';

const HANDLERS = `
let calls = 0;
export const handler = async (event) => {
  calls++;
  if (event.mode === 'throw') { const e = new Error('card declined'); e.name = 'PaymentRejected'; throw e; }
  if (event.mode === 'sleep') await new Promise((r) => setTimeout(r, event.ms));
  if (event.mode === 'count') return calls;
  if (event.mode === 'call-other') {
    // A function calling another through the endpoint the runtime hands it (AWS_ENDPOINT_URL_LAMBDA).
    const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
    const client = new LambdaClient({});
    const out = await client.send(new InvokeCommand({ FunctionName: 'echo', Payload: JSON.stringify({ via: 'endpoint' }) }));
    return { endpoint: process.env.AWS_ENDPOINT_URL_LAMBDA, other: JSON.parse(Buffer.from(out.Payload).toString()) };
  }
  return { echoed: event, calls };
};`;

describe('the local Lambda endpoint (Invoke API) with @aws-sdk/client-lambda', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime;
  let endpoint: LambdaEndpoint;
  let client: LambdaClient;
  const asyncLog: string[] = [];

  beforeAll(async () => {
    endpoint = await startLambdaEndpoint({ asyncRetryDelayMs: 10, log: (m) => asyncLog.push(m) });
    runtime = new LambdaRuntime({ endpoints: { lambda: endpoint.url }, log: () => {} });
    const codeDir = await handlerDir({ 'index.mjs': HANDLERS });
    runtime.register({ functionName: 'echo', codeDir, handler: 'index.handler', timeoutSeconds: 5 });
    runtime.register({ functionName: 'slow-one', codeDir, handler: 'index.handler', reservedConcurrency: 1 });
    runtime.register({ functionName: 'async-target', codeDir, handler: 'index.handler' });
    endpoint.attach(runtime);
    client = new LambdaClient({
      endpoint: endpoint.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    client?.destroy();
    await endpoint?.stop();
    await runtime?.stop();
  });

  const payloadOf = (bytes: Uint8Array | undefined): unknown =>
    JSON.parse(Buffer.from(bytes ?? new Uint8Array()).toString('utf8'));

  it('invokes by name, name:qualifier and ARN (RequestResponse) and returns the JSON result', async () => {
    for (const name of ['echo', 'echo:$LATEST', 'arn:aws:lambda:us-east-1:000000000000:function:echo']) {
      const out = await client.send(
        new InvokeCommand({ FunctionName: name, Payload: JSON.stringify({ n: 1 }) }),
      );
      expect(out.StatusCode).toBe(200);
      expect(out.FunctionError).toBeUndefined();
      expect(out.ExecutedVersion).toBe('$LATEST');
      expect(payloadOf(out.Payload)).toMatchObject({ echoed: { n: 1 } });
    }
  });

  it('answers an unhandled function error with 200, FunctionError Unhandled and the error payload', async () => {
    const out = await client.send(
      new InvokeCommand({ FunctionName: 'echo', Payload: JSON.stringify({ mode: 'throw' }) }),
    );
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    const payload = payloadOf(out.Payload) as { errorType: string; errorMessage: string; trace: string[] };
    expect(payload.errorType).toBe('PaymentRejected');
    expect(payload.errorMessage).toBe('card declined');
    expect(Array.isArray(payload.trace)).toBe(true);
  });

  it('answers an unknown function with 404 ResourceNotFoundException (Type User, x-amzn-ErrorType)', async () => {
    const error = await client
      .send(new InvokeCommand({ FunctionName: 'nope', Payload: '{}' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect((error as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
    expect((error as ResourceNotFoundException).Type).toBe('User');
    expect((error as Error).message).toContain('function:nope');

    const raw = await fetch(`${endpoint.url}/2015-03-31/functions/nope/invocations`, {
      method: 'POST',
      body: '{}',
    });
    expect(raw.status).toBe(404);
    expect(raw.headers.get('x-amzn-errortype')).toBe('ResourceNotFoundException');
    expect(await raw.json()).toEqual({
      Type: 'User',
      message: expect.stringContaining('Function not found'),
    });
  });

  it('throttles a synchronous call beyond the reserved concurrency with 429 TooManyRequestsException', async () => {
    const busy = client.send(
      new InvokeCommand({ FunctionName: 'slow-one', Payload: JSON.stringify({ mode: 'sleep', ms: 1500 }) }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const error = await client
      .send(new InvokeCommand({ FunctionName: 'slow-one', Payload: '{}' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooManyRequestsException);
    expect((error as TooManyRequestsException).$metadata.httpStatusCode).toBe(429);
    expect((error as TooManyRequestsException).Reason).toBe(
      'ReservedFunctionConcurrentInvocationLimitExceeded',
    );
    expect((await busy).StatusCode).toBe(200);
  });

  it('accepts Event invocations with 202 and runs them in the background; DryRun answers 204', async () => {
    const accepted = await client.send(
      new InvokeCommand({ FunctionName: 'async-target', InvocationType: 'Event', Payload: '{}' }),
    );
    expect(accepted.StatusCode).toBe(202);
    const counted = await eventually(async () => {
      const out = await client.send(
        new InvokeCommand({ FunctionName: 'async-target', Payload: JSON.stringify({ mode: 'count' }) }),
      );
      const calls = payloadOf(out.Payload) as number;
      return calls >= 2 ? calls : undefined;
    });
    expect(counted).toBeGreaterThanOrEqual(2);

    const dry = await client.send(new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun' }));
    expect(dry.StatusCode).toBe(204);
    const dryMissing = await client
      .send(new InvokeCommand({ FunctionName: 'nope', InvocationType: 'DryRun' }))
      .catch((e: unknown) => e);
    expect(dryMissing).toBeInstanceOf(ResourceNotFoundException);
  });

  it('retries a failing Event invocation twice, then logs it', async () => {
    asyncLog.length = 0;
    await client.send(
      new InvokeCommand({
        FunctionName: 'echo',
        InvocationType: 'Event',
        Payload: JSON.stringify({ mode: 'throw' }),
      }),
    );
    const line = await eventually(() => asyncLog.find((l) => l.includes('echo')));
    expect(line).toMatch(/after 3 attempts: PaymentRejected: card declined/);
  });

  it('rejects a payload that is not JSON with 400 InvalidRequestContentException', async () => {
    const raw = await fetch(`${endpoint.url}/2015-03-31/functions/echo/invocations`, {
      method: 'POST',
      body: 'not json',
    });
    expect(raw.status).toBe(400);
    expect(raw.headers.get('x-amzn-errortype')).toBe('InvalidRequestContentException');
  });

  it('is the AWS_ENDPOINT_URL_LAMBDA of the functions themselves', async () => {
    const out = await client.send(
      new InvokeCommand({ FunctionName: 'echo', Payload: JSON.stringify({ mode: 'call-other' }) }),
    );
    expect(out.FunctionError).toBeUndefined();
    expect(payloadOf(out.Payload)).toMatchObject({
      endpoint: endpoint.url,
      other: { echoed: { via: 'endpoint' } },
    });
  });
});
