// Runs inside a worker thread: one Lambda execution environment (one invocation at a time).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { runInThisContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import type {
  InvokeMessage,
  LambdaErrorPayload,
  WorkerData,
  WorkerToParentMessage,
} from './lambda-protocol.ts';
import { installClockSkew } from './skewed-clock.ts';

const data = workerData as WorkerData;
// The deadline is the runtime's (true) clock: read it before the function's clock is skewed.
const trueNow = Date.now.bind(Date);
installClockSkew(data.clockSkewMs ?? 0);
const port = parentPort;
if (!port) throw new Error('lambda-worker.ts must run in a worker thread');
const post = (message: WorkerToParentMessage): void => port.postMessage(message);

// Lambda's Node.js runtime provides the AWS SDK v3, so bundles (NodejsFunction's default) leave `@aws-sdk/*` out.
// Offline, an unresolvable `@aws-sdk/*` import resolves from this package's own dependencies instead.
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      // `import` fails with ERR_MODULE_NOT_FOUND, `require` (CommonJS bundles, NodejsFunction's default) with
      // MODULE_NOT_FOUND.
      const code = (error as NodeJS.ErrnoException).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
      if (!missing || !specifier.startsWith('@aws-sdk/')) throw error;
      if (code === 'ERR_MODULE_NOT_FOUND')
        return nextResolve(specifier, { ...context, parentURL: import.meta.url });
      // The CommonJS resolver ignores parentURL: resolve with a `require` made here.
      return {
        url: pathToFileURL(createRequire(import.meta.url).resolve(specifier)).href,
        format: 'commonjs',
        shortCircuit: true,
      };
    }
  },
});

let currentRequestId: string | undefined;

// Route stdout/stderr through the message port so log lines stay ordered with the invocation result.
for (const stream of ['stdout', 'stderr'] as const) {
  const target = process[stream];
  target.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown): boolean => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    post({ type: 'log', stream, text, ...(currentRequestId ? { requestId: currentRequestId } : {}) });
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof target.write;
}

type Handler = (
  event: unknown,
  context: unknown,
  callback?: (error?: unknown, result?: unknown) => void,
) => unknown;

function toError(error: unknown, fallbackType: string): LambdaErrorPayload {
  if (error instanceof Error) {
    return {
      // Lambda's Node runtime reports `error.name`.
      errorType: error.name || fallbackType,
      errorMessage: error.message,
      trace: (error.stack ?? '').split('\n'),
    };
  }
  return { errorType: typeof error === 'string' ? 'string' : fallbackType, errorMessage: String(error) };
}

/** Lambda's rule: `file.export`, file relative to the task root, tried as .js, .mjs, .cjs. */
async function loadHandler(): Promise<Handler> {
  const dot = data.handler.lastIndexOf('.');
  if (dot <= 0) {
    throw Object.assign(new Error(`Bad handler ${data.handler}: expected <file>.<export>`), {
      name: 'Runtime.MalformedHandlerName',
    });
  }
  const modulePath = path.resolve(data.codeDir, data.handler.slice(0, dot));
  const exportName = data.handler.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => modulePath + ext).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Cannot find module '${data.handler.slice(0, dot)}' in ${data.codeDir}`), {
      name: 'Runtime.ImportModuleError',
    });
  }
  let moduleExports: Record<string, unknown>;
  try {
    moduleExports = isCommonJs(file)
      ? loadCommonJs(file)
      : ((await import(pathToFileURL(file).href)) as Record<string, unknown>);
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), {
      name: 'Runtime.ImportModuleError',
    });
  }
  const handler =
    moduleExports[exportName] ?? (moduleExports.default as Record<string, unknown> | undefined)?.[exportName];
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${data.handler} is undefined or not exported`), {
      name: 'Runtime.HandlerNotFound',
    });
  }
  return handler as Handler;
}

/**
 * `.js` is CommonJS unless a package.json between the file and the task root says `"type": "module"`
 * (as in Lambda). We cannot let Node decide: cdk.out sits inside this repository, whose package.json
 * says "module".
 */
function isCommonJs(file: string): boolean {
  if (file.endsWith('.cjs')) return true;
  if (file.endsWith('.mjs')) return false;
  const root = path.resolve(data.codeDir);
  for (let dir = path.dirname(file); dir.startsWith(root); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type !== 'module';
      } catch {
        return true;
      }
    }
    if (dir === root) break;
  }
  return true;
}

function loadCommonJs(file: string): Record<string, unknown> {
  const source = readFileSync(file, 'utf8').replace(/^#!.*/, '');
  const wrapper = runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    {
      filename: file,
    },
  ) as (...args: unknown[]) => void;
  const module = { exports: {} as Record<string, unknown> };
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports;
}

function makeContext(message: InvokeMessage): Record<string, unknown> {
  return {
    functionName: data.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: data.functionArn,
    memoryLimitInMB: String(data.memorySizeMb),
    awsRequestId: message.requestId,
    logGroupName: data.logGroupName,
    logStreamName: data.logStreamName,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - trueNow()),
    ...(message.clientContext === undefined ? {} : { clientContext: message.clientContext }),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

async function run(handler: Handler, message: InvokeMessage): Promise<unknown> {
  const context = makeContext(message);
  // Callback-style handlers (three parameters) finish when the callback is called.
  if (handler.length >= 3) {
    return new Promise((resolve, reject) => {
      const callback = (error?: unknown, result?: unknown): void => (error ? reject(error) : resolve(result));
      try {
        const returned = handler(message.event, context, callback);
        if (returned && typeof (returned as Promise<unknown>).then === 'function') {
          (returned as Promise<unknown>).then(resolve, reject);
        }
      } catch (error) {
        reject(error);
      }
    });
  }
  return handler(message.event, context);
}

function failCurrent(error: unknown, errorType: string): void {
  if (currentRequestId) {
    post({
      type: 'result',
      requestId: currentRequestId,
      ok: false,
      error: { ...toError(error, errorType), errorType },
      fatal: true,
    });
  }
  // The environment is unusable after this, as in Lambda: exit so the parent replaces it.
  process.exit(1);
}

process.on('unhandledRejection', (reason) => failCurrent(reason, 'Runtime.UnhandledPromiseRejection'));
process.on('uncaughtException', (error) => failCurrent(error, error.name || 'Runtime.UncaughtException'));

let handler: Handler;
try {
  handler = await loadHandler();
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'init-error', error: toError(error, 'Runtime.ImportModuleError') });
  process.exit(1);
}

port.on('message', async (message: InvokeMessage) => {
  currentRequestId = message.requestId;
  try {
    const result = await run(handler, message);
    let serialized: string | undefined;
    try {
      serialized = JSON.stringify(result);
    } catch (error) {
      post({
        type: 'result',
        requestId: message.requestId,
        ok: false,
        error: { ...toError(error, 'Runtime.MarshalError'), errorType: 'Runtime.MarshalError' },
      });
      return;
    }
    // Lambda returns the JSON of the result; `undefined` becomes null.
    post({
      type: 'result',
      requestId: message.requestId,
      ok: true,
      result: serialized === undefined ? null : JSON.parse(serialized),
    });
  } catch (error) {
    post({ type: 'result', requestId: message.requestId, ok: false, error: toError(error, 'Error') });
  } finally {
    currentRequestId = undefined;
  }
});
