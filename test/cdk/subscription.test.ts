import * as path from 'node:path';
import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPOSITORY_BUNDLING } from '../../examples/orders/stack.ts';
import { Outbox, type OutboxProps } from '../../lib/outbox.ts';
import { Subscription, type SubscriptionProps } from '../../lib/subscription.ts';
import { logicalId, NO_BUNDLING, nagErrors, roleStatements } from './stack-fixture.ts';

const EXAMPLES = path.join(import.meta.dirname, '../../examples/orders');

interface Fixture {
  stack: Stack;
  template: Template;
  outbox: Outbox;
  billing: Subscription;
  notifications: Subscription;
  warehouse: Subscription;
  analytics: Subscription;
  chargesTable: dynamodb.Table;
}

/**
 * GIVEN a stack with an Outbox (SNS FIFO topic and bus) and four subscriptions: billing (ordered) and
 * notifications (rule) with the demo's consumers, warehouse (ordered) and analytics (rule) queue-only.
 */
function synth(): Fixture {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'Subscriptions');
  const outbox = new Outbox(stack, 'Outbox', {
    topic: true,
    eventBus: true,
    table: { removalPolicy: RemovalPolicy.DESTROY },
    dedupTable: { removalPolicy: RemovalPolicy.DESTROY },
  });
  const chargesTable = new dynamodb.Table(stack, 'Charges', {
    partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const billing = outbox.subscribe('billing', {
    kind: 'ordered',
    eventTypePrefixes: ['com.example.orders.'],
    consumer: {
      entry: path.join(EXAMPLES, 'billing.ts'),
      bundling: REPOSITORY_BUNDLING,
      environment: { CHARGES_TABLE_NAME: chargesTable.tableName },
      maxConcurrency: 5,
    },
  });
  chargesTable.grant(billing.consumer as lambda.IFunction, 'dynamodb:UpdateItem');
  const notifications = outbox.subscribe('notifications', {
    kind: 'rule',
    eventTypes: ['com.example.orders.OrderPlaced', 'com.example.orders.OrderShipped'],
    sources: ['/demo/orders'],
    consumer: {
      entry: path.join(EXAMPLES, 'notifications.ts'),
      bundling: REPOSITORY_BUNDLING,
      maxConcurrency: 5,
    },
  });
  const warehouse = outbox.subscribe('warehouse', {
    kind: 'ordered',
    eventTypes: ['com.example.orders.OrderPaid'],
  });
  const analytics = outbox.subscribe('analytics', {
    kind: 'rule',
    sources: ['/demo/orders'],
    alarms: { maxMessageAge: Duration.minutes(15), maxVisibleMessages: 50_000 },
    maxReceiveCount: 3,
  });
  Aspects.of(app).add(new AwsSolutionsChecks());
  return {
    stack,
    template: Template.fromStack(stack),
    outbox,
    billing,
    notifications,
    warehouse,
    analytics,
    chargesTable,
  };
}

const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

describe('Outbox.subscribe', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synth();
  });

  describe('ordered subscription (billing)', () => {
    it('creates an SQS FIFO queue that dead-letters to a FIFO DLQ after maxReceiveCount, SSE and 6× visibility', () => {
      const queues = f.template.findResources('AWS::SQS::Queue');
      expect(queues[logicalId(f.billing.queue)]?.Properties).toMatchObject({
        FifoQueue: true,
        ContentBasedDeduplication: false,
        DeduplicationScope: 'messageGroup',
        FifoThroughputLimit: 'perMessageGroupId',
        SqsManagedSseEnabled: true,
        VisibilityTimeout: 180,
        RedrivePolicy: {
          deadLetterTargetArn: arnOf(logicalId(f.billing.deadLetterQueue)),
          maxReceiveCount: 5,
        },
      });
      const dlq = queues[logicalId(f.billing.deadLetterQueue)]?.Properties;
      expect(dlq).toMatchObject({
        FifoQueue: true,
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 86_400,
      });
      expect(dlq?.RedrivePolicy).toBeUndefined();
    });

    it('subscribes the queue to the FIFO topic with raw delivery, a type filter policy and a DLQ', () => {
      f.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'sqs',
        Endpoint: arnOf(logicalId(f.billing.queue)),
        TopicArn: { Ref: logicalId(f.outbox.relay.topic) },
        RawMessageDelivery: true,
        FilterPolicy: { type: [{ prefix: 'com.example.orders.' }] },
        RedrivePolicy: { deadLetterTargetArn: arnOf(logicalId(f.billing.deadLetterQueue)) },
      });
    });

    it('filters an exact list of event types for queue-only subscriptions too', () => {
      f.template.hasResourceProperties('AWS::SNS::Subscription', {
        Endpoint: arnOf(logicalId(f.warehouse.queue)),
        FilterPolicy: { type: ['com.example.orders.OrderPaid'] },
        RawMessageDelivery: true,
      });
    });

    it('lets only the topic send to the queue, and only over TLS', () => {
      f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(f.billing.queue) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Allow',
              Action: 'sqs:SendMessage',
              Principal: { Service: 'sns.amazonaws.com' },
              Condition: { ArnEquals: { 'aws:SourceArn': { Ref: logicalId(f.outbox.relay.topic) } } },
            }),
          ]),
        },
      });
    });
  });

  describe('rule-based subscription (notifications)', () => {
    it('matches the event pattern on the bus and targets a standard queue with the envelope, a retry policy and a DLQ', () => {
      const queue = logicalId(f.notifications.queue);
      const dlq = logicalId(f.notifications.deadLetterQueue);
      f.template.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: { Ref: logicalId(f.outbox.relay.bus) },
        EventPattern: {
          'detail-type': ['com.example.orders.OrderPlaced', 'com.example.orders.OrderShipped'],
          source: ['/demo/orders'],
        },
        Targets: [
          Match.objectLike({
            Arn: arnOf(queue),
            InputPath: '$.detail',
            RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
            DeadLetterConfig: { Arn: arnOf(dlq) },
          }),
        ],
      });
      const queues = f.template.findResources('AWS::SQS::Queue');
      expect(queues[queue]?.Properties?.FifoQueue).toBeUndefined();
      expect(queues[dlq]?.Properties?.FifoQueue).toBeUndefined();
      expect(queues[queue]?.Properties?.RedrivePolicy).toEqual({
        deadLetterTargetArn: arnOf(dlq),
        maxReceiveCount: 5,
      });
    });

    it('lets EventBridge deliver failed events to the DLQ', () => {
      f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(f.notifications.deadLetterQueue) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sqs:SendMessage',
            }),
          ]),
        },
      });
    });
  });

  describe('consumers', () => {
    it.each(['billing', 'notifications'] as const)(
      '%s: event source mapping reports batch item failures and levels load with maxConcurrency',
      (name) => {
        f.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: arnOf(logicalId(f[name].queue)),
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          BatchSize: 10,
          ScalingConfig: { MaximumConcurrency: 5 },
        });
      },
    );

    it('passes the dedup table, consumer name and DLQ URL to the consumer', () => {
      expect(f.template.toJSON().Resources[logicalId(f.billing.consumer)].Properties).toMatchObject({
        Environment: {
          Variables: {
            DEDUP_TABLE_NAME: { Ref: logicalId(f.outbox.dedupTable.table) },
            OUTBOX_CONSUMER_NAME: 'billing',
            OUTBOX_DEAD_LETTER_QUEUE_URL: { Ref: logicalId(f.billing.deadLetterQueue) },
            CHARGES_TABLE_NAME: { Ref: logicalId(f.chargesTable) },
          },
        },
      });
    });

    it('grants the consumer only the dedup writes it needs and SendMessage on its own DLQ', () => {
      const dedup = logicalId(f.outbox.dedupTable.table);
      const dlq = logicalId(f.billing.deadLetterQueue);
      const statements = roleStatements(f.template, f.billing.consumer?.role);
      const dedupStatement = statements.find(
        (s) => JSON.stringify(s.Resource) === JSON.stringify(arnOf(dedup)),
      );
      expect(dedupStatement?.Action).toEqual([
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
      ]);
      const send = statements.find((s) => JSON.stringify(s.Resource) === JSON.stringify(arnOf(dlq)));
      expect(send?.Action).toEqual(expect.arrayContaining(['sqs:SendMessage']));
      expect(JSON.stringify(statements)).not.toMatch(/dynamodb:\*|dynamodb:Scan|dynamodb:GetItem|"\*"/);
    });

    it('creates one shared dedup table: pk only, TTL on expiresAt, PITR, encryption, on-demand', () => {
      f.template.resourcePropertiesCountIs(
        'AWS::DynamoDB::Table',
        { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], TimeToLiveSpecification: Match.anyValue() },
        1,
      );
      expect(f.template.toJSON().Resources[logicalId(f.outbox.dedupTable.table)].Properties).toMatchObject({
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        BillingMode: 'PAY_PER_REQUEST',
      });
    });

    it('creates no Lambda for queue-only subscriptions', () => {
      const queues = [f.warehouse.queue, f.analytics.queue].map((q) => logicalId(q));
      const mappings = Object.values(f.template.findResources('AWS::Lambda::EventSourceMapping')).map((m) =>
        JSON.stringify(m),
      );
      for (const queue of queues) expect(mappings.some((m) => m.includes(queue))).toBe(false);
      expect(f.warehouse.consumer).toBeUndefined();
      expect(f.outbox.subscriptions.get('warehouse')?.consumer).toBeUndefined();
      // The only queue-fed mappings are the two consumers' (the relay's own mapping reads the table's stream).
      const queueIds = new Set(Object.keys(f.template.findResources('AWS::SQS::Queue')));
      const fedQueues = Object.values(f.template.findResources('AWS::Lambda::EventSourceMapping'))
        .map((m) => (m.Properties.EventSourceArn as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']?.[0])
        .filter((id): id is string => id !== undefined && queueIds.has(id));
      expect(fedQueues.sort()).toEqual([logicalId(f.billing.queue), logicalId(f.notifications.queue)].sort());
      // Without a consumer the visibility timeout is SQS's 30 s default.
      expect(
        f.template.findResources('AWS::SQS::Queue')[queues[0] as string]?.Properties?.VisibilityTimeout,
      ).toBe(30);
    });
  });

  describe('alarms', () => {
    it.each(['billing', 'notifications', 'warehouse', 'analytics'] as const)(
      '%s: DLQ ≥ 1 message, oldest message age and visible messages, all notifying the alarm topic',
      (name) => {
        const queue = logicalId(f[name].queue);
        const dlq = logicalId(f[name].deadLetterQueue);
        const topicRef = { Ref: logicalId(f.outbox.alarms.topic) };
        const custom = name === 'analytics';
        const dimensionsOf = (id: string) => [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [id, 'QueueName'] } },
        ];
        f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'AWS/SQS',
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Dimensions: dimensionsOf(dlq),
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          AlarmActions: [topicRef],
          OKActions: [topicRef],
        });
        f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: 'ApproximateAgeOfOldestMessage',
          Dimensions: dimensionsOf(queue),
          Threshold: custom ? 900 : 60,
          ComparisonOperator: 'GreaterThanThreshold',
          AlarmActions: [topicRef],
        });
        f.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: 'ApproximateNumberOfMessagesVisible',
          Dimensions: dimensionsOf(queue),
          Threshold: custom ? 50_000 : 10_000,
          ComparisonOperator: 'GreaterThanThreshold',
          AlarmActions: [topicRef],
        });
      },
    );

    it('honours maxReceiveCount', () => {
      expect(
        f.template.findResources('AWS::SQS::Queue')[logicalId(f.analytics.queue)]?.Properties?.RedrivePolicy
          ?.maxReceiveCount,
      ).toBe(3);
    });
  });

  it('passes the cdk-nag AwsSolutions pack with no unsuppressed errors', () => {
    expect(nagErrors(f.stack)).toEqual([]);
  });
});

describe('subscription validation', () => {
  function outbox(
    options: Pick<OutboxProps, 'topic' | 'eventBus'> = { topic: true, eventBus: true },
  ): Outbox {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'V');
    return new Outbox(stack, 'Outbox', options);
  }
  const consumer = { entry: path.join(EXAMPLES, 'billing.ts') };

  it.each<[string, SubscriptionProps, RegExp]>([
    [
      'a visibility timeout under 6× the consumer timeout',
      {
        kind: 'ordered',
        consumer: { ...consumer, timeout: Duration.seconds(20) },
        visibilityTimeout: Duration.seconds(60),
      },
      /visibilityTimeout must be at least 6 × the consumer timeout \(120 seconds\), but 60 seconds was provided/,
    ],
    [
      'a FIFO batch above 10',
      { kind: 'ordered', consumer: { ...consumer, batchSize: 11 } },
      /consumer.batchSize must be an integer from 1 to 10, but 11 was provided/,
    ],
    [
      'maxConcurrency 1',
      { kind: 'rule', eventTypes: ['T'], consumer: { ...consumer, maxConcurrency: 1 } },
      /consumer.maxConcurrency must be an integer from 2 to 1000, but 1 was provided/,
    ],
    [
      'a batching window on a FIFO queue',
      { kind: 'ordered', consumer: { ...consumer, maxBatchingWindow: Duration.seconds(5) } },
      /maxBatchingWindow is not supported by FIFO queues/,
    ],
    [
      'maxReceiveCount 0',
      { kind: 'ordered', maxReceiveCount: 0 },
      /maxReceiveCount must be an integer from 1 to 1000, but 0/,
    ],
    ['a rule without a pattern', { kind: 'rule' }, /needs eventPattern, eventTypes or sources/],
    [
      'retryAttempts 200',
      { kind: 'rule', sources: ['s'], retryAttempts: 200 },
      /retryAttempts must be an integer from 0 to 185/,
    ],
    ['an empty event type list', { kind: 'ordered', eventTypes: [] }, /eventTypes must be a non-empty list/],
    [
      'maxVisibleMessages 0',
      { kind: 'ordered', alarms: { maxVisibleMessages: 0 } },
      /alarms.maxVisibleMessages must be a positive integer, but 0 was provided/,
    ],
  ])('rejects %s', (_case, props, message) => {
    expect(() => outbox().subscribe('team', props)).toThrow(message);
  });

  it('rejects an ordered subscription without a topic and a rule without a bus', () => {
    expect(() => outbox({ topic: false, eventBus: true }).subscribe('team', { kind: 'ordered' })).toThrow(
      /needs the SNS FIFO topic the relay publishes to, but no topic was provided/,
    );
    expect(() => outbox({ topic: true }).subscribe('team', { kind: 'rule', sources: ['s'] })).toThrow(
      /needs the EventBridge bus the relay publishes to, but no bus was provided/,
    );
  });

  it('rejects a standard topic', () => {
    // GIVEN an outbox whose topic is a standard SNS topic (possible for an imported outbox)
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Standard');
    const standard = Outbox.fromOutboxAttributes(stack, 'Imported', {
      tableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/outbox',
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:events',
      dedupTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/dedup',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
    });
    // WHEN an ordered subscription is made on it THEN it is rejected
    expect(() => standard.subscribe('team', { kind: 'ordered' })).toThrow(
      /needs an SNS FIFO topic.*but a standard topic was provided/,
    );
  });

  it('rejects a second subscription with the same name, with a message saying so', () => {
    const o = outbox();
    o.subscribe('team', { kind: 'ordered' });
    expect(() => o.subscribe('team', { kind: 'ordered' })).toThrow(/already exists/);
  });

  it('rejects a second subscription named the same from another scope of the stack', () => {
    const o = outbox();
    o.subscribe('team', { kind: 'ordered' });
    expect(
      () => new Subscription(Stack.of(o), 'Elsewhere', { outbox: o, name: 'team', kind: 'ordered' }),
    ).toThrow(/a subscription named "team" already exists/);
  });

  it('rejects an invalid name', () => {
    expect(() => outbox().subscribe('team#2', { kind: 'ordered' })).toThrow(
      /subscription name must be 1-64 letters/,
    );
  });

  it('shares one dedup table, created with the given settings on the first consumer', () => {
    // GIVEN an outbox with dedup table settings
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Given');
    const o = new Outbox(stack, 'Outbox', { dedupTable: { removalPolicy: RemovalPolicy.DESTROY } });
    // WHEN two subscriptions with consumers are made
    o.subscribe('team', { kind: 'ordered', consumer });
    o.subscribe('other', { kind: 'ordered', consumer });
    // THEN both use the one dedup table, created with those settings
    const template = Template.fromStack(stack);
    const dedupTables = template.findResources('AWS::DynamoDB::Table', {
      Properties: { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] },
    });
    expect(Object.keys(dedupTables)).toEqual([logicalId(o.dedupTable.table)]);
    expect(Object.values(dedupTables)[0]?.DeletionPolicy).toBe('Delete');
    for (const name of ['team', 'other']) {
      const fn = o.subscriptions.get(name)?.consumer;
      expect(
        template.toJSON().Resources[logicalId(fn)].Properties.Environment.Variables.DEDUP_TABLE_NAME,
      ).toEqual({
        Ref: logicalId(o.dedupTable.table),
      });
    }
  });

  it('creates no subscription queue and no dedup table before anything subscribes', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Partial');
    const o = new Outbox(stack, 'Outbox', { eventBus: true });
    const template = Template.fromStack(stack);
    // Only the relay's own failure queue.
    expect(Object.keys(template.findResources('AWS::SQS::Queue'))).toEqual([logicalId(o.relay.failureQueue)]);
    template.resourcePropertiesCountIs(
      'AWS::DynamoDB::Table',
      { KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] },
      0,
    );
    expect(o.subscriptions.size).toBe(0);
  });
});
