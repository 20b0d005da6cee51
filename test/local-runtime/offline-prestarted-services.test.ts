import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { startOfflineRuntime } from '../../local/offline.ts';
import type { CfnTemplate } from '../../local/runtime/template.ts';
import * as dynamodbLocal from '../../local/services/dynamodb-local.ts';
import * as fauxqsService from '../../local/services/fauxqs.ts';

// Counts every start while still starting the real services.
vi.mock('../../local/services/dynamodb-local.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../local/services/dynamodb-local.ts')>();
  return { ...actual, startDynamoDbLocal: vi.fn(actual.startDynamoDbLocal) };
});
vi.mock('../../local/services/fauxqs.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../local/services/fauxqs.ts')>();
  return { ...actual, startFauxqs: vi.fn(actual.startFauxqs) };
});

const TABLE_NAME = 'prestarted-table';
const TEMPLATE: CfnTemplate = {
  Resources: {
    Table: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        TableName: TABLE_NAME,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
    },
  },
};

async function listTables(endpoint: string): Promise<string[]> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  try {
    const out = await client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
    return out.TableNames ?? [];
  } finally {
    client.destroy();
  }
}

async function fauxqsAnswers(endpoint: string): Promise<boolean> {
  return fetch(`${endpoint}/_fauxqs/queues/none`, { signal: AbortSignal.timeout(2_000) }).then(
    () => true,
    () => false,
  );
}

function startServicesEarly() {
  vi.mocked(dynamodbLocal.startDynamoDbLocal).mockClear();
  vi.mocked(fauxqsService.startFauxqs).mockClear();
  return { dynamodb: dynamodbLocal.startDynamoDbLocal(), fauxqs: fauxqsService.startFauxqs() };
}

describe('startOfflineRuntime with DynamoDB Local and fauxqs started by the caller', () => {
  it('runs the stack on them, starts no others, and stop() stops them', async () => {
    const early = startServicesEarly();
    const workDir = await mkdtemp(path.join(tmpdir(), 'outbox-prestarted-'));
    const offline = await startOfflineRuntime({
      synth: async () => ({ stacks: [{ template: TEMPLATE, assetRoot: workDir, stackName: 'Prestarted' }] }),
      dynamodb: early.dynamodb,
      fauxqs: early.fauxqs,
      iam: false,
      log: () => {},
    });
    const dynamodb = await early.dynamodb;
    const fauxqs = await early.fauxqs;
    try {
      expect(dynamodbLocal.startDynamoDbLocal).toHaveBeenCalledTimes(1);
      expect(fauxqsService.startFauxqs).toHaveBeenCalledTimes(1);
      expect(offline.dynamodb).toBe(dynamodb);
      expect(offline.fauxqs).toBe(fauxqs);
      expect(await listTables(dynamodb.endpoint)).toContain(TABLE_NAME);
      expect(await fauxqsAnswers(fauxqs.endpoint)).toBe(true);
    } finally {
      await offline.stop();
    }
    await expect(listTables(dynamodb.endpoint)).rejects.toThrow();
    expect(await fauxqsAnswers(fauxqs.endpoint)).toBe(false);
  }, 120_000);

  it('stops them when start-up fails', async () => {
    const early = startServicesEarly();
    await expect(
      startOfflineRuntime({
        synth: async () => {
          throw new Error('synth failed on purpose');
        },
        dynamodb: early.dynamodb,
        fauxqs: early.fauxqs,
        iam: false,
        log: () => {},
      }),
    ).rejects.toThrow('synth failed on purpose');
    const dynamodb = await early.dynamodb;
    const fauxqs = await early.fauxqs;
    expect(dynamodbLocal.startDynamoDbLocal).toHaveBeenCalledTimes(1);
    await expect(listTables(dynamodb.endpoint)).rejects.toThrow();
    expect(await fauxqsAnswers(fauxqs.endpoint)).toBe(false);
  }, 120_000);
});
