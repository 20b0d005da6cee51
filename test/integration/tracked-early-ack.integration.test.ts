import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBBatchResponse } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { acknowledge, getStatus } from '../../functions/runtime/acks.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, readStream } from '../support/outbox-table.ts';
import { relayConfigOf } from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();
const context = { getRemainingTimeInMillis: () => 30_000, functionName: 'relay' } as unknown as Context;

describe('tracked mode: a consumer that acknowledges before the relay has finished (#10.6)', () => {
  it('keeps the acknowledgement: the pending ack item exists before the event is sent', async () => {
    const outbox = await createLocalOutboxTable(dynamoEndpoint(), 'early-ack');
    const sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    const sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const fifo = await createFifoTopicWithQueue(sns, sqs, { topic: 'early-ack', queue: 'early-ack-billing' });
    // The fastest possible consumer: it receives, applies and acknowledges each message the moment SNS accepts
    // it, before the relay's PublishBatch call has even returned to it.
    sns.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        for (const message of await drainQueue(sqs, fifo.queueUrl)) {
          const { id } = JSON.parse(message.Body ?? '{}') as { id: string };
          await acknowledge(outbox.doc, outbox.tableName, id, 'billing');
        }
        return result;
      },
      { step: 'deserialize', name: 'fastConsumer' },
    );
    const relay = createRelayHandler({
      config: relayConfigOf({ tableName: outbox.tableName, snsTopicArn: fifo.topicArn }),
      clients: { sns, dynamodb: outbox.client },
      tracking: {
        config: { OrderPlaced: [{ name: 'billing', queueUrl: fifo.queueUrl, fifo: true }] },
        ackTimeoutSeconds: 300,
      },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });
    const writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    const { events } = await writer.transact({
      aggregate: { key: 'order#1' },
      events: [{ type: 'OrderPlaced', data: {} }],
    });
    const records = await readStream(dynamoEndpoint(), outbox.streamArn);
    const response = (await relay({ Records: records }, context)) as DynamoDBBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    const id = events[0]?.id ?? '';
    expect((await getStatus(outbox.doc, outbox.tableName, id, ['billing', 'shipping'])).subscribers).toEqual({
      billing: { status: 'done', attempts: 0 },
    });
  });
});
