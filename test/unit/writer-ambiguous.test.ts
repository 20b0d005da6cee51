import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OutboxOutcomeUnknownError,
  OutboxRetryableError,
  OutboxValidationError,
} from '../../functions/runtime/errors.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client });
const input = { aggregate: { key: 'order#1', expectedVersion: 0 }, events: [{ type: 'T', data: {} }] };

afterEach(() => ddb.reset());

describe('OutboxWriter: what a failed commit says (#10.3)', () => {
  it('re-sends a commit whose answer was a 500 with the same ClientRequestToken, then reports the outcome as unknown', async () => {
    const failure = Object.assign(new Error('oops'), {
      name: 'InternalServerError',
      $metadata: { httpStatusCode: 500 },
    });
    ddb.on(TransactWriteCommand).rejects(failure);
    ddb.on(GetCommand).resolves({});

    const error = await writer.transact(input).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OutboxOutcomeUnknownError);
    expect(error).not.toBeInstanceOf(OutboxRetryableError);
    expect((error as OutboxOutcomeUnknownError).retryable).toBe(false);
    expect((error as OutboxOutcomeUnknownError).cause).toBe(failure);
    const tokens = ddb.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.ClientRequestToken);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).toMatch(/^[0-9a-f-]{36}$/);
    // It looked for its first event before giving up.
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({
      Key: { pk: 'order#1', sk: 'EVT#000000000001' },
      ConsistentRead: true,
    });
  });

  it('reports throttling as "nothing was written" without re-sending', async () => {
    ddb.on(TransactWriteCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const error = await writer.transact(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxRetryableError);
    expect((error as Error).message).toMatch(/nothing was written/);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it.each([
    ['empty', ''],
    ['with a space', 'place order 1'],
    ['too long', 'x'.repeat(129)],
  ])('refuses a requestId that is %s', async (_name, requestId) => {
    const error = await writer.transact({ ...input, requestId }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxValidationError);
    expect((error as OutboxValidationError).field).toBe('requestId');
  });

  it('puts the request record right after the head and counts it in the 100-item limit', () => {
    const { command } = writer.buildTransaction({ ...input, requestId: 'cmd-1' }, 0);
    expect(command.TransactItems?.[1]?.Put?.Item).toMatchObject({
      pk: 'order#1',
      sk: 'REQ#cmd-1',
      firstSequence: 1,
      version: 1,
    });
    const writes = Array(98).fill({ ConditionCheck: { TableName: 't', Key: {}, ConditionExpression: 'x' } });
    expect(() => writer.buildTransaction({ ...input, writes, requestId: 'cmd-1' }, 0)).toThrow(
      /1 request record = 101 items/,
    );
  });
});

describe('OutboxWriter.confirm after a lost response (#10.3)', () => {
  it('says that retrying confirm() is safe and that the message must not be cancelled', async () => {
    const id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    ddb.on(GetCommand, { Key: { pk: 'pay#1', sk: `PRE#${id}` } }).resolves({
      Item: {
        status: 'PREPARED',
        preparedEvent: JSON.stringify({
          specversion: '1.0',
          id,
          source: '/payments',
          type: 'Charged',
          time: '2026-11-22T12:00:00.000Z',
          datacontenttype: 'application/json',
          partitionkey: 'pay#1',
          data: {},
        }),
      },
    });
    ddb.on(GetCommand, { Key: { pk: 'pay#1', sk: 'HEAD' } }).resolves({ Item: { lastSequence: 3 } });
    ddb
      .on(TransactWriteCommand)
      .rejects(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} }));

    const error = await writer.confirm({ aggregateKey: 'pay#1', id }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(OutboxOutcomeUnknownError);
    expect((error as OutboxOutcomeUnknownError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/confirm\(\) is idempotent: retry it\. Do not cancel/);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(3);
  });
});
