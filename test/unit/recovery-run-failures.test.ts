import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import {
  createRecoveryHandler,
  createRecoveryResources,
  type RecoveryHandlerOptions,
  RecoveryRunError,
} from '../../functions/recovery/handler.ts';
import { MAX_EVENT_BYTES_LIMIT } from '../../functions/runtime/envelope.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';
import { recoveryClients, relayConfigOf } from '../support/relay-fixtures.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const doc = mockClient(DynamoDBDocumentClient);
afterEach(() => doc.reset());

const relayConfig = relayConfigOf({
  tableName: 'outbox',
  snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:outbox.fifo',
});

function options(overrides: Partial<RecoveryHandlerOptions> = {}): RecoveryHandlerOptions {
  return {
    relayConfig,
    recoveryConfig: readRecoveryConfig({}),
    tracking: { config: {}, ackTimeoutSeconds: 300 },
    clients: recoveryClients(),
    logger: new Logger({ logLevel: 'SILENT' }),
    now: () => Date.UTC(2026, 10, 30, 12, 0, 0),
    ...overrides,
  };
}

const context = {
  getRemainingTimeInMillis: () => 60_000,
  awsRequestId: 'r',
  functionName: 'recovery',
} as unknown as Context;

describe('recovery run failures (#10.4)', () => {
  it('records the run metrics even when the pending index cannot be read, then fails the invocation', async () => {
    doc.on(QueryCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'recovery' });
    const added = vi.spyOn(metrics, 'addMetric');
    const handler = createRecoveryHandler({ ...options(), metrics });

    const run = handler({ source: 'aws.events' }, context);
    await expect(run).rejects.toBeInstanceOf(RecoveryRunError);
    await expect(run).rejects.toThrow(/pending index.*ThrottlingException/);
    const emitted = added.mock.calls.map(([name]) => name);
    expect(emitted).toEqual(expect.arrayContaining(['Republished', 'Quarantined', 'IndexReadUnits']));
    // Unknown, not zero: a 0 would clear the stuck alarm while nothing is being recovered.
    expect(emitted).not.toContain('OldestUnpublishedAgeSeconds');
  });

  it("builds the recovery's writer with the producer's largest event size by default, or the configured one", () => {
    expect(createRecoveryResources(options()).writer.maxEventBytes).toBe(MAX_EVENT_BYTES_LIMIT);
    const configured = readRecoveryConfig({ OUTBOX_RECOVERY_MAX_EVENT_BYTES: '524288' });
    expect(createRecoveryResources(options({ recoveryConfig: configured })).writer.maxEventBytes).toBe(
      524_288,
    );
    expect(() => readRecoveryConfig({ OUTBOX_RECOVERY_MAX_EVENT_BYTES: '2000000' })).toThrow(
      OutboxConfigurationError,
    );
  });
});
