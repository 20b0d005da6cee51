import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic.ts';
import { addDemoSubscriptions, type DemoSubscriptions, Messaging } from './messaging.ts';
import { OutboxDashboard } from './outbox-dashboard.ts';
import { createOutboxFunction } from './outbox-function.ts';
import { OutboxRecovery } from './outbox-recovery.ts';
import { OutboxRelay } from './outbox-relay.ts';
import { OutboxTable } from './outbox-table.ts';

export interface OutboxStackProps extends StackProps {
  /**
   * Removal policy of the demo's tables. The library default (RETAIN) protects real outboxes; the demo stack
   * is disposable.
   * @default RemovalPolicy.RETAIN
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /**
   * How long finished records (published events, confirmed/cancelled prepared messages of the sweeper, ack items)
   * stay before TTL deletes them; whole days. One value for the relay and the recovery function (which reads
   * the relay's). Quarantined records never expire.
   * @default Duration.days(7)
   */
  readonly retention?: Duration;
  /**
   * The recovery sweeper's stuck threshold (a READY record older than this is republished).
   * @default - CDK context `outbox:recoveryStuckAfterSeconds`, else Duration.minutes(2)
   */
  readonly recoveryStuckAfter?: Duration;
  /**
   * The recovery sweeper's check-back threshold (a PREPARED message older than this is resolved by check-back).
   * @default - CDK context `outbox:recoveryCheckbackAfterSeconds`, else Duration.minutes(5)
   */
  readonly recoveryCheckbackAfter?: Duration;
}

/** CDK context keys OutboxStack reads (besides `outbox:alarmEmails` / `outbox:pagerUrl` of AlarmTopic). */
export const StackContext = {
  recoveryStuckAfterSeconds: 'outbox:recoveryStuckAfterSeconds',
  recoveryCheckbackAfterSeconds: 'outbox:recoveryCheckbackAfterSeconds',
} as const;

/** Output keys: the operator CLI's contract (bin/commands/deployment.ts `StackOutput`, `deploymentFromOutputs`). */
export const StackOutputKey = {
  tableName: 'OutboxTableName',
  topicArn: 'OutboxTopicArn',
  busName: 'OutboxBusName',
  relayFailureQueueUrl: 'RelayFailureQueueUrl',
} as const;

/** `order-history` → `OrderHistory`: the <Name> of `Sub<Name>QueueUrl` / `Sub<Name>DlqUrl` (the CLI's `pascalCase`). */
export function outputName(subscription: string): string {
  return subscription
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** A whole number of seconds from CDK context (a number, or a string from `-c key=value`), else undefined. */
function contextSeconds(stack: Stack, key: string): Duration | undefined {
  const raw: unknown = stack.node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(value) || value < 10) {
    throw new Error(
      `CDK context ${key} must be a whole number of seconds ≥ 10, but ${JSON.stringify(raw)} was provided`,
    );
  }
  return Duration.seconds(value);
}

/**
 * The demo deployment: outbox table, alarm topic, the `orders` producer, the relay, the demo subscriptions
 * (billing tracked for OrderPlaced), the recovery sweeper, the dashboard and the operator CLI's outputs.
 */
export class OutboxStack extends Stack {
  readonly outbox: OutboxTable;
  readonly alarms: AlarmTopic;
  readonly ordersTable: dynamodb.Table;
  readonly orderProducer: lambda.IFunction;
  readonly relay: OutboxRelay;
  readonly messaging: Messaging;
  readonly subscriptions: DemoSubscriptions;
  readonly recovery: OutboxRecovery;
  readonly dashboard: OutboxDashboard;

  constructor(scope: Construct, id: string, props: OutboxStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.tableRemovalPolicy ?? RemovalPolicy.RETAIN;
    this.alarms = new AlarmTopic(this, 'Alarms');
    this.outbox = new OutboxTable(this, 'Outbox', { removalPolicy });

    this.ordersTable = new dynamodb.Table(this, 'Orders', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    const producer = createOutboxFunction(this, 'OrderProducer', {
      entry: 'orders/place-order.ts',
      description: 'Demo producer: commits an order change and its event in one transaction',
      environment: {
        OUTBOX_TABLE_NAME: this.outbox.tableName,
        ORDERS_TABLE_NAME: this.ordersTable.tableName,
        OUTBOX_EVENT_SOURCE: '/demo/orders',
      },
    });
    this.outbox.grantWrite(producer);
    iam.Grant.addToPrincipal({
      grantee: producer,
      actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:ConditionCheckItem'],
      resourceArns: [this.ordersTable.tableArn],
    });
    this.orderProducer = producer;
    // Demo: ordered fan-out (SNS FIFO) and rule-based fan-out (EventBridge) both on.
    this.relay = new OutboxRelay(this, 'Relay', {
      outbox: this.outbox,
      alarms: this.alarms,
      topic: true,
      eventBus: true,
      ...(props.retention ? { retention: props.retention } : {}),
    });
    // Subscriptions: queues (+ idempotent consumers) on the relay's topic (ordered) and bus (rule-based).
    // The relay's topic and bus; tracked subscriptions register with the relay.
    this.messaging = new Messaging(this, 'Messaging', {
      alarmTopic: this.alarms,
      relay: this.relay,
      dedupTableRemovalPolicy: removalPolicy,
    });
    this.subscriptions = addDemoSubscriptions(this, this.messaging, {
      removalPolicy,
      eventSource: '/demo/orders',
    });
    // Recovery: republishes what the stream missed, releases delayed events, check-back, tracked redelivery.
    const stuckAfter =
      props.recoveryStuckAfter ?? contextSeconds(this, StackContext.recoveryStuckAfterSeconds);
    const checkbackAfter =
      props.recoveryCheckbackAfter ?? contextSeconds(this, StackContext.recoveryCheckbackAfterSeconds);
    this.recovery = new OutboxRecovery(this, 'Recovery', {
      outbox: this.outbox,
      relay: this.relay,
      alarms: this.alarms,
      ...(stuckAfter ? { stuckAfter } : {}),
      ...(checkbackAfter ? { checkbackAfter } : {}),
    });
    this.dashboard = new OutboxDashboard(this, 'Dashboard', {
      relay: this.relay,
      recovery: this.recovery,
      subscriptions: this.messaging.subscriptions.values(),
    });
    this.#addOutputs();
  }

  /** The operator CLI finds the deployment by these output keys (logical ids fixed with overrideLogicalId). */
  #addOutputs(): void {
    const output = (key: string, value: string, description: string) =>
      new CfnOutput(this, key, { value, description }).overrideLogicalId(key);
    output(StackOutputKey.tableName, this.outbox.tableName, 'Outbox table');
    if (this.relay.topic) output(StackOutputKey.topicArn, this.relay.topic.topicArn, 'SNS FIFO event topic');
    if (this.relay.bus) output(StackOutputKey.busName, this.relay.bus.eventBusName, 'EventBridge event bus');
    output(
      StackOutputKey.relayFailureQueueUrl,
      this.relay.failureQueue.queueUrl,
      'Relay on-failure destination (stream batch positions)',
    );
    for (const [name, subscription] of this.messaging.subscriptions) {
      const pascal = outputName(name);
      output(`Sub${pascal}QueueUrl`, subscription.queue.queueUrl, `Queue of subscription ${name}`);
      output(`Sub${pascal}DlqUrl`, subscription.deadLetterQueue.queueUrl, `DLQ of subscription ${name}`);
    }
  }
}
