import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { startDynamoDbLocal } from '../../local/services/dynamodb-local.ts';

function client(endpoint: string, accessKeyId = 'local'): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ddb-local-path-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('startDynamoDbLocal with dbPath (data on disk, not in the JVM)', () => {
  it('writes the tables to a file in the directory and a later start on it reads them back', async () => {
    const dbPath = path.join(await tempDir(), 'nested', 'db');
    const first = await startDynamoDbLocal({ dbPath });
    try {
      const ddb = client(first.endpoint);
      await ddb.send(
        new CreateTableCommand({
          TableName: 'kept',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      await ddb.send(new PutItemCommand({ TableName: 'kept', Item: { pk: { S: 'a' }, n: { N: '7' } } }));
      ddb.destroy();
    } finally {
      await first.stop();
    }
    expect(await readdir(dbPath)).toEqual(['local_us-east-1.db']);

    const second = await startDynamoDbLocal({ dbPath });
    try {
      const ddb = client(second.endpoint);
      const got = await ddb.send(new GetItemCommand({ TableName: 'kept', Key: { pk: { S: 'a' } } }));
      expect(got.Item?.n).toEqual({ N: '7' });
      ddb.destroy();
    } finally {
      await second.stop();
    }
  }, 120_000);

  it('with sharedDb every access key sees the same tables, in one shared file', async () => {
    const dbPath = await tempDir();
    const service = await startDynamoDbLocal({ dbPath, sharedDb: true });
    try {
      const writer = client(service.endpoint, 'writer');
      await writer.send(
        new CreateTableCommand({
          TableName: 'shared',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      writer.destroy();
      const reader = client(service.endpoint, 'reader');
      expect((await reader.send(new ListTablesCommand({}))).TableNames).toEqual(['shared']);
      reader.destroy();
    } finally {
      await service.stop();
    }
    expect(await readdir(dbPath)).toEqual(['shared-local-instance.db']);
  }, 120_000);
});
