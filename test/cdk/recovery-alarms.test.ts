import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { logicalId, synthOrdersStack } from './stack-fixture.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

describe('recovery alarms in the demo stack', () => {
  let template: Template;
  let stack: OrdersStack;
  let topicRef: { Ref: string };
  beforeAll(() => {
    ({ template, stack } = synthOrdersStack());
    topicRef = { Ref: logicalId(stack.outbox.alarms.topic) };
  });

  // The `service` dimension is the recovery construct's path: the demo's recovery is now inside the Outbox.
  const recoveryDimensions = [{ Name: 'service', Value: 'Test/Outbox/Recovery' }];

  it('pages "the outbox is stuck" when the oldest unpublished record is late by more than 5 minutes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'ServerlessOutbox',
      MetricName: 'OldestUnpublishedAgeSeconds',
      Dimensions: recoveryDimensions,
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 300,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmDescription: Match.stringLikeRegexp('The outbox is stuck'),
      AlarmActions: [topicRef],
      OKActions: [topicRef],
    });
  });

  it.each([
    ['the sweeper quarantines a record', 'Quarantined'],
    ['a tracked acknowledgement fails', 'AcksFailed'],
    ['a check-back answers unknown', 'CheckbackUnknown'],
  ])('alarms when %s', (_when, metricName) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'ServerlessOutbox',
      MetricName: metricName,
      Dimensions: recoveryDimensions,
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [topicRef],
      OKActions: [topicRef],
    });
  });

  it('alarms when a recovery run fails', () => {
    const fnId = logicalId(stack.outbox.recovery.fn);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
      Threshold: 1,
      AlarmActions: [topicRef],
    });
  });

  it('sends every alarm of the stack (relay, subscriptions, recovery) to the one alarm topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([topicRef]);
      expect(alarm.Properties.OKActions).toEqual([topicRef]);
    }
  });
});

describe('AlarmTopic subscriptions from CDK context', () => {
  function alarmStack(context: Record<string, unknown>, props = {}) {
    const app = new App({ context });
    const stack = new Stack(app, 'Alarms');
    new AlarmTopic(stack, 'Alarms', props);
    return Template.fromStack(stack);
  }

  it('subscribes every address of outbox:alarmEmails and the outbox:pagerUrl endpoint', () => {
    const template = alarmStack({
      'outbox:alarmEmails': 'oncall@example.com, lead@example.com',
      'outbox:pagerUrl': 'https://events.pagerduty.example/integration/abc',
    });
    const subscriptions = Object.values(template.findResources('AWS::SNS::Subscription')) as Resource[];
    expect(subscriptions.map((s) => [s.Properties.Protocol, s.Properties.Endpoint]).sort()).toEqual([
      ['email', 'lead@example.com'],
      ['email', 'oncall@example.com'],
      ['https', 'https://events.pagerduty.example/integration/abc'],
    ]);
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: Match.anyValue(),
      DisplayName: 'Outbox alarms',
    });
  });

  it('subscribes nobody without context, and props win over context', () => {
    expect(Object.keys(alarmStack({}).findResources('AWS::SNS::Subscription'))).toEqual([]);
    const template = alarmStack(
      { 'outbox:alarmEmails': 'context@example.com' },
      { emails: ['prop@example.com'] },
    );
    const subscriptions = Object.values(template.findResources('AWS::SNS::Subscription')) as Resource[];
    expect(subscriptions.map((s) => s.Properties.Endpoint)).toEqual(['prop@example.com']);
  });

  it('lets CloudWatch use the topic key, so alarm notifications can be published', () => {
    alarmStack({}).hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Principal: { Service: 'cloudwatch.amazonaws.com' },
          }),
        ]),
      },
    });
  });
});

describe('AlarmTopic paging path (CloudWatch → topic → pager)', () => {
  /** Only alarms of this account may use the topic: the confused-deputy conditions on both policies. */
  const fromThisAccountsAlarms = {
    StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    ArnLike: {
      'aws:SourceArn': {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':cloudwatch:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':alarm:*',
          ],
        ],
      },
    },
  };

  function pagingStack() {
    const stack = new Stack(new App(), 'Paging');
    const alarms = new AlarmTopic(stack, 'Alarms');
    return { alarms, template: Template.fromStack(stack) };
  }

  it("lets cloudwatch.amazonaws.com publish to the topic, only for this account's alarms", () => {
    // GIVEN an alarm topic created by AlarmTopic
    const { alarms, template } = pagingStack();
    // THEN the topic policy (which replaces SNS's default one) allows CloudWatch to publish, with both conditions
    const topicRef = { Ref: logicalId(alarms.topic) };
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [topicRef],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: 'CloudWatchAlarmsOfThisAccountPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Resource: topicRef,
            Condition: fromThisAccountsAlarms,
          },
        ]),
      },
    });
  });

  it("lets cloudwatch.amazonaws.com use the topic's key, only for this account's alarms", () => {
    // GIVEN an alarm topic created by AlarmTopic (encrypted with its own key)
    const { alarms, template } = pagingStack();
    const keyId = logicalId(alarms.node.findChild('Key'));
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    // THEN the key policy lets CloudWatch encrypt the notification, under the same conditions
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Sid: 'CloudWatchAlarmsOfThisAccountEncrypt',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: fromThisAccountsAlarms,
          },
        ]),
      },
    });
  });
});
