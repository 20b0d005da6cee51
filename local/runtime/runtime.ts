import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { FauxqsQueueInspection } from '../services/fauxqs.ts';
import { AlarmEvaluator, alarmsFromTemplate, fauxqsQueueSampler, type MetricSampler } from './alarms.ts';
import type { Clock } from './clock.ts';
import { defaultPollerLog, eventSourceKind, type PollerLog } from './event-source.ts';
import {
  type FunctionLogEntry,
  type InvokeOptions,
  type InvokeResult,
  LambdaRuntime,
  type LocalEndpoints,
  lambdaConfigFromTemplate,
} from './lambda.ts';
import { MetricStore } from './metrics.ts';
import { type ProvisionResult, provision } from './provision.ts';
import { ScheduleRunner, schedulesFromTemplate } from './schedules.ts';
import { SqsPoller, sqsMappingFromTemplate } from './sqs-poller.ts';
import { StreamPoller, streamMappingFromTemplate } from './stream-poller.ts';
import {
  type CfnTemplate,
  type LocalResourceRegistry,
  localPseudoParameters,
  type ResolveContext,
  resolveIntrinsics,
  resourceEnabled,
} from './template.ts';

export interface LocalRuntimeOptions {
  readonly template: CfnTemplate;
  /** cdk.out: where `aws:asset:path` directories are. */
  readonly assetRoot: string;
  readonly stackName: string;
  /** DynamoDB Local endpoint (tables and streams). */
  readonly dynamodbEndpoint: string;
  /** fauxqs endpoint (SQS and SNS). */
  readonly fauxqsEndpoint: string;
  /** fauxqs' queue inspection, for the AWS/SQS alarm metrics. @default - no SQS metrics */
  readonly inspectQueue?: (queueName: string) => Promise<FauxqsQueueInspection | undefined>;
  /** More endpoints for functions (e.g. the local EventBridge). */
  readonly endpoints?: LocalEndpoints;
  /** @default 'us-east-1' */
  readonly region?: string;
  readonly parameters?: Readonly<Record<string, string>>;
  /** Function output lines (EMF lines go to `metrics` instead). */
  readonly functionLog?: (entry: FunctionLogEntry) => void;
  /** Runtime warnings (discarded records, failed notifications...). */
  readonly log?: PollerLog;
  readonly clock?: Clock;
  /** @default 4 */
  readonly maxConcurrencyPerFunction?: number;
  /** Stream poll interval. @default 250 */
  readonly pollIntervalMs?: number;
  /** @default 10_000 */
  readonly alarmEvaluationIntervalMs?: number;
  /** More metric samplers, run before each alarm evaluation. */
  readonly extraSamplers?: readonly MetricSampler[];
  /** Per-function endpoint overrides (fault injection). */
  readonly endpointsFor?: (functionName: string) => Partial<LocalEndpoints> | undefined;
  /** Failed SQS messages come back after this many seconds (time compression). @default - visibility timeout */
  readonly sqsFailedVisibilitySeconds?: number;
  /** Stream records the poller drops before invoking (fault injection: a lost stream delivery). */
  readonly dropStreamRecord?: (record: unknown) => boolean;
}

export interface StartupReport {
  readonly provision: ProvisionResult;
  readonly functions: readonly { logicalId: string; functionName: string }[];
  readonly eventSourceMappings: readonly {
    logicalId: string;
    kind: string;
    functionName: string;
    enabled: boolean;
  }[];
  readonly schedules: readonly { logicalId: string; expression: string }[];
  readonly alarms: readonly string[];
  /** Accepted but not (fully) emulated: print these at start-up. */
  readonly notes: readonly { logicalId: string; note: string }[];
  readonly timingsMs: { readonly provision: number; readonly functions: number; readonly pollers: number };
}

export interface LocalRuntime {
  readonly registry: LocalResourceRegistry;
  readonly lambda: LambdaRuntime;
  readonly metrics: MetricStore;
  readonly streamPollers: ReadonlyMap<string, StreamPoller>;
  readonly sqsPollers: ReadonlyMap<string, SqsPoller>;
  readonly schedules: ScheduleRunner;
  readonly alarms: AlarmEvaluator;
  readonly report: StartupReport;
  /** Invokes a function by logical id, name or ARN. */
  invoke(function_: string, event: unknown, opts?: InvokeOptions): Promise<InvokeResult>;
  /** Stops pollers, schedules and alarms, then the functions. Does not stop the emulators. */
  stop(): Promise<void>;
}

/**
 * Runs a synthesized stack against DynamoDB Local and fauxqs: provisions tables/queues/topics, runs
 * functions in worker threads, polls streams and queues, fires schedules and evaluates alarms.
 */
export async function startLocalRuntime(opts: LocalRuntimeOptions): Promise<LocalRuntime> {
  const region = opts.region ?? 'us-east-1';
  const log = opts.log ?? defaultPollerLog;
  const pseudo = localPseudoParameters(opts.stackName, region);
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const dynamodb = new DynamoDBClient({ endpoint: opts.dynamodbEndpoint, region, credentials });
  const streams = new DynamoDBStreamsClient({ endpoint: opts.dynamodbEndpoint, region, credentials });
  const sqs = new SQSClient({ endpoint: opts.fauxqsEndpoint, region, credentials });
  const sns = new SNSClient({ endpoint: opts.fauxqsEndpoint, region, credentials });
  const notes: { logicalId: string; note: string }[] = [];

  const clients = [dynamodb, streams, sqs, sns];
  const started: { stop(): Promise<void> }[] = [];
  try {
    return await assemble();
  } catch (error) {
    // Half-started: undo what runs so the caller can stop the emulators cleanly.
    await Promise.allSettled(started.map((s) => s.stop()));
    for (const client of clients) client.destroy();
    throw error;
  }

  async function assemble(): Promise<LocalRuntime> {
    let t = performance.now();
    const provisioned = await provision({
      template: opts.template,
      pseudo,
      clients: { dynamodb, sqs, sns },
      ...(opts.parameters ? { parameters: opts.parameters } : {}),
    });
    const registry = provisioned.registry;
    for (const r of provisioned.provisioned)
      for (const note of r.notes) notes.push({ logicalId: r.logicalId, note });
    const provisionMs = performance.now() - t;

    const ctx: ResolveContext = {
      template: opts.template,
      registry,
      pseudo,
      ...(opts.parameters ? { parameters: opts.parameters } : {}),
    };
    const metrics = new MetricStore();
    const lambda = new LambdaRuntime({
      region,
      accountId: pseudo.accountId,
      endpoints: {
        dynamodb: opts.dynamodbEndpoint,
        dynamodbStreams: opts.dynamodbEndpoint,
        sqs: opts.fauxqsEndpoint,
        sns: opts.fauxqsEndpoint,
        sts: opts.fauxqsEndpoint,
        ...opts.endpoints,
      },
      metrics,
      ...(opts.functionLog ? { log: opts.functionLog } : {}),
      ...(opts.maxConcurrencyPerFunction
        ? { maxConcurrencyPerFunction: opts.maxConcurrencyPerFunction }
        : {}),
      ...(opts.clock ? { now: () => opts.clock?.now() ?? Date.now() } : {}),
      ...(opts.endpointsFor ? { endpointsFor: opts.endpointsFor } : {}),
    });
    started.push(lambda);

    t = performance.now();
    const functions: { logicalId: string; functionName: string }[] = [];
    for (const fn of registry.ofType('AWS::Lambda::Function')) {
      const resource = opts.template.Resources[fn.logicalId];
      if (!resource) continue;
      try {
        const config = await lambdaConfigFromTemplate(fn.logicalId, resource, ctx, {
          assetRoot: opts.assetRoot,
          functionName: fn.ref,
        });
        lambda.register(config);
        functions.push({ logicalId: fn.logicalId, functionName: fn.ref });
      } catch (error) {
        notes.push({
          logicalId: fn.logicalId,
          note: `function not runnable: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    }
    const functionsMs = performance.now() - t;

    t = performance.now();
    const streamPollers = new Map<string, StreamPoller>();
    const sqsPollers = new Map<string, SqsPoller>();
    const mappings: { logicalId: string; kind: string; functionName: string; enabled: boolean }[] = [];
    for (const [logicalId, resource] of Object.entries(opts.template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
      const scoped = { ...ctx, resourceId: logicalId };
      if (!resourceEnabled(logicalId, scoped)) continue;
      const props = resolveIntrinsics(resource.Properties ?? {}, scoped) as Record<string, unknown>;
      const kind = eventSourceKind(String(props.EventSourceArn));
      const enabled = props.Enabled !== false && props.Enabled !== 'false';
      if (kind === 'dynamodb-stream') {
        const { config, notes: mappingNotes } = streamMappingFromTemplate(logicalId, props, registry);
        for (const note of mappingNotes) notes.push({ logicalId, note });
        mappings.push({ logicalId, kind, functionName: config.functionName, enabled });
        if (enabled) {
          streamPollers.set(
            logicalId,
            new StreamPoller(config, {
              invoker: lambda,
              streams,
              sqs,
              sns,
              region,
              log,
              ...(opts.pollIntervalMs ? { pollIntervalMs: opts.pollIntervalMs } : {}),
              ...(opts.dropStreamRecord ? { drop: opts.dropStreamRecord } : {}),
            }),
          );
        }
      } else if (kind === 'sqs') {
        const { config, notes: mappingNotes } = sqsMappingFromTemplate(logicalId, props, registry);
        for (const note of mappingNotes) notes.push({ logicalId, note });
        mappings.push({ logicalId, kind, functionName: config.functionName, enabled });
        if (enabled) {
          sqsPollers.set(
            logicalId,
            new SqsPoller(config, {
              invoker: lambda,
              sqs,
              region,
              log,
              ...(opts.sqsFailedVisibilitySeconds === undefined
                ? {}
                : { failedVisibilitySeconds: opts.sqsFailedVisibilitySeconds }),
            }),
          );
        }
      } else {
        notes.push({ logicalId, note: `event source ${String(props.EventSourceArn)} is not emulated` });
      }
    }
    started.push(...streamPollers.values(), ...sqsPollers.values());
    await Promise.all([...streamPollers.values()].map((p) => p.start()));
    for (const poller of sqsPollers.values()) poller.start();

    const scheduleDefs = schedulesFromTemplate(ctx);
    notes.push(...scheduleDefs.notes);
    const schedules = new ScheduleRunner(scheduleDefs.schedules, {
      invoker: lambda,
      log,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    started.push(schedules);
    schedules.start();

    const alarmDefs = alarmsFromTemplate(ctx);
    for (const u of alarmDefs.unsupported) notes.push({ logicalId: u.logicalId, note: u.reason });
    const samplers: MetricSampler[] = [...(opts.extraSamplers ?? [])];
    if (opts.inspectQueue) {
      const queueNames = registry.ofType('AWS::SQS::Queue').map((q) => String(q.attributes.QueueName));
      samplers.push(fauxqsQueueSampler(opts.inspectQueue, queueNames));
    }
    const alarms = new AlarmEvaluator(alarmDefs.alarms, {
      metrics,
      sns,
      samplers,
      region,
      accountId: pseudo.accountId,
      log,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.alarmEvaluationIntervalMs ? { evaluationIntervalMs: opts.alarmEvaluationIntervalMs } : {}),
    });
    started.push(alarms);
    alarms.start();
    const pollersMs = performance.now() - t;

    const report: StartupReport = {
      provision: provisioned,
      functions,
      eventSourceMappings: mappings,
      schedules: scheduleDefs.schedules.map((s) => ({ logicalId: s.logicalId, expression: s.expression })),
      alarms: alarmDefs.alarms.map((a) => a.logicalId),
      notes,
      timingsMs: {
        provision: Math.round(provisionMs),
        functions: Math.round(functionsMs),
        pollers: Math.round(pollersMs),
      },
    };

    return {
      registry,
      lambda,
      metrics,
      streamPollers,
      sqsPollers,
      schedules,
      alarms,
      report,
      invoke(function_, event, invokeOpts) {
        const byLogicalId = registry.get(function_);
        return lambda.invoke(
          byLogicalId?.type === 'AWS::Lambda::Function' ? byLogicalId.ref : function_,
          event,
          invokeOpts,
        );
      },
      async stop() {
        // In parallel: invocations cut short by lambda.stop() count as failures, which leaves SQS
        // messages in the queue and stream records unacknowledged, as a real shutdown would.
        await Promise.all([
          ...[...streamPollers.values()].map((p) => p.stop()),
          ...[...sqsPollers.values()].map((p) => p.stop()),
          schedules.stop(),
          alarms.stop(),
          lambda.stop(),
        ]);
        for (const client of clients) client.destroy();
      },
    };
  }
}

/** Human-readable start-up summary: what runs, and what is ignored or not emulated. */
export function formatStartupReport(report: StartupReport): string {
  const lines: string[] = [];
  const { provision: p } = report;
  lines.push(
    `provisioned: ${p.provisioned.map((r) => `${r.logicalId} (${r.type})`).join(', ') || 'nothing'}`,
  );
  lines.push(`functions: ${report.functions.map((f) => f.functionName).join(', ') || 'none'}`);
  lines.push(
    `event source mappings: ${report.eventSourceMappings.map((m) => `${m.logicalId} (${m.kind} -> ${m.functionName}${m.enabled ? '' : ', disabled'})`).join(', ') || 'none'}`,
  );
  if (report.schedules.length > 0)
    lines.push(`schedules: ${report.schedules.map((s) => `${s.logicalId} ${s.expression}`).join(', ')}`);
  if (report.alarms.length > 0) lines.push(`alarms: ${report.alarms.join(', ')}`);
  if (p.ignored.length > 0)
    lines.push(`ignored (no local effect): ${p.ignored.map((r) => `${r.logicalId} (${r.type})`).join(', ')}`);
  if (p.unsupported.length > 0) {
    lines.push('UNSUPPORTED (not emulated):');
    for (const r of p.unsupported) lines.push(`  ${r.logicalId} (${r.type}): ${r.notes.join('; ')}`);
  }
  if (report.notes.length > 0) {
    lines.push('notes:');
    for (const n of report.notes) lines.push(`  ${n.logicalId}: ${n.note}`);
  }
  return lines.join('\n');
}
