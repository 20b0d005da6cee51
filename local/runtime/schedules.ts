import { randomUUID } from 'node:crypto';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';
import { parseSchedule, type Schedule } from './cron.ts';
import { defaultPollerLog, type FunctionInvoker, functionNameOf, type PollerLog } from './event-source.ts';
import type { InvokeResult } from './lambda.ts';
import { isRecord, type ResolveContext, resolveIntrinsics, resourceEnabled } from './template.ts';

/** A schedule with Lambda targets, from `AWS::Events::Rule` (ScheduleExpression) or `AWS::Scheduler::Schedule`. */
export interface ScheduleDefinition {
  readonly logicalId: string;
  readonly kind: 'events-rule' | 'scheduler';
  /** Rule or schedule name. */
  readonly name: string;
  /** Rule or schedule ARN, put in `resources` of the scheduled event. */
  readonly arn: string;
  readonly expression: string;
  /** Scheduler's ScheduleExpressionTimezone. @default UTC */
  readonly timezone?: string;
  readonly targets: readonly ScheduleTarget[];
}

export interface ScheduleTarget {
  readonly functionName: string;
  /** Event sent to the function, built per firing (rules build the "Scheduled Event" unless Input is set). */
  readonly payload: (firedAt: number) => unknown;
}

export interface FiredSchedule {
  readonly logicalId: string;
  readonly functionName: string;
  /** Scheduled time (epoch ms). */
  readonly at: number;
  readonly result: InvokeResult;
}

export interface SchedulesFromTemplate {
  readonly schedules: ScheduleDefinition[];
  /** Targets or settings that are not emulated, per logical id. */
  readonly notes: { logicalId: string; note: string }[];
}

/**
 * Collects the template's schedules that invoke Lambda functions. Rules with an EventPattern belong
 * to the local EventBridge bus and are skipped here.
 */
export function schedulesFromTemplate(ctx: ResolveContext): SchedulesFromTemplate {
  const schedules: ScheduleDefinition[] = [];
  const notes: { logicalId: string; note: string }[] = [];
  const { pseudo } = ctx;
  for (const [logicalId, resource] of Object.entries(ctx.template.Resources)) {
    if (resource.Type !== 'AWS::Events::Rule' && resource.Type !== 'AWS::Scheduler::Schedule') continue;
    const scoped: ResolveContext = { ...ctx, resourceId: logicalId };
    if (!resourceEnabled(logicalId, scoped)) continue;
    const props = resolveIntrinsics(resource.Properties ?? {}, scoped) as Record<string, unknown>;
    if (typeof props.ScheduleExpression !== 'string') continue;
    if (props.State === 'DISABLED') {
      notes.push({ logicalId, note: 'disabled' });
      continue;
    }
    const name = ctx.registry.ref(logicalId) ?? (typeof props.Name === 'string' ? props.Name : logicalId);
    const arn = String(
      ctx.registry.getAtt(logicalId, 'Arn') ??
        `arn:aws:events:${pseudo.region}:${pseudo.accountId}:rule/${name}`,
    );
    const targets: ScheduleTarget[] = [];
    const rawTargets = resource.Type === 'AWS::Events::Rule' ? props.Targets : [props.Target];
    for (const raw of Array.isArray(rawTargets) ? rawTargets : []) {
      if (!isRecord(raw)) continue;
      const targetArn = String(raw.Arn);
      if (!/^arn:[^:]+:lambda:/.test(targetArn)) {
        notes.push({ logicalId, note: `target ${targetArn} is not a Lambda function: not emulated` });
        continue;
      }
      const functionName = functionNameOf(targetArn);
      if (resource.Type === 'AWS::Scheduler::Schedule') {
        // Scheduler passes Input as the payload as is; no Input means an empty object.
        const input = typeof raw.Input === 'string' ? parseJson(raw.Input) : {};
        targets.push({ functionName, payload: () => input });
      } else {
        targets.push({ functionName, payload: rulePayload(raw, arn, pseudo.region, pseudo.accountId) });
      }
    }
    if (isRecord(props.FlexibleTimeWindow) && props.FlexibleTimeWindow.Mode === 'FLEXIBLE') {
      notes.push({ logicalId, note: 'FlexibleTimeWindow ignored: fires at the scheduled time' });
    }
    schedules.push({
      logicalId,
      kind: resource.Type === 'AWS::Events::Rule' ? 'events-rule' : 'scheduler',
      name,
      arn,
      expression: props.ScheduleExpression,
      ...(typeof props.ScheduleExpressionTimezone === 'string'
        ? { timezone: props.ScheduleExpressionTimezone }
        : {}),
      targets,
    });
  }
  return { schedules, notes };
}

function rulePayload(
  target: Record<string, unknown>,
  ruleArn: string,
  region: string,
  account: string,
): (at: number) => unknown {
  const scheduledEvent = (at: number): Record<string, unknown> => ({
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    time: new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [ruleArn],
    detail: {},
  });
  if (typeof target.Input === 'string') {
    const input = parseJson(target.Input);
    return () => input;
  }
  if (typeof target.InputPath === 'string') {
    const inputPath = target.InputPath;
    return (at) => jsonPath(scheduledEvent(at), inputPath);
  }
  if (isRecord(target.InputTransformer)) {
    const { InputPathsMap, InputTemplate } = target.InputTransformer;
    const paths = isRecord(InputPathsMap) ? InputPathsMap : {};
    return (at) => {
      const event = scheduledEvent(at);
      const text = String(InputTemplate).replace(/<([A-Za-z0-9_.-]+)>/g, (whole, key: string) => {
        if (!(key in paths)) return whole;
        const value = jsonPath(event, String(paths[key]));
        return typeof value === 'string' ? value : JSON.stringify(value);
      });
      return parseJson(text);
    };
  }
  return scheduledEvent;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `$`, `$.a.b` and `$.a['b']` paths only. */
function jsonPath(value: unknown, expression: string): unknown {
  const parts = expression
    .replace(/^\$\.?/, '')
    .replace(/\['([^']+)'\]/g, '.$1')
    .split('.')
    .filter(Boolean);
  let current: unknown = value;
  for (const part of parts) current = isRecord(current) ? current[part] : undefined;
  return current;
}

export interface SchedulerOptions {
  readonly invoker: FunctionInvoker;
  /** @default systemClock */
  readonly clock?: Clock;
  readonly log?: PollerLog;
  /** Called after each target invocation. */
  readonly onFired?: (fired: FiredSchedule) => void;
  /**
   * Whether the schedule may invoke the target (offline IAM: the function's resource policy must allow
   * events.amazonaws.com for the rule). A refused invocation is dropped, as EventBridge drops it.
   * @default every invocation is made
   */
  readonly authorize?: (definition: ScheduleDefinition, target: ScheduleTarget) => boolean;
}

interface ScheduleEntry {
  readonly definition: ScheduleDefinition;
  readonly schedule: Schedule;
  timer?: TimerHandle;
}

/** Fires schedules on a clock and invokes their Lambda targets (asynchronously, like EventBridge). */
export class ScheduleRunner {
  readonly #opts: SchedulerOptions;
  readonly #clock: Clock;
  readonly #entries: ScheduleEntry[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly fired: FiredSchedule[] = [];
  #running = false;

  constructor(definitions: readonly ScheduleDefinition[], opts: SchedulerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    const anchorMs = this.#clock.now();
    for (const definition of definitions) {
      const timezone = definition.timezone;
      const schedule = parseSchedule(definition.expression, { anchorMs, ...(timezone ? { timezone } : {}) });
      this.#entries.push({ definition, schedule });
    }
  }

  start(): void {
    this.#running = true;
    for (const entry of this.#entries) this.#arm(entry, this.#clock.now());
  }

  /** Next fire time per logical id (epoch ms), for start-up output. */
  nextFireTimes(): Record<string, number | undefined> {
    const now = this.#clock.now();
    return Object.fromEntries(this.#entries.map((e) => [e.definition.logicalId, e.schedule.next(now)]));
  }

  /** Waits for invocations already started. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const entry of this.#entries) entry.timer?.cancel();
    await this.settled();
  }

  #arm(entry: ScheduleEntry, after: number): void {
    if (!this.#running) return;
    const at = entry.schedule.next(after);
    if (at === undefined) return;
    entry.timer = this.#clock.setTimer(() => {
      this.#arm(entry, at);
      for (const target of entry.definition.targets) this.#fire(entry.definition, target, at);
    }, at - this.#clock.now());
  }

  #fire(definition: ScheduleDefinition, target: ScheduleTarget, at: number): void {
    const log = this.#opts.log ?? defaultPollerLog;
    if (this.#opts.authorize && !this.#opts.authorize(definition, target)) {
      log(
        'warn',
        `${definition.logicalId}: may not invoke ${target.functionName} (its resource policy): dropped`,
      );
      return;
    }
    const run = (async () => {
      const result = await this.#opts.invoker.invoke(target.functionName, target.payload(at), {
        onThrottle: 'queue',
      });
      if (result.error) {
        log(
          'warn',
          `${definition.logicalId}: ${target.functionName} failed: ${result.error.errorType}: ${result.error.errorMessage}`,
        );
      }
      const fired = { logicalId: definition.logicalId, functionName: target.functionName, at, result };
      this.fired.push(fired);
      this.#opts.onFired?.(fired);
    })().catch((error: unknown) =>
      log('error', `${definition.logicalId}: could not invoke ${target.functionName}: ${String(error)}`),
    );
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
  }
}
