import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { BillingMeter } from '../../bench/cost/meter.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

// The cost bench reads DynamoDB Local's ConsumedCapacity; these pin where it differs from DynamoDB's bill.
describe('cost meter on DynamoDB Local', () => {
  const endpoint = useDynamoDbLocal();
  const table = 'meter-outbox';
  let raw: DynamoDBClient;
  const item = (pk: string) => ({ pk: { S: pk }, due: { S: 'P#0' }, data: { S: 'x'.repeat(400) } });

  beforeAll(async () => {
    raw = new DynamoDBClient(localAwsConfig(endpoint()));
    await raw.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'due', AttributeType: 'S' },
        ],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'pending',
            KeySchema: [{ AttributeName: 'due', KeyType: 'HASH' }],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
      }),
    );
  });

  it('DynamoDB Local doubles the index arm of a transactional Put (the reason the meter corrects it)', async () => {
    const answer = await raw.send(
      new TransactWriteItemsCommand({
        TransactItems: [{ Put: { TableName: table, Item: item('engine') } }],
        ReturnConsumedCapacity: 'INDEXES',
      }),
    );
    expect(answer.ConsumedCapacity?.[0]?.Table?.CapacityUnits).toBe(2);
    expect(answer.ConsumedCapacity?.[0]?.GlobalSecondaryIndexes?.pending?.CapacityUnits).toBe(2);
  });

  it('bills a transactional Put at 2 table units + 1 index unit, a plain Put at 1 + 1', async () => {
    const meter = new BillingMeter(() => false);
    const client = meter.meterDynamoDb(new DynamoDBClient(localAwsConfig(endpoint())), 'producer');
    await client.send(
      new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: table, Item: item('txn') } }] }),
    );
    expect(meter.of('producer').dynamodbWriteUnits).toBe(3);
    const calls = meter.writesByCall();
    expect(calls.get('producer · TransactWriteItems · meter-outbox')?.writeUnits).toBe(2);
    expect(calls.get('producer · TransactWriteItems · meter-outbox/pending')?.writeUnits).toBe(1);

    meter.reset();
    await client.send(new PutItemCommand({ TableName: table, Item: item('plain') }));
    expect(meter.of('producer').dynamodbWriteUnits).toBe(2);
  });
});
