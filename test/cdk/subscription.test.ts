import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { DedupTable } from '../../lib/dedup-table.ts';
import { addDemoSubscriptions, type DemoSubscriptions, Messaging } from '../../lib/messaging.ts';
import type { SubscriptionProps } from '../../lib/subscription.ts';

interface Fixture {
  stack: Stack;
  template: Template;
  messaging: Messaging;
  demo: DemoSubscriptions;
}

/** GIVEN a stack with an SNS FIFO topic, a bus, Messaging and four subscriptions (two with consumers). */
function synth(): Fixture {
  const app = new App();
  const stack = new Stack(app, 'Subscriptions');
  const alarmTopic = new AlarmTopic(stack, 'Alarms');
  const topic = new sns.Topic(stack, 'Events', { fifo: true, enforceSSL: true, masterKey: undefined });
  const bus = new events.EventBus(stack, 'Bus');
  const messaging = new Messaging(stack, 'Messaging', {
    topic,
    bus,
    alarmTopic,
    dedupTableRemovalPolicy: RemovalPolicy.DESTROY,
  });
  const demo = addDemoSubscriptions(stack, messaging, {
    removalPolicy: RemovalPolicy.DESTROY,
    eventSource: '/demo/orders',
  });
  messaging.subscribe('warehouse', { kind: 'ordered', eventTypes: ['com.example.orders.OrderPaid'] });
  messaging.subscribe('analytics', {
    kind: 'rule',
    sources: ['/demo/orders'],
    alarms: { maxMessageAge: Duration.minutes(15), maxVisibleMessages: 50_000 },
    maxReceiveCount: 3,
  });
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { stack, template: Template.fromStack(stack), messaging, demo };
}

function logicalIdOf(template: Template, type: string, pathPattern: RegExp): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => pathPattern.test(id));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} matching ${pathPattern}, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}

const arnOf = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

describe('Messaging.subscribe', () => {
  let f: Fixture;
  beforeAll(() => {
    f = synth();
  });

  describe('ordered subscription (billing)', () => {
    it('creates an SQS FIFO queue that dead-letters to a FIFO DLQ after maxReceiveCount, SSE and 6× visibility', () => {
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingDeadLetterQueue/);
      f.template.hasResourceProperties('AWS::SQS::Queue', {
        FifoQueue: true,
        ContentBasedDeduplication: false,
        DeduplicationScope: 'messageGroup',
        FifoThroughputLimit: 'perMessageGroupId',
        SqsManagedSseEnabled: true,
        VisibilityTimeout: 180,
        RedrivePolicy: { deadLetterTargetArn: arnOf(dlq), maxReceiveCount: 5 },
      });
      f.template.hasResourceProperties('AWS::SQS::Queue', {
        FifoQueue: true,
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 86_400,
        RedrivePolicy: Match.absent(),
      });
    });

    it('subscribes the queue to the FIFO topic with raw delivery, a type filter policy and a DLQ', () => {
      const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingQueue/);
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingDeadLetterQueue/);
      f.template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'sqs',
        Endpoint: arnOf(queue),
        TopicArn: { Ref: Match.stringLikeRegexp('^Events') },
        RawMessageDelivery: true,
        FilterPolicy: { type: [{ prefix: 'com.example.orders.' }] },
        RedrivePolicy: { deadLetterTargetArn: arnOf(dlq) },
      });
    });

    it('filters an exact list of event types for queue-only subscriptions too', () => {
      f.template.hasResourceProperties('AWS::SNS::Subscription', {
        FilterPolicy: { type: ['com.example.orders.OrderPaid'] },
        RawMessageDelivery: true,
      });
    });

    it('lets only the topic send to the queue, and only over TLS', () => {
      const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingQueue/);
      f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
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
              Condition: { ArnEquals: { 'aws:SourceArn': { Ref: Match.stringLikeRegexp('^Events') } } },
            }),
          ]),
        },
      });
    });
  });

  describe('rule-based subscription (notifications)', () => {
    it('matches the event pattern on the bus and targets a standard queue with the envelope, a retry policy and a DLQ', () => {
      const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingnotificationsQueue/);
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingnotificationsDeadLetterQueue/);
      f.template.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: { Ref: Match.stringLikeRegexp('^Bus') },
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
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingnotificationsDeadLetterQueue/);
      f.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: dlq }],
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
    it.each([
      ['billing', 'MessagingbillingQueue'],
      ['notifications', 'MessagingnotificationsQueue'],
    ])(
      '%s: event source mapping reports batch item failures and levels load with maxConcurrency',
      (_name, queuePrefix) => {
        const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', new RegExp(`^${queuePrefix}`));
        f.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: arnOf(queue),
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          BatchSize: 10,
          ScalingConfig: { MaximumConcurrency: 5 },
        });
      },
    );

    it('passes the dedup table, consumer name and DLQ URL to the consumer', () => {
      const dedup = logicalIdOf(f.template, 'AWS::DynamoDB::Table', /^MessagingDedupTable/);
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingDeadLetterQueue/);
      f.template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({
            DEDUP_TABLE_NAME: { Ref: dedup },
            OUTBOX_CONSUMER_NAME: 'billing',
            OUTBOX_DEAD_LETTER_QUEUE_URL: { Ref: dlq },
            CHARGES_TABLE_NAME: { Ref: Match.stringLikeRegexp('^Charges') },
          }),
        },
      });
    });

    it('grants the consumer only the dedup writes it needs and SendMessage on its own DLQ', () => {
      const dedup = logicalIdOf(f.template, 'AWS::DynamoDB::Table', /^MessagingDedupTable/);
      const dlq = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessagingbillingDeadLetterQueue/);
      const policies = f.template.findResources('AWS::IAM::Policy', {
        Properties: { PolicyName: Match.stringLikeRegexp('^MessagingbillingConsumerRole') },
      });
      const statements = Object.values(policies).flatMap(
        (p) =>
          (
            p as {
              Properties: {
                PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] };
              };
            }
          ).Properties.PolicyDocument.Statement,
      );
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
      f.template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        BillingMode: 'PAY_PER_REQUEST',
      });
    });

    it('creates no Lambda for queue-only subscriptions', () => {
      const queues = ['MessagingwarehouseQueue', 'MessaginganalyticsQueue'].map((p) =>
        logicalIdOf(f.template, 'AWS::SQS::Queue', new RegExp(`^${p}`)),
      );
      const mappings = Object.values(f.template.findResources('AWS::Lambda::EventSourceMapping')).map((m) =>
        JSON.stringify(m),
      );
      for (const queue of queues) expect(mappings.some((m) => m.includes(queue))).toBe(false);
      expect(f.messaging.subscriptions.get('warehouse')?.consumer).toBeUndefined();
      f.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
      // Without a consumer the visibility timeout is SQS's 30 s default.
      expect(
        f.template.findResources('AWS::SQS::Queue')[queues[0] as string]?.Properties?.VisibilityTimeout,
      ).toBe(30);
    });
  });

  describe('alarms', () => {
    it.each(['billing', 'notifications', 'warehouse', 'analytics'])(
      '%s: DLQ ≥ 1 message, oldest message age and visible messages, all notifying the alarm topic',
      (name) => {
        const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', new RegExp(`^Messaging${name}Queue`));
        const dlq = logicalIdOf(
          f.template,
          'AWS::SQS::Queue',
          new RegExp(`^Messaging${name}DeadLetterQueue`),
        );
        const topicRef = { Ref: Match.stringLikeRegexp('^AlarmsTopic') };
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
      const queue = logicalIdOf(f.template, 'AWS::SQS::Queue', /^MessaginganalyticsQueue/);
      expect(
        f.template.findResources('AWS::SQS::Queue')[queue]?.Properties?.RedrivePolicy?.maxReceiveCount,
      ).toBe(3);
    });
  });

  it('passes the cdk-nag AwsSolutions pack with no unsuppressed errors', () => {
    const errors = Annotations.fromStack(f.stack)
      .findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))
      .map((m) => `${String(m.entry.data).split(':')[0]} at ${m.id}`);
    expect(errors).toEqual([]);
  });
});

describe('subscription validation', () => {
  function messaging(
    options: { topic?: 'fifo' | 'standard'; bus?: boolean } = { topic: 'fifo', bus: true },
  ): Messaging {
    const stack = new Stack(new App(), 'V');
    const alarmTopic = new AlarmTopic(stack, 'Alarms');
    const topic =
      options.topic === undefined ? undefined : new sns.Topic(stack, 'T', { fifo: options.topic === 'fifo' });
    return new Messaging(stack, 'M', {
      alarmTopic,
      ...(topic ? { topic } : {}),
      ...(options.bus ? { bus: new events.EventBus(stack, 'B') } : {}),
    });
  }
  const consumer = { entry: 'subscribers/billing.ts' };

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
    expect(() => messaging().subscribe('team', props)).toThrow(message);
  });

  it('rejects an ordered subscription without a topic and a rule without a bus', () => {
    expect(() => messaging({ bus: true }).subscribe('team', { kind: 'ordered' })).toThrow(
      /needs the SNS FIFO topic the relay publishes to, but no topic was provided/,
    );
    expect(() => messaging({ topic: 'fifo' }).subscribe('team', { kind: 'rule', sources: ['s'] })).toThrow(
      /needs the EventBridge bus the relay publishes to, but no bus was provided/,
    );
  });

  it('rejects a standard topic', () => {
    expect(() => messaging({ topic: 'standard' })).toThrow(
      /needs an SNS FIFO topic.*but a standard topic was provided/,
    );
  });

  it('rejects a second subscription with the same name and an invalid name', () => {
    const m = messaging();
    m.subscribe('team', { kind: 'ordered' });
    expect(() => m.subscribe('team', { kind: 'ordered' })).toThrow(/already exists/);
    expect(() => m.subscribe('team#2', { kind: 'ordered' })).toThrow(
      /subscription name must be 1-64 letters/,
    );
  });

  it('uses a given dedup table instead of creating one', () => {
    const stack = new Stack(new App(), 'Given');
    const dedupTable = new DedupTable(stack, 'Dedup', { removalPolicy: RemovalPolicy.DESTROY });
    const m = new Messaging(stack, 'M', {
      alarmTopic: new AlarmTopic(stack, 'Alarms'),
      topic: new sns.Topic(stack, 'T', { fifo: true }),
      dedupTable,
    });
    m.subscribe('team', { kind: 'ordered', consumer });
    expect(m.dedupTable).toBe(dedupTable);
    Template.fromStack(stack).resourceCountIs('AWS::DynamoDB::Table', 1);
  });

  it('skips the demo subscriptions whose source does not exist yet', () => {
    const stack = new Stack(new App(), 'Partial');
    const m = new Messaging(stack, 'M', { alarmTopic: new AlarmTopic(stack, 'Alarms') });
    const demo = addDemoSubscriptions(stack, m, { removalPolicy: RemovalPolicy.DESTROY });
    expect(demo.billing).toBeUndefined();
    expect(demo.notifications).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::SQS::Queue', 0);
  });
});
