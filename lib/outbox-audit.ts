import { Duration, Lazy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import {
  AUDIT_SUBSCRIPTION_DIMENSION,
  AuditDefaults,
  AuditEnv,
  AuditMetric,
} from '../functions/audit/contract.ts';
import type { SubscriptionFilter } from '../functions/contract/audit-filter.ts';
import type { AlarmTopic } from './alarm-topic.ts';
import type { IDedupTable } from './dedup-table.ts';
import { createLibraryFunction } from './outbox-function.ts';
import type { OutboxTable } from './outbox-table.ts';

/** Tuning of the scheduled delivery audit (`Outbox`'s `audit` prop). */
export interface OutboxAuditOptions {
  /** How often a run audits a window. @default Duration.minutes(5) */
  readonly schedule?: Duration;
  /**
   * How long after the end of a window it is audited: the first half is for publishing, the second for the
   * consumer's retries (an event published in the second half is skipped as pending). Make it longer than a
   * subscription's longest delivery with retries (visibility timeout × maxReceiveCount), or a retry in progress
   * counts as missing.
   * @default Duration.minutes(10)
   */
  readonly lag?: Duration;
  /** Length of the audited window. @default - the schedule's period, so each event is audited once */
  readonly window?: Duration;
  /**
   * Most outbox items one run's Scan reads: the bound of its read cost. A table holding more is audited as a
   * rotating sample (one Scan segment of ~this many items per run, a different one each window).
   * @default 50000
   */
  readonly maxItemsPerRun?: number;
  /** @default Duration.minutes(2) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
}

export interface OutboxAuditProps extends OutboxAuditOptions {
  readonly outbox: OutboxTable;
  readonly alarms: AlarmTopic;
  /** @default 'ServerlessOutbox' */
  readonly metricsNamespace?: string;
}

/** The subscriptions' names and filters live in one environment variable of Lambda's 4 KB; this much is theirs. */
const SUBSCRIPTIONS_ENV_BUDGET = 3000;

/**
 * The scheduled delivery audit: an EventBridge rule runs a read-only Lambda (functions/audit/handler.ts) that
 * checks a recent closed window of the outbox against the consumers' dedup table and publishes `MissingEffects`
 * per subscription; each audited subscription gets an alarm (MissingEffects > 0) on the outbox alarm topic.
 * Audited: subscriptions with a consumer (they keep dedup records) and a filter the audit can evaluate.
 *
 * Construct ids (`Function`, `Schedule`, `MissingEffects-<subscription>`) are part of the contract.
 */
export class OutboxAudit extends Construct {
  readonly fn: lambda.Function;
  readonly schedule: events.Rule;
  /** The MissingEffects alarm of each audited subscription. */
  readonly alarms = new Map<string, cloudwatch.Alarm>();
  readonly #props: OutboxAuditProps;
  readonly #namespace: string;
  readonly #service: string;
  readonly #period: Duration;
  readonly #subscriptions = new Map<string, SubscriptionFilter>();
  #dedupTable: IDedupTable | undefined;

  constructor(scope: Construct, id: string, props: OutboxAuditProps) {
    super(scope, id);
    this.#props = props;
    this.#namespace = props.metricsNamespace ?? 'ServerlessOutbox';
    this.#service = this.node.path;
    this.#period = props.schedule ?? Duration.minutes(AuditDefaults.scheduleMinutes);
    const window = props.window ?? this.#period;
    const lag = props.lag ?? Duration.seconds(AuditDefaults.lagSeconds);
    const maxItems = props.maxItemsPerRun ?? AuditDefaults.maxItemsPerRun;
    const errors = [
      ...(this.#period.toSeconds() < 60 ? ['schedule must be at least 1 minute'] : []),
      ...(window.toSeconds() < 60 ? ['window must be at least 1 minute'] : []),
      ...(window.toSeconds() < this.#period.toSeconds()
        ? [
            "window must be at least the schedule's period, or the events between two windows are never audited",
          ]
        : []),
      ...(lag.toSeconds() < 60 ? ['lag must be at least 1 minute (events need time to be delivered)'] : []),
      ...(!Number.isInteger(maxItems) || maxItems < 100 ? ['maxItemsPerRun must be an integer >= 100'] : []),
    ];
    if (errors.length > 0) throw new Error(`OutboxAudit ${this.node.path}: ${errors.join('; ')}`);

    this.fn = createLibraryFunction(this, 'Function', 'audit', {
      description:
        'Outbox delivery audit: checks a recent closed window against the consumers dedup records, publishes MissingEffects',
      timeout: props.timeout ?? Duration.minutes(2),
      memorySize: props.memorySize ?? 512,
      environment: {
        [AuditEnv.outboxTable]: props.outbox.tableName,
        [AuditEnv.lagSeconds]: String(lag.toSeconds()),
        [AuditEnv.windowSeconds]: String(window.toSeconds()),
        [AuditEnv.maxItemsPerRun]: String(maxItems),
        // Resolved at synth, so subscriptions made after the Outbox are included.
        [AuditEnv.subscriptions]: Lazy.string({ produce: () => this.#subscriptionsJson() }),
        [AuditEnv.dedupTable]: Lazy.string({ produce: () => this.#dedupTable?.tableName ?? '' }),
        POWERTOOLS_SERVICE_NAME: this.#service,
        POWERTOOLS_METRICS_NAMESPACE: this.#namespace,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    // A failed run is not retried: the next window's run comes anyway.
    this.fn.configureAsyncInvoke({ retryAttempts: 0 });
    // Read-only: the item count (sizes the sample) and the Scan of the table itself (no index).
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:DescribeTable', 'dynamodb:Scan'],
      resourceArns: [props.outbox.tableArn],
    });
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Runs the outbox delivery audit',
      schedule: events.Schedule.rate(this.#period),
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 0 })],
    });
  }

  /** Audits a subscription's consumer: its name is its dedup key prefix; the filter says which events it gets. */
  addSubscription(name: string, filter: SubscriptionFilter, dedupTable: IDedupTable): cloudwatch.Alarm {
    if (!this.#dedupTable) {
      this.#dedupTable = dedupTable;
      // Consistent BatchGetItem of the dedup and cursor records; nothing else on that table.
      iam.Grant.addToPrincipal({
        grantee: this.fn,
        actions: ['dynamodb:BatchGetItem'],
        resourceArns: [dedupTable.tableArn],
      });
    }
    this.#subscriptions.set(name, filter);
    const alarm = new cloudwatch.Alarm(this, `MissingEffects-${name}`, {
      alarmDescription: `The delivery audit found events subscription ${name} selects that its consumer has not applied (not in its dedup table), past the audit lag. Run \`outbox audit --from <window start> --to <window end> --subscription ${name}\` (the audit function's log names the window and the missing events), then check the DLQ (\`outbox dlq list ${name}\`) and the consumer's logs.`,
      metric: this.missingEffects(name),
      threshold: 0,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.#props.alarms.watch(alarm);
    this.alarms.set(name, alarm);
    return alarm;
  }

  /** Selected, settled events of a window without the consumer's effect. @default Maximum per schedule period */
  missingEffects(subscription: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#metric(AuditMetric.missingEffects, subscription, cloudwatch.Stats.MAXIMUM, props);
  }

  /** Events checked per run. @default Sum per schedule period */
  auditedEvents(subscription: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#metric(AuditMetric.auditedEvents, subscription, cloudwatch.Stats.SUM, props);
  }

  #metric(
    metricName: string,
    subscription: string,
    statistic: string,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.#namespace,
      metricName,
      dimensionsMap: { service: this.#service, [AUDIT_SUBSCRIPTION_DIMENSION]: subscription },
      statistic,
      period: this.#period,
      ...props,
    });
  }

  #subscriptionsJson(): string {
    const entries = [...this.#subscriptions].map(([name, filter]) => ({ name, filter }));
    const json = JSON.stringify(entries);
    if (json.length > SUBSCRIPTIONS_ENV_BUDGET) {
      throw new Error(
        `OutboxAudit ${this.node.path}: the audited subscriptions' filters take ${json.length} bytes, more than the ${SUBSCRIPTIONS_ENV_BUDGET} bytes of the Lambda environment (4 KB in all) they may use: shorten the event patterns, or turn the scheduled audit off (Outbox audit: false) and run \`outbox audit\` instead.`,
      );
    }
    return Stack.of(this).toJsonString(entries);
  }
}
