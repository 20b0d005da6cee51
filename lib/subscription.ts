import { Annotations, CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
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
  CONSUMER_NAME_ENV,
  CONSUMER_NAME_PATTERN,
  DEAD_LETTER_QUEUE_URL_ENV,
  DEDUP_TABLE_ENV,
  DEDUP_TTL_ENV,
} from '../functions/consumer/dedup-format.ts';
import { subscriptionDlqOutputKey, subscriptionQueueOutputKey } from '../functions/contract/outputs.ts';
import { acknowledge, ControlTowerException } from './internal/compliance.ts';
import type { IOutbox } from './outbox.ts';
import { type ConsumerBundleOptions, createConsumerFunction } from './outbox-function.ts';

/** CloudWatch namespace of the consumers' own metrics (EventsProcessed, DuplicatesSuppressed, ...). */
export const CONSUMER_METRICS_NAMESPACE = 'ServerlessOutbox';

/** Settings of the consumer's event source mapping, for either kind of consumer. */
export interface SubscriptionConsumerMappingProps {
  /**
   * Messages per invocation. Ordered (FIFO) subscriptions: 1 to 10. Rule-based: 1 to 10,000 (above 10 needs
   * `maxBatchingWindow`).
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Rule-based subscriptions only: wait up to this long to fill a batch (0 to 300 s). FIFO queues have none.
   * @default - no batching window
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Load levelling: the most concurrent invocations the event source mapping starts (2 to 1,000). A spike
   * waits in the queue instead of overwhelming the team's downstream systems. FIFO queues are also limited
   * by the number of active message groups.
   * @default 10
   */
  readonly maxConcurrency?: number;
}

/** A consumer built from a handler file in your project, bundled by your esbuild (no Docker). */
export interface SubscriptionConsumerEntryProps
  extends SubscriptionConsumerMappingProps,
    ConsumerBundleOptions {
  /** @default - "<name> consumer (<kind> subscription)" */
  readonly description?: string;
  /** Extra environment variables (the dedup table, consumer name and DLQ URL are always set). */
  readonly environment?: Record<string, string>;
  /**
   * Function timeout. The queue's visibility timeout is derived from it (6×).
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default - no reserved concurrency */
  readonly reservedConcurrentExecutions?: number;
  readonly function?: never;
}

/**
 * A consumer function you created yourself: the subscription wires the event source mapping, the grants and (on a
 * `lambda.Function`) the environment variables `createConsumer` reads.
 */
export interface SubscriptionConsumerFunctionProps extends SubscriptionConsumerMappingProps {
  readonly function: lambda.IFunction;
  /**
   * The function's timeout, from which the queue's visibility timeout is derived (6×).
   * @default - the function's own timeout when it is a `lambda.Function` with one, else Duration.seconds(30)
   */
  readonly timeout?: Duration;
  readonly entry?: never;
}

/** The optional consumer Lambda of a subscription: your handler file (`entry`) or your function (`function`). */
export type SubscriptionConsumerProps = SubscriptionConsumerEntryProps | SubscriptionConsumerFunctionProps;

/** Alarm thresholds; every alarm notifies the stack's alarm topic on ALARM and OK. */
export interface SubscriptionAlarmProps {
  /**
   * Alarm when the oldest message has waited longer than this (`ApproximateAgeOfOldestMessage`, maximum over
   * 1 minute, 3 consecutive minutes).
   * @default Duration.seconds(60)
   */
  readonly maxMessageAge?: Duration;
  /**
   * Alarm when more messages than this wait in the queue (`ApproximateNumberOfMessagesVisible`, maximum over
   * 1 minute, 3 consecutive minutes).
   * @default 10000
   */
  readonly maxVisibleMessages?: number;
}

interface SubscriptionCommonProps {
  /**
   * The consumer Lambda. Leave it out to subscribe a queue only (e.g. for a team consuming from a container).
   * @default - no consumer: the queue, DLQ and alarms only
   */
  readonly consumer?: SubscriptionConsumerProps;
  /**
   * Receives before a message moves to the DLQ (1 to 1,000).
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Visibility timeout of the queue; must be at least 6× the consumer's timeout (AWS's advice for Lambda).
   * @default - 6 × the consumer timeout; 30 seconds without a consumer
   */
  readonly visibilityTimeout?: Duration;
  /**
   * How long undelivered messages stay in the queue (60 s to 14 days). The DLQ keeps messages 14 days.
   * @default Duration.days(4)
   */
  readonly retentionPeriod?: Duration;
  /** @default - the thresholds documented on SubscriptionAlarmProps */
  readonly alarms?: SubscriptionAlarmProps;
  /**
   * How long the consumer remembers an applied event (its dedup records). A message can come back for as long as
   * the queue and then its DLQ keep it (a redrive re-sends it), plus, for rule subscriptions, EventBridge's retries:
   * a shorter memory would apply such an event twice, so synthesis refuses one below that sum.
   * @default - exactly that sum: `retentionPeriod` + 14 days (DLQ) + `maxEventAge` (rule subscriptions)
   */
  readonly dedupRetention?: Duration;
  /**
   * Tracked mode (delivery acknowledgements) for these event types: when the relay publishes one, it records a
   * pending acknowledgement for this subscription; the consumer acknowledges after applying the event (it gets
   * `OUTBOX_ACK_TABLE_NAME` / `OUTBOX_ACK_EVENT_TYPES` and UpdateItem on `ACK#` items of the outbox table); the
   * recovery sweeper redelivers to this queue what stays unacknowledged longer than the relay's `ackTimeout`, then
   * marks it FAILED (alarm). Needs an `Outbox` of this app, in the same stack. A consumer outside Lambda must call `acknowledge()` itself
   * with the subscription name.
   * @default - not tracked
   */
  readonly tracked?: { readonly eventTypes: readonly string[] };
}

/**
 * Ordered: SNS FIFO topic → subscription with a filter policy on the message attributes (`type`, `source`,
 * `partitionkey`) and raw delivery → SQS FIFO queue (FIFO DLQ). Per-aggregate order end to end: the relay
 * publishes with MessageGroupId = partitionkey.
 */
export interface OrderedSubscriptionProps extends SubscriptionCommonProps {
  readonly kind: 'ordered';
  /**
   * Deliver only these event types (exact `type` values).
   * @default - every type (unless `eventTypePrefixes` or `filterPolicy` narrow it)
   */
  readonly eventTypes?: readonly string[];
  /**
   * Deliver only event types starting with one of these, e.g. `com.example.orders.`.
   * @default - no prefix filter
   */
  readonly eventTypePrefixes?: readonly string[];
  /**
   * Further conditions on the message attributes `source` and `partitionkey` (combined with the type filter).
   * @default - none
   */
  readonly filterPolicy?: { readonly [attribute: string]: sns.SubscriptionFilter };
  readonly eventPattern?: never;
  readonly sources?: never;
  readonly retryAttempts?: never;
  readonly maxEventAge?: never;
}

/**
 * Rule-based: EventBridge rule with an event pattern → standard SQS queue (standard DLQ). The rule target
 * has a retry policy and sends what it cannot deliver to the same DLQ. No ordering.
 * The queue receives the envelope itself (the event's `detail`), so both kinds deliver the same body.
 */
export interface RuleSubscriptionProps extends SubscriptionCommonProps {
  readonly kind: 'rule';
  /**
   * Event pattern (detail-type = envelope.type, source = envelope.source, detail = the envelope).
   * Combined with `eventTypes` and `sources` when those are given too.
   * @default - built from `eventTypes` and `sources`; at least one of the three is required
   */
  readonly eventPattern?: events.EventPattern;
  /** Shorthand for `eventPattern.detailType`. @default - any type */
  readonly eventTypes?: readonly string[];
  /** Shorthand for `eventPattern.source`. @default - any source */
  readonly sources?: readonly string[];
  /**
   * Retries of the rule target before the event goes to the DLQ (0 to 185).
   * @default 185
   */
  readonly retryAttempts?: number;
  /**
   * Longest time EventBridge keeps retrying an event (60 s to 24 h).
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
  readonly eventTypePrefixes?: never;
  readonly filterPolicy?: never;
}

export type SubscriptionProps = OrderedSubscriptionProps | RuleSubscriptionProps;

/** Where a subscription gets its events: the outbox (in the same stack or another stack of the same app). */
export interface SubscriptionWiring {
  /** The outbox whose topic (ordered) or bus (rule-based) feeds the queue. */
  readonly outbox: IOutbox;
  /**
   * The subscription's name: its consumer's name in every dedup key and acknowledgement. Keep it stable.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * Write the stack outputs the operator CLI lists subscriptions by (`Sub<Name>QueueUrl`, `Sub<Name>DlqUrl`).
   * @default true
   */
  readonly outputs?: boolean;
}

export type SubscriptionConstructProps = SubscriptionProps & SubscriptionWiring;

export const DEFAULT_MAX_RECEIVE_COUNT = 5;
export const DEFAULT_CONSUMER_TIMEOUT = Duration.seconds(30);
export const DEFAULT_BATCH_SIZE = 10;
export const DEFAULT_MAX_CONCURRENCY = 10;
export const DEFAULT_MAX_MESSAGE_AGE = Duration.seconds(60);
export const DEFAULT_MAX_VISIBLE_MESSAGES = 10_000;
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Output keys taken per stack: two names with one PascalCase form (`order-history`, `order_history`) would collide. */
const outputKeysByStack = new WeakMap<Stack, Map<string, string>>();

function claimOutputKeys(scope: Construct, name: string): void {
  const stack = Stack.of(scope);
  const taken = outputKeysByStack.get(stack) ?? new Map<string, string>();
  outputKeysByStack.set(stack, taken);
  const key = subscriptionQueueOutputKey(name);
  const holder = taken.get(key);
  if (holder !== undefined) {
    throw new Error(
      `Invalid subscription "${name}": its stack output ${key} is already written by subscription "${holder}" in stack ${stack.stackName}; rename one of them, or give one \`outputs: false\``,
    );
  }
  taken.set(key, name);
}

const DEFAULT_QUEUE_RETENTION = Duration.days(4);
const DEAD_LETTER_RETENTION = Duration.days(14);
const DEFAULT_MAX_EVENT_AGE = Duration.hours(24);

/**
 * The longest a delivered message can come back after it was first sent: its time in the queue, then in the DLQ
 * (whose FIFO clock restarts on the move), then EventBridge's retries before it reached the queue.
 */
function longestReturnSeconds(props: SubscriptionProps): number {
  const queue = (props.retentionPeriod ?? DEFAULT_QUEUE_RETENTION).toSeconds();
  const eventBridge = props.kind === 'rule' ? (props.maxEventAge ?? DEFAULT_MAX_EVENT_AGE).toSeconds() : 0;
  return queue + DEAD_LETTER_RETENTION.toSeconds() + eventBridge;
}

/** The consumer's timeout: given, else the function's own (a lambda.Function), else the default. */
function consumerTimeout(consumer: SubscriptionConsumerProps | undefined): Duration {
  if (consumer?.timeout) return consumer.timeout;
  if (consumer?.function instanceof lambda.Function && consumer.function.timeout)
    return consumer.function.timeout;
  return DEFAULT_CONSUMER_TIMEOUT;
}
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/**
 * True when the topic is known to be a standard (non-FIFO) topic. An imported topic whose ARN is a token
 * cannot be checked at synth time and is trusted.
 */
export function isKnownStandardTopic(topic: sns.ITopic): boolean {
  if (topic.fifo) return false;
  return topic instanceof sns.Topic || !Token.isUnresolved(topic.topicArn);
}

function isResolved(value: number | undefined): value is number {
  return value !== undefined && !Token.isUnresolved(value);
}

function rangeRule(
  errors: string[],
  what: string,
  value: number | undefined,
  min: number,
  max: number,
): void {
  if (!isResolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    errors.push(`${what} must be an integer from ${min} to ${max}, but ${value} was provided`);
  }
}

/** Validates subscription props as a list of rules; unresolved tokens are skipped. */
export function validateSubscriptionProps(
  name: string,
  props: SubscriptionConstructProps,
  scopeStack: Stack = Stack.of(props.outbox),
): string[] {
  const errors: string[] = [];
  if (!CONSUMER_NAME_PATTERN.test(name)) {
    errors.push(
      `the subscription name must be 1-64 letters, digits, '.', '_' or '-', but "${name}" was provided`,
    );
  }
  const kind = (props as { kind?: unknown }).kind;
  if (kind !== 'ordered' && kind !== 'rule') {
    errors.push(`kind must be 'ordered' or 'rule', but ${String(kind)} was provided`);
    return errors;
  }
  rangeRule(errors, 'maxReceiveCount', props.maxReceiveCount, 1, 1000);
  const consumer = props.consumer;
  const timeoutSeconds = consumerTimeout(consumer).toSeconds();
  if (consumer) {
    if (!consumer.entry && !consumer.function) {
      errors.push(
        'consumer needs `entry` (a handler file in your project) or `function` (a lambda.IFunction), but neither was provided',
      );
    }
    rangeRule(errors, 'consumer.maxConcurrency', consumer.maxConcurrency, 2, 1000);
    rangeRule(errors, 'consumer.batchSize', consumer.batchSize, 1, kind === 'ordered' ? 10 : 10_000);
    if (kind === 'ordered' && consumer.maxBatchingWindow !== undefined) {
      errors.push(
        'consumer.maxBatchingWindow is not supported by FIFO queues (ordered subscriptions), but it was provided',
      );
    }
    const window = consumer.maxBatchingWindow?.toSeconds();
    if (isResolved(window) && window > 300) {
      errors.push(
        `consumer.maxBatchingWindow must be at most 300 seconds, but ${window} seconds was provided`,
      );
    }
    if (
      kind === 'rule' &&
      isResolved(consumer.batchSize) &&
      consumer.batchSize > 10 &&
      !consumer.maxBatchingWindow
    ) {
      errors.push(
        `consumer.batchSize above 10 needs consumer.maxBatchingWindow, but batchSize ${consumer.batchSize} was provided without one`,
      );
    }
    if (isResolved(timeoutSeconds) && VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds > MAX_VISIBILITY_SECONDS) {
      errors.push(
        `consumer.timeout must be at most ${MAX_VISIBILITY_SECONDS / VISIBILITY_TIMEOUT_FACTOR} seconds so that 6× fits SQS's 12-hour visibility limit, but ${timeoutSeconds} seconds was provided`,
      );
    }
  }
  const visibility = props.visibilityTimeout?.toSeconds();
  if (isResolved(visibility)) {
    if (visibility > MAX_VISIBILITY_SECONDS) {
      errors.push(`visibilityTimeout must be at most 12 hours, but ${visibility} seconds was provided`);
    }
    if (consumer && isResolved(timeoutSeconds) && visibility < VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds) {
      errors.push(
        `visibilityTimeout must be at least 6 × the consumer timeout (${VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds} seconds), but ${visibility} seconds was provided`,
      );
    }
  }
  const dedup = props.dedupRetention?.toSeconds();
  const longestReturn = longestReturnSeconds(props);
  if (isResolved(dedup) && isResolved(longestReturn) && dedup < longestReturn) {
    errors.push(
      `dedupRetention must cover the longest time a message can come back (queue retention + 14-day DLQ retention${kind === 'rule' ? ' + maxEventAge' : ''} = ${longestReturn} seconds), but ${dedup} seconds was provided`,
    );
  }
  const retention = props.retentionPeriod?.toSeconds();
  if (isResolved(retention) && (retention < 60 || retention > 14 * 86_400)) {
    errors.push(`retentionPeriod must be from 60 seconds to 14 days, but ${retention} seconds was provided`);
  }
  const age = props.alarms?.maxMessageAge?.toSeconds();
  if (isResolved(age) && age < 1)
    errors.push(`alarms.maxMessageAge must be at least 1 second, but ${age} seconds was provided`);
  const visible = props.alarms?.maxVisibleMessages;
  if (isResolved(visible) && (!Number.isInteger(visible) || visible < 1)) {
    errors.push(`alarms.maxVisibleMessages must be a positive integer, but ${visible} was provided`);
  }
  if (props.tracked) errors.push(...trackedProblems(props, scopeStack));
  if (kind === 'ordered') {
    const topic = props.outbox.topic;
    if (!topic) {
      errors.push(
        'an ordered subscription needs the SNS FIFO topic the relay publishes to, but no topic was provided',
      );
    } else if (isKnownStandardTopic(topic)) {
      errors.push('an ordered subscription needs an SNS FIFO topic, but a standard topic was provided');
    }
    for (const [field, list] of [
      ['eventTypes', props.eventTypes],
      ['eventTypePrefixes', props.eventTypePrefixes],
    ] as const) {
      if (list !== undefined && (list.length === 0 || list.some((t) => typeof t !== 'string' || t === ''))) {
        errors.push(
          `${field} must be a non-empty list of non-empty strings, but ${JSON.stringify(list)} was provided`,
        );
      }
    }
    if (props.filterPolicy?.type && (props.eventTypes || props.eventTypePrefixes)) {
      errors.push(
        'filterPolicy.type conflicts with eventTypes/eventTypePrefixes; use one of them, but both were provided',
      );
    }
  } else {
    if (!props.outbox.bus)
      errors.push(
        'a rule-based subscription needs the EventBridge bus the relay publishes to, but no bus was provided',
      );
    if (!props.eventPattern && !props.eventTypes?.length && !props.sources?.length) {
      errors.push(
        'a rule-based subscription needs eventPattern, eventTypes or sources (EventBridge rejects an empty pattern), but none was provided',
      );
    }
    rangeRule(errors, 'retryAttempts', props.retryAttempts, 0, 185);
    const maxAge = props.maxEventAge?.toSeconds();
    if (isResolved(maxAge) && (maxAge < 60 || maxAge > 86_400)) {
      errors.push(`maxEventAge must be from 60 seconds to 24 hours, but ${maxAge} seconds was provided`);
    }
  }
  return errors;
}

/** A tracked type the subscription's own filter never delivers would never be acknowledged. */
function trackedProblems(props: SubscriptionConstructProps, scopeStack: Stack): string[] {
  const types = props.tracked?.eventTypes;
  if (!Array.isArray(types) || types.length === 0 || types.some((t) => typeof t !== 'string' || t === '')) {
    return [
      `tracked.eventTypes must be a non-empty list of event types, but ${JSON.stringify(types)} was provided`,
    ];
  }
  const errors: string[] = [];
  if (!props.outbox.relay) {
    errors.push(
      'a tracked subscription needs the relay that records acknowledgements, and an imported outbox has none; subscribe with the Outbox construct itself (outbox.subscribe(...)) in its own app',
    );
  } else if (Stack.of(props.outbox) !== scopeStack) {
    errors.push(
      "a tracked subscription must be in the outbox's stack (the relay records acknowledgements with its queue URL, so another stack would make the two stacks depend on each other); use outbox.subscribe(...) for it",
    );
  }
  // The relay records a pending acknowledgement by event type alone: a filter on anything else (source, aggregate,
  // detail) would let it expect an acknowledgement for an event the queue never receives, and the sweeper would
  // then push that event into the queue anyway (#10.2).
  const beyondType =
    props.kind === 'ordered'
      ? Object.keys(props.filterPolicy ?? {}).map((key) => `filterPolicy.${key}`)
      : [
          ...(props.sources?.length ? ['sources'] : []),
          ...Object.keys(props.eventPattern ?? {}).map((key) => `eventPattern.${key}`),
        ];
  if (beyondType.length > 0) {
    errors.push(
      `a tracked subscription may filter on the event type only (eventTypes / eventTypePrefixes), because acknowledgements are expected by type, but ${beyondType.join(', ')} ${beyondType.length === 1 ? 'was' : 'were'} provided; drop \`tracked\` or move the other conditions into the consumer`,
    );
  }
  const exact = props.eventTypes;
  const prefixes = props.kind === 'ordered' ? props.eventTypePrefixes : undefined;
  if (exact || prefixes) {
    const unreachable = types.filter(
      (t) => !(exact ?? []).includes(t) && !(prefixes ?? []).some((p) => t.startsWith(p)),
    );
    if (unreachable.length > 0) {
      errors.push(
        `tracked.eventTypes must be types this subscription receives, but ${unreachable.join(', ')} ${unreachable.length === 1 ? 'is' : 'are'} filtered out`,
      );
    }
  }
  return errors;
}

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
  /** Rule-based subscriptions: the EventBridge rule. */
  readonly rule?: events.Rule;
  /** Ordered subscriptions: the SNS subscription. */
  readonly topicSubscription?: sns.Subscription;
  /** Tracked mode: the event types this subscription acknowledges (empty when not tracked). */
  readonly trackedEventTypes: readonly string[];

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
      const filterPolicy: Record<string, sns.SubscriptionFilter> = { ...props.filterPolicy };
      if (props.eventTypes || props.eventTypePrefixes) {
        filterPolicy.type = sns.SubscriptionFilter.stringFilter({
          ...(props.eventTypes ? { allowlist: [...props.eventTypes] } : {}),
          ...(props.eventTypePrefixes ? { matchPrefixes: [...props.eventTypePrefixes] } : {}),
        });
      }
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
    const relay = props.tracked ? outbox.relay : undefined;
    relay?.trackDelivery({ name, queue: this.queue, eventTypes: this.trackedEventTypes });

    if (props.consumer) {
      const dedupTable = outbox.dedupTable;
      const consumer = props.consumer;
      this.consumerEnvironment = {
        [DEDUP_TABLE_ENV]: dedupTable.tableName,
        [CONSUMER_NAME_ENV]: name,
        [DEAD_LETTER_QUEUE_URL_ENV]: this.deadLetterQueue.queueUrl,
        [DEDUP_TTL_ENV]: String(props.dedupRetention?.toSeconds() ?? longestReturnSeconds(props)),
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
      dedupTable.grantConsumer(fn, name);
      // Tracked mode: UpdateItem on the outbox table's ACK# items only.
      relay?.grantAcknowledge(fn, name);
      // Poison messages go straight to the DLQ instead of burning every retry.
      this.deadLetterQueue.grantSendMessages(fn);
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
