import { DeleteTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, inject } from 'vitest';
import {
  type DynamoDbLocal,
  startDynamoDbLocal,
  waitUntilAnswering,
} from '../../local/services/dynamodb-local.ts';
import { type Fauxqs, startFauxqs } from '../../local/services/fauxqs.ts';

export interface LocalAwsConfig {
  endpoint: string;
  region: 'us-east-1';
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** Client config for any AWS SDK v3 client pointed at a local emulator. */
export function localAwsConfig(endpoint: string): LocalAwsConfig {
  return { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
}

/**
 * An empty DynamoDB Local for this file: the one this worker shares across files (test/support/global-services.ts),
 * emptied in `beforeAll`; or, when the run shares none, one started in `beforeAll` and stopped in `afterAll`. Call
 * at the top of a `describe` (or file); the returned getter gives the endpoint once `beforeAll` has run.
 */
export function useDynamoDbLocal(): () => string {
  const shared = inject('sharedDynamoDbLocal')?.[Number(process.env.VITEST_POOL_ID ?? 1) - 1];
  if (shared) {
    beforeAll(() => emptyDynamoDbLocal(shared));
    return () => shared;
  }
  let service: DynamoDbLocal | undefined;
  beforeAll(async () => {
    service = await startDynamoDbLocal();
  });
  afterAll(async () => {
    await service?.stop();
  });
  return () => requireStarted(service, 'DynamoDB Local').endpoint;
}

/** Starts fauxqs (SNS + SQS) in `beforeAll`, stops it in `afterAll`; returns an endpoint getter. */
export function useFauxqs(): () => string {
  let service: Fauxqs | undefined;
  beforeAll(async () => {
    service = await startFauxqs();
  });
  afterAll(async () => {
    await service?.stop();
  });
  return () => requireStarted(service, 'fauxqs').endpoint;
}

/** Like `useFauxqs` but returns the service itself (for `inspectQueue`). */
export function useFauxqsService(): () => Fauxqs {
  let service: Fauxqs | undefined;
  beforeAll(async () => {
    service = await startFauxqs();
  });
  afterAll(async () => {
    await service?.stop();
  });
  return () => requireStarted(service, 'fauxqs');
}

function requireStarted<T>(service: T | undefined, name: string): T {
  if (!service) {
    throw new Error(
      `${name} is not running: read the endpoint inside a test or hook, after beforeAll has run`,
    );
  }
  return service;
}

// Below vitest.config.ts's hookTimeout (120 s), so the error below is the one a slow boot reports.
const SHARED_START_TIMEOUT_MS = 100_000;

/**
 * Waits until the shared DynamoDB Local answers (it boots in the background), then deletes every table the files
 * before this one left (they all use `localAwsConfig`'s credentials and region, DynamoDB Local's namespace).
 */
async function emptyDynamoDbLocal(endpoint: string): Promise<void> {
  const client = new DynamoDBClient({ ...localAwsConfig(endpoint), maxAttempts: 1 });
  try {
    const listTables = () =>
      client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
    await waitUntilAnswering(listTables, {
      timeoutMs: SHARED_START_TIMEOUT_MS,
      pollMs: 200,
      timedOut: (error) =>
        new Error(
          `the DynamoDB Local shared by this worker (${endpoint}, started by test/support/global-services.ts) did not answer within ${SHARED_START_TIMEOUT_MS} ms: see the run's first lines for why it did not start`,
          { cause: error },
        ),
    });
    for (;;) {
      const { TableNames = [] } = await client.send(new ListTablesCommand({}));
      if (TableNames.length === 0) return;
      await Promise.all(TableNames.map((name) => client.send(new DeleteTableCommand({ TableName: name }))));
    }
  } finally {
    client.destroy();
  }
}
