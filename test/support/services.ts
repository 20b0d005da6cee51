import { afterAll, beforeAll } from 'vitest';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/services/dynamodb-local.ts';
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
 * Starts DynamoDB Local in `beforeAll`, stops it in `afterAll`. Call at the top of a `describe` (or
 * file); the returned getter gives the endpoint once `beforeAll` has run.
 */
export function useDynamoDbLocal(): () => string {
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
