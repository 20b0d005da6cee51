import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic.ts';
import { createOutboxFunction } from './outbox-function.ts';
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
  }
}
