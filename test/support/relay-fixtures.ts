/**
 * Fixtures the relay and recovery tests share: a relay configuration with the service limits, a Lambda context,
 * the recovery sweeper's dependencies for one run against mocked clients, and (on DynamoDB Local) a foreign
 * writer's poison record and an aggregate's event records.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import {
  createRecoveryResources,
  type RecoveryClients,
  type RunCounters,
  sweeperDependencies,
} from '../../functions/recovery/handler.ts';
import type { RelayConfig } from '../../functions/relay/config.ts';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import type { RelayClients } from '../../functions/relay/handler.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import type { LocalOutbox } from './outbox-table.ts';

/** A relay configuration with 7 days' retention, no SQS targets and the services' message size limits. */
export function relayConfigOf(targets: Pick<RelayConfig, 'tableName'> & Partial<RelayConfig>): RelayConfig {
  return {
    retentionDays: 7,
    sqsQueueUrls: [],
    snsMaxMessageBytes: 262_144,
    sqsMaxMessageBytes: 1_048_576,
    eventBridgeMaxEntryBytes: 1_048_576,
    ...targets,
  };
}

/** The parts of a Lambda context the handlers read. */
export function lambdaContext(functionName: string, awsRequestId: string): Context {
  return {
    functionName,
    awsRequestId,
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    getRemainingTimeInMillis: () => 30_000,
  } as unknown as Context;
}

/** Plain clients for the relay handler, for tests that mock them with aws-sdk-client-mock. */
export function relayClients(): RelayClients & { dynamodb: DynamoDBClient } {
  return {
    sns: new SNSClient({ region: 'us-east-1' }),
    eventBridge: new EventBridgeClient({ region: 'us-east-1' }),
    sqs: new SQSClient({ region: 'us-east-1' }),
    dynamodb: new DynamoDBClient({ region: 'us-east-1' }),
  };
}

/** Plain clients for the recovery function, for tests that mock them with aws-sdk-client-mock. */
export function recoveryClients(): RecoveryClients {
  return {
    dynamodb: new DynamoDBClient({ region: 'us-east-1' }),
    sns: new SNSClient({ region: 'us-east-1' }),
    sqs: new SQSClient({ region: 'us-east-1' }),
    redeliverySqs: new SQSClient({ region: 'us-east-1' }),
    lambda: new LambdaClient({ region: 'us-east-1' }),
  };
}

/**
 * The recovery sweeper's dependencies for one run at `now` with default recovery settings, no retries and no
 * jitter; the clients are plain ones, for tests that mock them with aws-sdk-client-mock.
 */
export function oneSweeperRun(relayConfig: RelayConfig, run: { now: number; logger: Logger }) {
  const counters: RunCounters = { relayQuarantined: 0, checkbackUnknown: 0, redeliveryErrors: 0 };
  const noRetry = { retry: { maxAttempts: 1 }, sleep: async () => {}, random: () => 0 };
  const resources = createRecoveryResources({
    relayConfig,
    recoveryConfig: readRecoveryConfig({}),
    tracking: { config: {}, ackTimeoutSeconds: 300 },
    clients: recoveryClients(),
    logger: run.logger,
    now: () => run.now,
    ...noRetry,
  });
  const deps = sweeperDependencies(resources, {
    deadline: run.now + 20_000,
    now: () => run.now,
    logger: run.logger,
    counters,
    ...noRetry,
  });
  return { deps, counters };
}

/**
 * Stores what a buggy foreign writer would: the aggregate's first event, READY, with `envelope` (not a valid
 * envelope), and the aggregate's HEAD. Returns the record's id.
 */
export async function putForeignPoisonRecord(
  outbox: LocalOutbox,
  aggregate: string,
  envelope: string,
): Promise<string> {
  const id = uuidv7();
  await outbox.client.send(
    new PutItemCommand({
      TableName: outbox.tableName,
      Item: {
        pk: { S: aggregate },
        sk: { S: eventSortKey(1) },
        id: { S: id },
        type: { S: 'OrderPlaced' },
        source: { S: '/legacy' },
        sequence: { N: '1' },
        status: { S: 'READY' },
        envelope: { S: envelope },
        createdAt: { N: String(Date.now()) },
        attempts: { N: '0' },
        pendingShard: { S: 'P#0' },
        pendingDueAt: { N: String(Date.now()) },
      },
    }),
  );
  await outbox.client.send(
    new PutItemCommand({
      TableName: outbox.tableName,
      Item: { pk: { S: aggregate }, sk: { S: 'HEAD' }, lastSequence: { N: '1' } },
    }),
  );
  return id;
}

/** An aggregate's event records (not its HEAD), read consistently. */
export async function eventRecords(
  outbox: LocalOutbox,
  aggregate: string,
): Promise<Record<string, unknown>[]> {
  const page = await outbox.doc.send(
    new QueryCommand({
      TableName: outbox.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :evt)',
      ExpressionAttributeValues: { ':pk': aggregate, ':evt': 'EVT#' },
      ConsistentRead: true,
    }),
  );
  return page.Items ?? [];
}

/** A decoded outbox record as the relay core takes it: event `sequence` of aggregate `pk`, id `<pk>-<sequence>`. */
export function relayRecord(pk: string, sequence: number, envelope = 'x', createdAt = 0): OutboxRecord {
  return {
    pk,
    sk: eventSortKey(sequence),
    id: `${pk}-${sequence}`,
    type: 'T',
    source: '/s',
    sequence,
    envelope,
    envelopeBytes: Buffer.byteLength(envelope),
    createdAt,
  };
}
