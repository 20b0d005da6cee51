import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { OutboxValidationError } from '../../functions/runtime/errors.ts';
import { isReservedPartitionKey } from '../../functions/runtime/record-format.ts';
import { type OutboxEventInput, OutboxWriter } from '../../functions/runtime/writer.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client, now: () => NOW });

afterEach(() => ddb.reset());

/** The validation error `transact` and `prepare` throw for one event, before any call to DynamoDB. */
async function rejectionOf(event: unknown, aggregateKey = 'order#1'): Promise<OutboxValidationError[]> {
  ddb.on(PutCommand).resolves({});
  const viaTransact = await writer
    .transact({ aggregate: { key: aggregateKey, expectedVersion: 0 }, events: [event as OutboxEventInput] })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  const viaPrepare = await writer.prepare(aggregateKey, event as OutboxEventInput).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(viaTransact).toBeInstanceOf(OutboxValidationError);
  expect(viaPrepare).toBeInstanceOf(OutboxValidationError);
  expect(ddb.calls()).toHaveLength(0);
  return [viaTransact, viaPrepare] as OutboxValidationError[];
}

describe('OutboxWriter: small validation gaps (#11.8)', () => {
  it.each([
    ['an invalid Date', new Date(Number.NaN)],
    ['a Date past year 9999', new Date(Date.UTC(10_000, 0, 1))],
    ['"1", which Date.parse reads as a year', '1'],
    ['a date without a time', '2026-11-22'],
    ['a time without a zone', '2026-11-22T12:00:00'],
    ['a number', 1_795_363_200_000],
  ])('refuses time = %s as not RFC 3339', async (_name, time) => {
    const errors = await rejectionOf({ type: 'T', data: {}, time });
    expect(errors.map((e) => e.field)).toEqual(['events[0].time', 'event.time']);
    expect(errors[0]?.message).toMatch(/RFC 3339/);
  });

  it('keeps an RFC 3339 time with an offset as given', () => {
    const { events } = writer.buildTransaction(
      {
        aggregate: { key: 'order#1' },
        events: [{ type: 'T', data: {}, time: '2026-11-22T13:00:00.5+01:00' }],
      },
      0,
    );
    expect(events[0]?.time).toBe('2026-11-22T13:00:00.5+01:00');
  });

  it.each([
    ['subject', 42],
    ['subject', { id: 1 }],
    ['subject', ''],
    ['dataschema', 7],
    ['dataschema', ['https://example.com/schema']],
    ['dataschema', ''],
  ])('refuses a %s of %j (must be a non-empty string)', async (field, value) => {
    const errors = await rejectionOf({ type: 'T', data: {}, [field]: value });
    expect(errors.map((e) => e.field)).toEqual([`events[0].${field}`, `event.${field}`]);
  });

  it('refuses an invalid Date inside data instead of publishing null', async () => {
    const errors = await rejectionOf({ type: 'T', data: { order: { paidAt: new Date(Number.NaN) } } });
    expect(errors.map((e) => e.field)).toEqual(['events[0].data.order.paidAt', 'event.data.order.paidAt']);
  });

  it('prepare() checks the aggregate key length as transact() does', async () => {
    const errors = await rejectionOf({ type: 'T', data: {} }, `order#${'x'.repeat(1024)}`);
    expect(errors.map((e) => e.field)).toEqual(['aggregate.key', 'aggregateKey']);
    expect(errors[1]?.message).toMatch(/1024 bytes/);
  });
});

describe('OutboxWriter: text that SNS cannot carry in a message attribute (#11.4)', () => {
  const loneHigh = '\ud83d';
  const loneLow = '\ude00';
  it.each([
    ['type', 'a lone high surrogate', { type: `Order${loneHigh}Placed`, data: {} }],
    ['type', 'a NUL', { type: 'Order\u0000Placed', data: {} }],
    ['source', 'a lone low surrogate', { type: 'T', source: `/orders${loneLow}`, data: {} }],
    ['source', 'a newline', { type: 'T', source: '/orders\n', data: {} }],
    ['subject', 'a lone surrogate', { type: 'T', subject: `1${loneHigh}`, data: {} }],
    ['subject', 'a C1 control character', { type: 'T', subject: '1\u0085', data: {} }],
    ['subject', 'DEL', { type: 'T', subject: '1\u007f', data: {} }],
    ['type', 'the non-character U+FFFF', { type: 'T\uffff', data: {} }],
  ])('refuses a %s with %s, naming the field', async (field, _what, event) => {
    const errors = await rejectionOf(event);
    expect(errors.map((e) => e.field)).toEqual([`events[0].${field}`, `event.${field}`]);
    expect(errors[0]?.message).toMatch(/control character|surrogate|non-character/);
  });

  it.each([
    ['a lone surrogate', `order#${loneLow}1`],
    ['a control character', 'order#\u00011'],
  ])('refuses an aggregate key with %s', async (_what, key) => {
    const errors = await rejectionOf({ type: 'T', data: {} }, key);
    expect(errors.map((e) => e.field)).toEqual(['aggregate.key', 'aggregateKey']);
  });

  it('accepts well-formed non-ASCII text, including surrogate pairs', () => {
    const { events } = writer.buildTransaction(
      {
        aggregate: { key: 'commande#é😀' },
        events: [{ type: 'Bestellung.Aufgegeben', subject: 'Zoë 😀', data: { note: 'a\u0000b' } }],
      },
      0,
    );
    expect(events[0]).toMatchObject({ partitionkey: 'commande#é😀', subject: 'Zoë 😀' });
  });
});

describe('OutboxWriter: aggregate keys in the table’s reserved key space (#11.2)', () => {
  it.each([
    ['an acknowledgement partition', 'ACK#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'],
    ['the bare ACK# prefix', 'ACK#'],
    ['the head sort key', 'HEAD'],
    ['a head-shaped key', 'HEAD#order'],
    ['an event sort key', 'EVT#000000000001'],
    ['a prepared-message sort key', 'PRE#0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'],
    ['a pending index shard', 'P#a'],
    ['a quarantine index shard', 'Q#3'],
  ])('refuses %s (%s)', async (_what, key) => {
    const errors = await rejectionOf({ type: 'T', data: {} }, key);
    expect(errors.map((e) => e.field)).toEqual(['aggregate.key', 'aggregateKey']);
    expect(errors[0]?.message).toMatch(/reserved/);
  });

  it('agrees with isReservedPartitionKey, and lets ordinary keys through', async () => {
    for (const key of ['order#1', 'ack#1', 'HEADQUARTERS', 'PRE-1', 'Q1', 'pay#P#1', 'ACK']) {
      expect(isReservedPartitionKey(key)).toBe(false);
      expect(
        writer.buildTransaction({ aggregate: { key }, events: [{ type: 'T', data: {} }] }, 0).events,
      ).toHaveLength(1);
    }
    expect(isReservedPartitionKey('ACK#x')).toBe(true);
  });
});
