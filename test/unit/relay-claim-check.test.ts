import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { PublishBatchCommand, type PublishBatchRequestEntry, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBBatchResponse } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { FinishedMemory } from '../../functions/relay/relay.ts';
import { claimCheck } from '../../functions/runtime/claim-check.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { oneSweeperRun, relayClients, relayConfigOf } from '../support/relay-fixtures.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
const eventBridge = mockClient(EventBridgeClient);
const ddb = mockClient(DynamoDBClient);
const s3 = mockClient(S3Client);
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/billing.fifo';
const config = relayConfigOf({
  tableName: 'outbox',
  snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:outbox.fifo',
  eventBusName: 'outbox-bus',
  sqsQueueUrls: [QUEUE],
});
const silent = new Logger({ logLevel: 'SILENT' });

/** The reference envelope the writer stores for a 600 KB event (its data is in S3). */
function largeRecord(pk: string, sequence: number) {
  const built = buildEnvelope(
    { type: 'com.example.OrderPlaced', data: { blob: 'z'.repeat(600_000) } },
    { partitionKey: pk, sequence, defaultSource: '/orders', now: NOW - 600_000, maxEventBytes: 1_048_576 },
  );
  const { built: reference } = claimCheck(built, {
    bucket: 'payloads',
    prefix: 'outbox/',
    maxEventBytes: 10 * 1024 * 1024,
    client: new S3Client({}),
  });
  return {
    pk,
    sk: eventSortKey(sequence),
    id: reference.envelope.id,
    type: reference.envelope.type,
    source: '/orders',
    sequence,
    status: 'READY',
    envelope: reference.json,
    createdAt: NOW - 600_000,
    attempts: 0,
    pendingShard: `P#${reference.envelope.id.slice(-1)}`,
    pendingDueAt: NOW - 600_000,
  };
}

function acceptEverything() {
  sns
    .on(PublishBatchCommand)
    .callsFake((input: { PublishBatchRequestEntries: PublishBatchRequestEntry[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })),
      Failed: [],
    }));
  sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  }));
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({
    FailedEntryCount: 0,
    Entries: input.Entries.map((_, i) => ({ EventId: `e-${i}` })),
  }));
  ddb.on(UpdateItemCommand).resolves({});
}

/** What each target received as the message body. */
function publishedBodies() {
  return {
    sns: sns
      .commandCalls(PublishBatchCommand)
      .flatMap((c) => c.args[0].input.PublishBatchRequestEntries ?? [])
      .map((e) => e.Message),
    sqs: sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => e.MessageBody),
    eventBridge: eventBridge
      .commandCalls(PutEventsCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => e.Detail),
  };
}

beforeEach(acceptEverything);
afterEach(() => {
  for (const mock of [sns, sqs, eventBridge, ddb, s3]) mock.reset();
});

describe('claim-checked events: the relay and the sweeper publish the small envelope unchanged', () => {
  it('relay: every target gets the stored reference envelope byte for byte, S3 is never called, nothing is quarantined', async () => {
    const record = largeRecord('order#1', 1);
    const handler = createRelayHandler({
      config,
      clients: relayClients(),
      logger: silent,
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
      retry: { maxAttempts: 1 },
      random: () => 0,
      now: () => NOW,
      memory: new FinishedMemory(),
    });
    const image = {
      pk: { S: record.pk },
      sk: { S: record.sk },
      id: { S: record.id },
      type: { S: record.type },
      source: { S: record.source },
      sequence: { N: '1' },
      status: { S: 'READY' },
      envelope: { S: record.envelope },
      createdAt: { N: String(record.createdAt) },
      attempts: { N: '0' },
      pendingShard: { S: record.pendingShard },
      pendingDueAt: { N: String(record.pendingDueAt) },
    };
    const response = (await handler(
      {
        Records: [
          {
            eventID: 'e1',
            eventName: 'INSERT',
            eventSource: 'aws:dynamodb',
            awsRegion: 'us-east-1',
            dynamodb: {
              Keys: { pk: image.pk, sk: image.sk },
              NewImage: image,
              SequenceNumber: '400000000000000000001',
              StreamViewType: 'NEW_AND_OLD_IMAGES',
            },
          },
        ],
      },
      { getRemainingTimeInMillis: () => 30_000, awsRequestId: 'r1' } as unknown as Context,
    )) as DynamoDBBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    expect(publishedBodies()).toEqual({
      sns: [record.envelope],
      sqs: [record.envelope],
      eventBridge: [record.envelope],
    });
    expect(JSON.parse(record.envelope)).not.toHaveProperty('data');
    const quarantined = ddb
      .commandCalls(UpdateItemCommand)
      .filter((c) => c.args[0].input.ExpressionAttributeValues?.[':quarantined']);
    expect(quarantined).toEqual([]);
    expect(s3.calls()).toHaveLength(0);
  });

  it("sweeper: the recovery function's republish sends the stored reference envelope unchanged", async () => {
    const record = largeRecord('order#2', 1);
    const { deps, counters } = oneSweeperRun(
      { ...config, eventBusName: undefined, sqsQueueUrls: [] } as RelayConfig,
      { now: NOW, logger: silent },
    );
    const outcome = await deps.republish([record]);
    expect(outcome.published).toEqual([record.id]);
    expect(counters.relayQuarantined).toBe(0);
    expect(publishedBodies().sns).toEqual([record.envelope]);
    expect(s3.calls()).toHaveLength(0);
  });
});
