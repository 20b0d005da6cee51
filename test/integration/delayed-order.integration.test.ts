import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, DynamoDBBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SweeperDependencies, sweep } from '../../functions/recovery/sweeper.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { relayConfigOf } from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();
const HOUR = 3_600_000;

const context = {
  functionName: 'relay',
  awsRequestId: 'delayed-order',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

describe('a delayed event keeps its place in its aggregate: writer → stream → relay → sweeper (#10.1)', () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;
  let sqs: SQSClient;
  let queueUrl: string;
  let relayBatch: ReturnType<typeof createRelayHandler>;
  /** Stream records already handed to the relay (readStream returns the whole stream every time). */
  let relayed = 0;

  /** What Lambda would deliver next: the stream records the relay has not seen yet. */
  async function relayNewChanges(): Promise<DynamoDBBatchResponse> {
    const records = await readStream(dynamoEndpoint(), outbox.streamArn);
    const fresh = records.slice(relayed);
    relayed = records.length;
    return (await relayBatch({ Records: fresh }, context)) as DynamoDBBatchResponse;
  }

  async function received(): Promise<number[]> {
    return (await drainQueue(sqs, queueUrl)).map(
      (m) => (JSON.parse(m.Body ?? '{}') as { sequence: number }).sequence,
    );
  }

  async function status(sequence: number) {
    const item = await outbox.doc.send(
      new GetCommand({
        TableName: outbox.tableName,
        Key: { pk: 'order#7', sk: eventSortKey(sequence) },
        ConsistentRead: true,
      }),
    );
    return item.Item?.status;
  }

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'delayed-order');
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    const sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const fifo = await createFifoTopicWithQueue(sns, sqs, { topic: 'delayed-order', queue: 'delayed-order' });
    queueUrl = fifo.queueUrl;
    const config = relayConfigOf({ tableName: outbox.tableName, snsTopicArn: fifo.topicArn });
    relayBatch = createRelayHandler({
      config,
      clients: { sns, dynamodb: outbox.client },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });
  });

  it('holds later events back until the delayed one is released, then publishes them in sequence order', async () => {
    const deliverAt = Date.now() + HOUR;
    await writer.transact({
      aggregate: { key: 'order#7' },
      events: [{ type: 'PaymentReminder', data: {}, deliverAt }],
    });
    await writer.transact({ aggregate: { key: 'order#7' }, events: [{ type: 'OrderCancelled', data: {} }] });
    expect((await relayNewChanges()).batchItemFailures).toEqual([]);
    expect(await received()).toEqual([]);
    expect(await status(2)).toBe('SCHEDULED');

    // A third event, committed while both wait, waits too.
    await writer.transact({ aggregate: { key: 'order#7' }, events: [{ type: 'OrderArchived', data: {} }] });
    await relayNewChanges();
    expect(await received()).toEqual([]);
    expect(await status(3)).toBe('SCHEDULED');

    // The first sweeper run after deliverAt releases the delayed event and the events held behind it.
    const sweeper: SweeperDependencies = {
      client: outbox.doc,
      tableName: outbox.tableName,
      now: () => deliverAt + 30_000,
      republish: async () => ({ published: [], failed: new Map() }),
      checkback: async () => 'unknown',
      confirm: async () => undefined,
      cancel: async () => undefined,
    };
    expect((await sweep(sweeper)).released).toBe(3);
    expect((await relayNewChanges()).batchItemFailures).toEqual([]);
    expect(await received()).toEqual([1, 2, 3]);
    expect([await status(1), await status(2), await status(3)]).toEqual([
      'PUBLISHED',
      'PUBLISHED',
      'PUBLISHED',
    ]);
  });
});
