import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { Messaging } from '../../lib/messaging.ts';
import { OutboxRelay, type OutboxRelayProps } from '../../lib/outbox-relay.ts';
import type { OutboxStack } from '../../lib/outbox-stack.ts';
import { OutboxTable } from '../../lib/outbox-table.ts';
import type { SubscriptionProps } from '../../lib/subscription.ts';
import { synthOutboxStack } from './stack-fixture.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

function envOf(template: Template, logicalId: string): Record<string, unknown> {
  const fn = template.toJSON().Resources[logicalId] as Resource;
  return (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

describe('tracked mode in the demo stack (billing tracks OrderPlaced)', () => {
  let template: Template;
  let stack: OutboxStack;
  beforeAll(() => {
    ({ template, stack } = synthOutboxStack());
  });

  it('tells the relay and the recovery function which subscriber acknowledges which type, and the ack timeout', () => {
    const queueId = stack.getLogicalId(stack.subscriptions.billing?.queue.node.defaultChild as never);
    const expected = {
      'Fn::Join': [
        '',
        [
          '{"com.example.orders.OrderPlaced":[{"name":"billing","queueUrl":"',
          { Ref: queueId },
          '","fifo":true}]}',
        ],
      ],
    };
    for (const fn of [stack.relay.fn, stack.recovery.fn]) {
      const env = envOf(template, stack.getLogicalId(fn.node.defaultChild as never));
      expect(env.OUTBOX_TRACKED_SUBSCRIBERS).toEqual(expected);
      expect(env.OUTBOX_ACK_TIMEOUT_SECONDS).toBe('300');
    }
  });

  it("gives billing's consumer the outbox table and its tracked types, and UpdateItem on ACK# items only", () => {
    const billing = stack.subscriptions.billing?.consumer;
    if (!billing) throw new Error('no billing consumer');
    const tableId = stack.getLogicalId(stack.outbox.table.node.defaultChild as never);
    expect(envOf(template, stack.getLogicalId(billing.node.defaultChild as never))).toMatchObject({
      OUTBOX_ACK_TABLE_NAME: { Ref: tableId },
      OUTBOX_ACK_EVENT_TYPES: 'com.example.orders.OrderPlaced',
    });
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { PolicyName: Match.stringLikeRegexp('^MessagingbillingConsumerRole') },
    }) as Record<string, Resource>;
    const onOutbox = Object.values(policies)
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      .filter((s) => JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }));
    expect(onOutbox).toEqual([
      {
        Action: 'dynamodb:UpdateItem',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACK#*'] } },
      },
    ]);
  });

  it('leaves the untracked notifications consumer without ack settings or outbox access', () => {
    const notifications = stack.subscriptions.notifications?.consumer;
    if (!notifications) throw new Error('no notifications consumer');
    const env = envOf(template, stack.getLogicalId(notifications.node.defaultChild as never));
    expect(env.OUTBOX_ACK_TABLE_NAME).toBeUndefined();
    expect(stack.subscriptions.notifications?.trackedEventTypes).toEqual([]);
  });
});

describe('Subscription `tracked` validation', () => {
  function messaging(options: { relay?: boolean; relayProps?: Partial<OutboxRelayProps> } = {}) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Tracked');
    const alarms = new AlarmTopic(stack, 'Alarms');
    const outbox = new OutboxTable(stack, 'Outbox', { removalPolicy: RemovalPolicy.DESTROY });
    const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms, eventBus: true, ...options.relayProps });
    const m = new Messaging(stack, 'M', {
      alarmTopic: alarms,
      ...(options.relay === false
        ? { ...(relay.topic ? { topic: relay.topic } : {}), ...(relay.bus ? { bus: relay.bus } : {}) }
        : { relay }),
      dedupTableRemovalPolicy: RemovalPolicy.DESTROY,
    });
    return { stack, relay, m };
  }

  it('takes the relay topic and bus when only the relay is given', () => {
    const { m, relay } = messaging();
    expect(m.topic).toBe(relay.topic);
    expect(m.bus).toBe(relay.bus);
  });

  it.each<[string, SubscriptionProps, RegExp]>([
    [
      'a type the ordered filter drops',
      { kind: 'ordered', eventTypes: ['a.A'], tracked: { eventTypes: ['b.B'] } },
      /tracked\.eventTypes must be types this subscription receives, but b\.B is filtered out/,
    ],
    [
      'a type outside the prefixes',
      { kind: 'ordered', eventTypePrefixes: ['a.'], tracked: { eventTypes: ['a.A', 'b.B'] } },
      /but b\.B is filtered out/,
    ],
    [
      'a type the rule does not match',
      { kind: 'rule', eventTypes: ['a.A'], tracked: { eventTypes: ['c.C'] } },
      /but c\.C is filtered out/,
    ],
    [
      'no types',
      { kind: 'ordered', tracked: { eventTypes: [] } },
      /tracked\.eventTypes must be a non-empty list/,
    ],
  ])('rejects %s', (_name, props, message) => {
    const { m } = messaging();
    expect(() => m.subscribe('team', props)).toThrow(message);
  });

  it('needs the relay to track', () => {
    const { m } = messaging({ relay: false });
    expect(() => m.subscribe('team', { kind: 'ordered', tracked: { eventTypes: ['a.A'] } })).toThrow(
      /a tracked subscription needs the relay/,
    );
  });

  it('registers a tracked rule subscription (standard queue) with the relay and a custom ack timeout', () => {
    const { m, relay, stack } = messaging({
      relayProps: { ackTimeout: Duration.minutes(2) },
    });
    const sub = m.subscribe('audit', {
      kind: 'rule',
      sources: ['/orders'],
      tracked: { eventTypes: ['a.A'] },
    });
    expect(relay.trackedDeliveries.map((t) => [t.name, t.eventTypes, t.queue.fifo])).toEqual([
      ['audit', ['a.A'], false],
    ]);
    const env = envOf(Template.fromStack(stack), stack.getLogicalId(relay.fn.node.defaultChild as never));
    expect(env.OUTBOX_ACK_TIMEOUT_SECONDS).toBe('120');
    expect(sub.trackedEventTypes).toEqual(['a.A']);
  });

  it('rejects tracking one subscriber twice and an ack timeout under 10 s', () => {
    const { relay, m } = messaging();
    const sub = m.subscribe('once', { kind: 'ordered', tracked: { eventTypes: ['a.A'] } });
    expect(() => relay.trackDelivery({ name: 'once', queue: sub.queue, eventTypes: ['a.A'] })).toThrow(
      /already tracked/,
    );
    expect(() =>
      messaging({
        relayProps: { ackTimeout: Duration.seconds(5) },
      }),
    ).toThrow(/ackTimeout must be whole seconds from 10 s to 7 days, but 5 s/);
  });
});
