/**
 * The offline stack: synthesizes the real CDK app (in a child process), starts DynamoDB Local and fauxqs, the local
 * EventBridge bus and the Lambda/event-source emulation, and hands back what a workload or `--serve` needs.
 */

import * as path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  type AlarmCapture,
  alarmTopicArns,
  type CapturedAlarmNotification,
  startAlarmCapture,
} from './alarm-capture.ts';
import { createLocalEventBridge, type LocalEventBridge } from './eventbridge/bus.ts';
import { createSqsDelivery, type WiredRules, wireEventRules } from './eventbridge-wiring.ts';
import { type IamReport, type OfflineIam, startOfflineIam } from './iam/offline-iam.ts';
import type { LocalEndpoints } from './runtime/lambda.ts';
import { type LambdaEndpoint, startLambdaEndpoint } from './runtime/lambda-endpoint.ts';
import {
  type LocalRuntime,
  type LocalStackInput,
  type LocalStackRuntime,
  startLocalRuntime,
} from './runtime/runtime.ts';
import { type CfnTemplate, localPseudoParameters, resolveIntrinsics } from './runtime/template.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from './services/dynamodb-local.ts';
import { type Fauxqs, startFauxqs } from './services/fauxqs.ts';
import { synthesize } from './synthesize.ts';

export const REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface OfflineStackOptions {
  /** Where the run writes cdk.out, logs and reports. */
  readonly workDir: string;
  /**
   * The script that synthesizes the app: run as `node <script> <workDir> <context JSON>`, it writes
   * `<workDir>/synth.json` with `writeSynthResult` (the template, asset folder, stack name and named resources).
   */
  readonly synthScript: string;
  /** CDK context for the synth (e.g. shorter recovery thresholds for a demo). */
  readonly context?: Readonly<Record<string, string>>;
  /**
   * Where synthesized apps are cached (local/synth-cache.ts): the app is synthesized again only when one of its
   * sources changed. `false` synthesizes every time.
   * @default `<workDir>/synth-cache`
   */
  readonly synthCacheDir?: string | false;
  /** Function output and runtime warnings. */
  readonly log: (line: string) => void;
  /** Per-function endpoint overrides (fault injection), given the services' endpoints. */
  readonly endpointsFor?: (
    functionName: string,
    services: { dynamodb: string; fauxqs: string },
  ) => Partial<LocalEndpoints> | undefined;
  readonly dropStreamRecord?: (record: unknown) => boolean;
  /** Stream records delivered again in a later batch (fault injection: a shard re-read after a retry). */
  readonly duplicateStreamRecord?: (record: unknown) => boolean;
  /** Milliseconds added to the clock each function's code reads (fault injection: clock skew between functions). */
  readonly clockSkewMs?: (functionName: string) => number;
  /** @default 2000 */
  readonly alarmEvaluationIntervalMs?: number;
  /**
   * Start one environment of every function as soon as the stack is provisioned, so the first invocations skip
   * most of the cold start. Off by default: on two busy cores the extra start-up work delayed the first effect more
   * than it saved (`bench/offline-startup.ts --prewarm`, README "Benchmarks"). @default false
   */
  readonly prewarmFunctions?: boolean;
  /** Failed SQS messages come back after this long (AWS: the queue's visibility timeout). @default 5 */
  readonly failedVisibilitySeconds?: number;
  /**
   * Enforce IAM offline: every AWS call a function makes is checked against its execution role and the resource's
   * policy, deliveries between services against the target's policies (README: "Offline IAM enforcement").
   * @default true
   */
  readonly iam?: boolean;
  /**
   * A DynamoDB Local already starting (`startDynamoDbLocal()` called first thing, so the JVM boots while Node loads
   * the rest): used instead of starting one, and stopped by `stop()` (or when start-up fails) like its own.
   * @default - one is started
   */
  readonly dynamodb?: Promise<DynamoDbLocal>;
  /** A fauxqs already starting, taken over like `dynamodb`. @default - one is started */
  readonly fauxqs?: Promise<Fauxqs>;
}

export interface OfflineStack<Resources extends Record<string, string> = Record<string, string>> {
  readonly dynamodb: DynamoDbLocal;
  readonly fauxqs: Fauxqs;
  readonly bus: LocalEventBridge;
  readonly runtime: LocalRuntime;
  readonly template: CfnTemplate;
  readonly stackName: string;
  readonly rules: WiredRules;
  /** Logical ids the synth script named (e.g. the functions a workload invokes). */
  readonly resources: Resources;
  readonly sqs: SQSClient;
  readonly timings: Readonly<Record<string, number>>;
  /** The Lambda Invoke API endpoint (`AWS_ENDPOINT_URL_LAMBDA`, also given to the functions). */
  readonly lambdaEndpoint: string;
  /** Physical name / URL of a resource by logical id. */
  ref(logicalId: string): string;
  attribute(logicalId: string, name: string): string;
  /** The template's Outputs, resolved to the local names, ARNs and URLs. */
  outputs(): { OutputKey: string; OutputValue: string }[];
  /** Alarm notifications the local subscriber of the alarm topics received. */
  alarmNotificationsReceived(): Promise<readonly CapturedAlarmNotification[]>;
  /** Offline IAM: whether it is enforced, denied calls and dropped deliveries so far. */
  iamReport(): IamReport;
  stop(): Promise<void>;
}

export { synthesize } from './synthesize.ts';

/** What `startOfflineRuntime` runs: the stacks, in start order (produced while the emulators start). */
export interface OfflineStacks {
  readonly stacks: readonly LocalStackInput[];
}

export interface OfflineRuntimeOptions
  extends Omit<OfflineStackOptions, 'workDir' | 'synthScript' | 'context'> {
  /** Produces the stacks (e.g. synthesizes the app); runs while DynamoDB Local and fauxqs start. */
  readonly synth: () => Promise<OfflineStacks>;
  /** Initial contents of the in-memory SSM Parameter Store. */
  readonly ssmParameters?: Readonly<Record<string, string>>;
  /** Receives each process-backed service as soon as it exists (to stop it on SIGINT while starting up). */
  readonly onStarted?: (service: { stop(): Promise<void> }) => void;
}

/** The running services of `startOfflineRuntime`. */
export interface OfflineRuntime {
  readonly dynamodb: DynamoDbLocal;
  readonly fauxqs: Fauxqs;
  readonly bus: LocalEventBridge;
  readonly lambdaEndpoint: LambdaEndpoint;
  readonly runtime: LocalRuntime;
  readonly rules: WiredRules;
  readonly sqs: SQSClient;
  /**
   * Start-up phases, in ms from the call: synthMs, dynamodbMs, fauxqsMs (each emulator answering), servicesMs (all
   * of them), runtimeMs (resources provisioned, pollers running), readyMs; and the durations provisionMs, pollersMs.
   */
  readonly timings: Readonly<Record<string, number>>;
  /** Alarm notifications the local subscriber of the alarm topics received. */
  alarmNotificationsReceived(): Promise<readonly CapturedAlarmNotification[]>;
  /** Where functions reach the services: the IAM gateway when IAM is enforced. */
  readonly functionEndpoints: {
    readonly dynamodb: string;
    readonly fauxqs: string;
    readonly eventbridge: string;
    readonly lambda: string;
  };
  /** Denied calls and dropped deliveries so far (`enforced: false` with `iam: false`). */
  iamReport(): IamReport;
  /** The endpoints every client uses (functions reach them through the IAM gateway when IAM is enforced). */
  readonly endpoints: Required<
    Pick<LocalEndpoints, 'dynamodb' | 'dynamodbStreams' | 'sqs' | 'sns' | 's3' | 'eventbridge' | 'lambda'>
  >;
  stop(): Promise<void>;
}

/**
 * Starts DynamoDB Local, fauxqs, the local EventBridge bus and the Lambda endpoint, and runs the stacks `synth`
 * produces in one runtime. Half-started parts are stopped when any step fails.
 */
export async function startOfflineRuntime(options: OfflineRuntimeOptions): Promise<OfflineRuntime> {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  // The JVM starts while the app synthesizes: the two slowest steps overlap.
  const since = () => Math.round(performance.now() - t0);
  const dynamodbStarting = options.dynamodb ?? startDynamoDbLocal();
  dynamodbStarting.then(
    (d) => {
      timings.dynamodbMs = since();
      options.onStarted?.(d);
    },
    () => undefined,
  );
  const fauxqsStarting = options.fauxqs ?? startFauxqs({ region: REGION });
  fauxqsStarting.then(
    (f) => {
      timings.fauxqsMs = since();
      options.onStarted?.(f);
    },
    () => undefined,
  );
  const endpointStarting = startLambdaEndpoint({
    log: (message) => options.log(`[lambda endpoint] ${message}`),
  });
  endpointStarting.catch(() => undefined);
  const stopServices = async () => {
    await Promise.allSettled([
      dynamodbStarting.then((d) => d.stop()),
      fauxqsStarting.then((f) => f.stop()),
      endpointStarting.then((e) => e.stop()),
    ]);
  };
  let synth: OfflineStacks;
  let dynamodb: DynamoDbLocal;
  let fauxqs: Fauxqs;
  let lambdaEndpoint: LambdaEndpoint;
  try {
    synth = await options.synth();
    timings.synthMs = since();
    [dynamodb, fauxqs, lambdaEndpoint] = await Promise.all([
      dynamodbStarting,
      fauxqsStarting,
      endpointStarting,
    ]);
  } catch (error) {
    await stopServices();
    throw error;
  }
  timings.servicesMs = since();

  const sqs = new SQSClient({ endpoint: fauxqs.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  let runtime: LocalRuntime | undefined;
  // Deliveries need the registry, which exists only once the runtime has provisioned the stacks.
  let deliver: ((arn: string, body: unknown) => Promise<void>) | undefined;
  const pseudo = localPseudoParameters(synth.stacks[0]?.stackName ?? 'local', REGION);
  const bus = createLocalEventBridge({
    region: REGION,
    accountId: pseudo.accountId,
    deliver: async (target, input, context) => {
      if (!deliver) throw new Error('the local runtime is not ready');
      iam?.checkRuleDelivery(context.ruleArn, context.ruleName, target.arn);
      await deliver(target.arn, input);
    },
    deliverToDeadLetter: async (deadLetterArn, event, _error, context) => {
      if (!deliver) throw new Error('the local runtime is not ready');
      iam?.checkRuleDelivery(context.ruleArn, context.ruleName, deadLetterArn);
      await deliver(deadLetterArn, event);
    },
    onDeliveryError: (error, context) =>
      options.log(
        `[eventbridge] delivery to ${context.targetId} of rule ${context.ruleName} failed: ${String(error)}`,
      ),
  });
  let iam: OfflineIam | undefined;
  try {
    await bus.start();
    if (options.iam !== false) {
      iam = await startOfflineIam({
        services: {
          dynamodb: dynamodb.endpoint,
          fauxqs: fauxqs.endpoint,
          eventbridge: () => bus.url,
          lambda: () => lambdaEndpoint.url,
        },
        region: REGION,
        accountId: pseudo.accountId,
        log: options.log,
      });
    }
    const gateway = iam?.gateway.urls;
    // What functions (and the fault proxies in front of them) call: the IAM gateway, or the services themselves.
    const functionServices = gateway
      ? { dynamodb: gateway.dynamodb, fauxqs: gateway.fauxqs }
      : { dynamodb: dynamodb.endpoint, fauxqs: fauxqs.endpoint };
    const endpoints = {
      dynamodb: dynamodb.endpoint,
      dynamodbStreams: dynamodb.endpoint,
      sqs: fauxqs.endpoint,
      sns: fauxqs.endpoint,
      // fauxqs serves S3 on the same endpoint (path-style): the claim-check bucket of large events.
      s3: fauxqs.endpoint,
      eventbridge: bus.url,
      lambda: lambdaEndpoint.url,
    };
    runtime = await startLocalRuntime({
      stacks: synth.stacks,
      region: REGION,
      dynamodbEndpoint: dynamodb.endpoint,
      fauxqsEndpoint: fauxqs.endpoint,
      inspectQueue: (name) => fauxqs.inspectQueue(name),
      endpoints: gateway
        ? {
            dynamodb: gateway.dynamodb,
            dynamodbStreams: gateway.dynamodb,
            sqs: gateway.fauxqs,
            sns: gateway.fauxqs,
            // The claim-check bucket of large events (fauxqs serves S3 path-style on the same port).
            s3: gateway.fauxqs,
            eventbridge: gateway.eventbridge,
            lambda: gateway.lambda,
          }
        : { eventbridge: bus.url, lambda: lambdaEndpoint.url },
      ...(iam
        ? {
            accessKeyIdFor: iam.accessKeyIdFor,
            clientsFor: iam.clientsFor,
            beforeStart: iam.beforeStart,
            authorizeAlarmAction: iam.authorizeAlarmAction,
            authorizeSchedule: iam.authorizeSchedule,
          }
        : {}),
      functionLog: (entry) => options.log(`[${entry.functionName}] ${entry.message}`),
      log: (level, message) => options.log(`[runtime ${level}] ${message}`),
      alarmEvaluationIntervalMs: options.alarmEvaluationIntervalMs ?? 2000,
      prewarmFunctions: options.prewarmFunctions ?? false,
      sqsFailedVisibilitySeconds: options.failedVisibilitySeconds ?? 5,
      ...(options.ssmParameters ? { ssmParameters: options.ssmParameters } : {}),
      ...(options.endpointsFor
        ? {
            endpointsFor: (name: string) => options.endpointsFor?.(name, functionServices),
          }
        : {}),
      ...(options.dropStreamRecord ? { dropStreamRecord: options.dropStreamRecord } : {}),
      ...(options.duplicateStreamRecord ? { duplicateStreamRecord: options.duplicateStreamRecord } : {}),
      ...(options.clockSkewMs ? { clockSkewMs: options.clockSkewMs } : {}),
    });
    const started = runtime;
    timings.runtimeMs = since();
    timings.provisionMs = started.report.timingsMs.provision;
    timings.pollersMs = started.report.timingsMs.pollers;
    lambdaEndpoint.attach(started.lambda);
    iam?.attachMetrics(started.metrics);
    const alarmCapture: AlarmCapture = await startAlarmCapture({
      endpoint: fauxqs.endpoint,
      region: REGION,
      topicArns: alarmTopicArns(started.stacks),
    });
    deliver = createSqsDelivery(started.allResources, sqs);
    const wired = started.stacks.map((stack) => wireEventRules(stack.ctx, stack.registry, bus));
    const rules: WiredRules = {
      rules: wired.flatMap((w) => w.rules),
      unsupportedTargets: wired.flatMap((w) => w.unsupportedTargets),
    };
    timings.readyMs = since();
    let stopped: Promise<void> | undefined;
    return {
      dynamodb,
      fauxqs,
      bus,
      lambdaEndpoint,
      runtime: started,
      rules,
      sqs,
      timings,
      endpoints,
      functionEndpoints: {
        ...functionServices,
        eventbridge: gateway?.eventbridge ?? bus.url,
        lambda: gateway?.lambda ?? lambdaEndpoint.url,
      },
      alarmNotificationsReceived: () => alarmCapture.received(),
      iamReport: () =>
        iam?.report() ?? {
          enforced: false,
          deniedCalls: [],
          droppedDeliveries: [],
          deniedCount: 0,
          droppedCount: 0,
          notChecked: [],
        },
      stop() {
        stopped ??= (async () => {
          await lambdaEndpoint.stop();
          await started.stop();
          await iam?.stop();
          alarmCapture.stop();
          await bus.stop();
          sqs.destroy();
          await Promise.allSettled([fauxqs.stop(), dynamodb.stop()]);
        })();
        return stopped;
      },
    };
  } catch (error) {
    await lambdaEndpoint.stop().catch(() => undefined);
    await runtime?.stop().catch(() => undefined);
    await iam?.stop().catch(() => undefined);
    await bus.stop().catch(() => undefined);
    sqs.destroy();
    await Promise.allSettled([fauxqs.stop(), dynamodb.stop()]);
    throw error;
  }
}

export async function startOfflineStack<Resources extends Record<string, string> = Record<string, string>>(
  options: OfflineStackOptions,
): Promise<OfflineStack<Resources>> {
  let synth: Awaited<ReturnType<typeof synthesize<Resources>>> | undefined;
  const offline = await startOfflineRuntime({
    ...options,
    synth: async () => {
      synth = await synthesize<Resources>(
        options.workDir,
        options.synthScript,
        options.context,
        options.log,
        options.synthCacheDir === false
          ? undefined
          : (options.synthCacheDir ?? path.join(options.workDir, 'synth-cache')),
      );
      return {
        stacks: [{ template: synth.template, assetRoot: synth.assetRoot, stackName: synth.stackName }],
      };
    },
  });
  const synthesized = synth as NonNullable<typeof synth>;
  const stack = offline.runtime.stacks[0] as LocalStackRuntime;
  const registry = stack.registry;
  const ref = (logicalId: string): string => {
    const value = registry.ref(logicalId);
    if (value === undefined) throw new Error(`resource ${logicalId} is not running locally`);
    return value;
  };
  return {
    dynamodb: offline.dynamodb,
    fauxqs: offline.fauxqs,
    bus: offline.bus,
    runtime: offline.runtime,
    template: synthesized.template,
    stackName: synthesized.stackName,
    rules: offline.rules,
    resources: synthesized.resources,
    sqs: offline.sqs,
    timings: { ...offline.timings, synthCacheHit: synthesized.cached ? 1 : 0 },
    lambdaEndpoint: offline.lambdaEndpoint.url,
    ref,
    attribute: (logicalId, name) => String(registry.getAtt(logicalId, name)),
    outputs: () =>
      Object.entries(synthesized.template.Outputs ?? {}).map(([key, output]) => ({
        OutputKey: key,
        OutputValue: String(resolveIntrinsics((output as { Value: unknown }).Value, stack.ctx)),
      })),
    iamReport: () => offline.iamReport(),
    alarmNotificationsReceived: () => offline.alarmNotificationsReceived(),
    stop: () => offline.stop(),
  };
}
