import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic.ts';
import { addDemoSubscriptions, type DemoSubscriptions, Messaging } from './messaging.ts';
import { createOutboxFunction } from './outbox-function.ts';
import { OutboxRelay } from './outbox-relay.ts';
import { OutboxTable } from './outbox-table.ts';

export interface OutboxStackProps extends StackProps {
  /**
   * Removal policy of the demo's tables. The library default (RETAIN) protects real outboxes; the demo stack
   * is disposable.
   * @default RemovalPolicy.RETAIN
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
}

/** The demo deployment: outbox table, alarm topic and the `orders` producer. */
export class OutboxStack extends Stack {
  readonly outbox: OutboxTable;
  readonly alarms: AlarmTopic;
  readonly ordersTable: dynamodb.Table;
  readonly orderProducer: lambda.IFunction;
  readonly relay: OutboxRelay;
  readonly messaging: Messaging;
  readonly subscriptions: DemoSubscriptions;

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
    });
    // Subscriptions: queues (+ idempotent consumers) on the relay's topic (ordered) and bus (rule-based).
    this.messaging = new Messaging(this, 'Messaging', {
      alarmTopic: this.alarms,
      ...(this.relay.topic ? { topic: this.relay.topic } : {}),
      ...(this.relay.bus ? { bus: this.relay.bus } : {}),
      dedupTableRemovalPolicy: removalPolicy,
    });
    this.subscriptions = addDemoSubscriptions(this, this.messaging, {
      removalPolicy,
      eventSource: '/demo/orders',
    });
  }
}
