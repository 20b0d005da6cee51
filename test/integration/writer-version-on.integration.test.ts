import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutboxConflictError, OutboxValidationError } from '../../functions/runtime/errors.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const ORDERS = 'orders-versioned';

describe("writer aggregate.versionOn: the version on the caller's business item, no head (DynamoDB Local)", () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'outbox-versioned');
    await outbox.client.send(
      new CreateTableCommand({
        TableName: ORDERS,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'orderId', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
      }),
    );
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
  });

  const place = (id: string, state: string, expectedVersion?: number) =>
    writer.transact({
      aggregate: {
        key: `order#${id}`,
        versionOn: { TableName: ORDERS, Key: { orderId: id } },
        ...(expectedVersion === undefined ? {} : { expectedVersion }),
      },
      writes: [{ Put: { TableName: ORDERS, Item: { orderId: id, state } } }],
      events: [{ type: `Order${state}`, data: { orderId: id } }],
    });

  const items = async (id: string) =>
    (
      await outbox.doc.send(
        new QueryCommand({
          TableName: outbox.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `order#${id}` },
          ConsistentRead: true,
        }),
      )
    ).Items ?? [];
  const order = async (id: string) =>
    (await outbox.doc.send(new GetCommand({ TableName: ORDERS, Key: { orderId: id }, ConsistentRead: true })))
      .Item;

  it('writes no head item: the version lives on the order, events get consecutive sequences', async () => {
    expect((await place('1', 'Placed')).version).toBe(1);
    expect((await place('1', 'Paid')).version).toBe(2);
    expect(await order('1')).toMatchObject({ state: 'Paid', outboxVersion: 2 });
    const sortKeys = (await items('1')).map((i) => i.sk);
    expect(sortKeys).not.toContain('HEAD');
    expect(sortKeys.filter((sk) => String(sk).startsWith('EVT#'))).toHaveLength(2);
  });

  it('refuses a stale expectedVersion as a version conflict, and appends concurrent writers without a gap', async () => {
    await place('2', 'Placed');
    const stale = await place('2', 'Paid', 0).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(OutboxConflictError);
    expect((stale as OutboxConflictError).isVersionConflict).toBe(true);
    const results = await Promise.allSettled([place('2', 'A'), place('2', 'B'), place('2', 'C')]);
    const versions = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.version] : []));
    const sequences = (await items('2'))
      .filter((i) => String(i.sk).startsWith('EVT#'))
      .map((i) => i.sequence);
    expect(sequences).toEqual(Array.from({ length: 1 + versions.length }, (_, i) => i + 1));
    expect((await order('2'))?.outboxVersion).toBe(sequences.length);
  });

  it("reports the caller's own failed condition as a business-write conflict, not a version conflict", async () => {
    await place('3', 'Placed');
    const error = await writer
      .transact({
        aggregate: { key: 'order#3', versionOn: { TableName: ORDERS, Key: { orderId: '3' } } },
        writes: [
          {
            Update: {
              TableName: ORDERS,
              Key: { orderId: '3' },
              UpdateExpression: 'SET #state = :paid',
              ConditionExpression: '#state = :shipped',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':paid': 'Paid', ':shipped': 'Shipped' },
            },
          },
        ],
        events: [{ type: 'OrderPaid', data: {} }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxConflictError);
    expect((error as OutboxConflictError).reasons.map((r) => r.kind)).toEqual(['business-write']);
    expect(await order('3')).toMatchObject({ state: 'Placed', outboxVersion: 1 });
  });

  it('never overwrites an event when a head-based commit of the same aggregate races in: it is refused', async () => {
    await place('4', 'Placed');
    const headBased = await writer
      .transact({ aggregate: { key: 'order#4' }, events: [{ type: 'Sneaky', data: {} }] })
      .catch((e: unknown) => e);
    expect(headBased).toBeInstanceOf(OutboxConflictError);
    const events = (await items('4')).filter((i) => String(i.sk).startsWith('EVT#'));
    expect(events.map((e) => e.type)).toEqual(['OrderPlaced']);
  });

  it('rejects a versionOn that names no Put or Update of the writes', async () => {
    await expect(
      writer.transact({
        aggregate: { key: 'order#5', versionOn: { TableName: ORDERS, Key: { orderId: 'other' } } },
        writes: [{ Put: { TableName: ORDERS, Item: { orderId: '5' } } }],
        events: [{ type: 'OrderPlaced', data: {} }],
      }),
    ).rejects.toBeInstanceOf(OutboxValidationError);
  });
});
