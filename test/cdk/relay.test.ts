import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { compilePattern } from '../../functions/patterns/event-pattern.ts';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { OutboxRelay, type OutboxRelayProps } from '../../lib/outbox-relay.ts';
import { OutboxTable } from '../../lib/outbox-table.ts';
import { logicalId, nagErrors, roleStatements, synthOrdersStack } from './stack-fixture.ts';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

/** A standalone stack with one relay, for prop variations. */
function relayStack(props: Partial<OutboxRelayProps> = {}) {
  const app = new App();
  const stack = new Stack(app, 'RelayOnly');
  const outbox = new OutboxTable(stack, 'Outbox', { removalPolicy: RemovalPolicy.DESTROY });
  const alarms = new AlarmTopic(stack, 'Alarms');
  const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms, ...props });
  return { stack, relay, template: Template.fromStack(stack) };
}

function relayPolicyStatements(template: Template, relay: OutboxRelay) {
  return roleStatements(template, relay.fn.role);
}

/** A Lambda-shaped DynamoDB stream record with only what the filters look at. */
function change(
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE',
  oldStatus?: string,
  newStatus?: string,
  sk = 'EVT#000000000001',
) {
  const image = (status?: string) => ({
    pk: { S: 'order#1' },
    sk: { S: sk },
    ...(status ? { status: { S: status } } : {}),
  });
  return {
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: {
      ...(eventName === 'INSERT' ? {} : { OldImage: image(oldStatus) }),
      ...(eventName === 'REMOVE' ? {} : { NewImage: image(newStatus) }),
    },
  };
}

describe('OutboxRelay in the demo stack', () => {
  let template: Template;
  let stack: OrdersStack;
  let relay: OutboxRelay;
  beforeAll(() => {
    ({ template, stack } = synthOrdersStack());
    relay = stack.outbox.relay;
  });

  it('maps the outbox stream with bisect, bounded retries, a record age limit, partial batch responses and an on-failure queue', () => {
    const queues = template.findResources('AWS::SQS::Queue', {
      Properties: { FifoQueue: Match.absent() },
    }) as Resources;
    const failureQueueId = logicalId(relay.failureQueue);
    expect(Object.keys(queues)).toContain(failureQueueId);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(relay.fn) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.outbox.table.table), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
      ParallelizationFactor: 1,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failureQueueId, 'Arn'] } } },
    });
  });

  it('filters the stream so only records that are or become READY invoke the relay', () => {
    const mappings = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { FunctionName: { Ref: logicalId(relay.fn) } },
    }) as Resources;
    const [mapping] = Object.values(mappings);
    if (!mapping) throw new Error('the relay has no event source mapping');
    const { Filters } = mapping.Properties.FilterCriteria as { Filters: { Pattern: string }[] };
    expect(Filters).toHaveLength(2);
    const filters = Filters.map((f) => compilePattern(JSON.parse(f.Pattern)));
    const invokes = (record: ReturnType<typeof change>) => filters.some((f) => f.matches(record));

    expect(invokes(change('INSERT', undefined, 'READY'))).toBe(true); // a commit
    expect(invokes(change('MODIFY', 'PREPARED', 'READY'))).toBe(true); // confirm()
    expect(invokes(change('MODIFY', 'SCHEDULED', 'READY'))).toBe(true); // the sweeper makes it due
    expect(invokes(change('MODIFY', 'QUARANTINED', 'READY'))).toBe(true); // an operator retries it
    expect(invokes(change('MODIFY', 'READY', 'PUBLISHED'))).toBe(false); // the relay's own bookkeeping
    expect(invokes(change('MODIFY', 'READY', 'QUARANTINED'))).toBe(false);
    expect(invokes(change('MODIFY', 'READY', 'READY'))).toBe(false); // e.g. an attempts counter update
    expect(invokes(change('REMOVE', 'PUBLISHED'))).toBe(false); // TTL deletion
    expect(invokes(change('INSERT', undefined, 'PREPARED'))).toBe(false);
    expect(invokes(change('INSERT', undefined, 'SCHEDULED'))).toBe(false);
    expect(invokes(change('INSERT', undefined, undefined, 'HEAD'))).toBe(false); // aggregate head item
    expect(invokes(change('MODIFY', undefined, undefined, 'HEAD'))).toBe(false);
  });

  it('creates an SNS FIFO topic encrypted with a rotating key, dedup ids from the relay, per-group throughput', () => {
    template.hasResourceProperties('AWS::SNS::Topic', {
      FifoTopic: true,
      ContentBasedDeduplication: false,
      FifoThroughputScope: 'MessageGroup',
      KmsMasterKeyId: { 'Fn::GetAtt': [logicalId(relay.topic?.masterKey), 'Arn'] },
      TopicName: Match.stringLikeRegexp('\\.fifo$'),
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'Encrypts the outbox event topic',
      EnableKeyRotation: true,
    });
  });

  it('makes the event topic and the failure queue refuse requests without TLS, and encrypts the queue', () => {
    const queues = template.findResources('AWS::SQS::Queue') as Resources;
    const failureQueueId = logicalId(relay.failureQueue);
    const denyInsecure = Match.arrayWith([
      Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    ]);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: logicalId(relay.topic) }],
      PolicyDocument: { Statement: denyInsecure },
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: failureQueueId }],
      PolicyDocument: { Statement: denyInsecure },
    });
    expect(queues[failureQueueId]?.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
  });

  it('creates a custom event bus and tells the relay where every target is', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: Match.stringLikeRegexp('Relay') });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Outbox relay'),
      Runtime: Match.stringLikeRegexp('nodejs(2[2-9]|[3-9]\\d)\\.x'),
      Architectures: ['arm64'],
      Environment: {
        Variables: Match.objectLike({
          OUTBOX_TABLE_NAME: { Ref: logicalId(stack.outbox.table.table) },
          OUTBOX_SNS_TOPIC_ARN: { Ref: logicalId(relay.topic) },
          OUTBOX_EVENT_BUS_NAME: { Ref: logicalId(relay.bus) },
          OUTBOX_RETENTION_DAYS: '7',
          POWERTOOLS_METRICS_NAMESPACE: 'ServerlessOutbox',
          // The relay construct's path: the demo's relay is now inside the Outbox.
          POWERTOOLS_SERVICE_NAME: 'Test/Outbox/Relay',
        }),
      },
    });
  });

  it('grants the relay stream read, UpdateItem and Query on the table only, publish, put-events and the failure queue, nothing more', () => {
    const statements = relayPolicyStatements(template, relay);
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.sort()).toEqual(
      [
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'kms:Decrypt',
        'kms:GenerateDataKey*',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'sns:Publish',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    // Bookkeeping and the predecessor lookup: the table itself, never its indexes.
    const tableActions = statements.filter((s) =>
      (Array.isArray(s.Action) ? s.Action : [s.Action]).some(
        (a) => a === 'dynamodb:UpdateItem' || a === 'dynamodb:Query',
      ),
    );
    expect(tableActions).toHaveLength(1);
    expect(tableActions[0]?.Action).toEqual(['dynamodb:UpdateItem', 'dynamodb:Query']);
    expect(tableActions[0]?.Resource).toEqual({
      'Fn::GetAtt': [logicalId(stack.outbox.table.table), 'Arn'],
    });
    expect(JSON.stringify(statements)).not.toMatch(/index\//);
    expect(statements.find((s) => s.Action === 'events:PutEvents')?.Resource).toEqual({
      'Fn::GetAtt': [logicalId(relay.bus), 'Arn'],
    });
  });

  it.each([
    ['the failure queue holds a batch', 'ApproximateNumberOfMessagesVisible', 'AWS/SQS', 1],
    ['the relay function throws', 'Errors', 'AWS/Lambda', 1],
    ['events fail to publish', 'Failed', 'ServerlessOutbox', 1],
    ['an event is quarantined', 'Quarantined', 'ServerlessOutbox', 1],
    ['the relay falls behind the stream', 'IteratorAge', 'AWS/Lambda', 60_000],
  ])('alarms the alarm topic when %s', (_when, metricName, namespace, threshold) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: metricName,
      Namespace: namespace,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: logicalId(stack.outbox.alarms.topic) }],
      OKActions: [{ Ref: logicalId(stack.outbox.alarms.topic) }],
    });
  });

  it('passes the cdk-nag AwsSolutions pack with no unsuppressed errors', () => {
    expect(nagErrors(stack)).toEqual([]);
  });
});

describe('OutboxRelay props', () => {
  it('passes batch settings through to the event source mapping', () => {
    const { template } = relayStack({
      batchSize: 500,
      maxBatchingWindow: Duration.seconds(2),
      parallelizationFactor: 4,
      retryAttempts: 3,
      maxRecordAge: Duration.minutes(10),
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 2,
      ParallelizationFactor: 4,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 600,
    });
  });

  it('creates direct SQS FIFO queues with FIFO dead-letter queues, grants sending and alarms on the DLQ', () => {
    const { template, relay } = relayStack({ topic: false, queues: [{ id: 'Billing', maxReceiveCount: 3 }] });
    template.resourcePropertiesCountIs('AWS::SNS::Topic', { FifoTopic: true }, 0);
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      ContentBasedDeduplication: false,
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      MaximumMessageSize: 1_048_576,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('RelayBillingDeadLetterQueue'), 'Arn'] },
        maxReceiveCount: 3,
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          OUTBOX_SQS_QUEUE_URLS: { Ref: Match.stringLikeRegexp('RelayBillingQueue') },
        }),
      },
    });
    const sends = relayPolicyStatements(template, relay).filter((s) =>
      JSON.stringify(s.Action).includes('sqs:SendMessage'),
    );
    expect(JSON.stringify(sends)).toMatch(/RelayBillingQueue/);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('RelayBillingDeadLetterQueue'), 'QueueName'] },
        },
      ],
    });
    expect(relay.metrics.targets).toHaveLength(1);
    expect(relay.queues.get('Billing')).toBeDefined();
    expect(relay.topic).toBeUndefined();
  });

  it('archives bus events when asked', () => {
    const { template } = relayStack({ eventBus: { archiveRetention: Duration.days(30) } });
    template.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 30 });
  });

  it('warns that nothing is ordered when only the bus is enabled', () => {
    const { stack } = relayStack({ topic: false, eventBus: true });
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('does not keep order'),
    );
    expect(warnings).toHaveLength(1);
  });

  it('grants use of the outbox key when the table is encrypted with a customer-managed key', () => {
    const app = new App();
    const stack = new Stack(app, 'Kms');
    const outbox = new OutboxTable(stack, 'Outbox', {
      removalPolicy: RemovalPolicy.DESTROY,
      encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }),
    });
    const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms: new AlarmTopic(stack, 'Alarms') });
    const actions = relayPolicyStatements(Template.fromStack(stack), relay).flatMap((s) =>
      Array.isArray(s.Action) ? s.Action : [s.Action],
    );
    expect(actions).toEqual(expect.arrayContaining(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*']));
  });

  it.each([
    ['no target', { topic: false }, /at least one target/],
    ['a batch size of 0', { batchSize: 0 }, /batchSize must be an integer from 1 to 10000, but 0/],
    ['a parallelization factor of 11', { parallelizationFactor: 11 }, /parallelizationFactor .* but 11/],
    [
      'a batching window of 301 s',
      { maxBatchingWindow: Duration.seconds(301) },
      /maxBatchingWindow .* but 301 s/,
    ],
    ['a record age of 30 s', { maxRecordAge: Duration.seconds(30) }, /maxRecordAge .* but 30 s/],
    [
      'a retention of 36 hours',
      { retention: Duration.hours(36) },
      /retention must be a whole number of days/,
    ],
    ['duplicate queue ids', { queues: [{ id: 'A' }, { id: 'A' }] }, /queues\[\]\.id must be unique/],
    ['the default bus', { eventBus: { eventBusName: 'default' } }, /must name a custom bus/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => relayStack(props as Partial<OutboxRelayProps>)).toThrow(message);
  });
});
