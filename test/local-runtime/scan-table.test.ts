import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DynamoDBClient,
  paginateScan,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/services/dynamodb-local.ts';
import { scanTable } from '../../local/services/scan-table.ts';
import { localAwsConfig } from '../support/services.ts';

// A heap far smaller than the table: a plain Scan makes DynamoDB Local read the whole table into it.
const SMALL_HEAP = ['-XX:+UseSerialGC', '-Xmx48m', '-XX:MaxMetaspaceSize=128m'];
const BIG_ITEMS = 160;
const BIG_ITEM_BYTES = 380_000;

let dir: string;
let dynamodb: DynamoDbLocal;
let client: DynamoDBClient;

async function createTable(name: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}

async function fill(table: string, count: number, body: string): Promise<void> {
  // Requests of ~1 MB: the small heap must also take the writes.
  const perRequest = Math.max(1, Math.min(25, Math.floor(1_000_000 / body.length)));
  for (let first = 0; first < count; first += perRequest) {
    const ids = Array.from({ length: Math.min(perRequest, count - first) }, (_, i) => first + i);
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [table]: ids.map((i) => ({
            PutRequest: {
              Item: {
                pk: { S: `AGG#${i % 7}` },
                sk: { S: `EVT#${i}` },
                n: { N: String(i) },
                body: { S: body },
              },
            },
          })),
        },
      }),
    );
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'scan-table-'));
  dynamodb = await startDynamoDbLocal({ dbPath: dir, jvmOptions: SMALL_HEAP });
  client = new DynamoDBClient({ ...localAwsConfig(dynamodb.endpoint), maxAttempts: 1 });
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await dynamodb?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('scanTable (a whole DynamoDB Local table, paged and segmented)', () => {
  it('reads a table larger than DynamoDB Local’s heap, which a plain Scan cannot', async () => {
    await createTable('big');
    await fill('big', BIG_ITEMS, 'x'.repeat(BIG_ITEM_BYTES));

    const plain = (async () => {
      for await (const _page of paginateScan({ client }, { TableName: 'big', ConsistentRead: true })) {
        // the first page already fails
      }
    })();
    await expect(plain).rejects.toMatchObject({ name: 'InternalFailure' });

    const items = await scanTable(client, 'big');
    expect(items).toHaveLength(BIG_ITEMS);
    expect(new Set(items.map((item) => item.n)).size).toBe(BIG_ITEMS);
    expect(items.every((item) => typeof item.body === 'string' && item.body.length === BIG_ITEM_BYTES)).toBe(
      true,
    );
  }, 120_000);

  it('returns every item exactly once across segments and pages, through a document client too', async () => {
    await createTable('segmented');
    await fill('segmented', 103, 'small');

    const items = await scanTable(client, 'segmented', { itemsPerSegment: 10, pageSize: 3 });
    expect(items.map((item) => item.n).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 103 }, (_, i) => i),
    );

    const viaDocument = await scanTable(DynamoDBDocumentClient.from(client), 'segmented');
    expect(viaDocument).toHaveLength(103);
    expect(viaDocument[0]).toMatchObject({ body: 'small' });
  }, 60_000);
});
