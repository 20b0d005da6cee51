import { Duration, Lazy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { RecoveryDefaults, RecoveryEnv, RecoveryMetric } from '../functions/recovery/contract.ts';
import { PENDING_INDEX_NAME } from '../functions/runtime/record-format.ts';
import type { AlarmTopic } from './alarm-topic.ts';
import { createLibraryFunction } from './outbox-function.ts';
import type { OutboxRelay } from './outbox-relay.ts';
import type { OutboxTable } from './outbox-table.ts';

export interface OutboxRecoveryProps {
  /** The outbox the sweeper reads through its `pending-by-due-time` index. */
  readonly outbox: OutboxTable;
  /**
   * The relay whose publishing code, targets, retention, tracked subscribers and ack timeout the recovery function
   * reuses (its `publishEnvironment` and `grantPublish`).
   */
  readonly relay: OutboxRelay;
  /** Where the recovery alarms notify. */
  readonly alarms: AlarmTopic;
  /**
   * How often the sweeper runs (an EventBridge rule). Delayed events are published at most one period after
   * their `deliverAt` (plus stream latency).
   * @default events.Schedule.rate(Duration.minutes(1))
   */
  readonly schedule?: events.Schedule;
  /**
   * A READY record older than this (since commit) was missed by the stream path and is republished. Keep it above
   * the relay's normal latency, or records the relay is still retrying get published twice (FIFO targets drop
   * the copy within 5 minutes; EventBridge does not).
   * @default Duration.minutes(2)
   */
  readonly stuckAfter?: Duration;
  /**
   * A PREPARED message older than this is resolved by the producer's check-back function.
   * @default Duration.minutes(5)
   */
  readonly checkbackAfter?: Duration;
  /**
   * Republish / check-back attempts before a record is quarantined (1–100).
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Base of the exponential backoff between attempts (doubles per attempt, at most 1 hour), 1 s – 1 hour.
   * @default Duration.minutes(1)
   */
  readonly backoffBase?: Duration;
  /**
   * Most index entries handled per run (1–10,000); the rest wait for the next run.
   * @default 500
   */
  readonly maxEntriesPerRun?: number;
  /**
   * Tracked mode: redeliveries to a subscriber before its acknowledgement is marked FAILED (0–100). The interval
   * is the relay's `ackTimeout`.
   * @default 3
   */
  readonly maxRedeliveries?: number;
  /**
   * The producer's check-back function per event source (the envelope's `source`), invoked with
   * `{ eventId, aggregateKey, source }` and answering `{ status: 'committed' | 'rolled-back' | 'unknown' }`. A
   * prepared message of a source without one resolves as `unknown` (and is quarantined after `maxAttempts`).
   * More can be added with `addCheckbackFunction`.
   * @default - none
   */
  readonly checkbackFunctions?: Readonly<Record<string, lambda.IFunction>>;
  /**
   * Longest wait for one check-back answer, 1 s – 15 min (a timeout counts as `unknown`).
   * @default Duration.seconds(10)
   */
  readonly checkbackTimeout?: Duration;
  /**
   * Page when the record that has been late the longest is late by more than this ("the outbox is stuck").
   * @default Duration.minutes(5)
   */
  readonly oldestUnpublishedAgeAlarmThreshold?: Duration;
  /**
   * Recovery function timeout, 10–900 seconds. Keep it at most the schedule period so runs do not overlap.
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * Recovery function memory (MB).
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * CloudWatch namespace of the recovery metrics.
   * @default 'ServerlessOutbox'
   */
  readonly metricsNamespace?: string;
}

const DEFAULTS = {
  schedulePeriod: Duration.minutes(1),
  stuckAfter: Duration.seconds(RecoveryDefaults.stuckAfterSeconds),
  checkbackAfter: Duration.seconds(RecoveryDefaults.checkbackAfterSeconds),
  maxAttempts: RecoveryDefaults.maxAttempts,
  backoffBase: Duration.seconds(RecoveryDefaults.backoffBaseSeconds),
  maxEntriesPerRun: RecoveryDefaults.maxEntriesPerRun,
  maxRedeliveries: RecoveryDefaults.maxRedeliveries,
  checkbackTimeout: Duration.seconds(RecoveryDefaults.checkbackTimeoutSeconds),
  oldestUnpublishedAgeAlarmThreshold: Duration.minutes(5),
  timeout: Duration.seconds(60),
  memorySize: 256,
  metricsNamespace: 'ServerlessOutbox',
} as const;

/** Metrics of the recovery function, for dashboards and alarms (dimension `service` = the construct path). */
export class OutboxRecoveryMetrics {
  readonly #namespace: string;
  readonly #service: string;
  readonly #fn: lambda.IFunction;

  constructor(options: { namespace: string; service: string; fn: lambda.IFunction }) {
    this.#namespace = options.namespace;
    this.#service = options.service;
    this.#fn = options.fn;
  }

  #custom(metricName: string, statistic: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.#namespace,
      metricName,
      dimensionsMap: { service: this.#service },
      statistic,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Seconds the record that has been late the longest has been late. @default Maximum per minute */
  oldestUnpublishedAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.oldestUnpublishedAge, cloudwatch.Stats.MAXIMUM, {
      period: Duration.minutes(1),
      ...props,
    });
  }
  /** Records that still need work. @default Maximum per minute */
  unpublishedCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.unpublishedCount, cloudwatch.Stats.MAXIMUM, {
      period: Duration.minutes(1),
      ...props,
    });
  }
  republished(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.republished, cloudwatch.Stats.SUM, props);
  }
  released(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.released, cloudwatch.Stats.SUM, props);
  }
  confirmed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.confirmed, cloudwatch.Stats.SUM, props);
  }
  cancelled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.cancelled, cloudwatch.Stats.SUM, props);
  }
  /** Records the sweeper quarantined (attempts exhausted, or unpublishable when republished). */
  quarantined(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.quarantined, cloudwatch.Stats.SUM, props);
  }
  checkbackUnknown(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.checkbackUnknown, cloudwatch.Stats.SUM, props);
  }
  redelivered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.redelivered, cloudwatch.Stats.SUM, props);
  }
  acksFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.acksFailed, cloudwatch.Stats.SUM, props);
  }
  redeliveryErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.redeliveryErrors, cloudwatch.Stats.SUM, props);
  }
  /** Read units of the index Queries per run. @default Maximum per 5 minutes */
  indexReadUnits(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom(RecoveryMetric.indexReadUnits, cloudwatch.Stats.MAXIMUM, props);
  }
  /** Runs that threw (configuration error, DynamoDB error, timeout). */
  errors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#fn.metricErrors({ period: Duration.minutes(5), ...props });
  }
}

/** The alarms of the recovery function. */
export interface OutboxRecoveryAlarms {
  /** The record that has been late the longest is late by more than the threshold: the outbox is stuck. */
  readonly oldestUnpublishedAge: cloudwatch.Alarm;
  /** The sweeper quarantined a record. */
  readonly quarantined: cloudwatch.Alarm;
  /** A subscriber's acknowledgement was marked FAILED. */
  readonly acksFailed: cloudwatch.Alarm;
  /** A check-back answered unknown (or could not be asked). */
  readonly checkbackUnknown: cloudwatch.Alarm;
  /** A recovery run threw. */
  readonly errors: cloudwatch.Alarm;
}

function seconds(d: Duration | undefined): number | undefined {
  if (d === undefined) return undefined;
  const value = d.toSeconds({ integral: false });
  return Token.isUnresolved(value) ? undefined : value;
}

function validate(props: OutboxRecoveryProps): string[] {
  const errors: string[] = [];
  const range = (name: string, value: number | undefined, min: number, max: number, unit = '') => {
    if (value === undefined || Token.isUnresolved(value)) return;
    if (!Number.isInteger(value) || value < min || value > max) {
      errors.push(
        `${name} must be ${unit ? `whole ${unit} ` : 'an integer '}from ${min} to ${max}, but ${value}${unit ? ` ${unit}` : ''} was provided`,
      );
    }
  };
  range('stuckAfter', seconds(props.stuckAfter), 10, 604_800, 'seconds');
  range('checkbackAfter', seconds(props.checkbackAfter), 10, 604_800, 'seconds');
  range('backoffBase', seconds(props.backoffBase), 1, 3600, 'seconds');
  range('checkbackTimeout', seconds(props.checkbackTimeout), 1, 900, 'seconds');
  range('timeout', seconds(props.timeout), 10, 900, 'seconds');
  range(
    'oldestUnpublishedAgeAlarmThreshold',
    seconds(props.oldestUnpublishedAgeAlarmThreshold),
    60,
    86_400,
    'seconds',
  );
  range('maxAttempts', props.maxAttempts, 1, 100);
  range('maxEntriesPerRun', props.maxEntriesPerRun, 1, 10_000);
  range('maxRedeliveries', props.maxRedeliveries, 0, 100);
  for (const source of Object.keys(props.checkbackFunctions ?? {})) {
    if (source.trim() === '')
      errors.push('checkbackFunctions keys must be event sources, but "" was provided');
  }
  return errors;
}

/**
 * The recovery sweeper: an EventBridge rule (every minute by default) runs a Lambda that finds, through the
 * sparse `pending-by-due-time` index (16 Queries, never a Scan), outbox records the stream path did not finish:
 * it republishes stuck READY records through the relay's own publishing code, releases delayed (SCHEDULED)
 * records when due, resolves stale PREPARED messages with the producer's check-back function, redelivers
 * unacknowledged tracked events, and quarantines what exhausts its attempts. Alarms notify the AlarmTopic.
 *
 * Construct ids (`Function`, `Schedule`, alarms) are part of the contract: renaming one replaces the resource.
 */
export class OutboxRecovery extends Construct {
  readonly fn: lambda.Function;
  /** The EventBridge rule that runs the sweeper (AWS::Events::Rule with a ScheduleExpression). */
  readonly schedule: events.Rule;
  readonly metrics: OutboxRecoveryMetrics;
  readonly alarms: OutboxRecoveryAlarms;
  /** Threshold of the "outbox is stuck" alarm on the oldest unpublished age. */
  readonly stuckAlarmThreshold: Duration;
  readonly #checkbackFunctions = new Map<string, lambda.IFunction>();

  constructor(scope: Construct, id: string, props: OutboxRecoveryProps) {
    super(scope, id);
    const errors = validate(props);
    if (errors.length > 0) throw new Error(`OutboxRecovery ${this.node.path}: ${errors.join('; ')}`);
    const service = this.node.path;
    const namespace = props.metricsNamespace ?? DEFAULTS.metricsNamespace;
    const whole = (d: Duration) => String(Math.round(d.toSeconds({ integral: false })));

    this.fn = createLibraryFunction(this, 'Function', 'recovery', {
      description:
        'Outbox recovery sweeper: republishes stuck records, releases delayed ones, resolves prepared messages by check-back, redelivers unacknowledged tracked events',
      timeout: props.timeout ?? DEFAULTS.timeout,
      memorySize: props.memorySize ?? DEFAULTS.memorySize,
      environment: {
        ...props.relay.publishEnvironment,
        [RecoveryEnv.stuckAfterSeconds]: whole(props.stuckAfter ?? DEFAULTS.stuckAfter),
        [RecoveryEnv.checkbackAfterSeconds]: whole(props.checkbackAfter ?? DEFAULTS.checkbackAfter),
        [RecoveryEnv.maxAttempts]: String(props.maxAttempts ?? DEFAULTS.maxAttempts),
        [RecoveryEnv.backoffBaseSeconds]: whole(props.backoffBase ?? DEFAULTS.backoffBase),
        [RecoveryEnv.maxEntriesPerRun]: String(props.maxEntriesPerRun ?? DEFAULTS.maxEntriesPerRun),
        [RecoveryEnv.maxRedeliveries]: String(props.maxRedeliveries ?? DEFAULTS.maxRedeliveries),
        [RecoveryEnv.checkbackTimeoutSeconds]: whole(props.checkbackTimeout ?? DEFAULTS.checkbackTimeout),
        // Resolved at synth time, so functions added with addCheckbackFunction are included.
        [RecoveryEnv.checkbackFunctions]: Lazy.string({
          produce: () =>
            Stack.of(this).toJsonString(
              Object.fromEntries(
                [...this.#checkbackFunctions].map(([source, fn]) => [source, fn.functionName]),
              ),
            ),
        }),
        POWERTOOLS_SERVICE_NAME: service,
        POWERTOOLS_METRICS_NAMESPACE: namespace,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    // A failed run is not retried by Lambda: the next scheduled run is the retry, and runs never overlap.
    this.fn.configureAsyncInvoke({ retryAttempts: 0 });

    // Least privilege. Reads: Query on the pending index only, BatchGetItem of the records it found.
    const table = props.outbox.table;
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:Query'],
      resourceArns: [`${table.tableArn}/index/${PENDING_INDEX_NAME}`],
    });
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:BatchGetItem'],
      resourceArns: [table.tableArn],
    });
    // Writes: the writer's confirm/cancel (PutItem, UpdateItem, ConditionCheckItem, GetItem) and the sweeper's
    // UpdateItems; the relay's publishing code (bookkeeping, ack items, targets); redelivery to tracked queues.
    props.outbox.grantWrite(this.fn);
    props.relay.grantPublish(this.fn);
    props.relay.grantRedelivery(this.fn);
    for (const [source, fn] of Object.entries(props.checkbackFunctions ?? {})) {
      this.addCheckbackFunction(source, fn);
    }

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Runs the outbox recovery sweeper',
      schedule: props.schedule ?? events.Schedule.rate(DEFAULTS.schedulePeriod),
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 0 })],
    });

    this.metrics = new OutboxRecoveryMetrics({ namespace, service, fn: this.fn });
    this.stuckAlarmThreshold =
      props.oldestUnpublishedAgeAlarmThreshold ?? DEFAULTS.oldestUnpublishedAgeAlarmThreshold;
    this.alarms = this.#createAlarms(props);

    NagSuppressions.addResourceSuppressions(
      this.fn.role ?? this.fn,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Publishing to the KMS-encrypted topic needs kms:GenerateDataKey* on its key (added by grantPublish); the resource is that one key.',
          appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'grantInvoke on a check-back function also allows its versions and aliases (`<function ARN>:*`); the function is the one configured for its event source.',
          appliesTo: [{ regex: '/^Resource::<.+\\.Arn>:\\*$/g' }],
        },
      ],
      true,
    );
  }

  /** Configures (or replaces) the producer's check-back function of an event source and grants invoking it. */
  addCheckbackFunction(source: string, fn: lambda.IFunction): void {
    if (source.trim() === '') {
      throw new Error(
        `OutboxRecovery ${this.node.path}: a check-back function needs an event source, but "" was provided`,
      );
    }
    this.#checkbackFunctions.set(source, fn);
    fn.grantInvoke(this.fn);
  }

  /** Event sources with a check-back function. */
  get checkbackSources(): readonly string[] {
    return [...this.#checkbackFunctions.keys()];
  }

  #createAlarms(props: OutboxRecoveryProps): OutboxRecoveryAlarms {
    const m = this.metrics;
    const alarm = (id: string, description: string, rest: Omit<cloudwatch.AlarmProps, 'alarmDescription'>) =>
      props.alarms.watch(new cloudwatch.Alarm(this, id, { alarmDescription: description, ...rest }));
    const atLeastOne = {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    const threshold = this.stuckAlarmThreshold;
    return {
      oldestUnpublishedAge: alarm(
        'OldestUnpublishedAgeAlarm',
        `The outbox is stuck: a record has been waiting more than ${threshold.toHumanString()} to be published (or resolved). Run \`outbox status\`, check the relay and recovery logs and alarms, then the targets.`,
        {
          metric: m.oldestUnpublishedAge(),
          threshold: threshold.toSeconds(),
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        },
      ),
      quarantined: alarm(
        'QuarantinedAlarm',
        'The recovery sweeper quarantined an outbox record (attempts exhausted, or unpublishable). Run `outbox quarantine list`, fix the cause in lastError, then `outbox quarantine retry <id>`.',
        { metric: m.quarantined(), ...atLeastOne },
      ),
      acksFailed: alarm(
        'AcksFailedAlarm',
        'A tracked subscriber did not acknowledge an event after every redelivery (its ack is FAILED). Check that subscriber: its queue, DLQ and consumer logs; getStatus(eventId) shows the event.',
        { metric: m.acksFailed(), ...atLeastOne },
      ),
      checkbackUnknown: alarm(
        'CheckbackUnknownAlarm',
        "A producer's check-back could not say whether a prepared message committed (answer unknown, no function for its source, error or timeout). It is retried with backoff and then quarantined; check the check-back function.",
        { metric: m.checkbackUnknown(), ...atLeastOne },
      ),
      errors: alarm(
        'ErrorsAlarm',
        'A recovery sweeper run failed (configuration, DynamoDB or timeout): stuck records are not being recovered. Check the recovery function logs.',
        { metric: m.errors(), ...atLeastOne },
      ),
    };
  }
}
