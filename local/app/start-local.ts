/**
 * `startLocal()`: any CDK app, every stack, in one offline runtime, for tests and `outbox local`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LOCAL_CREDENTIALS, type OfflineRuntime, REGION, startOfflineRuntime } from '../offline.ts';
import { FunctionNotFoundError } from '../runtime/lambda.ts';
import type { LocalRuntime } from '../runtime/runtime.ts';
import { formatStartupReport } from '../runtime/runtime.ts';
import { defaultSynthCacheDir, synthesizeAppCached } from './cached-app-synth.ts';
import { checkDeliveries, type DeliveryCheck, type DeliveryCheckOptions } from './check.ts';
import { LocalInvokeError, LocalStartAbortedError, NoStacksError, UnknownResourceError } from './errors.ts';
import { type AppStack, resolveApp, selectStacks, synthesizeApp } from './synthesize-app.ts';

export interface StartLocalOptions {
  /**
   * The CDK app command (CDK CLI `--app` semantics: a command, a `.js` file or a cloud assembly folder).
   * @default the `app` of `cdk.json` in `cwd`
   */
  readonly app?: string;
  /** The app's folder (where cdk.json is and the command runs). @default process.cwd() */
  readonly cwd?: string;
  /** Stacks to run (artifact id, stack name or construct path), plus the stacks they depend on. @default all */
  readonly stacks?: readonly string[];
  /** More CDK context for the synth. */
  readonly context?: Readonly<Record<string, unknown>>;
  /**
   * Where synthesized apps are cached (local/app/cached-app-synth.ts): the app is synthesized again only when a file
   * it used, its command or its context changed. `false` synthesizes every time (into `<workDir>/cdk.out`).
   * @default `node_modules/.cache/outbox-local-synth` in `cwd` (a folder of the OS temp dir without node_modules)
   */
  readonly synthCacheDir?: string | false;
  /** SSM parameters that exist before the stacks start (e.g. ones another team's app creates). */
  readonly ssmParameters?: Readonly<Record<string, string>>;
  /**
   * Runtime lines: the app's synth output, function output and warnings.
   * @default - warnings and function errors to stderr
   */
  readonly log?: (line: string) => void;
  /** Failed SQS messages come back after this many seconds. @default 5 */
  readonly failedVisibilitySeconds?: number;
  /** @default 2000 */
  readonly alarmEvaluationIntervalMs?: number;
  /**
   * Enforce IAM and resource policies offline (README: "Offline IAM enforcement"). @default true
   */
  readonly iam?: boolean;
  /** Abort start-up (everything started so far is stopped). */
  readonly signal?: AbortSignal;
  /**
   * Stop everything on SIGINT/SIGTERM of this process, then let the signal do what it would have done.
   * @default true
   */
  readonly handleSignals?: boolean;
}

/** What `local.invoke()` and the Lambda endpoint accept as a function: a construct path, logical id, name or ARN. */
export interface LocalApp {
  /** Environment for AWS SDK clients and tools: region, local credentials and one endpoint per service. */
  readonly env: Readonly<Record<string, string>>;
  /** Resolved `Outputs` by stack name, then output key. */
  readonly outputs: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The stacks that run, in start order. */
  readonly stacks: readonly AppStack[];
  /**
   * The fresh work folder, removed by `stop()`; the cloud assembly is `<workDir>/cdk.out`, or the synth cache's
   * entry (see `stacks[].assetRoot`).
   */
  readonly workDir: string;
  /** Start-up phases in ms (synthMs, servicesMs, readyMs...), and synthCacheHit (1 when the synth was reused). */
  readonly timings: Readonly<Record<string, number>>;
  /** What runs and what is not emulated (printed by `outbox local`). */
  readonly startupReport: string;
  /** The underlying runtime (registries, pollers, metrics). */
  readonly runtime: LocalRuntime;
  readonly services: OfflineRuntime;
  /**
   * The local physical name of a resource by construct path (`Stack/Construct/...`, the `aws:cdk:path` metadata
   * minus a trailing `/Resource`) or `Stack/LogicalId`: table name, queue URL, function name, topic ARN, bus name...
   */
  physicalName(constructPath: string): string;
  /**
   * Invokes a function (construct path, `Stack/LogicalId`, name or ARN) and returns its parsed result; throws
   * LocalInvokeError (errorType, errorMessage, trace) when the function fails.
   */
  invoke<T = unknown>(fn: string, payload?: unknown): Promise<T>;
  /** Delivery check: per subscription, events expected, applied, missing and dead-lettered. */
  check(opts?: DeliveryCheckOptions): Promise<DeliveryCheck>;
  /** Stops every service and process and removes the work folder. Safe to call twice. */
  stop(): Promise<void>;
}

const defaultLog = (line: string): void => {
  if (/\[runtime (warn|error)\]|\[eventbridge\]|\[lambda endpoint\]|\[iam\]|ERROR|Error:/.test(line))
    process.stderr.write(`[outbox local] ${line}\n`);
};

/** The resources of the stacks by construct path (and `Stack/LogicalId`). */
function indexPaths(runtime: LocalRuntime): Map<string, string> {
  const paths = new Map<string, string>();
  for (const stack of runtime.stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
      const ref = stack.registry.get(logicalId);
      if (!ref || ref.synthetic) continue;
      paths.set(`${stack.stackName}/${logicalId}`, ref.ref);
      const cdkPath = resource.Metadata?.['aws:cdk:path'];
      if (typeof cdkPath !== 'string') continue;
      paths.set(cdkPath, ref.ref);
      const short = cdkPath.replace(/\/(Resource|Default)$/, '');
      // A construct's own resource wins over a child that happens to end the same way.
      if (short !== cdkPath && (!paths.has(short) || cdkPath.endsWith('/Resource')))
        paths.set(short, ref.ref);
    }
  }
  return paths;
}

export async function startLocal(opts: StartLocalOptions = {}): Promise<LocalApp> {
  const log = opts.log ?? defaultLog;
  const t0 = performance.now();
  // Before anything starts: a missing app is the commonest mistake, and needs no JVM to report.
  await resolveApp(path.resolve(opts.cwd ?? process.cwd()), opts.app);
  const workDir = await mkdtemp(path.join(tmpdir(), 'outbox-local-'));
  const abort = new AbortController();
  const started: { stop(): Promise<void> }[] = [];
  let interrupted: string | undefined;
  let app: LocalApp | undefined;

  const cleanupSignals: (() => void)[] = [];
  const onAbort = () => {
    interrupted ??= 'aborted';
    abort.abort();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  cleanupSignals.push(() => opts.signal?.removeEventListener('abort', onAbort));
  if (opts.handleSignals ?? true) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const handler = (): void => {
        interrupted ??= signal;
        abort.abort();
        const stopping = app
          ? app.stop()
          : Promise.allSettled(started.map((s) => s.stop())).then(() =>
              rm(workDir, { recursive: true, force: true }).catch(() => undefined),
            );
        void Promise.race([stopping, new Promise((resolve) => setTimeout(resolve, 5000).unref())]).finally(
          () => {
            // Nobody else handles the signal: end the process as the signal would have.
            if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
          },
        );
        // Our handler goes first so that the default behaviour can come back.
        process.removeListener(signal, handler);
      };
      process.on(signal, handler);
      cleanupSignals.push(() => process.removeListener(signal, handler));
    }
  }
  const removeSignalHandlers = () => {
    for (const remove of cleanupSignals.splice(0)) remove();
  };

  let selected: AppStack[] = [];
  let synthCacheHit = 0;
  let services: OfflineRuntime;
  try {
    services = await startOfflineRuntime({
      log,
      failedVisibilitySeconds: opts.failedVisibilitySeconds ?? 5,
      alarmEvaluationIntervalMs: opts.alarmEvaluationIntervalMs ?? 2000,
      iam: opts.iam !== false,
      onStarted: (service) => started.push(service),
      ...(opts.ssmParameters ? { ssmParameters: opts.ssmParameters } : {}),
      synth: async () => {
        const synthOptions = {
          outdir: path.join(workDir, 'cdk.out'),
          log: (line: string) => log(`[synth] ${line}`),
          signal: abort.signal,
          ...(opts.app ? { app: opts.app } : {}),
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
          ...(opts.context ? { context: opts.context } : {}),
        };
        const synthesized =
          opts.synthCacheDir === false
            ? await synthesizeApp(synthOptions)
            : await synthesizeAppCached({
                ...synthOptions,
                cacheDir: opts.synthCacheDir ?? defaultSynthCacheDir(path.resolve(opts.cwd ?? process.cwd())),
              });
        synthCacheHit = 'cached' in synthesized && synthesized.cached ? 1 : 0;
        if (synthesized.stacks.length === 0) throw new NoStacksError(synthesized.outdir);
        selected = selectStacks(synthesized.stacks, opts.stacks);
        abort.signal.throwIfAborted();
        return {
          stacks: selected.map((s) => ({
            template: s.template,
            assetRoot: s.assetRoot,
            stackName: s.stackName,
          })),
        };
      },
    });
    if (interrupted) {
      await services.stop();
      throw new LocalStartAbortedError(interrupted);
    }
  } catch (error) {
    removeSignalHandlers();
    await Promise.allSettled(started.map((s) => s.stop()));
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    if (interrupted && !(error instanceof LocalStartAbortedError)) {
      throw new LocalStartAbortedError(interrupted);
    }
    throw error;
  }

  const runtime = services.runtime;
  const paths = indexPaths(runtime);
  const outputs: Record<string, Record<string, string>> = {};
  for (const stack of runtime.stacks) outputs[stack.stackName] = { ...stack.outputs };
  const endpoints = services.endpoints;
  const env: Record<string, string> = {
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS: endpoints.dynamodbStreams,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_SNS: endpoints.sns,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_EVENTBRIDGE: endpoints.eventbridge,
    AWS_ENDPOINT_URL_LAMBDA: endpoints.lambda,
  };
  const timings = { ...services.timings, readyMs: Math.round(performance.now() - t0), synthCacheHit };

  const physicalName = (constructPath: string): string => {
    const found = paths.get(constructPath) ?? paths.get(constructPath.replace(/\/+$/, ''));
    if (found !== undefined) return found;
    const byValue = runtime.allResources.findByValue(constructPath);
    if (byValue) return byValue.ref;
    const prefix = constructPath.split('/')[0] ?? '';
    const candidates = [...paths.keys()].filter((p) => p.startsWith(`${prefix}/`) && !/\/Resource$/.test(p));
    throw new UnknownResourceError(constructPath, candidates.length > 0 ? candidates : [...paths.keys()]);
  };

  const functionName = (fn: string): string => {
    const known = runtime.lambda.functionNames();
    const direct = paths.get(fn);
    if (direct !== undefined && known.includes(direct)) return direct;
    const logical = runtime.stacks.flatMap((s) => {
      const r = s.registry.get(fn);
      return r?.type === 'AWS::Lambda::Function' ? [r.ref] : [];
    });
    if (logical.length === 1) return logical[0] as string;
    return fn;
  };

  let stopped: Promise<void> | undefined;
  app = {
    env,
    outputs,
    stacks: selected,
    workDir,
    timings,
    startupReport: [
      opts.iam === false ? 'IAM: not enforced (--no-iam)' : 'IAM: enforced',
      ...services.iamReport().notChecked.map((line) => `  IAM not checked: ${line}`),
      formatStartupReport(runtime.report),
    ].join('\n'),
    runtime,
    services,
    physicalName,
    async invoke<T>(fn: string, payload: unknown = {}): Promise<T> {
      const name = functionName(fn);
      let result: Awaited<ReturnType<LocalRuntime['invoke']>>;
      try {
        result = await runtime.invoke(name, payload, { onThrottle: 'queue' });
      } catch (error) {
        if (error instanceof FunctionNotFoundError) {
          const functionPaths = [...paths.entries()]
            .filter(([p, ref]) => runtime.lambda.functionNames().includes(ref) && !p.endsWith('/Resource'))
            .map(([p]) => p);
          throw new UnknownResourceError(fn, functionPaths);
        }
        throw error;
      }
      if (result.error) throw new LocalInvokeError(name, result.error);
      return result.result as T;
    },
    check: (checkOpts) => checkDeliveries(runtime, services, checkOpts),
    stop() {
      stopped ??= (async () => {
        removeSignalHandlers();
        await services.stop();
        await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      })();
      return stopped;
    },
  };
  for (const note of runtime.report.provision.unsupported)
    log(`[runtime warn] not emulated: ${note.logicalId} (${note.type})`);
  return app;
}
