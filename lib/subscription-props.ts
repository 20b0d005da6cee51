/** The props of a Subscription: what a team says when it subscribes. */
import type { Duration } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { IOutbox } from './outbox.ts';
import type { ConsumerBundleOptions } from './outbox-function.ts';

/** The consumer modes of `createConsumer` (serverless-outbox/consumer). */
export type SubscriptionConsumerMode = 'transactional' | 'ordered' | 'lease' | 'single-item';

/** Settings of either kind of consumer: its mode and its event source mapping. */
export interface SubscriptionConsumerMappingProps {
  /**
   * The `mode` the consumer passes to `createConsumer`. Only `'single-item'` changes the wiring: that consumer keeps
   * its cursor on its effect's own item, so it gets no dedup table (neither grant nor environment variable, and
   * none is created for it), gets `OUTBOX_CONSUMER_MODE=single-item` (the consumer refuses another mode), and is not
   * in the scheduled delivery audit (which reads applied events from the dedup table). Grant the function your
   * effect table yourself: `table.grantReadWriteData(subscription.consumer!)`.
   * @default - a mode that keeps dedup records ('transactional', 'ordered' or 'lease')
   */
  readonly mode?: SubscriptionConsumerMode;
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
  /** Extra environment variables (the consumer name and DLQ URL are always set; the dedup table unless `mode: 'single-item'`). */
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
