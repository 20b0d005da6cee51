import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { functionNameOf } from './event-source.ts';
import type {
  InvokeMessage,
  LambdaErrorPayload,
  WorkerData,
  WorkerToParentMessage,
} from './lambda-protocol.ts';
import type { MetricStore } from './metrics.ts';
import {
  type CfnResource,
  isRecord,
  type ResolveContext,
  resolveIntrinsics,
  resolveString,
  TemplateError,
} from './template.ts';

/** What one local function runs. Built from a template by `lambdaConfigFromTemplate`. */
export interface LambdaFunctionConfig {
  readonly functionName: string;
  /** Directory holding the handler file (the unzipped asset: cdk.out/asset.<hash>). */
  readonly codeDir: string;
  /** `<file>.<export>`, e.g. `index.handler`. */
  readonly handler: string;
  /** @default 'nodejs22.x' */
  readonly runtime?: string;
  /** @default 3 */
  readonly timeoutSeconds?: number;
  /** Also caps the worker's V8 heap. @default 128 */
  readonly memorySizeMb?: number;
  /** The function's own variables (template Environment, already resolved). */
  readonly environment?: Readonly<Record<string, string>>;
  /** ReservedConcurrentExecutions: at most this many invocations at once. @default - no reservation */
  readonly reservedConcurrency?: number;
  /** LoggingConfig.LogFormat. @default 'Text' */
  readonly logFormat?: 'Text' | 'JSON';
  readonly logicalId?: string;
}

/** Local endpoints handed to functions as `AWS_ENDPOINT_URL_<SERVICE>` (read by AWS SDK v3). */
export interface LocalEndpoints {
  readonly dynamodb?: string;
  readonly dynamodbStreams?: string;
  readonly sqs?: string;
  readonly sns?: string;
  readonly eventbridge?: string;
  readonly cloudwatch?: string;
  readonly lambda?: string;
  readonly scheduler?: string;
  readonly sts?: string;
  /** fauxqs serves S3 too; functions' S3 clients use path-style when an endpoint is set (claim-check.ts). */
  readonly s3?: string;
}

const ENDPOINT_ENV: Readonly<Record<keyof LocalEndpoints, string>> = {
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  dynamodbStreams: 'AWS_ENDPOINT_URL_DYNAMODB_STREAMS',
  sqs: 'AWS_ENDPOINT_URL_SQS',
  sns: 'AWS_ENDPOINT_URL_SNS',
  eventbridge: 'AWS_ENDPOINT_URL_EVENTBRIDGE',
  cloudwatch: 'AWS_ENDPOINT_URL_CLOUDWATCH',
  lambda: 'AWS_ENDPOINT_URL_LAMBDA',
  scheduler: 'AWS_ENDPOINT_URL_SCHEDULER',
  sts: 'AWS_ENDPOINT_URL_STS',
  s3: 'AWS_ENDPOINT_URL_S3',
};

export interface FunctionLogEntry {
  readonly functionName: string;
  readonly requestId?: string;
  readonly stream: 'stdout' | 'stderr';
  /** One line, without the newline. */
  readonly message: string;
}

export interface LambdaRuntimeOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  readonly endpoints?: LocalEndpoints;
  /** Receives EMF lines and the AWS/Lambda metrics (Invocations, Errors, Throttles, Duration). */
  readonly metrics?: MetricStore;
  /** Non-EMF output lines of functions. @default - printed to stderr as `[function] line` */
  readonly log?: (entry: FunctionLogEntry) => void;
  /**
   * Cap on concurrent execution environments of a function without ReservedConcurrentExecutions
   * (each is a worker thread; keep it low on small machines). @default 4
   */
  readonly maxConcurrencyPerFunction?: number;
  /** An idle environment is recycled after this long. @default 300_000 */
  readonly idleTimeoutMs?: number;
  /** Lambda's init limit. @default 10_000 */
  readonly initTimeoutMs?: number;
  /** Time source for metric timestamps. @default Date.now */
  readonly now?: () => number;
  /**
   * Per-function endpoint overrides, e.g. to route one function through a fault-injecting proxy.
   * @default - every function uses `endpoints`
   */
  readonly endpointsFor?: (functionName: string) => Partial<LocalEndpoints> | undefined;
  /**
   * The access key id a function's SDK signs with (the IAM gateway reads who calls from it).
   * @default 'local' for every function
   */
  readonly accessKeyIdFor?: (functionName: string) => string;
  /**
   * Fault injection: milliseconds added to the clock a function's code reads (`Date`), per function.
   * @default - every function reads the host clock
   */
  readonly clockSkewMs?: (functionName: string) => number;
}

export interface InvokeOptions {
  /**
   * When all allowed environments are busy: 'reject' answers like Lambda's synchronous Invoke
   * (TooManyRequestsException); 'queue' waits for a free one, as an event source mapping's retries
   * would. Both count a Throttle. @default 'reject'
   */
  readonly onThrottle?: 'reject' | 'queue';
  readonly clientContext?: unknown;
}

export interface LambdaInvokeError {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace?: readonly string[];
}

export interface InvokeResult {
  readonly requestId: string;
  /** The handler's return value after a JSON round trip (undefined becomes null). */
  readonly result?: unknown;
  /** Set when the function failed (including timeouts and init errors) or was throttled. */
  readonly error?: LambdaInvokeError;
  readonly throttled?: boolean;
  /** Handler run time like Lambda's Duration: excludes a cold start's init; 0 when init failed or throttled. */
  readonly durationMs: number;
}

export class FunctionNotFoundError extends Error {
  readonly functionName: string;
  constructor(functionName: string, known: readonly string[]) {
    super(
      `Function not found: ${functionName}. Registered functions: ${known.join(', ') || '(none)'}. ` +
        'Register it with LambdaRuntime.register() (the runtime does this for every AWS::Lambda::Function).',
    );
    this.name = 'FunctionNotFoundError';
    this.functionName = functionName;
  }
}

interface Outcome {
  readonly ok: boolean;
  /** Handler time, without the environment's init (Lambda's Duration). */
  readonly durationMs?: number;
  readonly result?: unknown;
  readonly error?: LambdaErrorPayload;
}

interface Hooks {
  onLine(stream: 'stdout' | 'stderr', line: string, requestId: string | undefined): void;
}

// `.ts` in this repository, `.js` in the built package.
const WORKER_URL = new URL(
  `./lambda-worker${path.extname(new URL(import.meta.url).pathname)}`,
  import.meta.url,
);

/** One execution environment: a worker thread that runs one invocation at a time. */
class ExecutionEnvironment {
  readonly #worker: Worker;
  readonly #hooks: Hooks;
  readonly #buffers = { stdout: '', stderr: '' };
  #pending: { requestId: string; resolve: (outcome: Outcome) => void } | undefined;
  #fatal: LambdaErrorPayload | undefined;
  #lastRequestId: string | undefined;
  dead = false;
  idleTimer: NodeJS.Timeout | undefined;
  readonly ready: Promise<LambdaErrorPayload | undefined>;

  constructor(
    config: LambdaFunctionConfig,
    data: WorkerData,
    env: Record<string, string>,
    hooks: Hooks,
    initTimeoutMs: number,
  ) {
    this.#hooks = hooks;
    this.#worker = new Worker(WORKER_URL, {
      workerData: data,
      env,
      stdout: false,
      stderr: false,
      resourceLimits: { maxOldGenerationSizeMb: config.memorySizeMb ?? 128 },
    });
    this.ready = new Promise((resolve) => {
      const timer = setTimeout(() => {
        resolve({ errorType: 'Runtime.InitTimeout', errorMessage: `Init exceeded ${initTimeoutMs} ms` });
        void this.terminate();
      }, initTimeoutMs);
      const settle = (error: LambdaErrorPayload | undefined): void => {
        clearTimeout(timer);
        resolve(error);
      };
      this.#worker.on('message', (message: WorkerToParentMessage) => {
        if (message.type === 'ready') settle(undefined);
        else if (message.type === 'init-error') settle(message.error);
        else this.#onMessage(message);
      });
      this.#worker.on('error', (error: Error & { code?: string }) => {
        this.#fatal =
          error.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? {
                errorType: 'Runtime.OutOfMemory',
                errorMessage: `Runtime exited: out of memory (${config.memorySizeMb ?? 128} MB)`,
              }
            : { errorType: error.name || 'Runtime.ExitError', errorMessage: error.message };
      });
      this.#worker.on('exit', (code) => {
        this.dead = true;
        this.#flush();
        const error = this.#fatal ?? {
          errorType: 'Runtime.ExitError',
          errorMessage: `RequestId: ${this.#pending?.requestId ?? '-'} Error: Runtime exited with error: exit status ${code}`,
        };
        settle(error);
        this.#settle({ ok: false, error });
      });
    });
  }

  invoke(message: InvokeMessage, timeoutSeconds: number): Promise<Outcome> {
    return new Promise((resolve) => {
      this.#lastRequestId = message.requestId;
      const timer = setTimeout(() => {
        this.#settle({
          ok: false,
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `RequestId: ${message.requestId} Error: Task timed out after ${timeoutSeconds.toFixed(2)} seconds`,
          },
        });
        // The handler may still be running: this environment cannot be reused.
        void this.terminate();
      }, timeoutSeconds * 1000);
      this.#pending = {
        requestId: message.requestId,
        resolve: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
      this.#worker.postMessage(message);
    });
  }

  /** Idle environments must not keep the process alive. */
  keepAlive(on: boolean): void {
    if (on) this.#worker.ref();
    else this.#worker.unref();
  }

  /** The worker's V8 heap statistics, or none once it has exited. */
  async heapStatistics(): Promise<EnvironmentHeap> {
    const none: EnvironmentHeap = { usedBytes: 0, totalBytes: 0, mallocedBytes: 0 };
    if (this.dead) return none;
    return this.#worker.getHeapStatistics().then(
      (stats) => ({
        usedBytes: stats.used_heap_size,
        totalBytes: stats.total_heap_size,
        mallocedBytes: stats.malloced_memory,
      }),
      () => none,
    );
  }

  async terminate(): Promise<void> {
    this.dead = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.#worker.terminate();
  }

  #onMessage(message: WorkerToParentMessage): void {
    if (message.type === 'log') {
      this.#buffers[message.stream] += message.text;
      const lines = this.#buffers[message.stream].split('\n');
      this.#buffers[message.stream] = lines.pop() ?? '';
      for (const line of lines)
        this.#hooks.onLine(message.stream, line, message.requestId ?? this.#lastRequestId);
    } else if (message.type === 'result' && message.requestId === this.#pending?.requestId) {
      if (!message.ok && message.fatal) this.dead = true;
      this.#settle(message.ok ? { ok: true, result: message.result } : { ok: false, error: message.error });
    }
  }

  #settle(outcome: Outcome): void {
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.resolve(outcome);
  }

  #flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#buffers[stream]) this.#hooks.onLine(stream, this.#buffers[stream], this.#lastRequestId);
      this.#buffers[stream] = '';
    }
  }
}

interface EnvironmentHeap {
  readonly usedBytes: number;
  readonly totalBytes: number;
  readonly mallocedBytes: number;
}

/** What `LambdaRuntime.environmentMemory()` reports. */
export interface EnvironmentMemory {
  /** Execution environments alive now. */
  readonly environments: number;
  /** Execution environments started since the runtime was created (new, after a crash, or after recycling). */
  readonly environmentsStarted: number;
  /** Their V8 heaps in use, summed. */
  readonly heapUsedBytes: number;
  /** Their V8 heaps reserved (in use or not), summed. */
  readonly heapTotalBytes: number;
  /** What their V8 isolates allocated with malloc outside the heap, summed. */
  readonly mallocedBytes: number;
}

interface FunctionState {
  readonly config: LambdaFunctionConfig;
  readonly arn: string;
  readonly limit: number;
  readonly idle: ExecutionEnvironment[];
  /** Prewarmed environments still initializing: the next invocation without an idle one takes the oldest. */
  readonly initializing: ExecutionEnvironment[];
  readonly all: Set<ExecutionEnvironment>;
  readonly waiters: Array<() => void>;
  busy: number;
}

/**
 * Runs Lambda functions locally: each execution environment is a worker thread with the function's
 * own environment variables, reused while warm, killed on timeout or crash.
 */
export class LambdaRuntime {
  readonly #functions = new Map<string, FunctionState>();
  #environmentsStarted = 0;
  readonly #opts: LambdaRuntimeOptions;
  readonly #region: string;
  readonly #accountId: string;
  readonly #now: () => number;
  #stopped = false;

  constructor(opts: LambdaRuntimeOptions = {}) {
    this.#opts = opts;
    this.#region = opts.region ?? 'us-east-1';
    this.#accountId = opts.accountId ?? '000000000000';
    this.#now = opts.now ?? Date.now;
  }

  register(config: LambdaFunctionConfig): void {
    if (config.runtime && !config.runtime.startsWith('nodejs')) {
      throw new UnsupportedFunctionError(
        config.functionName,
        `runtime ${config.runtime} (only nodejs* runs locally)`,
      );
    }
    const reserved = config.reservedConcurrency;
    this.#functions.set(config.functionName, {
      config,
      arn: this.functionArn(config.functionName),
      limit: reserved ?? this.#opts.maxConcurrencyPerFunction ?? 4,
      idle: [],
      initializing: [],
      all: new Set(),
      waiters: [],
      busy: 0,
    });
  }

  functionArn(functionName: string): string {
    return `arn:aws:lambda:${this.#region}:${this.#accountId}:function:${functionName}`;
  }

  /** The function's timeout in seconds (Lambda's default 3 when the template sets none). */
  timeoutSeconds(functionNameOrArn: string): number {
    return this.#lookup(functionNameOrArn).config.timeoutSeconds ?? 3;
  }

  functionNames(): string[] {
    return [...this.#functions.keys()];
  }

  /** Invokes by name or ARN (a qualifier is ignored). Never throws for function errors: see `error`. */
  async invoke(functionNameOrArn: string, event: unknown, opts: InvokeOptions = {}): Promise<InvokeResult> {
    const fn = this.#lookup(functionNameOrArn);
    const requestId = randomUUID();
    const name = fn.config.functionName;
    if (fn.busy < fn.limit) {
      fn.busy++;
    } else {
      this.#metric(name, 'Throttles', 1, 'Count');
      if ((opts.onThrottle ?? 'reject') === 'reject' || fn.limit === 0) {
        return {
          requestId,
          throttled: true,
          durationMs: 0,
          error: { errorType: 'TooManyRequestsException', errorMessage: 'Rate Exceeded.' },
        };
      }
      // The releasing invocation hands its slot over: `busy` stays counted.
      await new Promise<void>((resolve) => fn.waiters.push(resolve));
    }
    this.#metric(name, 'Invocations', 1, 'Count');
    try {
      const outcome = await this.#run(fn, requestId, event, opts);
      const durationMs = outcome.durationMs ?? 0;
      this.#metric(name, 'Duration', durationMs, 'Milliseconds');
      if (!outcome.ok) this.#metric(name, 'Errors', 1, 'Count');
      return outcome.ok
        ? { requestId, result: outcome.result, durationMs }
        : {
            requestId,
            error: outcome.error ?? { errorType: 'Unknown', errorMessage: 'unknown error' },
            durationMs,
          };
    } finally {
      const next = fn.waiters.shift();
      if (next) next();
      else fn.busy--;
    }
  }

  /**
   * Fault injection: kills the busy execution environments of a function mid-invocation, as a crash
   * (out of memory, a killed container) would. Their invocations end with Runtime.ExitError.
   */
  async crash(functionNameOrArn: string): Promise<number> {
    const fn = this.#lookup(functionNameOrArn);
    const busy = [...fn.all].filter((env) => !fn.idle.includes(env) && !env.dead);
    await Promise.all(busy.map((env) => env.terminate()));
    return busy.length;
  }

  /**
   * Starts one execution environment of a function that has none, so its first invocation finds it initialized
   * (or initializing) instead of paying the whole cold start. An init error is not reported here: the environment
   * is dropped and the next invocation initializes a new one, and reports that error itself.
   * Resolves true once the environment is ready (false when it was not started or its init failed).
   */
  async prewarm(functionNameOrArn: string): Promise<boolean> {
    const fn = this.#lookup(functionNameOrArn);
    if (this.#stopped || fn.all.size > 0 || fn.limit === 0) return false;
    const env = this.#createEnvironment(fn);
    // A prewarmed environment must not keep the process alive.
    env.keepAlive(false);
    fn.initializing.push(env);
    const initError = await env.ready;
    const unclaimed = fn.initializing.indexOf(env);
    if (unclaimed < 0) return initError === undefined;
    fn.initializing.splice(unclaimed, 1);
    if (initError || env.dead || this.#stopped) {
      fn.all.delete(env);
      void env.terminate();
      return false;
    }
    this.#park(fn, env);
    return true;
  }

  /** Live execution environments and their V8 heaps, summed, and how many were ever started (for memory reports
   * such as the soak's). */
  async environmentMemory(): Promise<EnvironmentMemory> {
    const live = [...this.#functions.values()].flatMap((fn) => [...fn.all].filter((env) => !env.dead));
    const heaps = await Promise.all(live.map((env) => env.heapStatistics()));
    const sum = (key: keyof EnvironmentHeap) => heaps.reduce((total, heap) => total + heap[key], 0);
    return {
      environments: live.length,
      environmentsStarted: this.#environmentsStarted,
      heapUsedBytes: sum('usedBytes'),
      heapTotalBytes: sum('totalBytes'),
      mallocedBytes: sum('mallocedBytes'),
    };
  }

  /** Terminates every execution environment. Invocations in flight end with Runtime.ExitError. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const all = [...this.#functions.values()].flatMap((fn) => [...fn.all]);
    await Promise.all(all.map((env) => env.terminate()));
  }

  async #run(fn: FunctionState, requestId: string, event: unknown, opts: InvokeOptions): Promise<Outcome> {
    if (this.#stopped)
      return {
        ok: false,
        error: { errorType: 'Runtime.Shutdown', errorMessage: 'The local runtime is stopping' },
      };
    // Warm environments first; drop any that died while idle.
    let env = fn.idle.pop();
    while (env?.dead) {
      fn.all.delete(env);
      env = fn.idle.pop();
    }
    if (env?.idleTimer) clearTimeout(env.idleTimer);
    if (!env) {
      const prewarmed = fn.initializing.shift();
      prewarmed?.keepAlive(true);
      env = prewarmed ?? this.#createEnvironment(fn);
      const initError = await env.ready;
      if (initError) {
        fn.all.delete(env);
        void env.terminate();
        return { ok: false, error: initError };
      }
    }
    const timeoutSeconds = fn.config.timeoutSeconds ?? 3;
    env.keepAlive(true);
    const started = performance.now();
    const invoked = await env.invoke(
      {
        type: 'invoke',
        requestId,
        event,
        deadline: Date.now() + timeoutSeconds * 1000,
        ...(opts.clientContext === undefined ? {} : { clientContext: opts.clientContext }),
      },
      timeoutSeconds,
    );
    const outcome: Outcome = { ...invoked, durationMs: performance.now() - started };
    if (env.dead || this.#stopped) {
      fn.all.delete(env);
      if (!env.dead) void env.terminate();
    } else {
      this.#park(fn, env);
    }
    return outcome;
  }

  /** Keeps a ready environment warm for the next invocation, until it has been idle too long. */
  #park(fn: FunctionState, warm: ExecutionEnvironment): void {
    warm.idleTimer = setTimeout(() => {
      const index = fn.idle.indexOf(warm);
      if (index >= 0) fn.idle.splice(index, 1);
      fn.all.delete(warm);
      void warm.terminate();
    }, this.#opts.idleTimeoutMs ?? 300_000);
    warm.idleTimer.unref();
    warm.keepAlive(false);
    fn.idle.push(warm);
  }

  #createEnvironment(fn: FunctionState): ExecutionEnvironment {
    const { config } = fn;
    const name = config.functionName;
    const logStreamName = `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${randomUUID().replaceAll('-', '')}`;
    const data: WorkerData = {
      codeDir: config.codeDir,
      handler: config.handler,
      functionName: name,
      functionArn: fn.arn,
      memorySizeMb: config.memorySizeMb ?? 128,
      logGroupName: `/aws/lambda/${name}`,
      logStreamName,
      clockSkewMs: this.#opts.clockSkewMs?.(name) ?? 0,
    };
    const env = new ExecutionEnvironment(
      config,
      data,
      this.#environment(config, logStreamName),
      { onLine: (stream, line, requestId) => this.#onLine(name, stream, line, requestId) },
      this.#opts.initTimeoutMs ?? 10_000,
    );
    fn.all.add(env);
    this.#environmentsStarted++;
    return env;
  }

  #environment(config: LambdaFunctionConfig, logStreamName: string): Record<string, string> {
    const endpoints: Record<string, string> = {};
    const overrides = this.#opts.endpointsFor?.(config.functionName);
    for (const [key, variable] of Object.entries(ENDPOINT_ENV)) {
      const url =
        overrides?.[key as keyof LocalEndpoints] ?? this.#opts.endpoints?.[key as keyof LocalEndpoints];
      if (url) endpoints[variable] = url;
    }
    const runtime = config.runtime ?? 'nodejs22.x';
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      ...(config.environment ?? {}),
      // Lambda-reserved variables win over the function's own, as in Lambda.
      AWS_REGION: this.#region,
      AWS_DEFAULT_REGION: this.#region,
      AWS_ACCESS_KEY_ID: this.#opts.accessKeyIdFor?.(config.functionName) ?? 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_SESSION_TOKEN: 'local',
      AWS_LAMBDA_FUNCTION_NAME: config.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(config.memorySizeMb ?? 128),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${config.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: logStreamName,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_LAMBDA_LOG_FORMAT: config.logFormat ?? 'Text',
      AWS_EXECUTION_ENV: `AWS_Lambda_${runtime}`,
      LAMBDA_TASK_ROOT: config.codeDir,
      LAMBDA_RUNTIME_DIR: config.codeDir,
      _HANDLER: config.handler,
      ...endpoints,
    };
  }

  #onLine(
    functionName: string,
    stream: 'stdout' | 'stderr',
    line: string,
    requestId: string | undefined,
  ): void {
    if (stream === 'stdout' && this.#opts.metrics && this.#opts.metrics.putEmfLine(line) > 0) return;
    const entry: FunctionLogEntry = {
      functionName,
      stream,
      message: line,
      ...(requestId ? { requestId } : {}),
    };
    if (this.#opts.log) this.#opts.log(entry);
    else process.stderr.write(`[${functionName}] ${line}\n`);
  }

  #metric(functionName: string, metricName: string, value: number, unit: string): void {
    const store = this.#opts.metrics;
    if (!store) return;
    const timestamp = this.#now();
    // CloudWatch publishes Lambda metrics per function and account-wide (no dimensions).
    store.put({
      namespace: 'AWS/Lambda',
      metricName,
      dimensions: { FunctionName: functionName },
      value,
      unit,
      timestamp,
    });
    store.put({ namespace: 'AWS/Lambda', metricName, dimensions: {}, value, unit, timestamp });
  }

  #lookup(functionNameOrArn: string): FunctionState {
    const fn = this.#functions.get(functionNameOf(functionNameOrArn));
    if (!fn) throw new FunctionNotFoundError(functionNameOrArn, this.functionNames());
    return fn;
  }
}

export class UnsupportedFunctionError extends TemplateError {
  constructor(logicalIdOrName: string, what: string) {
    super(`cannot run locally: ${what}`, logicalIdOrName);
    this.name = 'UnsupportedFunctionError';
  }
}

export interface FunctionFromTemplateOptions {
  /** Directory `aws:asset:path` is relative to (cdk.out). */
  readonly assetRoot: string;
  /** Local function name. @default FunctionName from the template, else the registry's Ref */
  readonly functionName?: string;
}

/**
 * Reads an `AWS::Lambda::Function` from the template: code from the CDK asset directory
 * (`Metadata['aws:asset:path']`) or inline `Code.ZipFile`, handler, timeout, memory, reserved
 * concurrency, logging format and resolved Environment.Variables.
 */
export async function lambdaConfigFromTemplate(
  logicalId: string,
  resource: CfnResource,
  ctx: ResolveContext,
  opts: FunctionFromTemplateOptions,
): Promise<LambdaFunctionConfig> {
  const scoped: ResolveContext = { ...ctx, resourceId: logicalId };
  const props = resource.Properties ?? {};
  const runtime = props.Runtime === undefined ? 'nodejs22.x' : resolveString(props.Runtime, scoped);
  if (!runtime.startsWith('nodejs')) throw new UnsupportedFunctionError(logicalId, `runtime ${runtime}`);
  if (props.PackageType === 'Image')
    throw new UnsupportedFunctionError(logicalId, 'container image functions');
  if (props.Layers !== undefined) {
    throw new UnsupportedFunctionError(
      logicalId,
      'Lambda layers (bundle dependencies into the function instead)',
    );
  }
  const functionName =
    opts.functionName ??
    (props.FunctionName === undefined
      ? ctx.registry.ref(logicalId)
      : resolveString(props.FunctionName, scoped));
  if (!functionName) throw new TemplateError('no FunctionName and no registered name', logicalId);

  let codeDir: string;
  const code = isRecord(props.Code) ? props.Code : {};
  const assetPath = resource.Metadata?.['aws:asset:path'];
  if (typeof code.ZipFile === 'string' || isRecord(code.ZipFile)) {
    codeDir = await mkdtemp(path.join(tmpdir(), `lambda-inline-${logicalId}-`));
    await writeFile(path.join(codeDir, 'index.js'), resolveString(code.ZipFile, scoped));
  } else if (typeof assetPath === 'string') {
    codeDir = path.resolve(opts.assetRoot, assetPath);
    if (!existsSync(codeDir)) {
      throw new TemplateError(
        `asset directory ${codeDir} does not exist: run \`cdk synth\` again`,
        logicalId,
      );
    }
  } else {
    throw new UnsupportedFunctionError(
      logicalId,
      'code without CDK asset metadata (aws:asset:path) or inline ZipFile',
    );
  }

  const variables = resolveIntrinsics(
    isRecord(props.Environment) ? props.Environment.Variables : undefined,
    scoped,
  );
  const environment: Record<string, string> = {};
  if (isRecord(variables)) {
    for (const [key, value] of Object.entries(variables)) {
      environment[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  const logging = resolveIntrinsics(props.LoggingConfig, scoped);
  const reserved = resolveIntrinsics(props.ReservedConcurrentExecutions, scoped);
  return {
    logicalId,
    functionName,
    codeDir,
    handler: props.Handler === undefined ? 'index.handler' : resolveString(props.Handler, scoped),
    runtime,
    timeoutSeconds: Number(resolveIntrinsics(props.Timeout, scoped) ?? 3),
    memorySizeMb: Number(resolveIntrinsics(props.MemorySize, scoped) ?? 128),
    environment,
    ...(reserved === undefined ? {} : { reservedConcurrency: Number(reserved) }),
    ...(isRecord(logging) && logging.LogFormat === 'JSON' ? { logFormat: 'JSON' as const } : {}),
  };
}
