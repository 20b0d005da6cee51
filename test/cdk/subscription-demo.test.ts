import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OutboxStack } from '../../lib/outbox-stack.ts';
import { nagErrors, synthOutboxStack } from './stack-fixture.ts';

describe('demo stack subscriptions', () => {
  let template: Template;
  let stack: OutboxStack;
  beforeAll(() => {
    ({ template, stack } = synthOutboxStack());
  });

  it("subscribes billing's FIFO queue to the relay's SNS FIFO topic with raw delivery and a filter policy", () => {
    const topicId = stack.getLogicalId(stack.relay.topic?.node.defaultChild as never);
    const queueId = stack.getLogicalId(stack.subscriptions.billing?.queue.node.defaultChild as never);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: topicId },
      Endpoint: { 'Fn::GetAtt': [queueId, 'Arn'] },
      RawMessageDelivery: true,
      FilterPolicy: { type: [{ prefix: 'com.example.orders.' }] },
    });
  });

  it("routes notifications from the relay's bus through a rule to a standard queue", () => {
    const busId = stack.getLogicalId(stack.relay.bus?.node.defaultChild as never);
    const queueId = stack.getLogicalId(stack.subscriptions.notifications?.queue.node.defaultChild as never);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: busId },
      EventPattern: Match.objectLike({ source: ['/demo/orders'] }),
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [queueId, 'Arn'] }, InputPath: '$.detail' })],
    });
  });

  it('runs both consumers from functions/subscribers with ReportBatchItemFailures', () => {
    for (const sub of [stack.subscriptions.billing, stack.subscriptions.notifications]) {
      const queueId = stack.getLogicalId(sub?.queue.node.defaultChild as never);
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    }
    expect(stack.subscriptions.billing?.consumer).toBeDefined();
    expect(stack.subscriptions.notifications?.consumer).toBeDefined();
  });

  it('adds no unsuppressed cdk-nag errors in the subscriptions and their tables', () => {
    expect(nagErrors(stack).filter((e) => /\/(Messaging|Charges|NotificationSink)\//.test(e))).toEqual([]);
  });
});
