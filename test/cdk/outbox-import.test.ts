import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../lib/index.ts';
import { importedRuleConsumer, inlineFunction, NO_BUNDLING } from './stack-fixture.ts';

describe('Outbox parameters and imports (another app subscribes)', () => {
  it('GIVEN parameterPrefix WHEN synthesized THEN the coordinates are SSM parameters under the prefix', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Platform');
    new Outbox(stack, 'Outbox', { eventBus: true, parameterPrefix: '/shop/outbox' });
    const template = Template.fromStack(stack);
    for (const name of ['table-arn', 'topic-arn', 'bus-arn', 'dedup-table-arn', 'alarm-topic-arn']) {
      template.hasResourceProperties('AWS::SSM::Parameter', { Name: `/shop/outbox/${name}`, Type: 'String' });
    }
  });

  it('GIVEN an invalid prefix THEN synthesis says what a prefix must look like', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Platform');
    expect(() => new Outbox(stack, 'Outbox', { parameterPrefix: 'shop/outbox/' })).toThrow(
      /parameterPrefix must start with "\/".*but "shop\/outbox\/" was provided/,
    );
  });

  it('GIVEN fromParameters WHEN a rule subscription with a consumer is made THEN it reads only the parameters it needs and grants the consumer its own dedup keys', () => {
    const { template } = importedRuleConsumer(
      (stack) => Outbox.fromParameters(stack, 'Shop', '/shop/outbox'),
      ['/shop/orders'],
    );
    const parameterDefaults = Object.values(template.toJSON().Parameters ?? {})
      .map((p) => String((p as { Default?: string }).Default))
      .filter((name) => name.startsWith('/shop/'));
    expect(parameterDefaults.sort()).toEqual(
      [
        '/shop/outbox/alarm-topic-arn',
        '/shop/outbox/bus-arn',
        '/shop/outbox/dedup-table-arn',
        // The consumer reads claim-checked payloads (large events, on by default).
        '/shop/outbox/large-events-bucket-arn',
        '/shop/outbox/large-events-prefix',
      ].sort(),
    );
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
            Condition: {
              'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['E#analytics#*', 'S#analytics#*'] },
            },
          }),
        ]),
      },
    });
  });

  it('GIVEN fromOutboxAttributes without a topic WHEN an ordered subscription is made THEN synthesis refuses it', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Team');
    const outbox = Outbox.fromOutboxAttributes(stack, 'Shop', {
      tableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/outbox',
      dedupTableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/dedup',
      alarmTopicArn: 'arn:aws:sns:us-east-1:111111111111:alarms',
    });
    expect(() => outbox.subscribe('billing', { kind: 'ordered' })).toThrow(/needs the SNS FIFO topic/);
  });

  it('GIVEN an imported outbox WHEN a subscription is tracked THEN synthesis says tracked needs the Outbox itself', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Team');
    const outbox = Outbox.fromOutboxAttributes(stack, 'Shop', {
      tableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/outbox',
      topicArn: 'arn:aws:sns:us-east-1:111111111111:events.fifo',
      dedupTableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/dedup',
      alarmTopicArn: 'arn:aws:sns:us-east-1:111111111111:alarms',
    });
    expect(() =>
      outbox.subscribe('billing', { kind: 'ordered', tracked: { eventTypes: ['OrderPlaced'] } }),
    ).toThrow(/an imported outbox has none/);
  });

  it('GIVEN an imported outbox WHEN grantWrite THEN the writer actions on its table ARN, nothing else', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Producer');
    const outbox = Outbox.fromOutboxAttributes(stack, 'Shop', {
      tableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/outbox',
      dedupTableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/dedup',
      alarmTopicArn: 'arn:aws:sns:us-east-1:111111111111:alarms',
    });
    outbox.grantWrite(inlineFunction(stack, 'Producer'));
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: [
              'dynamodb:PutItem',
              'dynamodb:UpdateItem',
              'dynamodb:ConditionCheckItem',
              'dynamodb:GetItem',
            ],
            Resource: 'arn:aws:dynamodb:us-east-1:111111111111:table/outbox',
            Condition: {
              'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': Match.arrayWith(['ACK#*']) },
            },
          },
        ],
      },
    });
    expect(outbox.outboxTableName).toBe('outbox');
  });
});
