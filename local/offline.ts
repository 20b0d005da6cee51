/**
 * The offline stack: synthesizes the real CDK app (in a child process), starts DynamoDB Local and fauxqs, the local
 * EventBridge bus and the Lambda/event-source emulation, and hands back what a workload or `--serve` needs.
 */

import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createLocalEventBridge, type LocalEventBridge } from './eventbridge/bus.ts';
import { createSqsDelivery, type WiredRules, wireEventRules } from './eventbridge-wiring.ts';
import type { LocalEndpoints } from './runtime/lambda.ts';
import { type LocalRuntime, startLocalRuntime } from './runtime/runtime.ts';
import {
  type CfnTemplate,
  localPseudoParameters,
  type ResolveContext,
  resolveIntrinsics,
} from './runtime/template.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from './services/dynamodb-local.ts';
import { type Fauxqs, startFauxqs } from './services/fauxqs.ts';
import { SYNTH_RESULT_FILE, type SynthResult } from './synth-result.ts';

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
  /** Function output and runtime warnings. */
  readonly log: (line: string) => void;
  /** Per-function endpoint overrides (fault injection), given the services' endpoints. */
  readonly endpointsFor?: (
    functionName: string,
    services: { dynamodb: string; fauxqs: string },
  ) => Partial<LocalEndpoints> | undefined;
  readonly dropStreamRecord?: (record: unknown) => boolean;
  /** @default 2000 */
  readonly alarmEvaluationIntervalMs?: number;
  /** Failed SQS messages come back after this long (AWS: the queue's visibility timeout). @default 5 */
  readonly failedVisibilitySeconds?: number;
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
  /** Physical name / URL of a resource by logical id. */
  ref(logicalId: string): string;
  attribute(logicalId: string, name: string): string;
  /** The template's Outputs, resolved to the local names, ARNs and URLs. */
  outputs(): { OutputKey: string; OutputValue: string }[];
  stop(): Promise<void>;
}

/**
 * Synthesizes the CDK app into `<workDir>/cdk.out` in a child process (the same app `cdk deploy` deploys), so
 * aws-cdk-lib's memory is returned before the stack starts. The child inherits this process's Node flags (e.g.
 * `--conditions`), so it resolves modules the same way.
 */
export async function synthesize<Resources extends Record<string, string> = Record<string, string>>(
  workDir: string,
  synthScript: string,
  context: Readonly<Record<string, string>> = {},
  log: (line: string) => void = () => {},
): Promise<{ template: CfnTemplate; assetRoot: string; stackName: string; resources: Resources }> {
  await mkdir(workDir, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      '--disable-warning=ExperimentalWarning',
      synthScript,
      workDir,
      JSON.stringify(context),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log(`[synth] ${line}`);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`synthesizing the CDK app failed (exit ${code}):\n${output.slice(-4000)}`);
  const result = JSON.parse(
    await readFile(path.join(workDir, SYNTH_RESULT_FILE), 'utf8'),
  ) as SynthResult<Resources>;
  const template = JSON.parse(await readFile(result.templateFile, 'utf8')) as CfnTemplate;
  return { template, assetRoot: result.assetRoot, stackName: result.stackName, resources: result.resources };
}

export async function startOfflineStack<Resources extends Record<string, string> = Record<string, string>>(
  options: OfflineStackOptions,
): Promise<OfflineStack<Resources>> {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  // The JVM starts while the app synthesizes: the two slowest steps overlap.
  const dynamodbStarting = startDynamoDbLocal();
  dynamodbStarting.catch(() => undefined);
  const fauxqsStarting = startFauxqs({ region: REGION });
  fauxqsStarting.catch(() => undefined);
  let synth: Awaited<ReturnType<typeof synthesize<Resources>>>;
  try {
    synth = await synthesize<Resources>(options.workDir, options.synthScript, options.context, options.log);
  } catch (error) {
    await Promise.allSettled([dynamodbStarting.then((d) => d.stop()), fauxqsStarting.then((f) => f.stop())]);
    throw error;
  }
  timings.synthMs = Math.round(performance.now() - t0);
  const [dynamodb, fauxqs] = await Promise.all([dynamodbStarting, fauxqsStarting]);
  timings.servicesMs = Math.round(performance.now() - t0);

  const sqs = new SQSClient({ endpoint: fauxqs.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  let runtime: LocalRuntime | undefined;
  // Deliveries need the registry, which exists only once the runtime has provisioned the stack.
  let deliver: ((arn: string, body: unknown) => Promise<void>) | undefined;
  const pseudo = localPseudoParameters(synth.stackName, REGION);
  const bus = createLocalEventBridge({
    region: REGION,
    accountId: pseudo.accountId,
    deliver: async (target, input) => {
      if (!deliver) throw new Error('the local runtime is not ready');
      await deliver(target.arn, input);
    },
    deliverToDeadLetter: async (deadLetterArn, event) => {
      if (!deliver) throw new Error('the local runtime is not ready');
      await deliver(deadLetterArn, event);
    },
    onDeliveryError: (error, context) =>
      options.log(
        `[eventbridge] delivery to ${context.targetId} of rule ${context.ruleName} failed: ${String(error)}`,
      ),
  });
  try {
    await bus.start();
    runtime = await startLocalRuntime({
      template: synth.template,
      assetRoot: synth.assetRoot,
      stackName: synth.stackName,
      region: REGION,
      dynamodbEndpoint: dynamodb.endpoint,
      fauxqsEndpoint: fauxqs.endpoint,
      inspectQueue: (name) => fauxqs.inspectQueue(name),
      endpoints: { eventbridge: bus.url },
      functionLog: (entry) => options.log(`[${entry.functionName}] ${entry.message}`),
      log: (level, message) => options.log(`[runtime ${level}] ${message}`),
      alarmEvaluationIntervalMs: options.alarmEvaluationIntervalMs ?? 2000,
      sqsFailedVisibilitySeconds: options.failedVisibilitySeconds ?? 5,
      ...(options.endpointsFor
        ? {
            endpointsFor: (name: string) =>
              options.endpointsFor?.(name, { dynamodb: dynamodb.endpoint, fauxqs: fauxqs.endpoint }),
          }
        : {}),
      ...(options.dropStreamRecord ? { dropStreamRecord: options.dropStreamRecord } : {}),
    });
    const registry = runtime.registry;
    deliver = createSqsDelivery(registry, sqs);
    const ctx: ResolveContext = { template: synth.template, registry, pseudo };
    const rules = wireEventRules(ctx, registry, bus);
    timings.readyMs = Math.round(performance.now() - t0);
    const started = runtime;
    const ref = (logicalId: string): string => {
      const value = registry.ref(logicalId);
      if (value === undefined) throw new Error(`resource ${logicalId} is not running locally`);
      return value;
    };
    return {
      dynamodb,
      fauxqs,
      bus,
      runtime: started,
      template: synth.template,
      stackName: synth.stackName,
      rules,
      resources: synth.resources,
      sqs,
      timings,
      ref,
      attribute: (logicalId, name) => String(registry.getAtt(logicalId, name)),
      outputs: () =>
        Object.entries(synth.template.Outputs ?? {}).map(([key, output]) => ({
          OutputKey: key,
          OutputValue: String(resolveIntrinsics((output as { Value: unknown }).Value, ctx)),
        })),
      async stop() {
        await started.stop();
        await bus.stop();
        sqs.destroy();
        await Promise.allSettled([fauxqs.stop(), dynamodb.stop()]);
      },
    };
  } catch (error) {
    await runtime?.stop().catch(() => undefined);
    await bus.stop().catch(() => undefined);
    sqs.destroy();
    await Promise.allSettled([fauxqs.stop(), dynamodb.stop()]);
    throw error;
  }
}
