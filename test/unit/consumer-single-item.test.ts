import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidWritesError } from '../../functions/consumer/errors.ts';
import { applySingleItem, validateSingleWrite } from '../../functions/consumer/single-item.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
afterEach(() => ddb.reset());

const event = (sequence: number) =>
  buildEnvelope({ type: 'T', source: '/s', data: {} }, { partitionKey: 'order#1', sequence }).envelope;

describe('single-item mode builds one conditional write around the handler’s', () => {
  it('adds the cursor to an existing SET clause in any case and position, and ANDs its condition', async () => {
    ddb.on(UpdateCommand).resolves({});
    await applySingleItem(
      client,
      'c',
      event(2),
      {
        Update: {
          TableName: 't',
          Key: { id: 'order#1' },
          UpdateExpression: 'remove draft set #s = :s',
          ConditionExpression: 'attribute_exists(id)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':s': 'PAID' },
        },
      },
      'retry',
    );
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.UpdateExpression).toBe(
      'remove draft set #outboxStream = :outboxStream, #outboxSequence = :outboxSequence, #outboxEventId = :outboxEventId, #s = :s',
    );
    expect(input?.ConditionExpression).toBe(
      '(#outboxStream = :outboxStream AND #outboxSequence = :outboxExpected) AND (attribute_exists(id))',
    );
    expect(input?.ExpressionAttributeValues).toMatchObject({
      ':s': 'PAID',
      ':outboxExpected': 1,
      ':outboxSequence': 2,
      ':outboxStream': 'c#order#1',
    });
    expect(input?.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
  });

  it('passes only the placeholders its expressions use (DynamoDB refuses unused ones)', async () => {
    ddb.on(PutCommand).resolves({});
    await applySingleItem(
      client,
      'c',
      event(1),
      { Put: { TableName: 't', Item: { id: 'order#1' } } },
      'retry',
    );
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('attribute_not_exists(#outboxSequence)');
    expect(input?.ExpressionAttributeNames).toEqual({ '#outboxSequence': 'outboxSequence' });
    expect(input?.ExpressionAttributeValues).toBeUndefined();
    expect(input?.Item).toMatchObject({ outboxSequence: 1, outboxStream: 'c#order#1' });
  });

  it('refuses handler placeholders that would collide with the cursor’s', () => {
    const write = {
      Update: {
        TableName: 't',
        Key: { id: 'x' },
        UpdateExpression: 'SET #outboxStream = :v',
        ExpressionAttributeNames: { '#outboxStream': 'mine' },
        ExpressionAttributeValues: { ':v': 1 },
      },
    };
    expect(() => validateSingleWrite('c', 'e', write)).toThrow(InvalidWritesError);
    expect(() => validateSingleWrite('c', 'e', write)).toThrow(/#outbox or :outbox/);
  });
});
