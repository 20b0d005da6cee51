import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BILLING_CONSUMER_NAME,
  billingWrites,
  createBillingConsumer,
  ORDER_PAID,
  ORDER_PLACED,
} from '../../examples/orders/billing.ts';
import { NotificationSink } from '../../examples/orders/notification-sink.ts';
import { createNotificationsConsumer } from '../../examples/orders/notifications.ts';
import { CountingMetrics } from '../../functions/consumer/index.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const silent = { info: () => {}, warn: () => {}, error: () => {} };
afterEach(() => ddb.reset());

const placed = buildEnvelope(
  {
    type: ORDER_PLACED,
    source: '/demo/orders',
    data: { orderId: '42', customerId: 'c-1', amountCents: 1999 },
  },
  { partitionKey: 'order#42', sequence: 1 },
).envelope;
const paid = buildEnvelope(
  { type: ORDER_PAID, source: '/demo/orders', data: { orderId: '42', amountCents: 1999 } },
  { partitionKey: 'order#42', sequence: 2 },
).envelope;
const shipped = buildEnvelope(
  { type: 'com.example.orders.OrderShipped', source: '/demo/orders', data: { orderId: '42' } },
  { partitionKey: 'order#42', sequence: 3 },
).envelope;
const ctx = (id: string) => ({ consumer: 'billing', idempotencyKey: id });

describe('billing subscriber', () => {
  it('creates the charge on OrderPlaced and appends the effect to its ledger', () => {
    expect(billingWrites(placed, ctx(placed.id), 'charges', 1234)).toEqual([
      {
        Update: {
          TableName: 'charges',
          Key: { orderId: '42' },
          UpdateExpression:
            'SET #status = :state, #ledger = list_append(if_not_exists(#ledger, :empty), :entry), customerId = :customer, amountCents = :amount, chargedAt = :time',
          ExpressionAttributeNames: { '#status': 'status', '#ledger': 'ledger' },
          ExpressionAttributeValues: {
            ':state': 'PENDING',
            ':empty': [],
            ':entry': [{ eventId: placed.id, sequence: 1, type: ORDER_PLACED, appliedAt: 1234 }],
            ':customer': 'c-1',
            ':amount': 1999,
            ':time': placed.time,
          },
        },
      },
    ]);
  });

  it.each([
    ['OrderPaid captures', () => paid, 'CAPTURED'],
    ['OrderShipped settles', () => shipped, 'SETTLED'],
  ])('%s the charge, with a ledger entry', (_name, event, state) => {
    const [write] = billingWrites(event(), ctx(event().id), 'charges', 5);
    expect(write?.Update?.ExpressionAttributeValues).toMatchObject({
      ':state': state,
      ':entry': [{ eventId: event().id, sequence: event().sequence, appliedAt: 5 }],
    });
    expect(write?.Update?.ConditionExpression).toBeUndefined();
  });

  it('writes nothing for events it does not bill', () => {
    const other = buildEnvelope(
      { type: 'com.example.orders.OrderRenamed', source: '/demo/orders', data: {} },
      { partitionKey: 'order#42', sequence: 4 },
    ).envelope;
    expect(billingWrites(other, ctx(other.id), 'charges')).toEqual([]);
  });

  it('runs in ordered mode: the charge is committed with the per-order cursor', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const consumer = createBillingConsumer({
      chargesTableName: 'charges',
      tableName: 'dedup',
      client,
      metrics: new CountingMetrics(),
      logger: silent,
    });
    expect(consumer.name).toBe(BILLING_CONSUMER_NAME);
    expect(consumer.mode).toBe('ordered');
    await consumer.process(placed);
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items.map((i) => i.Update?.Key?.pk ?? i.Update?.TableName)).toEqual([
      'S#billing#order#42',
      'charges',
    ]);
  });

  it('refuses to start without a charges table', () => {
    delete process.env.CHARGES_TABLE_NAME;
    expect(() => createBillingConsumer({ tableName: 'dedup', client })).toThrow(
      /CHARGES_TABLE_NAME is not set/,
    );
  });
});

describe('notification sink', () => {
  it('counts every call and reports only the first as delivered', async () => {
    ddb
      .on(UpdateCommand)
      .resolvesOnce({ Attributes: { calls: 1 } })
      .resolvesOnce({ Attributes: { calls: 2 } });
    const sink = new NotificationSink({ tableName: 'sink', client, now: () => 7 });
    const request = { idempotencyKey: 'evt-1', recipient: 'c-1', template: 'OrderPlaced' };
    expect(await sink.send(request)).toEqual({ delivered: true, calls: 1 });
    expect(await sink.send(request)).toEqual({ delivered: false, calls: 2 });
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.Key).toEqual({ idempotencyKey: 'evt-1' });
    expect(input?.UpdateExpression).toMatch(/ADD calls :one/);
  });
});

describe('notifications subscriber', () => {
  it('runs in lease mode and calls the sink with the event id as idempotency key', async () => {
    const calls: unknown[] = [];
    const sink = {
      send: async (request: unknown) => {
        calls.push(request);
        return { delivered: true, calls: 1 };
      },
    } as unknown as NotificationSink;
    ddb.on(UpdateCommand).resolves({});
    ddb.onAnyCommand().resolves({});
    const consumer = createNotificationsConsumer({
      sink,
      tableName: 'dedup',
      client,
      metrics: new CountingMetrics(),
      logger: silent,
    });
    expect(consumer.mode).toBe('lease');
    await consumer.process(placed);
    expect(calls).toEqual([{ idempotencyKey: placed.id, recipient: 'c-1', template: 'OrderPlaced' }]);
  });
});

describe('Lambda entry points', () => {
  const env = {
    DEDUP_TABLE_NAME: 'dedup',
    CHARGES_TABLE_NAME: 'charges',
    NOTIFICATION_SINK_TABLE_NAME: 'sink',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  };
  const record = (body: string, groupId?: string) => ({
    messageId: 'm1',
    receiptHandle: 'r',
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 's',
      ApproximateFirstReceiveTimestamp: '0',
      ...(groupId ? { MessageGroupId: groupId } : {}),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q',
    awsRegion: 'us-east-1',
  });
  const context = { getRemainingTimeInMillis: () => 30_000 } as never;

  it.each([
    ['billing', '../../examples/orders/billing.ts', 'order#42'],
    ['notifications', '../../examples/orders/notifications.ts', undefined],
  ])(
    '%s: configured from the environment, answers with batchItemFailures',
    async (_name, modulePath, groupId) => {
      Object.assign(process.env, env);
      try {
        ddb.onAnyCommand().resolves({});
        const mod = (await import(modulePath)) as { handler: (e: unknown, c: unknown) => Promise<unknown> };
        const response = await mod.handler({ Records: [record(JSON.stringify(placed), groupId)] }, context);
        expect(response).toEqual({ batchItemFailures: [] });
        expect(ddb.calls().length).toBeGreaterThan(0);
      } finally {
        for (const key of Object.keys(env)) delete process.env[key];
      }
    },
  );
});
