import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutboxOutcomeUnknownError, OutboxRetryableError } from '../../functions/runtime/errors.ts';
import { OutboxWriter, type TransactInput } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();

type Failure = () => Error;
const timeout: Failure = () =>
  Object.assign(new Error('Connection timed out after 3000 ms'), { name: 'TimeoutError', $metadata: {} });
const connectionReset: Failure = () =>
  Object.assign(new Error('socket hang up'), { name: 'Error', code: 'ECONNRESET', $metadata: {} });
const internalServerError: Failure = () =>
  Object.assign(new Error('Internal server error'), {
    name: 'InternalServerError',
    $fault: 'server',
    $metadata: { httpStatusCode: 500 },
  });

/**
 * A DocumentClient whose calls reach DynamoDB Local, but the next `lose.transactions` TransactWriteItems responses
 * (`lose.puts` PutItem responses, and then `lose.reads` GetItem responses) are replaced by `failure`: the write happened, the caller never hears so.
 */
function clientLosingResponses(failure: Failure) {
  const lose = { transactions: 0, reads: 0, puts: 0 };
  let lostCommits = 0;
  const base = new DynamoDBClient({ ...localAwsConfig(endpoint()), maxAttempts: 1 });
  base.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const input = args.input as Record<string, unknown>;
      if ('TransactItems' in input && lose.transactions > 0) {
        lose.transactions--;
        lostCommits++;
        throw failure();
      }
      if ('Item' in input && lose.puts > 0) {
        lose.puts--;
        lostCommits++;
        throw failure();
      }
      // Reads after a lost commit (the writer checking what happened), not the version read before it.
      if ('Key' in input && lostCommits > 0 && lose.reads > 0) {
        lose.reads--;
        throw failure();
      }
      return result;
    },
    // Outside the SDK's own retries: the writer itself sees the lost response.
    { step: 'initialize', name: 'loseResponsesAfterTheRequest' },
  );
  const doc = DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
  return { doc, lose };
}

describe('an ambiguous failure after TransactWriteItems committed (#10.3), against DynamoDB Local', () => {
  let outbox: LocalOutbox;
  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'ambiguous');
  });

  function writerOn(doc: DynamoDBDocumentClient): OutboxWriter {
    return new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: doc });
  }

  async function storedEventIds(aggregateKey: string): Promise<string[]> {
    const page = await outbox.doc.send(
      new QueryCommand({
        TableName: outbox.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :evt)',
        ExpressionAttributeValues: { ':pk': aggregateKey, ':evt': 'EVT#' },
        ConsistentRead: true,
      }),
    );
    return (page.Items ?? []).map((item) => item.id as string);
  }

  const twoEvents = (key: string): TransactInput => ({
    aggregate: { key },
    events: [
      { type: 'OrderPlaced', data: { key } },
      { type: 'OrderPriced', data: { key, cents: 100 } },
    ],
  });

  it.each([
    ['a timeout', timeout],
    ['a connection reset', connectionReset],
    ['a 500', internalServerError],
  ])(
    'append mode: %s after the commit, then the caller retries: the events are stored once',
    async (name, failure) => {
      const key = `order#lost-${name}`;
      const { doc, lose } = clientLosingResponses(failure);
      const writer = writerOn(doc);
      lose.transactions = 1;

      // What a caller does with the error it gets: retry when told it may.
      const call = () => writer.transact(twoEvents(key));
      const result = await call().catch((error: unknown) => {
        if ((error as { retryable?: boolean }).retryable) return call();
        throw error;
      });

      const stored = await storedEventIds(key);
      expect(stored).toHaveLength(2);
      expect(stored.sort()).toEqual(result.events.map((e) => e.id).sort());
      expect(result.version).toBe(2);
      expect(await writer.currentVersion(key)).toBe(2);
    },
  );

  it('expected-version mode: a lost response is not reported as a version conflict with itself', async () => {
    const key = 'order#lost-expected';
    const { doc, lose } = clientLosingResponses(timeout);
    const writer = writerOn(doc);
    lose.transactions = 1;

    const result = await writer.transact({ ...twoEvents(key), aggregate: { key, expectedVersion: 0 } });

    expect(result.version).toBe(2);
    expect((await storedEventIds(key)).sort()).toEqual(result.events.map((e) => e.id).sort());
  });

  it('with a requestId, a retry after "outcome unknown" returns the first commit instead of writing again', async () => {
    const key = 'order#lost-request';
    const { doc, lose } = clientLosingResponses(timeout);
    const writer = writerOn(doc);
    const input: TransactInput = { ...twoEvents(key), requestId: 'place-order-7f3a' };
    // Every response of the first call is lost, including the writer's own read-back.
    lose.transactions = 100;
    lose.reads = 100;

    const error = await writer.transact(input).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OutboxOutcomeUnknownError);
    expect(error).not.toBeInstanceOf(OutboxRetryableError);
    const unknown = error as OutboxOutcomeUnknownError;
    expect(unknown.retryable).toBe(true);
    expect(unknown.requestId).toBe('place-order-7f3a');
    expect(unknown.message).toMatch(/may have been committed/);
    const committedIds = await storedEventIds(key);
    expect(committedIds).toHaveLength(2);
    expect([...unknown.eventIds].sort()).toEqual([...committedIds].sort());

    lose.transactions = 0;
    lose.reads = 0;
    const retried = await writer.transact(input);

    expect(retried.replayed).toBe(true);
    expect(retried.version).toBe(2);
    expect(retried.events.map((e) => e.id).sort()).toEqual([...committedIds].sort());
    expect((await storedEventIds(key)).sort()).toEqual([...committedIds].sort());
    // Later calls without the requestId append as usual.
    expect((await writer.transact(twoEvents(key))).version).toBe(4);
  });

  it('without a requestId, "outcome unknown" says a blind retry is not safe and names the event ids', async () => {
    const key = 'order#lost-no-request';
    const { doc, lose } = clientLosingResponses(connectionReset);
    const writer = writerOn(doc);
    lose.transactions = 100;
    lose.reads = 100;

    const error = await writer.transact(twoEvents(key)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OutboxOutcomeUnknownError);
    const unknown = error as OutboxOutcomeUnknownError;
    expect(unknown.retryable).toBe(false);
    expect(unknown.requestId).toBeUndefined();
    expect(unknown.aggregateKey).toBe(key);
    expect(unknown.message).toContain(unknown.eventIds[0]);
    expect(unknown.message).toMatch(/requestId/);
    expect(await storedEventIds(key)).toHaveLength(2);
  });

  it('prepare: a lost response, then the caller retries with the same event id: one prepared message', async () => {
    const key = 'pay#lost-prepare';
    const { doc, lose } = clientLosingResponses(timeout);
    const writer = writerOn(doc);
    const event = { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', type: 'Charged', data: { cents: 5 } };
    lose.puts = 1;

    const call = () => writer.prepare(key, event);
    const message = await call().catch((error: unknown) => {
      if ((error as { retryable?: boolean }).retryable) return call();
      throw error;
    });
    const again = await call();

    expect(message).toEqual({ aggregateKey: key, id: event.id });
    expect(again).toEqual(message);
    const page = await outbox.doc.send(
      new QueryCommand({
        TableName: outbox.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': key },
        ConsistentRead: true,
      }),
    );
    expect(page.Items?.map((i) => [i.sk, i.status])).toEqual([[`PRE#${event.id}`, 'PREPARED']]);
  });

  it('prepare refuses an event id already prepared for a different event', async () => {
    const key = 'pay#prepare-reused-id';
    const writer = writerOn(outbox.doc);
    const id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c';
    await writer.prepare(key, { id, type: 'Charged', data: {} });
    await expect(writer.prepare(key, { id, type: 'Refunded', data: {} })).rejects.toThrow(
      /already prepared for a different event/,
    );
  });
});
