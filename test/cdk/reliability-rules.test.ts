import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import {
  ACK_EVENT_TYPES_ENV,
  CONSUMER_NAME_ENV,
  DEDUP_TTL_ENV,
} from '../../functions/consumer/dedup-format.ts';
import { Outbox, type OutboxProps } from '../../lib/outbox.ts';
import {
  OutboxReliabilityChecks,
  OutboxReliabilityRule,
  type OutboxReliabilityRuleId,
} from '../../lib/reliability/checks.ts';
import { inlineFunction, NO_BUNDLING, synthOrdersStack } from './stack-fixture.ts';

const DAY = 86_400;

/** GIVEN an app (no bundling) with a stack `Bad` checked by OutboxReliabilityChecks, applied to the app. */
function checkedStack(): Stack {
  const app = new App({ context: NO_BUNDLING });
  Aspects.of(app).add(new OutboxReliabilityChecks());
  return new Stack(app, 'Bad');
}

/** WHEN the stack is synthesized: the paths of the resources carrying an error of this rule (or of any rule). */
function errorPaths(stack: Stack, id?: OutboxReliabilityRuleId): string[] {
  return Annotations.fromStack(stack)
    .findError('*', Match.stringLikeRegexp(`^${id ?? 'Outbox-R\\d'}:`))
    .map((m) => m.id);
}

/** The path an annotation reports for a construct. */
function pathOf(construct: IConstruct): string {
  return `/${construct.node.path}`;
}

function l1<T>(construct: IConstruct, type: abstract new (...args: never[]) => T): T {
  const found = construct.node.findAll().find((c) => c instanceof type);
  if (!found) throw new Error(`no ${type.name} under ${construct.node.path}`);
  return found as T;
}

interface WiredOptions {
  /** The DLQ depth alarm. @default true */
  readonly alarm?: boolean;
  /** OUTBOX_DEDUP_TTL_SECONDS. @default 18 days (4-day queue + 14-day DLQ) */
  readonly dedupTtl?: number;
}

/**
 * A correctly wired consumer built from plain aws-cdk-lib constructs: queue (4 days, visibility 18 s = 6 × the
 * function's default 3 s) with a 14-day DLQ and its depth alarm, a consumer with ReportBatchItemFailures.
 */
function wiredConsumer(stack: Stack, options: WiredOptions = {}) {
  const dlq = new sqs.Queue(stack, 'Dlq', { retentionPeriod: Duration.days(14) });
  const queue = new sqs.Queue(stack, 'Queue', {
    retentionPeriod: Duration.days(4),
    visibilityTimeout: Duration.seconds(18),
    deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
  });
  if (options.alarm ?? true) {
    new cloudwatch.Alarm(stack, 'DlqAlarm', {
      metric: dlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 1,
    });
  }
  const fn = inlineFunction(stack, 'Consumer');
  fn.addEnvironment(CONSUMER_NAME_ENV, 'team');
  fn.addEnvironment(DEDUP_TTL_ENV, String(options.dedupTtl ?? 18 * DAY));
  fn.addEventSource(new SqsEventSource(queue, { reportBatchItemFailures: true }));
  return {
    dlq,
    queue,
    fn,
    cfnQueue: queue.node.defaultChild as sqs.CfnQueue,
    mapping: l1(fn, lambda.CfnEventSourceMapping),
  };
}

/** A DynamoDB stream mapping with bounded retries, a maximum record age and an on-failure destination. */
function streamConsumer(stack: Stack) {
  const table = new dynamodb.Table(stack, 'Table', {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    stream: dynamodb.StreamViewType.NEW_IMAGE,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const fn = inlineFunction(stack, 'StreamReader');
  fn.addEventSource(
    new DynamoEventSource(table, {
      startingPosition: lambda.StartingPosition.LATEST,
      retryAttempts: 10,
      maxRecordAge: Duration.hours(1),
      onFailure: new SqsDlq(new sqs.Queue(stack, 'Failures')),
    }),
  );
  return { mapping: l1(fn, lambda.CfnEventSourceMapping) };
}

/** A tracked consumer (OUTBOX_ACK_EVENT_TYPES) whose queue an SNS subscription and an EventBridge rule feed. */
function trackedConsumer(stack: Stack) {
  const wired = wiredConsumer(stack, { dedupTtl: 19 * DAY });
  wired.fn.addEnvironment(ACK_EVENT_TYPES_ENV, 'OrderPlaced');
  const topic = new sns.Topic(stack, 'Topic');
  const subscription = topic.addSubscription(
    new snsSubscriptions.SqsSubscription(wired.queue, {
      filterPolicy: { type: sns.SubscriptionFilter.stringFilter({ allowlist: ['OrderPlaced'] }) },
    }),
  );
  const rule = new events.Rule(stack, 'Rule', { eventPattern: { detailType: ['OrderPlaced'] } });
  rule.addTarget(new targets.SqsQueue(wired.queue, { maxEventAge: Duration.days(1) }));
  return {
    ...wired,
    cfnSubscription: subscription.node.defaultChild as sns.CfnSubscription,
    cfnRule: rule.node.defaultChild as events.CfnRule,
  };
}

describe('OutboxReliabilityChecks on plain aws-cdk-lib resources', () => {
  it('GIVEN correctly wired consumers (SQS, tracked SNS + rule, DynamoDB stream) THEN no rule fires', () => {
    const stack = checkedStack();
    trackedConsumer(stack);
    streamConsumer(stack);
    expect(errorPaths(stack)).toEqual([]);
  });

  describe('Outbox-R1 (subscription queue without a DLQ, or a DLQ without a depth alarm)', () => {
    it('GIVEN a consumer queue whose RedrivePolicy is removed by an escape hatch THEN R1 fires on the queue', () => {
      const stack = checkedStack();
      const { cfnQueue } = wiredConsumer(stack);
      cfnQueue.addPropertyDeletionOverride('RedrivePolicy');
      expect(errorPaths(stack, OutboxReliabilityRule.deadLetterQueue)).toEqual(['/Bad/Queue/Resource']);
    });

    it('GIVEN a consumer queue whose DLQ has no alarm THEN R1 fires on the queue', () => {
      const stack = checkedStack();
      wiredConsumer(stack, { alarm: false });
      expect(errorPaths(stack, OutboxReliabilityRule.deadLetterQueue)).toEqual(['/Bad/Queue/Resource']);
    });

    it("GIVEN an alarm on the DLQ's messages sent (not its depth) THEN R1 still fires", () => {
      const stack = checkedStack();
      const { dlq } = wiredConsumer(stack, { alarm: false });
      new cloudwatch.Alarm(stack, 'SentAlarm', {
        metric: dlq.metricNumberOfMessagesSent(),
        threshold: 1,
        evaluationPeriods: 1,
      });
      expect(errorPaths(stack, OutboxReliabilityRule.deadLetterQueue)).toEqual(['/Bad/Queue/Resource']);
    });

    it('GIVEN a queue without a DLQ that only an SNS topic and an EventBridge rule feed (no consumer) THEN R1 fires on it', () => {
      const stack = checkedStack();
      const fromTopic = new sqs.Queue(stack, 'FromTopic');
      new sns.Topic(stack, 'Topic').addSubscription(new snsSubscriptions.SqsSubscription(fromTopic));
      const fromRule = new sqs.Queue(stack, 'FromRule');
      new events.Rule(stack, 'Rule', { eventPattern: { source: ['s'] } }).addTarget(
        new targets.SqsQueue(fromRule),
      );
      new sqs.Queue(stack, 'Unsubscribed');
      expect(errorPaths(stack, OutboxReliabilityRule.deadLetterQueue).sort()).toEqual([
        '/Bad/FromRule/Resource',
        '/Bad/FromTopic/Resource',
      ]);
    });
  });

  describe('Outbox-R2 (dedup retention shorter than the longest time a message can come back)', () => {
    it('GIVEN OUTBOX_DEDUP_TTL_SECONDS one second below queue + DLQ retention THEN R2 fires on the function', () => {
      const stack = checkedStack();
      wiredConsumer(stack, { dedupTtl: 18 * DAY - 1 });
      expect(errorPaths(stack, OutboxReliabilityRule.dedupRetention)).toEqual(['/Bad/Consumer/Resource']);
    });

    it('GIVEN an EventBridge rule feeding the queue THEN its MaximumEventAgeInSeconds counts too', () => {
      const stack = checkedStack();
      const { queue } = wiredConsumer(stack, { dedupTtl: 18 * DAY + 3600 });
      new events.Rule(stack, 'Rule', { eventPattern: { source: ['s'] } }).addTarget(
        new targets.SqsQueue(queue, { maxEventAge: Duration.hours(2) }),
      );
      expect(errorPaths(stack, OutboxReliabilityRule.dedupRetention)).toEqual(['/Bad/Consumer/Resource']);
    });

    it('GIVEN a longer queue retention set by an escape hatch THEN R2 fires', () => {
      const stack = checkedStack();
      const { cfnQueue } = wiredConsumer(stack);
      cfnQueue.addPropertyOverride('MessageRetentionPeriod', 5 * DAY);
      expect(errorPaths(stack, OutboxReliabilityRule.dedupRetention)).toEqual(['/Bad/Consumer/Resource']);
    });
  });

  describe('Outbox-R3 (visibility timeout below 6 × the function timeout)', () => {
    it('GIVEN a visibility timeout of 17 s for a 3 s function THEN R3 fires on the queue', () => {
      const stack = checkedStack();
      wiredConsumer(stack).cfnQueue.addPropertyOverride('VisibilityTimeout', 17);
      expect(errorPaths(stack, OutboxReliabilityRule.visibilityTimeout)).toEqual(['/Bad/Queue/Resource']);
    });

    it('GIVEN the function timeout raised by an escape hatch THEN R3 fires', () => {
      const stack = checkedStack();
      const { fn } = wiredConsumer(stack);
      (fn.node.defaultChild as lambda.CfnFunction).addPropertyOverride('Timeout', 4);
      expect(errorPaths(stack, OutboxReliabilityRule.visibilityTimeout)).toEqual(['/Bad/Queue/Resource']);
    });
  });

  describe('Outbox-R4 (SQS event source mapping without ReportBatchItemFailures)', () => {
    it('GIVEN an SQS mapping without FunctionResponseTypes THEN R4 fires on the mapping', () => {
      const stack = checkedStack();
      const { mapping } = wiredConsumer(stack);
      mapping.addPropertyDeletionOverride('FunctionResponseTypes');
      expect(errorPaths(stack, OutboxReliabilityRule.batchItemFailures)).toEqual([pathOf(mapping)]);
    });

    it('GIVEN a mapping on an imported queue ARN THEN R4 fires too', () => {
      const stack = checkedStack();
      const fn = inlineFunction(stack, 'Reader');
      fn.addEventSource(
        new SqsEventSource(sqs.Queue.fromQueueArn(stack, 'Imported', 'arn:aws:sqs:eu-west-1:111111111111:q')),
      );
      expect(errorPaths(stack, OutboxReliabilityRule.batchItemFailures)).toEqual([
        pathOf(l1(fn, lambda.CfnEventSourceMapping)),
      ]);
    });
  });

  describe('Outbox-R5 (standard queue subscribed to an SNS FIFO topic)', () => {
    it('GIVEN a standard queue subscribed to a FIFO topic THEN R5 fires on the queue; a FIFO queue passes', () => {
      const stack = checkedStack();
      const topic = new sns.Topic(stack, 'Topic', { fifo: true });
      topic.addSubscription(new snsSubscriptions.SqsSubscription(new sqs.Queue(stack, 'Standard')));
      topic.addSubscription(
        new snsSubscriptions.SqsSubscription(new sqs.Queue(stack, 'Fifo', { fifo: true })),
      );
      expect(errorPaths(stack, OutboxReliabilityRule.orderedQueue)).toEqual(['/Bad/Standard/Resource']);
    });

    it("GIVEN an ordered Subscription whose queue's FifoQueue is removed by an escape hatch THEN R5 fires", () => {
      const { stack, outbox } = outboxStack();
      const sub = outbox.subscribe('billing', { kind: 'ordered', eventTypes: ['A'] });
      (sub.queue.node.defaultChild as sqs.CfnQueue).addPropertyDeletionOverride('FifoQueue');
      expect(errorPaths(stack, OutboxReliabilityRule.orderedQueue)).toEqual([
        '/Platform/Outbox/Subscriptions/billing/Queue/Resource',
      ]);
    });
  });

  describe('Outbox-R6 (tracked consumer fed through a filter beyond the event type)', () => {
    it('GIVEN a filter policy on `source` for a tracked consumer THEN R6 fires on the SNS subscription', () => {
      const stack = checkedStack();
      const { cfnSubscription } = trackedConsumer(stack);
      cfnSubscription.addPropertyOverride('FilterPolicy.source', ['orders']);
      expect(errorPaths(stack, OutboxReliabilityRule.trackedFilter)).toEqual([pathOf(cfnSubscription)]);
    });

    it('GIVEN an event pattern on `source` for a tracked consumer THEN R6 fires on the rule', () => {
      const stack = checkedStack();
      const { cfnRule } = trackedConsumer(stack);
      cfnRule.addPropertyOverride('EventPattern.source', ['orders']);
      expect(errorPaths(stack, OutboxReliabilityRule.trackedFilter)).toEqual(['/Bad/Rule/Resource']);
    });

    it('GIVEN the same filters on an untracked consumer THEN R6 is silent', () => {
      const stack = checkedStack();
      const { cfnSubscription, cfnRule, fn } = trackedConsumer(stack);
      cfnSubscription.addPropertyOverride('FilterPolicy.source', ['orders']);
      cfnRule.addPropertyOverride('EventPattern.source', ['orders']);
      (fn.node.defaultChild as lambda.CfnFunction).addPropertyDeletionOverride(
        `Environment.Variables.${ACK_EVENT_TYPES_ENV}`,
      );
      expect(errorPaths(stack)).toEqual([]);
    });

    it('GIVEN a tracked Subscription whose filter policy is widened by an escape hatch THEN R6 fires', () => {
      const { stack, outbox } = outboxStack();
      const sub = outbox.subscribe('billing', {
        kind: 'ordered',
        eventTypes: ['A'],
        tracked: { eventTypes: ['A'] },
        consumer: { function: inlineFunction(stack, 'BillingFn') },
      });
      const cfn = sub.topicSubscription?.node.defaultChild as sns.CfnSubscription;
      cfn.addPropertyOverride('FilterPolicy.partitionkey', ['p1']);
      expect(errorPaths(stack, OutboxReliabilityRule.trackedFilter)).toEqual([pathOf(cfn)]);
    });
  });

  describe('Outbox-R7 (DynamoDB stream mapping without on-failure destination or with unbounded retries)', () => {
    it('GIVEN a DynamoEventSource with the CDK defaults THEN R7 fires on the mapping', () => {
      const stack = checkedStack();
      const table = new dynamodb.Table(stack, 'Table', {
        partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
        stream: dynamodb.StreamViewType.NEW_IMAGE,
      });
      const fn = inlineFunction(stack, 'StreamReader');
      fn.addEventSource(new DynamoEventSource(table, { startingPosition: lambda.StartingPosition.LATEST }));
      expect(errorPaths(stack, OutboxReliabilityRule.streamFailure)).toEqual([
        pathOf(l1(fn, lambda.CfnEventSourceMapping)),
      ]);
    });

    it.each([
      [
        'no on-failure destination',
        (m: lambda.CfnEventSourceMapping) => m.addPropertyDeletionOverride('DestinationConfig'),
      ],
      [
        'retries = -1',
        (m: lambda.CfnEventSourceMapping) => m.addPropertyOverride('MaximumRetryAttempts', -1),
      ],
      [
        'no maximum record age',
        (m: lambda.CfnEventSourceMapping) => m.addPropertyDeletionOverride('MaximumRecordAgeInSeconds'),
      ],
    ])('GIVEN a well-configured stream mapping changed to %s THEN R7 fires', (_, change) => {
      const stack = checkedStack();
      const { mapping } = streamConsumer(stack);
      change(mapping);
      expect(errorPaths(stack, OutboxReliabilityRule.streamFailure)).toEqual([pathOf(mapping)]);
    });
  });
});

/** GIVEN an app (no bundling) with one stack `Platform` holding an Outbox with a topic and a bus. */
function outboxStack(props: OutboxProps = {}) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'Platform');
  const outbox = new Outbox(stack, 'Outbox', {
    topic: true,
    eventBus: true,
    table: { removalPolicy: RemovalPolicy.DESTROY },
    dedupTable: { removalPolicy: RemovalPolicy.DESTROY },
    ...props,
  });
  return { app, stack, outbox };
}

/** For each rule: a stack where it fires, and the construct to suppress it on. */
const violations: [OutboxReliabilityRuleId, () => { stack: Stack; scope: IConstruct }][] = [
  [
    'Outbox-R1',
    () => {
      const stack = checkedStack();
      wiredConsumer(stack, { alarm: false });
      return { stack, scope: stack };
    },
  ],
  [
    'Outbox-R2',
    () => {
      const stack = checkedStack();
      return { stack, scope: wiredConsumer(stack, { dedupTtl: DAY }).fn };
    },
  ],
  [
    'Outbox-R3',
    () => {
      const stack = checkedStack();
      const { queue, cfnQueue } = wiredConsumer(stack);
      cfnQueue.addPropertyOverride('VisibilityTimeout', 17);
      return { stack, scope: queue };
    },
  ],
  [
    'Outbox-R4',
    () => {
      const stack = checkedStack();
      const { mapping } = wiredConsumer(stack);
      mapping.addPropertyDeletionOverride('FunctionResponseTypes');
      return { stack, scope: mapping };
    },
  ],
  [
    'Outbox-R5',
    () => {
      const stack = checkedStack();
      const queue = new sqs.Queue(stack, 'Standard');
      new sns.Topic(stack, 'Topic', { fifo: true }).addSubscription(
        new snsSubscriptions.SqsSubscription(queue),
      );
      return { stack, scope: queue };
    },
  ],
  [
    'Outbox-R6',
    () => {
      const stack = checkedStack();
      const { cfnRule } = trackedConsumer(stack);
      cfnRule.addPropertyOverride('EventPattern.source', ['orders']);
      return { stack, scope: cfnRule };
    },
  ],
  [
    'Outbox-R7',
    () => {
      const stack = checkedStack();
      const { mapping } = streamConsumer(stack);
      mapping.addPropertyOverride('MaximumRetryAttempts', -1);
      return { stack, scope: mapping };
    },
  ],
];

describe('OutboxReliabilityChecks.suppress', () => {
  it.each(violations)('GIVEN a stack breaking %s THEN it fires without a suppression', (id, build) => {
    const { stack } = build();
    expect(errorPaths(stack, id)).toHaveLength(1);
  });

  it.each(violations)(
    'GIVEN %s suppressed with a reason on the resource or an ancestor THEN it is silent',
    (id, build) => {
      const { stack, scope } = build();
      OutboxReliabilityChecks.suppress(scope, [{ id, reason: 'accepted: see the runbook' }]);
      expect(errorPaths(stack, id)).toEqual([]);
    },
  );

  it('GIVEN another rule suppressed THEN the violated one still fires', () => {
    const { stack, scope } = violations[2]?.[1]() ?? { stack: undefined, scope: undefined };
    if (!stack || !scope) throw new Error('no R3 violation');
    OutboxReliabilityChecks.suppress(scope, [{ id: 'Outbox-R4', reason: 'not this one' }]);
    expect(errorPaths(stack, 'Outbox-R3')).toHaveLength(1);
  });

  it('GIVEN an empty or blank reason, or an unknown rule id THEN suppress throws', () => {
    const stack = checkedStack();
    expect(() => OutboxReliabilityChecks.suppress(stack, [{ id: 'Outbox-R3', reason: '' }])).toThrow(
      /Outbox-R3 on Bad needs a reason/,
    );
    expect(() => OutboxReliabilityChecks.suppress(stack, [{ id: 'Outbox-R3', reason: '   ' }])).toThrow(
      /needs a reason/,
    );
    expect(() =>
      OutboxReliabilityChecks.suppress(stack, [{ id: 'Outbox-R9' as OutboxReliabilityRuleId, reason: 'x' }]),
    ).toThrow(/unknown rule id "Outbox-R9"/);
  });
});

describe('Outbox applies the reliability rules to its stack', () => {
  it('GIVEN an Outbox THEN a bad queue in its stack fails; with reliabilityRules: false it does not', () => {
    for (const reliabilityRules of [undefined, false]) {
      const { stack } = outboxStack(reliabilityRules === undefined ? {} : { reliabilityRules });
      const bad = new sqs.Queue(stack, 'NoDlq');
      inlineFunction(stack, 'Reader').addEventSource(
        new SqsEventSource(bad, { reportBatchItemFailures: true }),
      );
      expect(errorPaths(stack, 'Outbox-R1')).toEqual(
        reliabilityRules === false ? [] : ['/Platform/NoDlq/Resource'],
      );
    }
  });

  it('GIVEN the checks on the app and on the Outbox stack THEN each finding is reported once', () => {
    const { app, stack } = outboxStack();
    Aspects.of(app).add(new OutboxReliabilityChecks());
    new sns.Topic(stack, 'Fifo', { fifo: true }).addSubscription(
      new snsSubscriptions.SqsSubscription(new sqs.Queue(stack, 'NoDlq')),
    );
    expect(Annotations.fromStack(stack).findError('/Platform/NoDlq/Resource', Match.anyValue())).toHaveLength(
      2,
    );
    expect(errorPaths(stack, 'Outbox-R1')).toEqual(['/Platform/NoDlq/Resource']);
    expect(errorPaths(stack, 'Outbox-R5')).toEqual(['/Platform/NoDlq/Resource']);
  });

  it('GIVEN `consumer: { function, timeout }` declaring a shorter timeout than the function has THEN R3 fires', () => {
    const { stack, outbox } = outboxStack();
    const fn = new lambda.Function(stack, 'Slow', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
      timeout: Duration.seconds(60),
    });
    // Subscription derives a 60 s visibility timeout from the declared 10 s; the function runs up to 60 s.
    outbox.subscribe('billing', {
      kind: 'ordered',
      consumer: { function: fn, timeout: Duration.seconds(10) },
    });
    expect(errorPaths(stack, 'Outbox-R3')).toEqual(['/Platform/Outbox/Subscriptions/billing/Queue/Resource']);
  });

  it("GIVEN a team's own event source mapping on a queue-only Subscription THEN R4 fires on it", () => {
    const { stack, outbox } = outboxStack();
    const sub = outbox.subscribe('analytics', { kind: 'rule', sources: ['/orders'] });
    const reader = inlineFunction(stack, 'Reader');
    reader.addEventSource(new SqsEventSource(sub.queue));
    expect(errorPaths(stack)).toEqual([pathOf(l1(reader, lambda.CfnEventSourceMapping))]);
  });

  it('GIVEN an aspect added after the Outbox that shortens every visibility timeout THEN R3 sees the change', () => {
    const { app, stack, outbox } = outboxStack();
    outbox.subscribe('billing', {
      kind: 'ordered',
      eventTypes: ['A'],
      consumer: { function: inlineFunction(stack, 'BillingFn') },
    });
    Aspects.of(app).add({
      visit: (node) => {
        if (node instanceof sqs.CfnQueue) node.visibilityTimeout = 1;
      },
    });
    expect(errorPaths(stack, 'Outbox-R3')).toEqual(['/Platform/Outbox/Subscriptions/billing/Queue/Resource']);
  });

  it('GIVEN an Outbox with ordered, tracked, rule and queue-only subscriptions THEN no rule fires', () => {
    const { stack, outbox } = outboxStack();
    outbox.subscribe('billing', {
      kind: 'ordered',
      eventTypePrefixes: ['com.example.orders.'],
      tracked: { eventTypes: ['com.example.orders.OrderPlaced'] },
      consumer: { function: inlineFunction(stack, 'BillingFn') },
    });
    outbox.subscribe('notifications', {
      kind: 'rule',
      sources: ['/orders'],
      maxEventAge: Duration.hours(2),
      consumer: { function: inlineFunction(stack, 'NotifyFn'), timeout: Duration.seconds(20) },
    });
    outbox.subscribe('shipping', {
      kind: 'rule',
      eventTypes: ['OrderPlaced'],
      tracked: { eventTypes: ['OrderPlaced'] },
      consumer: { function: inlineFunction(stack, 'ShippingFn') },
    });
    outbox.subscribe('analytics', { kind: 'ordered' });
    expect(errorPaths(stack)).toEqual([]);
  });

  it('GIVEN the demo OrdersStack THEN no rule fires', () => {
    const { stack } = synthOrdersStack();
    expect(errorPaths(stack)).toEqual([]);
  });
});
