import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { FauxqsQueueInspection } from '../services/fauxqs.ts';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';
import { defaultPollerLog, type PollerLog } from './event-source.ts';
import type { MetricDatum, MetricStore } from './metrics.ts';
import { isRecord, type ResolveContext, resolveIntrinsics, resourceEnabled } from './template.ts';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';
export type ComparisonOperator =
  | 'GreaterThanOrEqualToThreshold'
  | 'GreaterThanThreshold'
  | 'LessThanThreshold'
  | 'LessThanOrEqualToThreshold';
export type TreatMissingData = 'missing' | 'notBreaching' | 'breaching' | 'ignore';

/** A single-metric `AWS::CloudWatch::Alarm`, resolved. */
export interface AlarmDefinition {
  readonly logicalId: string;
  readonly alarmName: string;
  readonly alarmArn: string;
  readonly description?: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** SampleCount, Average, Sum, Minimum, Maximum, or a percentile such as p99 (ExtendedStatistic). */
  readonly statistic: string;
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly threshold: number;
  readonly comparisonOperator: ComparisonOperator;
  readonly treatMissingData: TreatMissingData;
  readonly actionsEnabled: boolean;
  /** SNS topic ARNs notified on entering ALARM. */
  readonly alarmActions: readonly string[];
  readonly okActions: readonly string[];
  readonly insufficientDataActions: readonly string[];
}

export interface AlarmTransition {
  readonly logicalId: string;
  readonly alarmName: string;
  readonly from: AlarmState;
  readonly to: AlarmState;
  readonly reason: string;
  /** Epoch ms. */
  readonly at: number;
  /** One value per evaluation period, newest first; undefined = no data. */
  readonly datapoints: readonly (number | undefined)[];
}

const OPERATORS: Record<ComparisonOperator, (value: number, threshold: number) => boolean> = {
  GreaterThanOrEqualToThreshold: (v, t) => v >= t,
  GreaterThanThreshold: (v, t) => v > t,
  LessThanThreshold: (v, t) => v < t,
  LessThanOrEqualToThreshold: (v, t) => v <= t,
};

const OPERATOR_TEXT: Record<ComparisonOperator, string> = {
  GreaterThanOrEqualToThreshold: 'greater than or equal to',
  GreaterThanThreshold: 'greater than',
  LessThanThreshold: 'less than',
  LessThanOrEqualToThreshold: 'less than or equal to',
};

/** Reads the template's alarms; metric-math and anomaly-detection alarms are reported as unsupported. */
export function alarmsFromTemplate(ctx: ResolveContext): {
  alarms: AlarmDefinition[];
  unsupported: { logicalId: string; reason: string }[];
} {
  const alarms: AlarmDefinition[] = [];
  const unsupported: { logicalId: string; reason: string }[] = [];
  const { pseudo } = ctx;
  for (const [logicalId, resource] of Object.entries(ctx.template.Resources)) {
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
    const scoped: ResolveContext = { ...ctx, resourceId: logicalId };
    if (!resourceEnabled(logicalId, scoped)) continue;
    const p = resolveIntrinsics(resource.Properties ?? {}, scoped) as Record<string, unknown>;
    if (p.Metrics !== undefined || p.ThresholdMetricId !== undefined) {
      unsupported.push({
        logicalId,
        reason: 'metric math / anomaly detection alarms are not evaluated locally',
      });
      continue;
    }
    const operator = String(p.ComparisonOperator) as ComparisonOperator;
    if (!(operator in OPERATORS)) {
      unsupported.push({ logicalId, reason: `comparison operator ${operator} is not supported` });
      continue;
    }
    const name =
      ctx.registry.ref(logicalId) ??
      (typeof p.AlarmName === 'string' ? p.AlarmName : `${pseudo.stackName}-${logicalId}`);
    const evaluationPeriods = Number(p.EvaluationPeriods ?? 1);
    const dimensions: Record<string, string> = {};
    for (const d of Array.isArray(p.Dimensions) ? p.Dimensions : []) {
      if (isRecord(d)) dimensions[String(d.Name)] = String(d.Value);
    }
    const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);
    alarms.push({
      logicalId,
      alarmName: name,
      alarmArn: String(
        ctx.registry.getAtt(logicalId, 'Arn') ??
          `arn:aws:cloudwatch:${pseudo.region}:${pseudo.accountId}:alarm:${name}`,
      ),
      ...(typeof p.AlarmDescription === 'string' ? { description: p.AlarmDescription } : {}),
      namespace: String(p.Namespace),
      metricName: String(p.MetricName),
      dimensions,
      statistic: String(p.ExtendedStatistic ?? p.Statistic ?? 'Average'),
      periodSeconds: Number(p.Period ?? 60),
      evaluationPeriods,
      datapointsToAlarm: Number(p.DatapointsToAlarm ?? evaluationPeriods),
      threshold: Number(p.Threshold),
      comparisonOperator: operator,
      treatMissingData: (p.TreatMissingData as TreatMissingData | undefined) ?? 'missing',
      actionsEnabled: p.ActionsEnabled !== false && p.ActionsEnabled !== 'false',
      alarmActions: list(p.AlarmActions),
      okActions: list(p.OKActions),
      insufficientDataActions: list(p.InsufficientDataActions),
    });
  }
  return { alarms, unsupported };
}

/** Aggregates datapoint values like CloudWatch statistics; undefined when there are none. */
export function aggregate(statistic: string, values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  switch (statistic) {
    case 'SampleCount':
      return values.length;
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'Minimum':
      return Math.min(...values);
    case 'Maximum':
      return Math.max(...values);
    default: {
      const percentile = /^p(\d+(?:\.\d+)?)$/.exec(statistic);
      if (!percentile) throw new Error(`statistic ${statistic} is not supported locally`);
      const sorted = [...values].sort((a, b) => a - b);
      const rank = Math.ceil((Number(percentile[1]) / 100) * sorted.length) - 1;
      return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
    }
  }
}

/** Something that adds datapoints to the store just before each evaluation (e.g. queue depth). */
export type MetricSampler = (now: number) => Promise<readonly MetricDatum[]>;

/**
 * Samples AWS/SQS metrics from fauxqs' non-destructive queue inspection (GetQueueAttributes has no
 * message ages): ApproximateNumberOfMessagesVisible (ready), ApproximateNumberOfMessagesNotVisible
 * (in flight), ApproximateNumberOfMessagesDelayed, and ApproximateAgeOfOldestMessage in seconds
 * (oldest SentTimestamp among ready and in-flight messages; 0 when empty).
 */
export function fauxqsQueueSampler(
  inspectQueue: (queueName: string) => Promise<FauxqsQueueInspection | undefined>,
  queueNames: readonly string[],
): MetricSampler {
  return async (now) => {
    const data: MetricDatum[] = [];
    for (const queueName of queueNames) {
      const queue = await inspectQueue(queueName);
      if (!queue) continue;
      const { ready, delayed, inflight } = queue.messages;
      const sent = [...ready, ...inflight.map((i) => i.message)].map((m) => m.sentTimestamp);
      const age = sent.length === 0 ? 0 : Math.max(0, Math.floor((now - Math.min(...sent)) / 1000));
      const put = (metricName: string, value: number, unit: string): void => {
        data.push({
          namespace: 'AWS/SQS',
          metricName,
          dimensions: { QueueName: queueName },
          value,
          unit,
          timestamp: now,
        });
      };
      put('ApproximateNumberOfMessagesVisible', ready.length, 'Count');
      put('ApproximateNumberOfMessagesNotVisible', inflight.length, 'Count');
      put('ApproximateNumberOfMessagesDelayed', delayed.length, 'Count');
      put('ApproximateAgeOfOldestMessage', age, 'Seconds');
    }
    return data;
  };
}

export interface AlarmEvaluatorOptions {
  readonly metrics: MetricStore;
  /** Publishes alarm notifications to AlarmActions / OKActions topics. */
  readonly sns?: SNSClient;
  readonly samplers?: readonly MetricSampler[];
  /** @default systemClock */
  readonly clock?: Clock;
  /** How often alarms are evaluated (CloudWatch: about every minute). @default 10_000 */
  readonly evaluationIntervalMs?: number;
  /** Region name in notifications. @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  readonly log?: PollerLog;
  readonly onTransition?: (transition: AlarmTransition) => void;
  /**
   * Whether CloudWatch may publish the alarm's notification to `topicArn` (offline IAM: the topic policy and the
   * key policy of an encrypted topic). A refused notification is dropped, as CloudWatch drops it.
   * @default every notification is published
   */
  readonly authorizeAction?: (alarmArn: string, topicArn: string) => boolean;
}

/** One alarm notification: published to its topic, or dropped (refused by the topic's policies, or failed). */
export interface AlarmNotification {
  readonly alarmName: string;
  readonly state: AlarmState;
  readonly topicArn: string;
  readonly at: string;
  readonly delivered: boolean;
  readonly messageId?: string;
  readonly reason?: string;
}

/**
 * Evaluates single-metric alarms over the in-memory metric store. Each evaluation looks at the
 * `evaluationPeriods` windows of `period` seconds that end now (sliding, not aligned to the minute,
 * so local feedback is quick); alarms start in INSUFFICIENT_DATA.
 */
export class AlarmEvaluator {
  readonly #alarms: readonly AlarmDefinition[];
  readonly #opts: AlarmEvaluatorOptions;
  readonly #clock: Clock;
  readonly #state = new Map<string, AlarmState>();
  #timer: TimerHandle | undefined;
  #running: Promise<unknown> | undefined;
  /** Every state change, oldest first. */
  readonly transitions: AlarmTransition[] = [];
  /** Transitions into ALARM, oldest first. */
  readonly fired: AlarmTransition[] = [];
  /** Notifications of the alarm actions, oldest first. */
  readonly notifications: AlarmNotification[] = [];

  constructor(alarms: readonly AlarmDefinition[], opts: AlarmEvaluatorOptions) {
    this.#alarms = alarms;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    for (const alarm of alarms) this.#state.set(alarm.logicalId, 'INSUFFICIENT_DATA');
  }

  start(): void {
    const interval = this.#opts.evaluationIntervalMs ?? 10_000;
    const tick = (): void => {
      this.#timer = this.#clock.setTimer(tick, interval);
      this.#running = this.evaluate().catch((error: unknown) =>
        (this.#opts.log ?? defaultPollerLog)('error', `alarm evaluation failed: ${String(error)}`),
      );
    };
    this.#timer = this.#clock.setTimer(tick, interval);
  }

  async stop(): Promise<void> {
    this.#timer?.cancel();
    await this.#running;
  }

  state(logicalId: string): AlarmState | undefined {
    return this.#state.get(logicalId);
  }

  states(): Record<string, AlarmState> {
    return Object.fromEntries(this.#state);
  }

  /** Runs the samplers, then evaluates every alarm once. Returns the state changes. */
  async evaluate(): Promise<AlarmTransition[]> {
    const now = this.#clock.now();
    for (const sampler of this.#opts.samplers ?? []) {
      for (const datum of await sampler(now)) this.#opts.metrics.put(datum);
    }
    const changes: AlarmTransition[] = [];
    for (const alarm of this.#alarms) {
      const transition = this.#evaluateOne(alarm, now);
      if (!transition) continue;
      changes.push(transition);
      this.transitions.push(transition);
      if (transition.to === 'ALARM') this.fired.push(transition);
      this.#opts.onTransition?.(transition);
      await this.#notify(alarm, transition);
    }
    return changes;
  }

  #evaluateOne(alarm: AlarmDefinition, now: number): AlarmTransition | undefined {
    const periodMs = alarm.periodSeconds * 1000;
    const datapoints: (number | undefined)[] = [];
    for (let i = 0; i < alarm.evaluationPeriods; i++) {
      const values = this.#opts.metrics
        .query({
          namespace: alarm.namespace,
          metricName: alarm.metricName,
          dimensions: alarm.dimensions,
          // (now - (i+1)P, now - iP]: includes a sample taken right now.
          startTime: now - (i + 1) * periodMs + 1,
          endTime: now - i * periodMs + 1,
        })
        .map((d) => d.value);
      datapoints.push(aggregate(alarm.statistic, values));
    }
    const compare = OPERATORS[alarm.comparisonOperator];
    const present = datapoints.filter((d): d is number => d !== undefined);
    const from = this.#state.get(alarm.logicalId) ?? 'INSUFFICIENT_DATA';
    let to: AlarmState;
    let breaching: number;
    if (
      present.length === 0 &&
      (alarm.treatMissingData === 'missing' || alarm.treatMissingData === 'ignore')
    ) {
      to = alarm.treatMissingData === 'ignore' ? from : 'INSUFFICIENT_DATA';
      breaching = 0;
    } else {
      breaching =
        present.filter((v) => compare(v, alarm.threshold)).length +
        (alarm.treatMissingData === 'breaching' ? datapoints.length - present.length : 0);
      to = breaching >= alarm.datapointsToAlarm ? 'ALARM' : 'OK';
    }
    if (to === from) return undefined;
    this.#state.set(alarm.logicalId, to);
    const shown = datapoints.map((d) => (d === undefined ? 'missing' : String(d))).join(', ');
    const reason =
      to === 'INSUFFICIENT_DATA'
        ? `Insufficient Data: ${alarm.evaluationPeriods} datapoint(s) missing`
        : `Threshold Crossed: ${breaching} out of the last ${datapoints.length} datapoints [${shown}] ` +
          `${to === 'ALARM' ? 'were' : 'were not'} ${OPERATOR_TEXT[alarm.comparisonOperator]} the threshold (${alarm.threshold}) ` +
          `(minimum ${alarm.datapointsToAlarm} datapoint(s) for ALARM).`;
    return { logicalId: alarm.logicalId, alarmName: alarm.alarmName, from, to, reason, at: now, datapoints };
  }

  async #notify(alarm: AlarmDefinition, transition: AlarmTransition): Promise<void> {
    if (!alarm.actionsEnabled) return;
    const actions =
      transition.to === 'ALARM'
        ? alarm.alarmActions
        : transition.to === 'OK'
          ? alarm.okActions
          : alarm.insufficientDataActions;
    const log = this.#opts.log ?? defaultPollerLog;
    for (const action of actions) {
      if (!/^arn:[^:]+:sns:/.test(action)) {
        log('warn', `${alarm.logicalId}: alarm action ${action} is not an SNS topic: not emulated`);
        continue;
      }
      if (!this.#opts.sns) {
        log('warn', `${alarm.logicalId}: no SNS client configured: cannot notify ${action}`);
        continue;
      }
      const message = this.#notification(alarm, transition);
      const note = (delivered: boolean, extra: { messageId?: string; reason?: string }) =>
        this.notifications.push({
          alarmName: alarm.alarmName,
          state: transition.to,
          topicArn: action,
          at: new Date(transition.at).toISOString(),
          delivered,
          ...extra,
        });
      if (this.#opts.authorizeAction && !this.#opts.authorizeAction(alarm.alarmArn, action)) {
        log(
          'warn',
          `${alarm.logicalId}: CloudWatch may not publish to ${action} (topic or key policy): notification dropped`,
        );
        note(false, { reason: 'denied by the topic or key policy' });
        continue;
      }
      try {
        const published = await this.#opts.sns.send(
          new PublishCommand({
            TopicArn: action,
            Subject: `${transition.to}: "${alarm.alarmName}" in ${this.#opts.region ?? 'us-east-1'}`.slice(
              0,
              100,
            ),
            Message: JSON.stringify(message),
          }),
        );
        note(true, published.MessageId ? { messageId: published.MessageId } : {});
      } catch (error) {
        note(false, { reason: String(error) });
        log('error', `${alarm.logicalId}: could not publish to ${action}: ${String(error)}`);
      }
    }
  }

  /** The JSON CloudWatch publishes to SNS for an alarm state change. */
  #notification(alarm: AlarmDefinition, transition: AlarmTransition): Record<string, unknown> {
    const percentile = /^p\d/.test(alarm.statistic);
    return {
      AlarmName: alarm.alarmName,
      AlarmDescription: alarm.description ?? null,
      AWSAccountId: this.#opts.accountId ?? '000000000000',
      NewStateValue: transition.to,
      NewStateReason: transition.reason,
      StateChangeTime: new Date(transition.at).toISOString().replace('Z', '+0000'),
      Region: this.#opts.region ?? 'us-east-1',
      AlarmArn: alarm.alarmArn,
      OldStateValue: transition.from,
      Trigger: {
        MetricName: alarm.metricName,
        Namespace: alarm.namespace,
        StatisticType: percentile ? 'ExtendedStatistic' : 'Statistic',
        ...(percentile
          ? { ExtendedStatistic: alarm.statistic }
          : { Statistic: alarm.statistic.toUpperCase() }),
        Unit: null,
        Dimensions: Object.entries(alarm.dimensions).map(([name, value]) => ({ value, name })),
        Period: alarm.periodSeconds,
        EvaluationPeriods: alarm.evaluationPeriods,
        DatapointsToAlarm: alarm.datapointsToAlarm,
        ComparisonOperator: alarm.comparisonOperator,
        Threshold: alarm.threshold,
        TreatMissingData: alarm.treatMissingData,
      },
    };
  }
}
