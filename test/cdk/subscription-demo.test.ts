import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { logicalId, nagErrors, synthOrdersStack } from './stack-fixture.ts';

describe('demo stack subscriptions', () => {
  let template: Template;
  let stack: OrdersStack;
  beforeAll(() => {
    ({ template, stack } = synthOrdersStack());
  });

  it("subscribes billing's FIFO queue to the relay's SNS FIFO topic with raw delivery and a filter policy", () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      TopicArn: { Ref: logicalId(stack.outbox.relay.topic) },
      Endpoint: { 'Fn::GetAtt': [logicalId(stack.billing.queue), 'Arn'] },
      RawMessageDelivery: true,
      FilterPolicy: { type: [{ prefix: 'com.example.orders.' }] },
    });
  });

  it("routes notifications from the relay's bus through a rule to a standard queue", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: logicalId(stack.outbox.relay.bus) },
      EventPattern: Match.objectLike({ source: ['/demo/orders'] }),
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(stack.notifications.queue), 'Arn'] },
          InputPath: '$.detail',
        }),
      ],
    });
  });

  it('runs both consumers (examples/orders/billing.ts and notifications.ts) with ReportBatchItemFailures', () => {
    for (const sub of [stack.billing, stack.notifications]) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(sub.queue), 'Arn'] },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    }
    expect(stack.billing.consumer).toBeDefined();
    expect(stack.notifications.consumer).toBeDefined();
  });

  it('adds no unsuppressed cdk-nag errors in the subscriptions, the dedup table and the demo tables', () => {
    expect(
      nagErrors(stack).filter((e) =>
        /\/(Outbox\/Subscriptions|Outbox\/DedupTable|Charges|NotificationSink)\//.test(e),
      ),
    ).toEqual([]);
  });
});
