import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutboxConflictError, OutboxValidationError } from '../../functions/runtime/errors.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();

describe('OutboxWriter against DynamoDB Local', () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;
  const ordersTable = 'orders';

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint());
    await outbox.client.send(
      new CreateTableCommand({
        TableName: ordersTable,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'orderId', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
      }),
    );
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
  });

  async function outboxRecords(aggregateKey: string) {
    const page = await outbox.doc.send(
      new QueryCommand({
        TableName: outbox.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :evt)',
        ExpressionAttributeValues: { ':pk': aggregateKey, ':evt': 'EVT#' },
        ConsistentRead: true,
      }),
    );
    return page.Items ?? [];
  }

  it('commits a business item and two events together; the stream shows INSERTs with consecutive sequences', async () => {
    const result = await writer.transact({
      aggregate: { key: 'order#A', expectedVersion: 0 },
      writes: [{ Put: { TableName: ordersTable, Item: { orderId: 'A', state: 'PLACED' } } }],
      events: [
        { type: 'OrderPlaced', data: { orderId: 'A' } },
        { type: 'OrderPriced', data: { orderId: 'A', cents: 100 } },
      ],
    });
    const order = await outbox.doc.send(new GetCommand({ TableName: ordersTable, Key: { orderId: 'A' } }));
    expect(order.Item?.state).toBe('PLACED');

    const inserts = (await readStream(endpoint(), outbox.streamArn))
      .filter((r) => r.eventName === 'INSERT')
      .map((r) => unmarshall(r.dynamodb?.NewImage as never))
      .filter((image) => image.pk === 'order#A' && image.sk !== 'HEAD');
    expect(inserts.map((i) => i.sequence).sort()).toEqual([1, 2]);
    expect(inserts.map((i) => i.status)).toEqual(['READY', 'READY']);
    const envelopes = inserts.map((i) => JSON.parse(i.envelope as string));
    expect(envelopes.map((e) => e.id).sort()).toEqual(result.events.map((e) => e.id).sort());
  });

  it('a failing business condition leaves neither the business item nor any outbox record', async () => {
    const error = await writer
      .transact({
        aggregate: { key: 'order#B', expectedVersion: 0 },
        writes: [
          { Put: { TableName: ordersTable, Item: { orderId: 'B' } } },
          {
            ConditionCheck: {
              TableName: ordersTable,
              Key: { orderId: 'does-not-exist' },
              ConditionExpression: 'attribute_exists(orderId)',
            },
          },
        ],
        events: [{ type: 'OrderPlaced', data: { orderId: 'B' } }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxConflictError);
    expect((error as OutboxConflictError).reasons.map((r) => [r.kind, r.inputIndex])).toEqual([
      ['business-write', 1],
    ]);
    const order = await outbox.doc.send(
      new GetCommand({ TableName: ordersTable, Key: { orderId: 'B' }, ConsistentRead: true }),
    );
    expect(order.Item).toBeUndefined();
    expect(await outboxRecords('order#B')).toEqual([]);
    expect(await writer.currentVersion('order#B')).toBe(0);
  });

  it('two writers racing on the same aggregate version: exactly one commits, the other gets a conflict', async () => {
    await writer.transact({
      aggregate: { key: 'order#C', expectedVersion: 0 },
      events: [{ type: 'Created', data: {} }],
    });
    const other = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    const outcomes = await Promise.allSettled([
      writer.transact({
        aggregate: { key: 'order#C', expectedVersion: 1 },
        events: [{ type: 'Paid', data: {} }],
      }),
      other.transact({
        aggregate: { key: 'order#C', expectedVersion: 1 },
        events: [{ type: 'Cancelled', data: {} }],
      }),
    ]);
    const fulfilled = outcomes.filter((o) => o.status === 'fulfilled');
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    const reason = (rejected[0] as PromiseRejectedResult).reason;
    // DynamoDB reports the loser either as a failed condition or as a transaction conflict (retryable).
    expect(reason instanceof OutboxConflictError ? reason.isVersionConflict : reason.retryable).toBe(true);
    const records = await outboxRecords('order#C');
    expect(records.map((r) => r.sequence)).toEqual([1, 2]);
    expect(await writer.currentVersion('order#C')).toBe(2);
  });

  it('a stale version after the race is a version conflict and writes nothing', async () => {
    const error = await writer
      .transact({ aggregate: { key: 'order#C', expectedVersion: 1 }, events: [{ type: 'Late', data: {} }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxConflictError);
    expect((error as OutboxConflictError).isVersionConflict).toBe(true);
    expect((await outboxRecords('order#C')).map((r) => r.type)).not.toContain('Late');
  });

  it('a transaction whose last entry fails at run time is cancelled whole: no partial write', async () => {
    await outbox.doc.send(
      new CreateTableCommand({
        TableName: 'counters',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    await outbox.doc.send(new PutCommand({ TableName: 'counters', Item: { id: 'c', n: 'not-a-number' } }));
    const error = await writer
      .transact({
        aggregate: { key: 'order#D', expectedVersion: 0 },
        writes: [
          { Put: { TableName: ordersTable, Item: { orderId: 'D' } } },
          // Adding to a string fails inside DynamoDB, after the earlier entries were accepted.
          {
            Update: {
              TableName: 'counters',
              Key: { id: 'c' },
              UpdateExpression: 'SET n = n + :one',
              ExpressionAttributeValues: { ':one': 1 },
            },
          },
        ],
        events: [{ type: 'OrderPlaced', data: {} }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const order = await outbox.doc.send(
      new GetCommand({ TableName: ordersTable, Key: { orderId: 'D' }, ConsistentRead: true }),
    );
    expect(order.Item).toBeUndefined();
    expect(await outboxRecords('order#D')).toEqual([]);
    expect(await writer.currentVersion('order#D')).toBe(0);
  });

  it.each([
    ['a missing type', { type: '', data: {} }],
    ['a missing source', { type: 'T', data: {}, source: '' }],
    ['non-serialisable data', { type: 'T', data: { when: () => 0 } }],
    ['an oversized envelope', { type: 'T', data: 'x'.repeat(300_000) }],
  ])('rejects %s before any write', async (_name, event) => {
    const key = `order#invalid-${_name}`;
    const error = await writer
      .transact({
        aggregate: { key, expectedVersion: 0 },
        writes: [{ Put: { TableName: ordersTable, Item: { orderId: key } } }],
        events: [event],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxValidationError);
    const order = await outbox.doc.send(
      new GetCommand({ TableName: ordersTable, Key: { orderId: key }, ConsistentRead: true }),
    );
    expect(order.Item).toBeUndefined();
    expect(await outboxRecords(key)).toEqual([]);
  });
});

describe('prepare / confirm / cancel against DynamoDB Local', () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;
  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'prepared');
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/payments', client: outbox.doc });
  });

  async function item(pk: string, sk: string) {
    return (
      await outbox.doc.send(
        new GetCommand({ TableName: outbox.tableName, Key: { pk, sk }, ConsistentRead: true }),
      )
    ).Item;
  }

  it('prepare stores a PREPARED message that confirm turns into one READY event with the next sequence', async () => {
    await writer.transact({ aggregate: { key: 'pay#1' }, events: [{ type: 'Started', data: {} }] });
    const message = await writer.prepare('pay#1', { type: 'Charged', data: { cents: 5 } });
    expect((await item('pay#1', `PRE#${message.id}`))?.status).toBe('PREPARED');
    expect(await writer.currentVersion('pay#1')).toBe(1);

    const first = await writer.confirm(message);
    const again = await writer.confirm(message);
    expect(first).toEqual({ id: message.id, sequence: 2, confirmedNow: true });
    expect(again).toEqual({ id: message.id, sequence: 2, confirmedNow: false });
    const event = await item('pay#1', 'EVT#000000000002');
    expect(event?.status).toBe('READY');
    expect(JSON.parse(event?.envelope as string)).toMatchObject({
      id: message.id,
      sequence: 2,
      type: 'Charged',
    });
    const prepared = await item('pay#1', `PRE#${message.id}`);
    expect(prepared).toMatchObject({ status: 'CONFIRMED', confirmedSequence: 2 });
    expect(prepared?.pendingShard).toBeUndefined();
    expect(await writer.currentVersion('pay#1')).toBe(2);
  });

  it('cancel rolls a prepared message back: no event, no sequence used, confirm refused', async () => {
    const message = await writer.prepare('pay#2', { type: 'Charged', data: {} });
    await writer.cancel(message, 'card declined');
    await writer.cancel(message);
    expect(await item('pay#2', `PRE#${message.id}`)).toMatchObject({
      status: 'CANCELLED',
      lastError: 'card declined',
    });
    await expect(writer.confirm(message)).rejects.toBeInstanceOf(OutboxConflictError);
    expect(await writer.currentVersion('pay#2')).toBe(0);
    expect(await item('pay#2', 'EVT#000000000001')).toBeUndefined();
  });
});
