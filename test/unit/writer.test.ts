import { DynamoDBClient, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutboxConfigurationError,
  OutboxConflictError,
  OutboxRetryableError,
  OutboxValidationError,
} from '../../functions/runtime/errors.ts';
import { OutboxStatus } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client, now: () => NOW });
const orderPut = {
  Put: { TableName: 'orders', Item: { orderId: '1' }, ConditionExpression: 'attribute_not_exists(orderId)' },
};

function cancelled(codes: string[]): TransactionCanceledException {
  return new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: codes.map((Code) => ({ Code })),
  });
}

afterEach(() => ddb.reset());

describe('OutboxWriter.transact', () => {
  it('commits business writes, the aggregate head and every event in one TransactWriteItems', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const result = await writer.transact({
      aggregate: { key: 'order#1', expectedVersion: 4 },
      writes: [orderPut],
      events: [
        { type: 'OrderPlaced', data: { a: 1 } },
        { type: 'OrderPaid', data: { a: 2 } },
      ],
    });
    const calls = ddb.commandCalls(TransactWriteCommand);
    expect(calls).toHaveLength(1);
    const items = calls[0]?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(4);
    expect(items[0]).toEqual(orderPut);
    expect(items[1]?.Update).toMatchObject({
      Key: { pk: 'order#1', sk: 'HEAD' },
      ConditionExpression: 'lastSequence = :expected',
      ExpressionAttributeValues: { ':expected': 4, ':next': 6 },
    });
    const records = items.slice(2).map((i) => i.Put?.Item);
    expect(records.map((r) => [r?.sk, r?.sequence, r?.status])).toEqual([
      ['EVT#000000000005', 5, OutboxStatus.Ready],
      ['EVT#000000000006', 6, OutboxStatus.Ready],
    ]);
    expect(JSON.parse(records[0]?.envelope as string)).toEqual(result.events[0]);
    expect(records[0]).toMatchObject({ pendingDueAt: NOW, createdAt: NOW, attempts: 0 });
    expect(records[0]?.pendingShard).toBe(`P#${result.events[0]?.id.slice(-1)}`);
    expect(result.version).toBe(6);
  });

  it('uses attribute_not_exists for a new aggregate (expected version 0)', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    await writer.transact({
      aggregate: { key: 'order#1', expectedVersion: 0 },
      events: [{ type: 'T', data: null }],
    });
    const head = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Update;
    expect(head?.ConditionExpression).toBe('attribute_not_exists(lastSequence)');
  });

  it('schedules an event with deliverAt in the future and indexes it by its due time', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const deliverAt = NOW + 30 * 60_000;
    await writer.transact({
      aggregate: { key: 'a', expectedVersion: 0 },
      events: [{ type: 'T', data: {}, deliverAt }],
    });
    const record = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[1]?.Put?.Item;
    expect(record).toMatchObject({ status: OutboxStatus.Scheduled, deliverAt, pendingDueAt: deliverAt });
  });

  it('reads the head and appends when no expected version is given, retrying a lost race', async () => {
    ddb
      .on(GetCommand)
      .resolvesOnce({ Item: { lastSequence: 2 } })
      .resolvesOnce({ Item: { lastSequence: 3 } });
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled(['ConditionalCheckFailed', 'None']))
      .resolves({});
    const result = await writer.transact({ aggregate: { key: 'a' }, events: [{ type: 'T', data: {} }] });
    expect(result.version).toBe(4);
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input.ConsistentRead).toBe(true);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(2);
  });

  it('reports a failed business condition as a conflict naming the entry', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled(['None', 'ConditionalCheckFailed', 'None', 'None']));
    const error = await writer
      .transact({
        aggregate: { key: 'order#1', expectedVersion: 0 },
        writes: [
          orderPut,
          { ConditionCheck: { TableName: 'customers', Key: { id: 'c' }, ConditionExpression: 'x' } },
        ],
        events: [{ type: 'T', data: {} }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxConflictError);
    const conflict = error as OutboxConflictError;
    expect(conflict.reasons).toEqual([
      { transactIndex: 1, inputIndex: 1, kind: 'business-write', code: 'ConditionalCheckFailed' },
    ]);
    expect(conflict.isVersionConflict).toBe(false);
    expect(conflict.retryable).toBe(false);
    expect(conflict.message).toMatch(/business-write\[1\] ConditionalCheckFailed/);
  });

  it('reports a stale expected version as a version conflict and does not retry', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled(['ConditionalCheckFailed', 'None']));
    const error = await writer
      .transact({ aggregate: { key: 'a', expectedVersion: 3 }, events: [{ type: 'T', data: {} }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxConflictError);
    expect((error as OutboxConflictError).isVersionConflict).toBe(true);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it.each([
    ['a transaction conflict', cancelled(['TransactionConflict', 'None'])],
    ['throttling inside the transaction', cancelled(['None', 'ThrottlingError'])],
    [
      'a throttling exception',
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    ],
  ])('surfaces %s as retryable', async (_name, failure) => {
    ddb.on(TransactWriteCommand).rejects(failure);
    const error = await writer
      .transact({ aggregate: { key: 'a', expectedVersion: 0 }, events: [{ type: 'T', data: {} }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxRetryableError);
    expect((error as OutboxRetryableError).retryable).toBe(true);
    expect((error as OutboxRetryableError).cause).toBe(failure);
  });

  it.each([
    ['no aggregate key', { aggregate: { key: '' }, events: [{ type: 'T', data: {} }] }, 'aggregate.key'],
    ['no events', { aggregate: { key: 'a', expectedVersion: 0 }, events: [] }, 'events'],
    [
      'an event without type',
      { aggregate: { key: 'a', expectedVersion: 0 }, events: [{ data: {} }] },
      'events[0].type',
    ],
    [
      'non-serialisable data',
      { aggregate: { key: 'a', expectedVersion: 0 }, events: [{ type: 'T', data: { x: undefined } }] },
      'events[0].data.x',
    ],
    [
      'an oversized envelope',
      { aggregate: { key: 'a', expectedVersion: 0 }, events: [{ type: 'T', data: 'x'.repeat(262_144) }] },
      'events[0]',
    ],
    [
      'more than 100 items',
      {
        aggregate: { key: 'a', expectedVersion: 0 },
        writes: Array(99).fill(orderPut),
        events: [{ type: 'T', data: {} }],
      },
      'transaction',
    ],
    [
      'a write with two operations',
      {
        aggregate: { key: 'a', expectedVersion: 0 },
        writes: [{ ...orderPut, Delete: {} }],
        events: [{ type: 'T', data: {} }],
      },
      'writes[0]',
    ],
    [
      'a negative version',
      { aggregate: { key: 'a', expectedVersion: -1 }, events: [{ type: 'T', data: {} }] },
      'aggregate.expectedVersion',
    ],
  ])('rejects %s before any call to DynamoDB', async (_name, input, field) => {
    const error = await writer.transact(input as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxValidationError);
    expect((error as OutboxValidationError).field).toBe(field);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('refuses to start without a table name, saying how to configure one', () => {
    const saved = process.env.OUTBOX_TABLE_NAME;
    delete process.env.OUTBOX_TABLE_NAME;
    try {
      expect(() => new OutboxWriter({ client })).toThrow(OutboxConfigurationError);
      expect(() => new OutboxWriter({ client })).toThrow(/OUTBOX_TABLE_NAME/);
    } finally {
      if (saved !== undefined) process.env.OUTBOX_TABLE_NAME = saved;
    }
  });

  it('accepts a size limit up to 1 MB and refuses more', async () => {
    expect(() => new OutboxWriter({ tableName: 't', client, maxEventBytes: 2 * 1024 * 1024 })).toThrow(
      /1 MB/,
    );
    ddb.on(TransactWriteCommand).resolves({});
    // SNS takes 256 KB at most, so large events need targets without it.
    const big = new OutboxWriter({
      tableName: 't',
      source: '/s',
      client,
      maxEventBytes: 1024 * 1024,
      targets: ['sqs', 'eventbridge'],
    });
    await big.transact({
      aggregate: { key: 'a', expectedVersion: 0 },
      events: [{ type: 'T', data: 'x'.repeat(500_000) }],
    });
    const record = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[1]?.Put?.Item;
    // Over 300 KB the envelope is gzipped so the item fits DynamoDB's 400 KB limit.
    expect(record?.envelope).toBeUndefined();
    expect((record?.envelopeGzip as Buffer | undefined)?.length ?? Infinity).toBeLessThan(400 * 1024);
  });
});
