import { Annotations, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ACK_EVENT_TYPES_ENV,
  ACK_TABLE_ENV,
  CONSUMER_MODE_ENV,
  CONSUMER_NAME_ENV,
  DEAD_LETTER_QUEUE_URL_ENV,
  DEDUP_TABLE_ENV,
  DEDUP_TTL_ENV,
} from '../functions/consumer/dedup-format.ts';
import { type SubscriptionFilter, UNAUDITED_CONSUMER_MODE } from '../functions/contract/audit-filter.ts';
import {
  outputName,
  subscriptionDlqOutputKey,
  subscriptionQueueOutputKey,
} from '../functions/contract/outputs.ts';
import { acknowledge, ControlTowerException } from './internal/compliance.ts';
import { createConsumerFunction } from './outbox-function.ts';

/** CloudWatch namespace of the consumers' own metrics (EventsProcessed, DuplicatesSuppressed, ...). */
export const CONSUMER_METRICS_NAMESPACE = 'ServerlessOutbox';

import {
  claimOutputKeys,
  consumerTimeout,
  DEAD_LETTER_RETENTION,
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MAX_EVENT_AGE,
  DEFAULT_MAX_MESSAGE_AGE,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_MAX_VISIBLE_MESSAGES,
  DEFAULT_QUEUE_RETENTION,
  longestReturnSeconds,
  VISIBILITY_TIMEOUT_FACTOR,
  validateSubscriptionProps,
} from './internal/subscription-validation.ts';
import type {
  SubscriptionAlarmProps,
  SubscriptionConstructProps,
  SubscriptionConsumerEntryProps,
  SubscriptionConsumerMode,
  SubscriptionProps,
} from './subscription-props.ts';

export {
  DEFAULT_BATCH_SIZE,
  DEFAULT_CONSUMER_TIMEOUT,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MAX_MESSAGE_AGE,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_MAX_VISIBLE_MESSAGES,
  isKnownStandardTopic,
  VISIBILITY_TIMEOUT_FACTOR,
  validateSubscriptionProps,
} from './internal/subscription-validation.ts';
export * from './subscription-props.ts';

/** The three alarms of a subscription. */
export interface SubscriptionAlarms {
  /** The DLQ holds at least one message. */
  readonly deadLetter: cloudwatch.Alarm;
  /** The oldest message in the queue is older than `maxMessageAge`. */
  readonly oldestMessageAge: cloudwatch.Alarm;
  /** More than `maxVisibleMessages` messages wait in the queue. */
  readonly visibleMessages: cloudwatch.Alarm;
}

/**
 * One team's subscription: a queue with its DLQ, delivery from the topic (ordered) or the bus (rule-based),
 * three alarms and, optionally, a consumer Lambda. Created with `outbox.subscribe(name, props)`, or directly in
 * another stack of the same app: `new Subscription(teamStack, 'Analytics', { outbox, kind: 'rule', ... })`.
 *
 * Construct ids (the subscription name and `Queue`, `DeadLetterQueue`, `Consumer`, ...) are part of the
 * contract: changing them replaces the queues and loses their messages.
 */
export class Subscription extends Construct {
  readonly subscriptionName: string;
  readonly kind: SubscriptionProps['kind'];
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly alarms: SubscriptionAlarms;
  /** The consumer function (the one built from `consumer.entry`, or the one passed as `consumer.function`). */
  readonly consumer?: lambda.IFunction;
  /**
   * The environment variables the consumer library reads (dedup table, consumer name, DLQ URL, tracked mode). Set on
   * a consumer built from `entry` or passed as a `lambda.Function`; set them yourself on an imported function.
   */
  readonly consumerEnvironment: Readonly<Record<string, string>>;
  /** The consumer's declared `mode` (`consumer.mode`); undefined when not declared or without a consumer. */
  readonly consumerMode?: SubscriptionConsumerMode;
  /**
   * Whether the consumer keeps dedup records (any mode but `single-item`): only then is it granted the dedup table
   * and checked by the scheduled delivery audit.
   */
  readonly keepsDedupRecords: boolean;
  /** Rule-based subscriptions: the EventBridge rule. */
  readonly rule?: events.Rule;
  /** Ordered subscriptions: the SNS subscription. */
  readonly topicSubscription?: sns.Subscription;
  /** Tracked mode: the event types this subscription acknowledges (empty when not tracked). */
  readonly trackedEventTypes: readonly string[];
  /** What the delivery audit counts as selected; undefined when it cannot evaluate the filter. */
  readonly auditFilter?: SubscriptionFilter;

  constructor(scope: Construct, id: string, props: SubscriptionConstructProps) {
    const name = props.name ?? id;
    if (!props.outbox) {
      throw new Error(`Invalid subscription "${name}": \`outbox\` (the Outbox to subscribe to) is required`);
    }
    const errors = validateSubscriptionProps(name, props, Stack.of(scope));
    if (errors.length > 0) {
      throw new Error(`Invalid subscription "${name}":\n- ${errors.join('\n- ')}`);
    }
    super(scope, id);
    this.subscriptionName = name;
    this.kind = props.kind;
    const outbox = props.outbox;
    const fifo = props.kind === 'ordered';
    const visibilityTimeout =
      props.visibilityTimeout ??
      (props.consumer
        ? Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * consumerTimeout(props.consumer).toSeconds())
        : Duration.seconds(30));

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      ...(fifo ? { fifo: true } : {}),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    acknowledge(this.deadLetterQueue, ControlTowerException.deadLetterQueueHasNoDlq);
    this.queue = new sqs.Queue(this, 'Queue', {
      ...(fifo
        ? {
            fifo: true,
            // SNS FIFO passes MessageDeduplicationId = event id; per-group dedup and throughput (high-throughput FIFO).
            contentBasedDeduplication: false,
            deduplicationScope: sqs.DeduplicationScope.MESSAGE_GROUP,
            fifoThroughputLimit: sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
          }
        : {}),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout,
      retentionPeriod: props.retentionPeriod ?? DEFAULT_QUEUE_RETENTION,
      deadLetterQueue: {
        queue: this.deadLetterQueue,
        maxReceiveCount: props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT,
      },
    });

    if (props.kind === 'ordered') {
      const topic = outbox.topic as sns.ITopic;
      const filterPolicy = orderedFilterPolicy(props);
      this.topicSubscription = topic.addSubscription(
        new snsSubscriptions.SqsSubscription(this.queue, {
          rawMessageDelivery: true,
          ...(Object.keys(filterPolicy).length > 0 ? { filterPolicy } : {}),
          // What SNS cannot deliver (e.g. a broken queue policy) lands in the same DLQ and trips its alarm.
          deadLetterQueue: this.deadLetterQueue,
        }),
      );
    } else {
      const pattern: events.EventPattern = {
        ...props.eventPattern,
        ...(props.eventTypes?.length ? { detailType: [...props.eventTypes] } : {}),
        ...(props.sources?.length ? { source: [...props.sources] } : {}),
      };
      this.rule = new events.Rule(this, 'Rule', {
        eventBus: outbox.bus as events.IEventBus,
        description: `Delivers outbox events to the ${name} subscription queue`,
        eventPattern: pattern,
      });
      this.rule.addTarget(
        new targets.SqsQueue(this.queue, {
          // The envelope itself, as the ordered kind delivers it.
          message: events.RuleTargetInput.fromEventPath('$.detail'),
          retryAttempts: props.retryAttempts ?? 185,
          maxEventAge: props.maxEventAge ?? DEFAULT_MAX_EVENT_AGE,
          deadLetterQueue: this.deadLetterQueue,
        }),
      );
    }

    this.alarms = this.#createAlarms(
      name,
      props.alarms ?? {},
      new cloudwatchActions.SnsAction(outbox.alarmTopic),
    );
    this.trackedEventTypes = props.tracked ? [...new Set(props.tracked.eventTypes)] : [];
    const auditFilter = auditFilterOf(props);
    if (auditFilter) this.auditFilter = auditFilter;
    const relay = props.tracked ? outbox.relay : undefined;
    relay?.trackDelivery({ name, queue: this.queue, eventTypes: this.trackedEventTypes });

    const consumerMode = props.consumer?.mode;
    if (consumerMode) this.consumerMode = consumerMode;
    // Single-item mode keeps its cursor on the effect's own item: no dedup table (not even created for it).
    this.keepsDedupRecords = props.consumer !== undefined && consumerMode !== 'single-item';
    if (props.consumer) {
      const dedupTable = this.keepsDedupRecords ? outbox.dedupTable : undefined;
      const consumer = props.consumer;
      this.consumerEnvironment = {
        ...(dedupTable
          ? {
              [DEDUP_TABLE_ENV]: dedupTable.tableName,
              [DEDUP_TTL_ENV]: String(props.dedupRetention?.toSeconds() ?? longestReturnSeconds(props)),
            }
          : {}),
        ...(consumerMode ? { [CONSUMER_MODE_ENV]: consumerMode } : {}),
        [CONSUMER_NAME_ENV]: name,
        [DEAD_LETTER_QUEUE_URL_ENV]: this.deadLetterQueue.queueUrl,
        ...(relay
          ? {
              [ACK_TABLE_ENV]: relay.outbox.tableName,
              [ACK_EVENT_TYPES_ENV]: this.trackedEventTypes.join(','),
            }
          : {}),
        POWERTOOLS_SERVICE_NAME: name,
        POWERTOOLS_METRICS_NAMESPACE: CONSUMER_METRICS_NAMESPACE,
      };
      const fn = consumer.function ?? this.#createConsumer(name, props.kind, consumer);
      if (consumer.function instanceof lambda.Function) {
        for (const [key, value] of Object.entries(this.consumerEnvironment))
          consumer.function.addEnvironment(key, value);
      } else if (consumer.function) {
        Annotations.of(this).addWarningV2(
          'serverless-outbox:consumer-environment',
          `consumer.function is not a lambda.Function, so its environment cannot be set: set ${Object.keys(this.consumerEnvironment).join(', ')} on it yourself (subscription.consumerEnvironment holds the values).`,
        );
      }
      // A single-item consumer's effect table is the user's to grant (grantReadWriteData).
      dedupTable?.grantConsumer(fn, name);
      // Tracked mode: UpdateItem on the outbox table's ACK# items only.
      relay?.grantAcknowledge(fn, name);
      // Poison messages go straight to the DLQ instead of burning every retry.
      this.deadLetterQueue.grantSendMessages(fn);
      // Claim-check: read (only) the payloads of large events.
      outbox.largeEvents?.grantRead(fn);
      const source = new eventSources.SqsEventSource(this.queue, {
        batchSize: consumer.batchSize ?? DEFAULT_BATCH_SIZE,
        reportBatchItemFailures: true,
        maxConcurrency: consumer.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
        ...(consumer.maxBatchingWindow ? { maxBatchingWindow: consumer.maxBatchingWindow } : {}),
      });
      fn.addEventSource(source);
      this.consumer = fn;
    } else {
      this.consumerEnvironment = {};
    }
    outbox.registerSubscription(this);
    if (props.outputs ?? true) {
      claimOutputKeys(this, name);
      new CfnOutput(this, 'QueueUrlOutput', {
        value: this.queue.queueUrl,
        description: `Queue of subscription ${name}`,
      }).overrideLogicalId(subscriptionQueueOutputKey(name));
      new CfnOutput(this, 'DlqUrlOutput', {
        value: this.deadLetterQueue.queueUrl,
        description: `DLQ of subscription ${name}`,
      }).overrideLogicalId(subscriptionDlqOutputKey(name));
      // `outbox audit` leaves out a consumer that keeps no dedup records (it would find every event missing).
      if (consumerMode === UNAUDITED_CONSUMER_MODE) {
        new CfnOutput(this, 'ConsumerModeOutput', {
          value: consumerMode,
          description: `Consumer mode of subscription ${name}, for outbox audit`,
        }).overrideLogicalId(`Sub${outputName(name)}ConsumerMode`);
      }
      if (this.auditFilter) {
        new CfnOutput(this, 'FilterOutput', {
          value: Stack.of(this).toJsonString(this.auditFilter),
          description: `Filter of subscription ${name}, for outbox audit`,
        }).overrideLogicalId(`Sub${outputName(name)}Filter`);
      }
    }
  }

  #createConsumer(
    name: string,
    kind: SubscriptionProps['kind'],
    consumer: SubscriptionConsumerEntryProps,
  ): nodejs.NodejsFunction {
    return createConsumerFunction(this, 'Consumer', consumer, {
      description: consumer.description ?? `${name} consumer (${kind} subscription)`,
      timeout: consumerTimeout(consumer),
      ...(consumer.memorySize === undefined ? {} : { memorySize: consumer.memorySize }),
      ...(consumer.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: consumer.reservedConcurrentExecutions }),
      environment: { ...consumer.environment, ...this.consumerEnvironment },
    });
  }

  #createAlarms(
    name: string,
    props: SubscriptionAlarmProps,
    notify: cloudwatchActions.SnsAction,
  ): SubscriptionAlarms {
    const period = Duration.minutes(1);
    const maxAge = props.maxMessageAge ?? DEFAULT_MAX_MESSAGE_AGE;
    const maxVisible = props.maxVisibleMessages ?? DEFAULT_MAX_VISIBLE_MESSAGES;
    const deadLetter = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: `${name}: messages in the dead-letter queue. Inspect them (they are not lost), fix the cause, then redrive them to the queue.`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const oldestMessageAge = new cloudwatch.Alarm(this, 'OldestMessageAgeAlarm', {
      alarmDescription: `${name}: messages wait longer than ${maxAge.toSeconds()} s. The consumer is failing, throttled or too slow.`,
      metric: this.queue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
      threshold: maxAge.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const visibleMessages = new cloudwatch.Alarm(this, 'VisibleMessagesAlarm', {
      alarmDescription: `${name}: more than ${maxVisible} messages are waiting. Raise maxConcurrency or find what slows the consumer.`,
      metric: this.queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      threshold: maxVisible,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [deadLetter, oldestMessageAge, visibleMessages]) {
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
    }
    return { deadLetter, oldestMessageAge, visibleMessages };
  }
}

/** The SNS filter policy of an ordered subscription: `filterPolicy` plus `type` from its event types/prefixes. */
function orderedFilterPolicy(props: SubscriptionProps): Record<string, sns.SubscriptionFilter> {
  if (props.kind !== 'ordered') return {};
  const filterPolicy: Record<string, sns.SubscriptionFilter> = { ...props.filterPolicy };
  if (props.eventTypes || props.eventTypePrefixes) {
    filterPolicy.type = sns.SubscriptionFilter.stringFilter({
      ...(props.eventTypes ? { allowlist: [...props.eventTypes] } : {}),
      ...(props.eventTypePrefixes ? { matchPrefixes: [...props.eventTypePrefixes] } : {}),
    });
  }
  return filterPolicy;
}

/**
 * The subscription's filter as `outbox audit` evaluates it: event types / prefixes (ordered), the SNS filter
 * policy when it names more than the type, or the rule's event pattern in EventBridge's JSON form.
 */
function auditFilterOf(props: SubscriptionProps): SubscriptionFilter | undefined {
  if (props.kind === 'ordered') {
    if (props.filterPolicy && Object.keys(props.filterPolicy).length > 0) {
      const policy = Object.fromEntries(
        Object.entries(orderedFilterPolicy(props)).map(([key, filter]) => [key, filter.conditions]),
      );
      return { kind: 'sns-filter-policy', policy, scope: 'MessageAttributes' };
    }
    if (!props.eventTypes && !props.eventTypePrefixes) return undefined;
    return {
      kind: 'event-types',
      types: [...(props.eventTypes ?? [])],
      prefixes: [...(props.eventTypePrefixes ?? [])],
    };
  }
  const { detailType, ...rest } = props.eventPattern ?? {};
  const types = props.eventTypes?.length ? [...props.eventTypes] : detailType;
  return {
    kind: 'event-pattern',
    pattern: {
      ...rest,
      ...(types ? { 'detail-type': types } : {}),
      ...(props.sources?.length ? { source: [...props.sources] } : {}),
    },
  };
}
