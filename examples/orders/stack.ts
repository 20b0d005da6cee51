/**
 * The demo deployment, written as a team using the package writes it: one `Outbox`, the `orders` producer, and two
 * subscriptions with the team's own consumer code (billing: ordered; notifications: rule-based).
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { Outbox, type Subscription } from 'serverless-outbox';
import {
  BILLING_CONSUMER_NAME,
  CHARGES_TABLE_ENV,
  NOTIFICATION_SINK_TABLE_ENV,
  NOTIFICATIONS_CONSUMER_NAME,
  NOTIFIED_EVENT_TYPES,
  ORDER_EVENT_PREFIX,
  ORDER_PLACED,
  PAYMENTS_TABLE_ENV,
  SINK_KEY,
} from './contract.ts';

export const DEMO_EVENT_SOURCE = '/demo/orders';

/**
 * This repository bundles the examples against the package's TypeScript sources (the `serverless-outbox-source`
 * export condition); an installed package resolves to its compiled JavaScript and needs none of this.
 */
export const REPOSITORY_BUNDLING: nodejs.BundlingOptions = {
  esbuildArgs: { '--conditions': 'serverless-outbox-source' },
  // esbuild lists each bundle's inputs (index.meta.json): the offline runtime's synth cache watches them.
  metafile: true,
};

export interface OrdersStackProps extends StackProps {
  /**
   * Removal policy of the demo's tables. The library default (RETAIN) protects real outboxes; the demo stack
   * is disposable.
   * @default RemovalPolicy.RETAIN
   */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /** @default Duration.days(7) */
  readonly retention?: Duration;
  /**
   * The recovery sweeper's stuck threshold.
   * @default - CDK context `outbox:recoveryStuckAfterSeconds`, else the library default
   */
  readonly recoveryStuckAfter?: Duration;
  /**
   * The recovery sweeper's check-back threshold.
   * @default - CDK context `outbox:recoveryCheckbackAfterSeconds`, else the library default
   */
  readonly recoveryCheckbackAfter?: Duration;
}

/** CDK context keys the demo stack reads (the offline fault run shortens the sweeper's thresholds). */
export const StackContext = {
  recoveryStuckAfterSeconds: 'outbox:recoveryStuckAfterSeconds',
  recoveryCheckbackAfterSeconds: 'outbox:recoveryCheckbackAfterSeconds',
} as const;

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
 * A Lambda from a file of this folder, bundled by esbuild (no Docker), with its own log group and a role that may
 * write only to it (no AWS-managed policy).
 */
function demoFunction(scope: Construct, id: string, file: string, props: nodejs.NodejsFunctionProps) {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
  });
  logGroup.grantWrite(role);
  // Our AWS Control Tower exceptions, as any team would record its own (see the validation test).
  Validations.of(logGroup).acknowledge(
    {
      id: 'cdk-validator-cfnguard::cloudwatch_log_group_retention_period_check',
      reason: 'demo logs: 30 days',
    },
    { id: 'cdk-validator-cfnguard::cloudwatch_log_group_encrypted_check', reason: 'no payloads are logged' },
  );
  const fn = new nodejs.NodejsFunction(scope, id, {
    logGroup,
    role,
    entry: path.join(import.meta.dirname, file),
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    bundling: { format: nodejs.OutputFormat.ESM, minify: true, ...REPOSITORY_BUNDLING },
    ...props,
  });
  Validations.of(fn).acknowledge({
    id: 'cdk-validator-cfnguard::lambda_inside_vpc_check',
    reason: 'calls only AWS APIs over TLS with IAM',
  });
  return fn;
}

/**
 * The demo deployment: the outbox (SNS FIFO topic and EventBridge bus), the `orders` producer, billing (ordered,
 * tracked for OrderPlaced) and notifications (rule-based).
 */
export class OrdersStack extends Stack {
  readonly outbox: Outbox;
  readonly ordersTable: dynamodb.Table;
  readonly orderProducer: lambda.Function;
  /** Prepared payments (prepared-payment.ts): one item per order (`orderId`), CHARGED or ROLLED_BACK. */
  readonly paymentsTable: dynamodb.Table;
  /** The producer's check-back function for its event source: answers for prepared payments from the payments table. */
  readonly paymentCheckback: lambda.Function;
  readonly billing: Subscription;
  readonly notifications: Subscription;
  /** billing's business table: one item per order (`orderId`). */
  readonly chargesTable: dynamodb.Table;
  /** The simulated external notification service: one item per idempotency key with a `calls` counter. */
  readonly notificationSinkTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: OrdersStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.tableRemovalPolicy ?? RemovalPolicy.RETAIN;
    const stuckAfter =
      props.recoveryStuckAfter ?? contextSeconds(this, StackContext.recoveryStuckAfterSeconds);
    const checkbackAfter =
      props.recoveryCheckbackAfter ?? contextSeconds(this, StackContext.recoveryCheckbackAfterSeconds);

    this.outbox = new Outbox(this, 'Outbox', {
      topic: true,
      eventBus: true,
      table: { removalPolicy },
      dedupTable: { removalPolicy },
      ...(props.retention ? { retention: props.retention } : {}),
      recovery: {
        ...(stuckAfter ? { stuckAfter } : {}),
        ...(checkbackAfter ? { checkbackAfter } : {}),
      },
    });

    this.ordersTable = demoTable(this, 'Orders', 'orderId', removalPolicy);
    this.paymentsTable = demoTable(this, 'Payments', 'orderId', removalPolicy);
    this.orderProducer = demoFunction(this, 'OrderProducer', 'place-order.ts', {
      description: 'Demo producer: commits an order change and its event in one transaction',
      // Room for the writer to settle a lost response (re-send, read back) before the caller gives up.
      timeout: Duration.seconds(10),
      environment: {
        ...this.outbox.producerEnvironment,
        ORDERS_TABLE_NAME: this.ordersTable.tableName,
        [PAYMENTS_TABLE_ENV]: this.paymentsTable.tableName,
        OUTBOX_EVENT_SOURCE: DEMO_EVENT_SOURCE,
      },
    });
    this.outbox.grantWrite(this.orderProducer);
    this.ordersTable.grant(
      this.orderProducer,
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:GetItem',
      'dynamodb:ConditionCheckItem',
    );
    this.paymentsTable.grant(this.orderProducer, 'dynamodb:PutItem', 'dynamodb:GetItem');

    // Prepared payments: the recovery sweeper asks this function about a payment its producer never confirmed.
    this.paymentCheckback = demoFunction(this, 'PaymentCheckback', 'payment-checkback.ts', {
      description:
        "Demo producer's check-back: was a prepared payment charged? (rolls back one that was not)",
      timeout: Duration.seconds(5),
      environment: { [PAYMENTS_TABLE_ENV]: this.paymentsTable.tableName },
    });
    this.paymentsTable.grant(this.paymentCheckback, 'dynamodb:UpdateItem');
    this.outbox.recovery.addCheckbackFunction(DEMO_EVENT_SOURCE, this.paymentCheckback);

    this.chargesTable = demoTable(this, 'Charges', 'orderId', removalPolicy);
    this.billing = this.outbox.subscribe(BILLING_CONSUMER_NAME, {
      kind: 'ordered',
      // Every order event, so billing's per-order cursor sees no gaps.
      eventTypePrefixes: [ORDER_EVENT_PREFIX],
      // Tracked mode: billing acknowledges each OrderPlaced it applied; the sweeper redelivers what it does not.
      tracked: { eventTypes: [ORDER_PLACED] },
      consumer: {
        entry: path.join(import.meta.dirname, 'billing.ts'),
        bundling: REPOSITORY_BUNDLING,
        description: 'Demo subscriber: one charge per order, exactly once and in order',
        environment: { [CHARGES_TABLE_ENV]: this.chargesTable.tableName },
        maxConcurrency: 5,
      },
    });
    this.chargesTable.grant(this.billing.consumer as lambda.IFunction, 'dynamodb:UpdateItem');

    this.notificationSinkTable = demoTable(this, 'NotificationSink', SINK_KEY, removalPolicy);
    this.notifications = this.outbox.subscribe(NOTIFICATIONS_CONSUMER_NAME, {
      kind: 'rule',
      eventTypes: [...NOTIFIED_EVENT_TYPES],
      sources: [DEMO_EVENT_SOURCE],
      consumer: {
        entry: path.join(import.meta.dirname, 'notifications.ts'),
        bundling: REPOSITORY_BUNDLING,
        description:
          'Demo subscriber: notifies customers through an idempotent external service, once per event',
        environment: { [NOTIFICATION_SINK_TABLE_ENV]: this.notificationSinkTable.tableName },
        maxConcurrency: 5,
      },
    });
    this.notificationSinkTable.grant(this.notifications.consumer as lambda.IFunction, 'dynamodb:UpdateItem');
  }
}
