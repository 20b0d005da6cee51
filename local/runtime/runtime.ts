import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { FauxqsQueueInspection } from '../services/fauxqs.ts';
import {
  AlarmEvaluator,
  type AlarmEvaluatorOptions,
  alarmsFromTemplate,
  fauxqsQueueSampler,
  type MetricSampler,
} from './alarms.ts';
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
import { type ProvisionResult, provision, type ResourceReport } from './provision.ts';
import {
  ScheduleRunner,
  type SchedulerOptions,
  type SchedulesFromTemplate,
  schedulesFromTemplate,
} from './schedules.ts';
import { SqsPoller, sqsMappingFromTemplate } from './sqs-poller.ts';
import { StreamPoller, streamMappingFromTemplate } from './stream-poller.ts';
import {
  type CfnTemplate,
  LocalResourceRegistry,
  localPseudoParameters,
  type ResolveContext,
  resolveIntrinsics,
  resourceEnabled,
  TemplateError,
} from './template.ts';

/** One stack of a cloud assembly, for `LocalRuntimeOptions.stacks`. */
export interface LocalStackInput {
  readonly template: CfnTemplate;
  /** cdk.out: where `aws:asset:path` directories are. */
  readonly assetRoot: string;
  readonly stackName: string;
  readonly parameters?: Readonly<Record<string, string>>;
}

export interface LocalRuntimeOptions {
  /** One stack (or use `stacks`). */
  readonly template?: CfnTemplate;
  /** cdk.out: where `aws:asset:path` directories are. */
  readonly assetRoot?: string;
  readonly stackName?: string;
  /**
   * Several stacks in one runtime, started in this order (exporters before importers): `Fn::ImportValue` resolves
   * from the `Outputs` (with `Export.Name`) of the stacks before, SSM parameters are shared. Replaces
   * template/assetRoot/stackName/parameters.
   */
  readonly stacks?: readonly LocalStackInput[];
  /** Initial contents of the in-memory SSM Parameter Store. @default {} */
  readonly ssmParameters?: Readonly<Record<string, string>>;
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
  /**
   * Start one execution environment of every function while the pollers start, so first invocations skip most
   * of the cold start (an emulator shortcut, like provisioned concurrency of 1; init errors still surface on
   * the first invocation). @default false
   */
  readonly prewarmFunctions?: boolean;
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
  /**
   * Stream records delivered once more after their batch succeeded (fault injection: Lambda re-reading a shard
   * from an older checkpoint). Asked once per record.
   */
  readonly duplicateStreamRecord?: (record: unknown) => boolean;
  /** Milliseconds added to the clock each function's code reads (fault injection: clock skew). */
  readonly clockSkewMs?: (functionName: string) => number;
  /** The access key id each function signs with (offline IAM: it names the function). @default 'local' */
  readonly accessKeyIdFor?: (functionName: string) => string;
  /**
   * Clients an event source mapping of `functionName` uses (offline IAM: they act as the function's role, as
   * Lambda's pollers and on-failure destinations do). @default the runtime's own clients
   */
  readonly clientsFor?: (functionName: string) => PollerClients | undefined;
  /** Runs once every stack is provisioned and its functions registered, before pollers, schedules and alarms start. */
  readonly beforeStart?: (stacks: readonly LocalStackRuntime[]) => void | Promise<void>;
  /** Checks a schedule's invocation of its target (offline IAM: the function's resource policy). */
  readonly authorizeSchedule?: SchedulerOptions['authorize'];
  /** Checks an alarm's notification before it is published (offline IAM: the topic and key policies). */
  readonly authorizeAlarmAction?: AlarmEvaluatorOptions['authorizeAction'];
}

/** Clients of an event source mapping. */
export interface PollerClients {
  readonly sqs?: SQSClient;
  readonly sns?: SNSClient;
  readonly streams?: DynamoDBStreamsClient;
}

export interface StartupReport {
  readonly provision: ProvisionResult;
  readonly functions: readonly { logicalId: string; functionName: string; stackName?: string }[];
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

/** One running stack of the runtime. */
export interface LocalStackRuntime {
  readonly stackName: string;
  readonly template: CfnTemplate;
  readonly assetRoot: string;
  /** Its resources' local names, ARNs and URLs, by logical id. */
  readonly registry: LocalResourceRegistry;
  /** Resolves this stack's intrinsics (imports and SSM references included). */
  readonly ctx: ResolveContext;
  readonly provision: ProvisionResult;
  /** The stack's Outputs, resolved to local values (outputs that do not resolve locally are left out). */
  readonly outputs: Readonly<Record<string, string>>;
}

export interface LocalRuntime {
  /** The first stack's registry (the only one for a one-stack runtime). */
  readonly registry: LocalResourceRegistry;
  /** Every stack, in start order. */
  readonly stacks: readonly LocalStackRuntime[];
  /** Every stack's resources, with logical ids `<stackName>/<logicalId>`: lookups by value (ARN, URL, name). */
  readonly allResources: LocalResourceRegistry;
  /** Values exported by the stacks (`Export.Name` -> value). */
  readonly exports: ReadonlyMap<string, string>;
  /** The in-memory SSM Parameter Store. */
  readonly ssmParameters: ReadonlyMap<string, string>;
  readonly lambda: LambdaRuntime;
  readonly metrics: MetricStore;
  readonly streamPollers: ReadonlyMap<string, StreamPoller>;
  readonly sqsPollers: ReadonlyMap<string, SqsPoller>;
  readonly schedules: ScheduleRunner;
  readonly alarms: AlarmEvaluator;
  readonly report: StartupReport;
  /** Invokes a function by logical id (`Stack/LogicalId` or a logical id of any stack), name or ARN. */
  invoke(function_: string, event: unknown, opts?: InvokeOptions): Promise<InvokeResult>;
  /** Stops pollers, schedules and alarms, then the functions. Does not stop the emulators. */
  stop(): Promise<void>;
}

/**
 * Runs synthesized stacks against DynamoDB Local and fauxqs: provisions tables/queues/topics, runs
 * functions in worker threads, polls streams and queues, fires schedules and evaluates alarms.
 */
export async function startLocalRuntime(opts: LocalRuntimeOptions): Promise<LocalRuntime> {
  const region = opts.region ?? 'us-east-1';
  const log = opts.log ?? defaultPollerLog;
  const inputs: readonly LocalStackInput[] = opts.stacks ?? [
    {
      template: required(opts.template, 'template'),
      assetRoot: required(opts.assetRoot, 'assetRoot'),
      stackName: required(opts.stackName, 'stackName'),
      ...(opts.parameters ? { parameters: opts.parameters } : {}),
    },
  ];
  if (inputs.length === 0) throw new TemplateError('no stacks to run: pass `stacks` or `template`');
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const dynamodb = new DynamoDBClient({ endpoint: opts.dynamodbEndpoint, region, credentials });
  const streams = new DynamoDBStreamsClient({ endpoint: opts.dynamodbEndpoint, region, credentials });
  const sqs = new SQSClient({ endpoint: opts.fauxqsEndpoint, region, credentials });
  const sns = new SNSClient({ endpoint: opts.fauxqsEndpoint, region, credentials });
  const s3 = new S3Client({ endpoint: opts.fauxqsEndpoint, region, credentials, forcePathStyle: true });
  const notes: { logicalId: string; note: string }[] = [];

  const clients = [dynamodb, streams, sqs, sns, s3];
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
    const exports = new Map<string, string>();
    const ssmParameters = new Map<string, string>(Object.entries(opts.ssmParameters ?? {}));
    const importValue = (name: string): string | undefined => exports.get(name);
    const ssmParameter = (name: string): string | undefined => ssmParameters.get(name);
    const allResources = new LocalResourceRegistry();
    const metrics = new MetricStore();
    const firstPseudo = localPseudoParameters(inputs[0]?.stackName ?? 'local', region);
    const lambda = new LambdaRuntime({
      region,
      accountId: firstPseudo.accountId,
      endpoints: {
        dynamodb: opts.dynamodbEndpoint,
        dynamodbStreams: opts.dynamodbEndpoint,
        sqs: opts.fauxqsEndpoint,
        sns: opts.fauxqsEndpoint,
        sts: opts.fauxqsEndpoint,
        s3: opts.fauxqsEndpoint,
        ...opts.endpoints,
      },
      metrics,
      ...(opts.functionLog ? { log: opts.functionLog } : {}),
      ...(opts.maxConcurrencyPerFunction
        ? { maxConcurrencyPerFunction: opts.maxConcurrencyPerFunction }
        : {}),
      ...(opts.clock ? { now: () => opts.clock?.now() ?? Date.now() } : {}),
      ...(opts.endpointsFor ? { endpointsFor: opts.endpointsFor } : {}),
      ...(opts.accessKeyIdFor ? { accessKeyIdFor: opts.accessKeyIdFor } : {}),
      ...(opts.clockSkewMs ? { clockSkewMs: opts.clockSkewMs } : {}),
    });
    started.push(lambda);

    let provisionMs = 0;
    let functionsMs = 0;
    const stacks: LocalStackRuntime[] = [];
    const functions: { logicalId: string; functionName: string; stackName: string }[] = [];
    for (const input of inputs) {
      let t = performance.now();
      const pseudo = localPseudoParameters(input.stackName, region);
      const provisioned = await provision({
        template: input.template,
        pseudo,
        clients: { dynamodb, sqs, sns, s3 },
        importValue,
        ssmParameters,
        ...(input.parameters ? { parameters: input.parameters } : {}),
      });
      const registry = provisioned.registry;
      const label = (logicalId: string) =>
        inputs.length > 1 ? `${input.stackName}/${logicalId}` : logicalId;
      for (const r of provisioned.provisioned)
        for (const note of r.notes) notes.push({ logicalId: label(r.logicalId), note });
      for (const r of registry.all())
        allResources.register({ ...r, logicalId: `${input.stackName}/${r.logicalId}` });
      provisionMs += performance.now() - t;

      const ctx: ResolveContext = {
        template: input.template,
        registry,
        pseudo,
        importValue,
        ssmParameter,
        ...(input.parameters ? { parameters: input.parameters } : {}),
      };
      t = performance.now();
      for (const fn of registry.ofType('AWS::Lambda::Function')) {
        const resource = input.template.Resources[fn.logicalId];
        if (!resource) continue;
        try {
          const config = await lambdaConfigFromTemplate(fn.logicalId, resource, ctx, {
            assetRoot: input.assetRoot,
            functionName: fn.ref,
          });
          lambda.register(config);
          functions.push({ logicalId: fn.logicalId, functionName: fn.ref, stackName: input.stackName });
        } catch (error) {
          notes.push({
            logicalId: label(fn.logicalId),
            note: `function not runnable: ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      }
      functionsMs += performance.now() - t;

      // Exports first: the next stacks import them.
      const outputs: Record<string, string> = {};
      for (const [key, output] of Object.entries(input.template.Outputs ?? {})) {
        const scoped = { ...ctx, resourceId: `Outputs.${key}` };
        try {
          const value = resolveIntrinsics(output.Value, scoped);
          const text = typeof value === 'string' ? value : JSON.stringify(value);
          outputs[key] = text;
          if (output.Export !== undefined) {
            const name = resolveIntrinsics((output.Export as { Name?: unknown }).Name, scoped);
            if (typeof name === 'string') exports.set(name, text);
          }
        } catch (error) {
          notes.push({
            logicalId: label(`Outputs.${key}`),
            note: `output not resolved locally: ${error instanceof Error ? error.message : String(error)}`,
          });
        }
      }
      stacks.push({
        stackName: input.stackName,
        template: input.template,
        assetRoot: input.assetRoot,
        registry,
        ctx,
        provision: provisioned,
        outputs,
      });
    }

    await opts.beforeStart?.(stacks);
    const t = performance.now();
    if (opts.prewarmFunctions) for (const fn of functions) void lambda.prewarm(fn.functionName);
    const streamPollers = new Map<string, StreamPoller>();
    const sqsPollers = new Map<string, SqsPoller>();
    const mappings: { logicalId: string; kind: string; functionName: string; enabled: boolean }[] = [];
    const scheduleDefs: SchedulesFromTemplate = { schedules: [], notes: [] };
    const alarmDefs: ReturnType<typeof alarmsFromTemplate> = { alarms: [], unsupported: [] };
    for (const stack of stacks) {
      const { ctx } = stack;
      const label = (logicalId: string) =>
        stacks.length > 1 ? `${stack.stackName}/${logicalId}` : logicalId;
      /** The clients a mapping of `functionName` polls and delivers with: its own (offline IAM), else the runtime's. */
      const pollerClients = (functionName: string) => {
        const own = opts.clientsFor?.(functionName);
        return { streams: own?.streams ?? streams, sqs: own?.sqs ?? sqs, sns: own?.sns ?? sns };
      };
      for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
        if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
        const scoped = { ...ctx, resourceId: logicalId };
        if (!resourceEnabled(logicalId, scoped)) continue;
        const props = resolveIntrinsics(resource.Properties ?? {}, scoped) as Record<string, unknown>;
        const kind = eventSourceKind(String(props.EventSourceArn));
        const enabled = props.Enabled !== false && props.Enabled !== 'false';
        const id = label(logicalId);
        if (kind === 'dynamodb-stream') {
          const { config, notes: mappingNotes } = streamMappingFromTemplate(logicalId, props, allResources);
          for (const note of mappingNotes) notes.push({ logicalId: id, note });
          mappings.push({ logicalId: id, kind, functionName: config.functionName, enabled });
          if (enabled) {
            streamPollers.set(
              id,
              new StreamPoller(config, {
                invoker: lambda,
                ...pollerClients(config.functionName),
                region,
                log,
                ...(opts.pollIntervalMs ? { pollIntervalMs: opts.pollIntervalMs } : {}),
                ...(opts.dropStreamRecord ? { drop: opts.dropStreamRecord } : {}),
                ...(opts.duplicateStreamRecord ? { duplicate: opts.duplicateStreamRecord } : {}),
              }),
            );
          }
        } else if (kind === 'sqs') {
          const { config, notes: mappingNotes } = sqsMappingFromTemplate(logicalId, props, allResources);
          for (const note of mappingNotes) notes.push({ logicalId: id, note });
          mappings.push({ logicalId: id, kind, functionName: config.functionName, enabled });
          if (enabled) {
            sqsPollers.set(
              id,
              new SqsPoller(config, {
                invoker: lambda,
                sqs: pollerClients(config.functionName).sqs,
                region,
                log,
                ...(opts.sqsFailedVisibilitySeconds === undefined
                  ? {}
                  : {
                      failedVisibilitySeconds: opts.sqsFailedVisibilitySeconds,
                      // A crashed lease-mode consumer's lease ends at most its timeout + 1 s after it started.
                      crashedVisibilitySeconds: () => lambda.timeoutSeconds(config.functionName) + 2,
                    }),
              }),
            );
          }
        } else {
          notes.push({ logicalId: id, note: `event source ${String(props.EventSourceArn)} is not emulated` });
        }
      }
      const stackSchedules = schedulesFromTemplate(ctx);
      scheduleDefs.schedules.push(...stackSchedules.schedules);
      scheduleDefs.notes.push(...stackSchedules.notes.map((n) => ({ ...n, logicalId: label(n.logicalId) })));
      const stackAlarms = alarmsFromTemplate(ctx);
      alarmDefs.alarms.push(...stackAlarms.alarms);
      alarmDefs.unsupported.push(
        ...stackAlarms.unsupported.map((u) => ({ ...u, logicalId: label(u.logicalId) })),
      );
    }
    started.push(...streamPollers.values(), ...sqsPollers.values());
    await Promise.all([...streamPollers.values()].map((p) => p.start()));
    for (const poller of sqsPollers.values()) poller.start();

    notes.push(...scheduleDefs.notes);
    const schedules = new ScheduleRunner(scheduleDefs.schedules, {
      invoker: lambda,
      log,
      ...(opts.authorizeSchedule ? { authorize: opts.authorizeSchedule } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    started.push(schedules);
    schedules.start();

    for (const u of alarmDefs.unsupported) notes.push({ logicalId: u.logicalId, note: u.reason });
    const samplers: MetricSampler[] = [...(opts.extraSamplers ?? [])];
    if (opts.inspectQueue) {
      const queueNames = allResources.ofType('AWS::SQS::Queue').map((q) => String(q.attributes.QueueName));
      samplers.push(fauxqsQueueSampler(opts.inspectQueue, queueNames));
    }
    const alarms = new AlarmEvaluator(alarmDefs.alarms, {
      metrics,
      sns,
      samplers,
      region,
      accountId: firstPseudo.accountId,
      log,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.alarmEvaluationIntervalMs ? { evaluationIntervalMs: opts.alarmEvaluationIntervalMs } : {}),
      ...(opts.authorizeAlarmAction ? { authorizeAction: opts.authorizeAlarmAction } : {}),
    });
    started.push(alarms);
    alarms.start();
    const pollersMs = performance.now() - t;

    const report: StartupReport = {
      provision: mergeProvisionResults(stacks),
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

    const functionByLogicalId = (id: string): string | undefined => {
      const slash = id.lastIndexOf('/');
      if (slash > 0) {
        const stack = stacks.find((s) => s.stackName === id.slice(0, slash));
        const found = stack?.registry.get(id.slice(slash + 1));
        if (found?.type === 'AWS::Lambda::Function') return found.ref;
      }
      for (const stack of stacks) {
        const found = stack.registry.get(id);
        if (found?.type === 'AWS::Lambda::Function') return found.ref;
      }
      return undefined;
    };

    return {
      registry: (stacks[0] as LocalStackRuntime).registry,
      stacks,
      allResources,
      exports,
      ssmParameters,
      lambda,
      metrics,
      streamPollers,
      sqsPollers,
      schedules,
      alarms,
      report,
      invoke(function_, event, invokeOpts) {
        return lambda.invoke(functionByLogicalId(function_) ?? function_, event, invokeOpts);
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

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new TemplateError(`startLocalRuntime needs \`${name}\` (or \`stacks\`)`);
  return value;
}

/** One ProvisionResult for the report; logical ids are `<stack>/<id>` when there are several stacks. */
function mergeProvisionResults(stacks: readonly LocalStackRuntime[]): ProvisionResult {
  const only = stacks.length === 1 ? stacks[0] : undefined;
  if (only) return only.provision;
  const prefixed = (stack: LocalStackRuntime, list: readonly ResourceReport[]) =>
    list.map((r) => ({ ...r, logicalId: `${stack.stackName}/${r.logicalId}` }));
  return {
    registry: (stacks[0] as LocalStackRuntime).registry,
    provisioned: stacks.flatMap((s) => prefixed(s, s.provision.provisioned)),
    delegated: stacks.flatMap((s) => prefixed(s, s.provision.delegated)),
    ignored: stacks.flatMap((s) => prefixed(s, s.provision.ignored)),
    unsupported: stacks.flatMap((s) => prefixed(s, s.provision.unsupported)),
    skipped: stacks.flatMap((s) => s.provision.skipped.map((id) => `${s.stackName}/${id}`)),
  };
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
