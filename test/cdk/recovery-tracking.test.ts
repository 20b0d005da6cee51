import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { Outbox, type OutboxRelayTuning } from '../../lib/outbox.ts';
import type { SubscriptionProps } from '../../lib/subscription.ts';
import { logicalId, NO_BUNDLING, roleStatements, synthOrdersStack } from './stack-fixture.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

function envOf(template: Template, id: string): Record<string, unknown> {
  const fn = template.toJSON().Resources[id] as Resource;
  return (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

describe('tracked mode in the demo stack (billing tracks OrderPlaced)', () => {
  let template: Template;
  let stack: OrdersStack;
  beforeAll(() => {
    ({ template, stack } = synthOrdersStack());
  });

  it('tells the relay and the recovery function which subscriber acknowledges which type, and the ack timeout', () => {
    const expected = {
      'Fn::Join': [
        '',
        [
          '{"com.example.orders.OrderPlaced":[{"name":"billing","queueUrl":"',
          { Ref: logicalId(stack.billing.queue) },
          '","fifo":true}]}',
        ],
      ],
    };
    for (const fn of [stack.outbox.relay.fn, stack.outbox.recovery.fn]) {
      const env = envOf(template, logicalId(fn));
      expect(env.OUTBOX_TRACKED_SUBSCRIBERS).toEqual(expected);
      expect(env.OUTBOX_ACK_TIMEOUT_SECONDS).toBe('300');
    }
  });

  it("gives billing's consumer the outbox table and its tracked types, and UpdateItem on its own ack items' ack attributes only (#11.2)", () => {
    const billing = stack.billing.consumer;
    if (!billing) throw new Error('no billing consumer');
    const tableId = logicalId(stack.outbox.table.table);
    expect(envOf(template, logicalId(billing))).toMatchObject({
      OUTBOX_ACK_TABLE_NAME: { Ref: tableId },
      OUTBOX_ACK_EVENT_TYPES: 'com.example.orders.OrderPlaced',
    });
    const onOutbox = roleStatements(template, billing.role).filter(
      (s) => JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }),
    );
    expect(onOutbox).toEqual([
      {
        Action: 'dynamodb:UpdateItem',
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
        Condition: {
          // Only billing's own acks: never another subscriber's, never an event record.
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACK#*#billing'] },
          // Only what an acknowledgement changes: not the queue URL, the event key or an envelope.
          'ForAllValues:StringEquals': {
            'dynamodb:Attributes': [
              'pk',
              'sk',
              'status',
              'ackedAt',
              'pendingShard',
              'pendingDueAt',
              'expiresAt',
              'retainFor',
            ],
          },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
        },
      },
    ]);
  });

  it('leaves the untracked notifications consumer without ack settings or outbox access', () => {
    const notifications = stack.notifications.consumer;
    if (!notifications) throw new Error('no notifications consumer');
    const env = envOf(template, logicalId(notifications));
    expect(env.OUTBOX_ACK_TABLE_NAME).toBeUndefined();
    expect(stack.notifications.trackedEventTypes).toEqual([]);
    const tableArn = JSON.stringify({ 'Fn::GetAtt': [logicalId(stack.outbox.table.table), 'Arn'] });
    expect(roleStatements(template, notifications.role).map((s) => JSON.stringify(s.Resource))).not.toContain(
      tableArn,
    );
  });
});

describe('Subscription `tracked` validation', () => {
  /** GIVEN an outbox with a topic and a bus (no bundling: nothing here has code of its own). */
  function outboxStack(options: { relay?: OutboxRelayTuning } = {}) {
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Tracked');
    const outbox = new Outbox(stack, 'Outbox', {
      eventBus: true,
      table: { removalPolicy: RemovalPolicy.DESTROY },
      ...(options.relay ? { relay: options.relay } : {}),
    });
    return { stack, outbox, relay: outbox.relay };
  }

  it("exposes the relay's topic and bus as the outbox's, for subscriptions to subscribe to", () => {
    const { outbox, relay } = outboxStack();
    expect(outbox.topic).toBeDefined();
    expect(outbox.bus).toBeDefined();
    expect(outbox.topic).toBe(relay.topic);
    expect(outbox.bus).toBe(relay.bus);
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
    const { outbox } = outboxStack();
    expect(() => outbox.subscribe('team', props)).toThrow(message);
  });

  it('needs the relay to track', () => {
    // GIVEN an outbox imported from another app (it has no relay)
    const { stack } = outboxStack();
    const imported = Outbox.fromOutboxAttributes(stack, 'Imported', {
      tableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/outbox',
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:events.fifo',
      dedupTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/dedup',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
    });
    expect(imported.relay).toBeUndefined();
    // WHEN a tracked subscription is made on it THEN it is rejected
    expect(() => imported.subscribe('team', { kind: 'ordered', tracked: { eventTypes: ['a.A'] } })).toThrow(
      /a tracked subscription needs the relay/,
    );
  });

  it('registers a tracked rule subscription (standard queue) with the relay and a custom ack timeout', () => {
    const { outbox, relay, stack } = outboxStack({ relay: { ackTimeout: Duration.minutes(2) } });
    const sub = outbox.subscribe('audit', {
      kind: 'rule',
      eventTypes: ['a.A'],
      tracked: { eventTypes: ['a.A'] },
    });
    expect(relay.trackedDeliveries.map((t) => [t.name, t.eventTypes, t.queue.fifo])).toEqual([
      ['audit', ['a.A'], false],
    ]);
    const env = envOf(Template.fromStack(stack), logicalId(relay.fn));
    expect(env.OUTBOX_ACK_TIMEOUT_SECONDS).toBe('120');
    expect(sub.trackedEventTypes).toEqual(['a.A']);
  });

  it.each([
    [
      'a rule subscription on sources',
      { kind: 'rule', eventTypes: ['a.A'], sources: ['/orders'] },
      /sources was provided/,
    ],
    [
      'a rule subscription with an event pattern on the source',
      { kind: 'rule', eventPattern: { source: ['/orders'] } },
      /eventPattern\.source was provided/,
    ],
    [
      'an ordered subscription with a filter policy on the source',
      {
        kind: 'ordered',
        filterPolicy: { source: sns.SubscriptionFilter.stringFilter({ allowlist: ['/orders'] }) },
      },
      /filterPolicy\.source was provided/,
    ],
  ] as const)(
    'refuses tracking %s: acknowledgements are expected by type only (#10.2)',
    (_name, filter, message) => {
      // GIVEN a subscription whose filter rejects some events of a tracked type
      const { outbox } = outboxStack();
      // THEN synthesis refuses it, instead of the relay expecting acks the queue never gets
      expect(() =>
        outbox.subscribe('audit', { ...(filter as SubscriptionProps), tracked: { eventTypes: ['a.A'] } }),
      ).toThrow(message);
    },
  );

  it('rejects tracking one subscriber twice and an ack timeout under 10 s', () => {
    const { relay, outbox } = outboxStack();
    const sub = outbox.subscribe('once', { kind: 'ordered', tracked: { eventTypes: ['a.A'] } });
    expect(() => relay.trackDelivery({ name: 'once', queue: sub.queue, eventTypes: ['a.A'] })).toThrow(
      /already tracked/,
    );
    expect(() => outboxStack({ relay: { ackTimeout: Duration.seconds(5) } })).toThrow(
      /ackTimeout must be whole seconds from 10 s to 7 days, but 5 s/,
    );
  });
});
