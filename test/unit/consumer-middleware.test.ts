import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { CountingMetrics, createConsumer, outboxConsumer } from '../../functions/consumer/index.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const context = { getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

afterEach(() => ddb.reset());

function record(body: string, messageId: string) {
  return {
    messageId,
    receiptHandle: messageId,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q',
    awsRegion: 'us-east-1',
  };
}

describe('outboxConsumer middy middleware', () => {
  it('answers with batchItemFailures and lets outer middlewares run their after hooks', async () => {
    ddb.on(PutCommand).resolves({});
    const good = buildEnvelope(
      { type: 'T', source: '/s', data: 1 },
      { partitionKey: 'a', sequence: 1 },
    ).envelope;
    const bad = buildEnvelope(
      { type: 'Bad', source: '/s', data: 2 },
      { partitionKey: 'b', sequence: 1 },
    ).envelope;
    const afterHooks: unknown[] = [];
    const handler = middy<SQSEvent, SQSBatchResponse>()
      .use({
        after: async (request) => {
          afterHooks.push(request.response);
        },
      })
      .use(
        outboxConsumer({
          name: 'mw',
          tableName: 'dedup',
          client,
          metrics: new CountingMetrics(),
          logger: silent,
          mode: 'transactional',
          handle: (e) => {
            if (e.type === 'Bad') throw new Error('nope');
            return [];
          },
        }),
      );
    const event: SQSEvent = {
      Records: [record(JSON.stringify(good), 'm1'), record(JSON.stringify(bad), 'm2')],
    };
    const response = await handler(event, context);
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    expect(afterHooks).toEqual([{ batchItemFailures: [{ itemIdentifier: 'm2' }] }]);
  });

  it('accepts an existing consumer instance', async () => {
    ddb.on(PutCommand).resolves({});
    const metrics = new CountingMetrics();
    const consumer = createConsumer({
      name: 'mw',
      tableName: 'dedup',
      client,
      metrics,
      logger: silent,
      mode: 'transactional',
      handle: () => [],
    });
    const handler = middy<SQSEvent, SQSBatchResponse>().use(outboxConsumer(consumer));
    const e = buildEnvelope(
      { type: 'T', source: '/s', data: 1 },
      { partitionKey: 'a', sequence: 1 },
    ).envelope;
    expect(await handler({ Records: [record(JSON.stringify(e), 'm1')] }, context)).toEqual({
      batchItemFailures: [],
    });
    expect(metrics.get('EventsProcessed')).toBe(1);
  });
});
