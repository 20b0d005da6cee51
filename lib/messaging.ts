import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  BILLING_CONSUMER_NAME,
  CHARGES_TABLE_ENV,
  NOTIFICATION_SINK_TABLE_ENV,
  NOTIFICATIONS_CONSUMER_NAME,
  NOTIFIED_EVENT_TYPES,
  ORDER_EVENT_PREFIX,
  ORDER_PLACED,
  SINK_KEY,
} from '../functions/subscribers/contract.ts';
import type { AlarmTopic } from './alarm-topic.ts';
import { DedupTable } from './dedup-table.ts';
import type { OutboxRelay } from './outbox-relay.ts';
import { isKnownStandardTopic, Subscription, type SubscriptionProps } from './subscription.ts';

export interface MessagingProps {
  /**
   * The relay: its topic and bus are the defaults of `topic` and `bus`, and tracked subscriptions register with it
   * (the relay records pending acknowledgements, the recovery sweeper redelivers).
   * @default - no tracked subscriptions possible
   */
  readonly relay?: OutboxRelay;
  /**
   * The SNS FIFO topic the relay publishes every event to (MessageGroupId = partitionkey, message attributes
   * `type`, `source`, `partitionkey`). Required for ordered subscriptions.
   * @default - the relay's topic, if any; else no ordered subscriptions possible
   */
  readonly topic?: sns.ITopic;
  /**
   * The EventBridge bus the relay publishes every event to (source = envelope.source, detail-type =
   * envelope.type, detail = envelope). Required for rule-based subscriptions.
   * @default - the relay's bus, if any; else no rule-based subscriptions possible
   */
  readonly bus?: events.IEventBus;
  /** Every subscription's alarms notify this topic. */
  readonly alarmTopic: AlarmTopic;
  /**
   * The dedup table shared by all consumers.
   * @default - created (as `DedupTable`, RETAIN unless `dedupTableRemovalPolicy` says otherwise) on the first
   * subscription with a consumer
   */
  readonly dedupTable?: DedupTable;
  /**
   * Removal policy of the dedup table this construct creates (ignored when `dedupTable` is given).
   * @default RemovalPolicy.RETAIN
   */
  readonly dedupTableRemovalPolicy?: RemovalPolicy;
}

/**
 * Where teams subscribe to outbox events: `messaging.subscribe('billing', { kind: 'ordered', ... })` gives a
 * queue, its DLQ, three alarms and optionally a consumer Lambda wired to the shared dedup table.
 */
export class Messaging extends Construct {
  readonly topic?: sns.ITopic;
  readonly bus?: events.IEventBus;
  readonly relay?: OutboxRelay;
  readonly alarmTopic: AlarmTopic;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #dedupTableRemovalPolicy: RemovalPolicy;
  #dedupTable: DedupTable | undefined;

  constructor(scope: Construct, id: string, props: MessagingProps) {
    super(scope, id);
    if (!props?.alarmTopic) {
      throw new Error(
        "Messaging needs an alarmTopic (AlarmTopic) for the subscriptions' alarms, but none was provided.",
      );
    }
    const topic = props.topic ?? props.relay?.topic;
    const bus = props.bus ?? props.relay?.bus;
    if (topic && isKnownStandardTopic(topic)) {
      throw new Error(
        'Messaging needs an SNS FIFO topic (ordered, per-aggregate delivery), but a standard topic was provided.',
      );
    }
    if (topic) this.topic = topic;
    if (bus) this.bus = bus;
    if (props.relay) this.relay = props.relay;
    this.alarmTopic = props.alarmTopic;
    this.#dedupTable = props.dedupTable;
    this.#dedupTableRemovalPolicy = props.dedupTableRemovalPolicy ?? RemovalPolicy.RETAIN;
  }

  /** The shared dedup table (created on first use when none was given). */
  get dedupTable(): DedupTable {
    this.#dedupTable ??= new DedupTable(this, 'DedupTable', { removalPolicy: this.#dedupTableRemovalPolicy });
    return this.#dedupTable;
  }

  /** Subscriptions made so far, by name. */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.#subscriptions;
  }

  /**
   * Subscribes a queue (and optionally a consumer Lambda) to events. `name` is the subscription's construct
   * id and its consumer's name in every dedup key: keep it stable.
   */
  subscribe(name: string, props: SubscriptionProps): Subscription {
    if (this.#subscriptions.has(name)) {
      throw new Error(
        `A subscription named "${name}" already exists; subscription names must be unique, but "${name}" was provided twice.`,
      );
    }
    const subscription = new Subscription(this, name, {
      ...props,
      alarmTopic: this.alarmTopic,
      ...(this.topic ? { topic: this.topic } : {}),
      ...(this.bus ? { bus: this.bus } : {}),
      ...(this.relay ? { relay: this.relay } : {}),
      ...(props.consumer ? { dedupTable: this.dedupTable } : {}),
    });
    this.#subscriptions.set(name, subscription);
    return subscription;
  }
}

/** The demo's two subscriptions and the tables their consumers write to. */
export interface DemoSubscriptions {
  /** Ordered + ordered-mode consumer: one charge per order (present when Messaging has a topic). */
  readonly billing?: Subscription;
  /** Rule-based + lease-mode consumer: notifications through the sink (present when Messaging has a bus). */
  readonly notifications?: Subscription;
  /** billing's business table: one item per order (`orderId`). */
  readonly chargesTable: dynamodb.Table;
  /** The simulated external notification service: one item per idempotency key with a `calls` counter. */
  readonly notificationSinkTable: dynamodb.Table;
}

function demoTable(scope: Construct, id: string, key: string, removalPolicy: RemovalPolicy): dynamodb.Table {
  return new dynamodb.Table(scope, id, {
    partitionKey: { name: key, type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy,
  });
}

/**
 * Subscribes the demo consumers used by the offline runtime: `billing` (ordered: OrderPlaced/OrderPaid/
 * OrderShipped → SQS FIFO → functions/subscribers/billing.ts) and `notifications` (rule: OrderPlaced and
 * OrderShipped → SQS → functions/subscribers/notifications.ts). A subscription whose source (topic or bus)
 * Messaging lacks is skipped. When Messaging has the relay, billing is tracked for OrderPlaced (delivery
 * acknowledgements: its consumer acknowledges, the recovery sweeper redelivers what it does not).
 */
export function addDemoSubscriptions(
  scope: Construct,
  messaging: Messaging,
  options: { readonly removalPolicy?: RemovalPolicy; readonly eventSource?: string } = {},
): DemoSubscriptions {
  const removalPolicy = options.removalPolicy ?? RemovalPolicy.RETAIN;
  const chargesTable = demoTable(scope, 'Charges', 'orderId', removalPolicy);
  const notificationSinkTable = demoTable(scope, 'NotificationSink', SINK_KEY, removalPolicy);
  let billing: Subscription | undefined;
  let notifications: Subscription | undefined;
  if (messaging.topic) {
    billing = messaging.subscribe(BILLING_CONSUMER_NAME, {
      kind: 'ordered',
      // Every order event, so billing's per-order cursor sees no gaps.
      eventTypePrefixes: [ORDER_EVENT_PREFIX],
      // Tracked mode (when Messaging knows the relay): billing acknowledges each OrderPlaced it applied.
      ...(messaging.relay ? { tracked: { eventTypes: [ORDER_PLACED] } } : {}),
      consumer: {
        entry: 'subscribers/billing.ts',
        description: 'Demo subscriber: one charge per order, exactly once and in order',
        environment: { [CHARGES_TABLE_ENV]: chargesTable.tableName },
        maxConcurrency: 5,
      },
    });
    const fn = billing.consumer as lambda.IFunction;
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['dynamodb:UpdateItem'],
      resourceArns: [chargesTable.tableArn],
    });
  }
  if (messaging.bus) {
    notifications = messaging.subscribe(NOTIFICATIONS_CONSUMER_NAME, {
      kind: 'rule',
      eventTypes: [...NOTIFIED_EVENT_TYPES],
      ...(options.eventSource ? { sources: [options.eventSource] } : {}),
      consumer: {
        entry: 'subscribers/notifications.ts',
        description:
          'Demo subscriber: notifies customers through an idempotent external service, once per event',
        environment: { [NOTIFICATION_SINK_TABLE_ENV]: notificationSinkTable.tableName },
        maxConcurrency: 5,
      },
    });
    iam.Grant.addToPrincipal({
      grantee: notifications.consumer as lambda.IFunction,
      actions: ['dynamodb:UpdateItem'],
      resourceArns: [notificationSinkTable.tableArn],
    });
  }
  return {
    ...(billing ? { billing } : {}),
    ...(notifications ? { notifications } : {}),
    chargesTable,
    notificationSinkTable,
  };
}
