/**
 * The Lambda Invoke API over HTTP (`POST /2015-03-31/functions/{name}/invocations`), so `@aws-sdk/client-lambda`
 * with `AWS_ENDPOINT_URL_LAMBDA` (or `endpoint`) invokes the local functions, and errors come back shaped as AWS
 * shapes them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { functionNameOf } from './event-source.ts';
import type { InvokeOptions, InvokeResult } from './lambda.ts';
import { FunctionNotFoundError } from './lambda.ts';

/** What the endpoint needs from the runtime (LambdaRuntime implements it). */
export interface LambdaEndpointTarget {
  invoke(functionNameOrArn: string, event: unknown, opts?: InvokeOptions): Promise<InvokeResult>;
  functionNames(): string[];
  functionArn(functionName: string): string;
}

export interface LambdaEndpointOptions {
  /** The runtime to invoke; may be set later with `attach` (the server starts before the functions exist). */
  readonly target?: LambdaEndpointTarget;
  /** @default 0 - a free port */
  readonly port?: number;
  /** Retries of a failed asynchronous (Event) invocation, as Lambda's default. @default 2 */
  readonly asyncRetries?: number;
  /** Wait before each async retry (Lambda: 1 min, then 2 min; shorter locally). @default 1000 */
  readonly asyncRetryDelayMs?: number;
  /** Async invocations that failed for good, or runtime warnings. */
  readonly log?: (message: string) => void;
}

export interface LambdaEndpoint {
  /** `http://127.0.0.1:<port>`: use as `AWS_ENDPOINT_URL_LAMBDA`. */
  readonly url: string;
  readonly port: number;
  attach(target: LambdaEndpointTarget): void;
  /** Closes the server and waits for accepted async invocations. Safe to call twice. */
  stop(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

/** Starts the Lambda endpoint on 127.0.0.1. */
export async function startLambdaEndpoint(opts: LambdaEndpointOptions = {}): Promise<LambdaEndpoint> {
  let target = opts.target;
  let stopping = false;
  const pendingAsync = new Set<Promise<void>>();
  const log = opts.log ?? ((message: string) => process.stderr.write(`[lambda endpoint] ${message}\n`));

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent)
        sendError(response, 500, 'ServiceException', error instanceof Error ? error.message : String(error));
      else response.end();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const match = INVOKE_PATH.exec(url.pathname);
    const body = await readBody(request);
    if (!match || request.method !== 'POST') {
      sendError(
        response,
        404,
        'UnknownOperationException',
        `${request.method} ${url.pathname}: the local Lambda endpoint serves only Invoke (POST /2015-03-31/functions/{name}/invocations)`,
      );
      return;
    }
    if (!target || stopping) {
      sendError(response, 503, 'ServiceException', 'The local runtime is not running');
      return;
    }
    const requested = decodeURIComponent(match[1] as string);
    const name = functionNameOf(requested);
    if (!target.functionNames().includes(name)) {
      sendError(
        response,
        404,
        'ResourceNotFoundException',
        `Function not found: ${target.functionArn(name)}`,
      );
      return;
    }
    let event: unknown = {};
    if (body.length > 0) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        sendError(
          response,
          400,
          'InvalidRequestContentException',
          'Could not parse request body into json: the payload must be JSON',
        );
        return;
      }
    }
    const invocationType = String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const clientContextHeader = request.headers['x-amz-client-context'];
    const clientContext =
      typeof clientContextHeader === 'string' ? decodeClientContext(clientContextHeader) : undefined;
    const invokeOptions: InvokeOptions = clientContext === undefined ? {} : { clientContext };
    switch (invocationType) {
      case 'DryRun':
        response.writeHead(204).end();
        return;
      case 'Event': {
        response.writeHead(202, { 'Content-Length': '0' }).end();
        const run = invokeAsync(target, name, event, invokeOptions);
        pendingAsync.add(run);
        void run.finally(() => pendingAsync.delete(run));
        return;
      }
      case 'RequestResponse':
        break;
      default:
        sendError(
          response,
          400,
          'InvalidParameterValueException',
          `1 validation error detected: Value '${invocationType}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`,
        );
        return;
    }
    let result: InvokeResult;
    try {
      result = await target.invoke(name, event, { ...invokeOptions, onThrottle: 'reject' });
    } catch (error) {
      if (error instanceof FunctionNotFoundError) {
        sendError(
          response,
          404,
          'ResourceNotFoundException',
          `Function not found: ${target.functionArn(name)}`,
        );
        return;
      }
      throw error;
    }
    if (result.throttled) {
      sendError(response, 429, 'TooManyRequestsException', 'Rate Exceeded.', {
        Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
      });
      return;
    }
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-Amz-Executed-Version': '$LATEST',
      'x-amzn-RequestId': result.requestId,
    };
    if (result.error) {
      const payload = JSON.stringify({
        errorType: result.error.errorType,
        errorMessage: result.error.errorMessage,
        trace: result.error.trace ?? [],
      });
      response.writeHead(200, { ...headers, 'X-Amz-Function-Error': 'Unhandled' }).end(payload);
      return;
    }
    response.writeHead(200, headers).end(JSON.stringify(result.result ?? null));
  }

  async function invokeAsync(
    runtime: LambdaEndpointTarget,
    name: string,
    event: unknown,
    invokeOptions: InvokeOptions,
  ): Promise<void> {
    const retries = opts.asyncRetries ?? 2;
    for (let attempt = 0; attempt <= retries; attempt++) {
      // Lambda's async queue waits for capacity instead of failing the caller.
      const result = await runtime.invoke(name, event, { ...invokeOptions, onThrottle: 'queue' });
      if (!result.error) return;
      if (stopping || result.error.errorType === 'Runtime.Shutdown') return;
      if (attempt === retries) {
        log(
          `async invocation of ${name} failed after ${retries + 1} attempts: ${result.error.errorType}: ${result.error.errorMessage}`,
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, opts.asyncRetryDelayMs ?? 1000).unref());
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    attach(runtime) {
      target = runtime;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.allSettled([...pendingAsync]);
      })();
      return stopped;
    },
  };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** AWS REST-JSON error: `x-amzn-ErrorType` header and `{ Type, message }` body. */
function sendError(
  response: ServerResponse,
  status: number,
  errorType: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  const body = JSON.stringify({ Type: status >= 500 ? 'Service' : 'User', message, ...extra });
  response
    .writeHead(status, {
      'Content-Type': 'application/json',
      'x-amzn-ErrorType': errorType,
      'Content-Length': Buffer.byteLength(body),
    })
    .end(body);
}

function decodeClientContext(header: string): unknown {
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}
