/**
 * The offline stack: synthesizes the real CDK app in-process, starts DynamoDB Local and fauxqs, the local
 * EventBridge bus and the Lambda/event-source emulation, and hands back what a workload or `--serve` needs.
 */
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { CfnElement } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { createOutboxApp } from '../lib/outbox-app.ts';
import type { OutboxStack } from '../lib/outbox-stack.ts';
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

export const REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface OfflineStackOptions {
  /** Where the run writes cdk.out, logs and reports. */
  readonly workDir: string;
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

/** Logical ids of the demo stack's parts, read from the constructs themselves (not guessed from names). */
export interface DemoResources {
  readonly producer: string;
  readonly relay: string;
  readonly outboxTable: string;
  readonly chargesTable: string;
  readonly sinkTable: string;
  readonly billingQueue: string;
  readonly billingDlq: string;
  readonly notificationsQueue: string;
  readonly notificationsDlq: string;
  readonly billingConsumer: string;
  readonly notificationsConsumer: string;
  readonly recovery?: string;
}

export interface OfflineStack {
  readonly dynamodb: DynamoDbLocal;
  readonly fauxqs: Fauxqs;
  readonly bus: LocalEventBridge;
  readonly runtime: LocalRuntime;
  readonly template: CfnTemplate;
  readonly stackName: string;
  readonly rules: WiredRules;
  readonly resources: DemoResources;
  readonly sqs: SQSClient;
  readonly timings: Readonly<Record<string, number>>;
  /** Physical name / URL of a resource by logical id. */
  ref(logicalId: string): string;
  attribute(logicalId: string, name: string): string;
  /** The template's Outputs, resolved to the local names, ARNs and URLs. */
  outputs(): { OutputKey: string; OutputValue: string }[];
  stop(): Promise<void>;
}

function logicalIdOf(stack: OutboxStack, construct: Construct | undefined, what: string): string {
  const element = construct?.node.defaultChild as CfnElement | undefined;
  if (!element) throw new Error(`the demo stack has no ${what}; the offline demo needs it`);
  return stack.getLogicalId(element);
}

function demoResources(stack: OutboxStack): DemoResources {
  const { billing, notifications, chargesTable, notificationSinkTable } = stack.subscriptions;
  const recovery = (stack as unknown as { recovery?: { fn?: Construct } }).recovery?.fn;
  return {
    producer: logicalIdOf(stack, stack.orderProducer as unknown as Construct, 'order producer'),
    relay: logicalIdOf(stack, stack.relay.fn, 'relay function'),
    outboxTable: logicalIdOf(stack, stack.outbox.table, 'outbox table'),
    chargesTable: logicalIdOf(stack, chargesTable, 'charges table'),
    sinkTable: logicalIdOf(stack, notificationSinkTable, 'notification sink table'),
    billingQueue: logicalIdOf(stack, billing?.queue, 'billing subscription'),
    billingDlq: logicalIdOf(stack, billing?.deadLetterQueue, 'billing DLQ'),
    notificationsQueue: logicalIdOf(stack, notifications?.queue, 'notifications subscription'),
    notificationsDlq: logicalIdOf(stack, notifications?.deadLetterQueue, 'notifications DLQ'),
    billingConsumer: logicalIdOf(stack, billing?.consumer, 'billing consumer'),
    notificationsConsumer: logicalIdOf(stack, notifications?.consumer, 'notifications consumer'),
    ...(recovery ? { recovery: logicalIdOf(stack, recovery, 'recovery function') } : {}),
  };
}

/** Synthesizes the CDK app in-process into `<workDir>/cdk.out` (the same app `cdk deploy` deploys). */
export async function synthesize(
  workDir: string,
  context: Readonly<Record<string, string>> = {},
): Promise<{ template: CfnTemplate; assetRoot: string; stackName: string; resources: DemoResources }> {
  const outdir = path.join(workDir, 'cdk.out');
  await mkdir(outdir, { recursive: true });
  // The CDK CLI sets this; the runtime finds each function's bundle through the asset metadata.
  const { app, stack } = createOutboxApp(
    { outdir, context: { 'aws:cdk:enable-asset-metadata': true, ...context } },
    { nag: false },
  );
  const assembly = app.synth();
  const artifact = assembly.getStackArtifact(stack.artifactId);
  const template = JSON.parse(await readFile(artifact.templateFullPath, 'utf8')) as CfnTemplate;
  return { template, assetRoot: outdir, stackName: stack.stackName, resources: demoResources(stack) };
}

export async function startOfflineStack(options: OfflineStackOptions): Promise<OfflineStack> {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  // The JVM starts while the app synthesizes: the two slowest steps overlap.
  const dynamodbStarting = startDynamoDbLocal();
  dynamodbStarting.catch(() => undefined);
  const fauxqsStarting = startFauxqs({ region: REGION });
  fauxqsStarting.catch(() => undefined);
  let synth: Awaited<ReturnType<typeof synthesize>>;
  try {
    synth = await synthesize(options.workDir, options.context);
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
