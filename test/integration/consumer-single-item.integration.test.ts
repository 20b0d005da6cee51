import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BusinessConditionFailedError,
  ConsumerMetric,
  CountingMetrics,
  createConsumer,
  InvalidWritesError,
  SequenceGapError,
  SingleItemConflictError,
  type SingleItemConsumerOptions,
} from '../../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

const dynamoEndpoint = useDynamoDbLocal();
const silent = { info: () => {}, warn: () => {}, error: () => {} };

let raw: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let tables = 0;

beforeAll(() => {
  raw = new DynamoDBClient({ ...localAwsConfig(dynamoEndpoint()), maxAttempts: 1 });
  doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
});

async function createTable(): Promise<string> {
  const name = `single-item-${++tables}`;
  await raw.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    }),
  );
  return name;
}

function event(order: string, sequence: number, amount = 10): OutboxEnvelope<{ amount: number }> {
  return buildEnvelope(
    { type: 'OrderPaid', source: '/orders', data: { amount } },
    { partitionKey: `order#${order}`, sequence },
  ).envelope as OutboxEnvelope<{ amount: number }>;
}

/** A read model: one item per order, each event adds its amount and counts itself. */
async function readModel(
  overrides: Partial<SingleItemConsumerOptions<{ amount: number }>> = {},
  handleFor?: (table: string) => SingleItemConsumerOptions<{ amount: number }>['handle'],
) {
  const name = 'read-model';
  const table = await createTable();
  const metrics = new CountingMetrics();
  const consumer = createConsumer<{ amount: number }>({
    name,
    mode: 'single-item',
    client: doc,
    metrics,
    logger: silent,
    handle: (e) => ({
      Update: {
        TableName: table,
        Key: { id: e.partitionkey },
        UpdateExpression: 'ADD amountTotal :amount, applied :one SET lastType = :type',
        ExpressionAttributeValues: { ':amount': e.data.amount, ':one': 1, ':type': e.type },
      },
    }),
    ...overrides,
    ...(handleFor ? { handle: handleFor(table) } : {}),
  } as SingleItemConsumerOptions<{ amount: number }>);
  const item = async (order: string) =>
    (
      await doc.send(
        new GetCommand({ TableName: table, Key: { id: `order#${order}` }, ConsistentRead: true }),
      )
    ).Item;
  return { table, consumer, metrics, item };
}

describe('single-item mode: the cursor lives on the effect item, one conditional write per event (DynamoDB Local)', () => {
  it('applies a redelivered event once, also when both deliveries race; needs no dedup table', async () => {
    const { consumer, metrics, item } = await readModel();
    const first = event('1', 1, 25);
    expect(await consumer.process(first)).toEqual({ status: 'applied', eventId: first.id });
    expect(await consumer.process(first)).toEqual({ status: 'duplicate', eventId: first.id });
    const second = event('1', 2, 5);
    const raced = await Promise.all([consumer.process(second), consumer.process(second)]);
    expect(raced.map((o) => o.status).sort()).toEqual(['applied', 'duplicate']);
    expect(await item('1')).toMatchObject({
      amountTotal: 30,
      applied: 2,
      outboxSequence: 2,
      outboxEventId: second.id,
      outboxStream: 'read-model#order#1',
    });
    expect(metrics.counts.get(ConsumerMetric.Processed)).toBe(2);
    expect(metrics.counts.get(ConsumerMetric.DuplicatesSuppressed)).toBe(2);
  });

  it('refuses an event ahead of the next sequence (onGap retry) and skips an older one as stale', async () => {
    const { consumer, item } = await readModel();
    await consumer.process(event('2', 1));
    await expect(consumer.process(event('2', 3))).rejects.toBeInstanceOf(SequenceGapError);
    expect(await item('2')).toMatchObject({ applied: 1, outboxSequence: 1 });
    await consumer.process(event('2', 2));
    await consumer.process(event('2', 3));
    expect(await consumer.process(event('2', 2, 99))).toMatchObject({ status: 'stale', lastSequence: 3 });
    expect(await item('2')).toMatchObject({ applied: 3, amountTotal: 30, outboxSequence: 3 });
    // The first event of an aggregate must be sequence 1 unless gaps are accepted.
    await expect(consumer.process(event('3', 2))).rejects.toBeInstanceOf(SequenceGapError);
    expect(await item('3')).toBeUndefined();
  });

  it("onGap 'accept' applies past a gap, reports the skipped sequences, and still skips older events", async () => {
    const { consumer, item } = await readModel({ onGap: 'accept' });
    expect(await consumer.process(event('4', 2))).toMatchObject({ status: 'applied', skippedSequences: 1 });
    expect(await consumer.process(event('4', 5))).toMatchObject({ status: 'applied', skippedSequences: 2 });
    expect(await consumer.process(event('4', 3))).toMatchObject({ status: 'stale', lastSequence: 5 });
    expect(await item('4')).toMatchObject({ applied: 2, outboxSequence: 5 });
  });

  it('processes a FIFO batch with a redelivered message: every effect once, in order', async () => {
    const { consumer, item } = await readModel();
    const events = [event('5', 1, 1), event('5', 2, 2), event('5', 2, 2), event('5', 3, 3)];
    events[2] = events[1] as OutboxEnvelope<{ amount: number }>;
    const records = events.map(
      (e, i) =>
        ({
          messageId: `m${i}`,
          body: JSON.stringify(e),
          attributes: { MessageGroupId: e.partitionkey },
          eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q.fifo',
        }) as unknown as SQSRecord,
    );
    const result = await consumer.processBatch({ Records: records });
    expect(result.batchItemFailures).toEqual([]);
    expect(result.results.map((r) => r.status)).toEqual(['applied', 'applied', 'duplicate', 'applied']);
    expect(await item('5')).toMatchObject({ amountTotal: 6, applied: 3, outboxSequence: 3 });
  });

  it('takes a Put: the replaced item keeps its cursor, a redelivery is refused', async () => {
    const table = await createTable();
    const consumer = createConsumer<{ amount: number }>({
      name: 'snapshot',
      mode: 'single-item',
      client: doc,
      metrics: new CountingMetrics(),
      logger: silent,
      handle: (e) => ({ Put: { TableName: table, Item: { id: e.partitionkey, amount: e.data.amount } } }),
    });
    const first = event('6', 1, 7);
    await consumer.process(first);
    expect(await consumer.process(first)).toMatchObject({ status: 'duplicate' });
    await expect(consumer.process(event('6', 3))).rejects.toBeInstanceOf(SequenceGapError);
    await consumer.process(event('6', 2, 8));
    const { Item } = await doc.send(new GetCommand({ TableName: table, Key: { id: 'order#6' } }));
    expect(Item).toMatchObject({ amount: 8, outboxSequence: 2 });
  });

  it('moves the cursor with an Update that changes nothing else', async () => {
    const { table, consumer, item } = await readModel();
    await consumer.process(event('7', 1));
    const skipping = createConsumer({
      name: 'read-model',
      mode: 'single-item',
      client: doc,
      metrics: new CountingMetrics(),
      logger: silent,
      handle: (e) => ({ Update: { TableName: table, Key: { id: e.partitionkey } } }),
    });
    expect(await skipping.process(event('7', 2))).toMatchObject({ status: 'applied' });
    expect(await item('7')).toMatchObject({ applied: 1, outboxSequence: 2 });
    await consumer.process(event('7', 3));
    expect(await item('7')).toMatchObject({ applied: 2, outboxSequence: 3 });
  });

  it("fails with the handler's own condition, leaving the cursor where it was", async () => {
    const { table, consumer, item } = await readModel({}, (table) => (e) => ({
      Update: {
        TableName: table,
        Key: { id: e.partitionkey },
        UpdateExpression: 'ADD applied :one',
        ConditionExpression: 'attribute_not_exists(closed)',
        ExpressionAttributeValues: { ':one': 1 },
      },
    }));
    await consumer.process(event('8', 1));
    await doc.send(
      new PutCommand({
        TableName: table,
        Item: { ...(await item('8')), closed: true },
      }),
    );
    await expect(consumer.process(event('8', 2))).rejects.toBeInstanceOf(BusinessConditionFailedError);
    expect(await item('8')).toMatchObject({ applied: 1, outboxSequence: 1 });
  });

  it('refuses an item that follows another aggregate or another consumer (SingleItemConflictError)', async () => {
    const table = await createTable();
    const options = {
      mode: 'single-item' as const,
      client: doc,
      metrics: new CountingMetrics(),
      logger: silent,
      // Misuse: every aggregate onto one item.
      handle: () => ({
        Update: {
          TableName: table,
          Key: { id: 'totals' },
          UpdateExpression: 'ADD applied :one',
          ExpressionAttributeValues: { ':one': 1 },
        },
      }),
    };
    const totals = createConsumer({ name: 'totals', ...options });
    await totals.process(event('9', 1));
    await totals.process(event('9', 2));
    await expect(totals.process(event('10', 1))).rejects.toBeInstanceOf(SingleItemConflictError);
    await expect(totals.process(event('10', 3))).rejects.toBeInstanceOf(SingleItemConflictError);
    const other = createConsumer({ name: 'other', ...options });
    await expect(other.process(event('9', 3))).rejects.toBeInstanceOf(SingleItemConflictError);
    const { Item } = await doc.send(new GetCommand({ TableName: table, Key: { id: 'totals' } }));
    expect(Item).toMatchObject({ applied: 2, outboxSequence: 2, outboxStream: 'totals#order#9' });
  });

  it.each([
    ['a list of writes', (t: string) => [{ Put: { TableName: t, Item: { id: 'x' } } }], /not a list/],
    ['a Delete', (t: string) => ({ Delete: { TableName: t, Key: { id: 'x' } } }), /Delete would remove/],
    ['nothing', () => undefined, /exactly one \{ Put \} or \{ Update \}/],
    [
      'a write of the cursor',
      (t: string) => ({
        Update: {
          TableName: t,
          Key: { id: 'x' },
          UpdateExpression: 'SET outboxSequence = :n',
          ExpressionAttributeValues: { ':n': 9 },
        },
      }),
      /outboxStream, outboxSequence, outboxEventId/,
    ],
    [
      'a Put carrying the cursor',
      (t: string) => ({ Put: { TableName: t, Item: { id: 'x', outboxEventId: 'forged' } } }),
      /which the consumer keeps on the item/,
    ],
  ])('rejects %s with an InvalidWritesError and writes nothing', async (_, handle, message) => {
    const table = await createTable();
    const consumer = createConsumer({
      name: 'misuse',
      mode: 'single-item',
      client: doc,
      metrics: new CountingMetrics(),
      logger: silent,
      handle: (() => handle(table)) as never,
    });
    const error = await consumer.process(event('11', 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidWritesError);
    expect((error as Error).message).toMatch(message);
    const { Item } = await doc.send(new GetCommand({ TableName: table, Key: { id: 'x' } }));
    expect(Item).toBeUndefined();
  });
});
