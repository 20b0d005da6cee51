import {
  EventBridgeClient,
  type EventBridgeClientConfig,
  ListRulesCommand,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidEventPatternError } from '../../functions/patterns/event-pattern.ts';
import {
  createLocalEventBridge,
  type DeliveryContext,
  type EventBridgeEvent,
  type LocalEventBridge,
  LocalEventBridgeConfigError,
  type LocalEventBridgeOptions,
  type LocalTarget,
  PutEventsValidationError,
} from '../../local/eventbridge/bus.ts';
import { parseJsonPath } from '../../local/eventbridge/target-input.ts';

interface Delivery {
  target: LocalTarget;
  input: unknown;
  context: DeliveryContext;
}

const running: LocalEventBridge[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((bus) => bus.stop()));
});

/** Starts a local EventBridge that records deliveries; `deliver` may be overridden. */
async function startBus(overrides: Partial<LocalEventBridgeOptions> = {}) {
  const deliveries: Delivery[] = [];
  const bus = createLocalEventBridge({
    region: 'us-east-1',
    accountId: '123456789012',
    retryBackoff: { baseDelayMs: 1, maxDelayMs: 5 },
    deliver: async (target, input, context) => {
      deliveries.push({ target, input, context });
    },
    ...overrides,
  });
  running.push(bus);
  await bus.start();
  const client = new EventBridgeClient(clientConfig(bus.url));
  return { bus, client, deliveries };
}

function clientConfig(endpoint?: string): EventBridgeClientConfig {
  return {
    ...(endpoint ? { endpoint } : {}),
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  };
}

const orderPlaced = (
  detail: Record<string, unknown> = { orderId: 'o-1', total: 250 },
): PutEventsRequestEntry => ({
  Source: 'com.example.orders',
  DetailType: 'OrderPlaced',
  Detail: JSON.stringify(detail),
});

const ordersRule = (targets: LocalTarget[], busName?: string) => ({
  name: 'orders-to-queue',
  ...(busName ? { busName } : {}),
  eventPattern: { source: ['com.example.orders'], 'detail-type': ['OrderPlaced'] },
  targets,
});

describe('local EventBridge: PutEvents over HTTP with the AWS SDK', () => {
  it('builds the full event, answers with event ids and delivers only matching events', async () => {
    const { bus, client, deliveries } = await startBus();
    const { arn } = bus.addRule(ordersRule([{ id: 'q', arn: 'arn:aws:sqs:us-east-1:123456789012:orders' }]));
    const time = new Date('2026-02-03T04:05:06.789Z');

    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            ...orderPlaced(),
            Time: time,
            Resources: ['arn:aws:dynamodb:us-east-1:123456789012:table/outbox'],
          },
          { Source: 'com.example.billing', DetailType: 'InvoiceSent', Detail: '{}' },
        ],
      }),
    );
    expect(response.FailedEntryCount).toBe(0);
    expect(response.Entries).toHaveLength(2);
    const eventId = response.Entries?.[0]?.EventId;
    expect(eventId).toMatch(/^[0-9a-f-]{36}$/);

    await bus.idle();
    expect(deliveries).toHaveLength(1);
    const delivery = deliveries[0] as Delivery;
    expect(delivery.target.id).toBe('q');
    expect(delivery.input).toEqual({
      version: '0',
      id: eventId,
      'detail-type': 'OrderPlaced',
      source: 'com.example.orders',
      account: '123456789012',
      time: '2026-02-03T04:05:06Z',
      region: 'us-east-1',
      resources: ['arn:aws:dynamodb:us-east-1:123456789012:table/outbox'],
      detail: { orderId: 'o-1', total: 250 },
    });
    expect(delivery.context).toMatchObject({
      ruleName: 'orders-to-queue',
      ruleArn: arn,
      busName: 'default',
      attempt: 1,
    });
    expect(arn).toBe('arn:aws:events:us-east-1:123456789012:rule/orders-to-queue');
    expect(bus.metrics.forRule('orders-to-queue')).toEqual({
      matched: 1,
      invocations: 1,
      delivered: 1,
      failed: 0,
      retried: 0,
      deadLettered: 0,
      deadLetterFailed: 0,
    });
  });

  it('stamps the current time when the entry has none', async () => {
    const { bus, client, deliveries } = await startBus();
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    const before = Date.now();
    await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
    await bus.idle();
    const event = deliveries[0]?.input as EventBridgeEvent;
    expect(event.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(event.time)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(event.resources).toEqual([]);
  });

  it('routes by bus name or bus ARN and keeps buses apart', async () => {
    const { bus, client, deliveries } = await startBus();
    const { arn: busArn } = bus.addBus('orders');
    expect(busArn).toBe('arn:aws:events:us-east-1:123456789012:event-bus/orders');
    const { arn: ruleArn } = bus.addRule(ordersRule([{ id: 'custom', arn: 'arn:custom' }], 'orders'));
    expect(ruleArn).toBe('arn:aws:events:us-east-1:123456789012:rule/orders/orders-to-queue');
    bus.addRule(ordersRule([{ id: 'default', arn: 'arn:default' }]));

    await client.send(
      new PutEventsCommand({
        Entries: [
          { ...orderPlaced({ n: 1 }), EventBusName: 'orders' },
          { ...orderPlaced({ n: 2 }), EventBusName: busArn },
          { ...orderPlaced({ n: 3 }) },
        ],
      }),
    );
    await bus.idle();
    const byTarget = (id: string) =>
      deliveries.filter((d) => d.target.id === id).map((d) => (d.input as EventBridgeEvent).detail.n);
    expect(byTarget('custom').sort()).toEqual([1, 2]);
    expect(byTarget('default')).toEqual([3]);
    expect(bus.metrics.forRule('orders-to-queue', 'orders').matched).toBe(2);
    expect(bus.metrics.forRule('orders-to-queue').matched).toBe(1);
    expect(
      bus.metrics
        .snapshot()
        .map((m) => `${m.busName}/${m.ruleName}:${m.delivered}`)
        .sort(),
    ).toEqual(['default/orders-to-queue:1', 'orders/orders-to-queue:2']);
  });

  it('reports bad entries per entry with FailedEntryCount and still accepts the good ones', async () => {
    const { bus, client, deliveries } = await startBus();
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          { DetailType: 'OrderPlaced', Detail: '{}' },
          { Source: 'com.example.orders', Detail: '{}' },
          { Source: 'com.example.orders', DetailType: 'OrderPlaced' },
          { Source: 'com.example.orders', DetailType: 'OrderPlaced', Detail: '{"orderId": ' },
          { Source: 'com.example.orders', DetailType: 'OrderPlaced', Detail: '["not", "an", "object"]' },
          { Source: 'aws.ec2', DetailType: 'OrderPlaced', Detail: '{}' },
          { ...orderPlaced(), EventBusName: 'no-such-bus' },
          orderPlaced({ orderId: 'ok' }),
        ],
      }),
    );
    expect(response.FailedEntryCount).toBe(7);
    const entries = response.Entries ?? [];
    expect(entries.map((e) => e.ErrorCode ?? 'OK')).toEqual([
      'InvalidArgument',
      'InvalidArgument',
      'InvalidArgument',
      'MalformedDetail',
      'MalformedDetail',
      'NotAuthorizedForSourceException',
      'ResourceNotFoundException',
      'OK',
    ]);
    expect(entries[0]?.ErrorMessage).toBe(
      'Parameter Source is not valid. Reason: Source is a required argument.',
    );
    expect(entries[1]?.ErrorMessage).toContain('Parameter DetailType is not valid');
    expect(entries[2]?.ErrorMessage).toContain('Parameter Detail is not valid');
    expect(entries[4]?.ErrorMessage).toContain('must be a JSON object');
    expect(entries[6]?.ErrorMessage).toContain('Event bus no-such-bus does not exist');
    expect(entries[7]?.EventId).toBeTruthy();
    await bus.idle();
    expect(deliveries.map((d) => (d.input as EventBridgeEvent).detail)).toEqual([{ orderId: 'ok' }]);
  });

  it('fails an entry over the 1 MB entry limit, per entry', async () => {
    const { bus, client } = await startBus();
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    const big = orderPlaced({ blob: 'x'.repeat(1024 * 1024) });
    const response = await client.send(new PutEventsCommand({ Entries: [big, orderPlaced()] }));
    expect(response.FailedEntryCount).toBe(1);
    expect(response.Entries?.[0]?.ErrorCode).toBe('InvalidArgument');
    expect(response.Entries?.[0]?.ErrorMessage).toContain('over the 1048576-byte PutEvents entry limit');
    expect(response.Entries?.[1]?.EventId).toBeTruthy();
  });

  it('rejects more than 10 entries with a ValidationException', async () => {
    const { client } = await startBus();
    const entries = Array.from({ length: 11 }, () => orderPlaced());
    const error = await client.send(new PutEventsCommand({ Entries: entries })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ValidationException');
    expect((error as Error).message).toContain('less than or equal to 10');
    expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
  });

  it('answers other operations with UnknownOperationException', async () => {
    const { client } = await startBus();
    const error = await client.send(new ListRulesCommand({})).catch((e: unknown) => e);
    expect((error as Error).name).toBe('UnknownOperationException');
    expect((error as Error).message).toContain('AWSEvents.ListRules');
  });

  it('works through AWS_ENDPOINT_URL_EVENTBRIDGE', async () => {
    const { bus, deliveries } = await startBus();
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    const previous = process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
    process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = bus.url;
    try {
      const client = new EventBridgeClient(clientConfig());
      const response = await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
      expect(response.FailedEntryCount).toBe(0);
    } finally {
      if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
      else process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = previous;
    }
    await bus.idle();
    expect(deliveries).toHaveLength(1);
  });

  it('answers PutEvents before the target is invoked to completion', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let finished = false;
    const { bus, client } = await startBus({
      deliver: async () => {
        await gate;
        finished = true;
      },
    });
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    const response = await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
    expect(response.FailedEntryCount).toBe(0);
    expect(finished).toBe(false);
    release();
    await bus.idle();
    expect(finished).toBe(true);
  });
});

describe('local EventBridge: target input', () => {
  it('applies an input transformer (AWS doc example "JSON with strings and variables")', async () => {
    const { bus, client, deliveries } = await startBus();
    bus.addRule(
      ordersRule([
        {
          id: 'transformed',
          arn: 'arn:q',
          inputTransformer: {
            inputPathsMap: {
              order: '$.detail.orderId',
              total: '$.detail.total',
              first: '$.resources[0]',
              none: '$.detail.nope',
            },
            inputTemplate:
              '{"order": <order>, "label": "order \\"<order>\\" costs <total>", "total": <total>, ' +
              '"first": <first>, "none": <none>, "rule": <aws.events.rule-name>, "id": "<aws.events.event.id>"}',
          },
        },
        {
          id: 'string',
          arn: 'arn:q',
          inputTransformer: { inputPathsMap: { o: '$.detail.orderId' }, inputTemplate: '"order <o> placed"' },
        },
        { id: 'path', arn: 'arn:q', inputPath: '$.detail' },
        { id: 'constant', arn: 'arn:q', input: '{"fixed": true}' },
      ]),
    );
    await client.send(new PutEventsCommand({ Entries: [{ ...orderPlaced(), Resources: ['arn:r1'] }] }));
    await bus.idle();
    const byTarget = Object.fromEntries(deliveries.map((d) => [d.target.id, d.input]));
    expect(byTarget.transformed).toEqual({
      order: 'o-1',
      label: 'order "o-1" costs 250',
      total: 250,
      first: 'arn:r1',
      none: null,
      rule: 'orders-to-queue',
      // Not a predefined variable: left as written.
      id: '<aws.events.event.id>',
    });
    expect(byTarget.string).toBe('order o-1 placed');
    expect(byTarget.path).toEqual({ orderId: 'o-1', total: 250 });
    expect(byTarget.constant).toEqual({ fixed: true });
  });

  it('passes the whole event through <aws.events.event>', async () => {
    const { bus, client, deliveries } = await startBus();
    bus.addRule(
      ordersRule([
        { id: 't', arn: 'arn:q', inputTransformer: { inputTemplate: '{"wrapped": <aws.events.event>}' } },
      ]),
    );
    await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
    await bus.idle();
    const input = deliveries[0]?.input as { wrapped: EventBridgeEvent };
    expect(input.wrapped.source).toBe('com.example.orders');
    expect(input.wrapped.id).toBe(deliveries[0]?.context.event.id);
  });

  it.each([
    ['$', []],
    ['$.detail.order-id', ['detail', 'order-id']],
    ['$.resources[1]', ['resources', 1]],
    ["$.detail['a.b']", ['detail', 'a.b']],
    ['detail', undefined],
    ['$.', undefined],
    ['$.a[x]', undefined],
  ])('parses the JSON path %s', (path, expected) => {
    expect(parseJsonPath(path)).toEqual(expected);
  });
});

describe('local EventBridge: retries and dead-letter queue', () => {
  it('retries per the retry policy, then sends the original event to the DLQ', async () => {
    const attempts: number[] = [];
    const deadLetters: Array<{ arn: string; event: EventBridgeEvent; error: unknown }> = [];
    const deliveryErrors: number[] = [];
    const { bus, client } = await startBus({
      deliver: async (_target, _input, context) => {
        attempts.push(context.attempt);
        throw new Error(`queue unavailable (attempt ${context.attempt})`);
      },
      deliverToDeadLetter: async (arn, event, error) => {
        deadLetters.push({ arn, event, error });
      },
      onDeliveryError: (_error, context) => deliveryErrors.push(context.attempt),
    });
    bus.addRule(
      ordersRule([
        {
          id: 'flaky',
          arn: 'arn:q',
          inputPath: '$.detail',
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 60 },
          deadLetterArn: 'arn:aws:sqs:us-east-1:123456789012:orders-dlq',
        },
      ]),
    );
    const response = await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
    expect(response.FailedEntryCount).toBe(0);
    await bus.idle();

    expect(attempts).toEqual([1, 2, 3]);
    expect(deliveryErrors).toEqual([1, 2, 3]);
    expect(deadLetters).toHaveLength(1);
    const dead = deadLetters[0];
    expect(dead?.arn).toBe('arn:aws:sqs:us-east-1:123456789012:orders-dlq');
    expect(dead?.event.id).toBe(response.Entries?.[0]?.EventId);
    expect(dead?.event.detail).toEqual({ orderId: 'o-1', total: 250 });
    expect(dead?.error).toEqual(new Error('queue unavailable (attempt 3)'));
    expect(bus.metrics.forRule('orders-to-queue')).toEqual({
      matched: 1,
      invocations: 1,
      delivered: 0,
      failed: 1,
      retried: 2,
      deadLettered: 1,
      deadLetterFailed: 0,
    });
  });

  it('counts a success after retries as delivered', async () => {
    let calls = 0;
    const { bus, client } = await startBus({
      deliver: async () => {
        calls++;
        if (calls < 3) throw new Error('throttled');
      },
    });
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q', retryPolicy: { maximumRetryAttempts: 5 } }]));
    await client.send(new PutEventsCommand({ Entries: [orderPlaced()] }));
    await bus.idle();
    expect(calls).toBe(3);
    expect(bus.metrics.forRule('orders-to-queue')).toMatchObject({
      delivered: 1,
      failed: 0,
      retried: 2,
      invocations: 1,
    });
  });

  it('drops the event without a DLQ and counts a failed DLQ hand-off', async () => {
    const { bus } = await startBus({
      deliver: async () => {
        throw new Error('down');
      },
      deliverToDeadLetter: async () => {
        throw new Error('dlq down too');
      },
    });
    bus.addRule({
      name: 'no-dlq',
      eventPattern: { source: ['com.example.orders'] },
      targets: [{ id: 'a', arn: 'arn:a', retryPolicy: { maximumRetryAttempts: 0 } }],
    });
    bus.addRule({
      name: 'broken-dlq',
      eventPattern: { source: ['com.example.orders'] },
      targets: [
        { id: 'b', arn: 'arn:b', retryPolicy: { maximumRetryAttempts: 0 }, deadLetterArn: 'arn:dlq' },
      ],
    });
    const result = bus.putEvents([{ Source: 'com.example.orders', DetailType: 'X', Detail: '{}' }]);
    expect(result.FailedEntryCount).toBe(0);
    await bus.idle();
    expect(bus.metrics.forRule('no-dlq')).toMatchObject({
      failed: 1,
      retried: 0,
      deadLettered: 0,
      deadLetterFailed: 0,
    });
    expect(bus.metrics.forRule('broken-dlq')).toMatchObject({
      failed: 1,
      deadLettered: 0,
      deadLetterFailed: 1,
    });
  });

  it('stop() cancels pending retries instead of waiting for them', async () => {
    const { bus } = await startBus({
      retryBackoff: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      deliver: async () => {
        throw new Error('down');
      },
    });
    bus.addRule(ordersRule([{ id: 'q', arn: 'arn:q' }]));
    bus.putEvents([{ Source: 'com.example.orders', DetailType: 'OrderPlaced', Detail: '{}' }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    await bus.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(bus.metrics.forRule('orders-to-queue')).toMatchObject({ retried: 1, failed: 0 });
  });
});

describe('local EventBridge: configuration errors', () => {
  it('validates rules and targets when they are added', async () => {
    const { bus } = await startBus();
    expect(() => bus.addRule({ name: 'r', eventPattern: { source: 'x' }, targets: [] })).toThrow(
      InvalidEventPatternError,
    );
    expect(() =>
      bus.addRule({ name: 'r', busName: 'nope', eventPattern: { source: ['x'] }, targets: [] }),
    ).toThrow(/bus "nope" does not exist; call addBus first/);
    const bad: Array<[LocalTarget, RegExp]> = [
      [{ id: 't', arn: 'a', deadLetterArn: 'arn:dlq' }, /no deliverToDeadLetter option/],
      [{ id: 't', arn: 'a', inputPath: 'detail' }, /inputPath "detail" is not a valid JSON path/],
      [
        { id: 't', arn: 'a', input: '{', inputPath: '$' },
        /only one of input, inputPath and inputTransformer/,
      ],
      [{ id: 't', arn: 'a', input: '{' }, /input must be valid JSON text/],
      [
        { id: 't', arn: 'a', retryPolicy: { maximumRetryAttempts: 186 } },
        /maximumRetryAttempts must be an integer 0-185/,
      ],
      [
        { id: 't', arn: 'a', retryPolicy: { maximumEventAgeInSeconds: 59 } },
        /maximumEventAgeInSeconds must be an integer 60-86400/,
      ],
      [
        {
          id: 't',
          arn: 'a',
          inputTransformer: { inputPathsMap: { 'aws.events.x': '$' }, inputTemplate: '<x>' },
        },
        /reserved aws.events. name/,
      ],
    ];
    for (const [target, message] of bad) {
      expect(() => bus.addRule({ name: 'r', eventPattern: { source: ['x'] }, targets: [target] })).toThrow(
        message,
      );
      expect(() => bus.addRule({ name: 'r', eventPattern: { source: ['x'] }, targets: [target] })).toThrow(
        LocalEventBridgeConfigError,
      );
    }
    expect(() =>
      bus.addRule({
        name: 'r',
        eventPattern: { source: ['x'] },
        targets: [
          { id: 'a', arn: 'a' },
          { id: 'a', arn: 'b' },
        ],
      }),
    ).toThrow(/duplicate target id "a"/);
  });

  it('throws PutEventsValidationError from the programmatic putEvents', async () => {
    const { bus } = await startBus();
    expect(() => bus.putEvents([])).toThrow(PutEventsValidationError);
    expect(() => bus.putEvents([])).toThrow(/greater than or equal to 1/);
  });

  it('replaces a rule that is added again under the same name', async () => {
    const { bus, deliveries } = await startBus();
    bus.addRule({ name: 'r', eventPattern: { source: ['a'] }, targets: [{ id: 't', arn: 'x' }] });
    bus.addRule({ name: 'r', eventPattern: { source: ['b'] }, targets: [{ id: 't', arn: 'x' }] });
    bus.putEvents([
      { Source: 'a', DetailType: 'X', Detail: '{}' },
      { Source: 'b', DetailType: 'X', Detail: '{}' },
    ]);
    await bus.idle();
    expect(deliveries.map((d) => (d.input as EventBridgeEvent).source)).toEqual(['b']);
  });
});
