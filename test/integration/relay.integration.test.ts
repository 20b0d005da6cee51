import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import {
  eventRecords,
  lambdaContext,
  putForeignPoisonRecord,
  relayConfigOf,
} from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();

const context = lambdaContext('relay', 'integration');

interface Received {
  readonly id: string;
  readonly partitionkey: string;
  readonly sequence: number;
  readonly groupId: string | undefined;
  readonly type: string | undefined;
}

describe('relay: writer → DynamoDB Local stream → relay → SNS FIFO (fauxqs) → SQS FIFO', () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;
  let sns: SNSClient;
  let sqs: SQSClient;
  let queueUrl: string;
  let config: RelayConfig;

  const newRelay = () =>
    createRelayHandler({
      config,
      clients: { sns, dynamodb: outbox.client },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });

  async function drain(): Promise<Received[]> {
    return (await drainQueue(sqs, queueUrl)).map((m) => {
      const envelope = JSON.parse(m.Body ?? '{}') as { id: string; partitionkey: string; sequence: number };
      return {
        id: envelope.id,
        partitionkey: envelope.partitionkey,
        sequence: envelope.sequence,
        groupId: m.Attributes?.MessageGroupId,
        type: m.MessageAttributes?.type?.StringValue,
      };
    });
  }

  const records = (pk: string) => eventRecords(outbox, pk);

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'relay');
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const fifo = await createFifoTopicWithQueue(sns, sqs, {
      topic: 'outbox-events',
      queue: 'orders-consumer',
    });
    queueUrl = fifo.queueUrl;
    config = relayConfigOf({ tableName: outbox.tableName, snsTopicArn: fifo.topicArn });
  });

  let streamRecords: DynamoDBRecord[] = [];
  const written: Record<string, string[]> = {};

  it('delivers every committed event once, in per-aggregate order, and marks them PUBLISHED', async () => {
    // Three aggregates, interleaved commits, one transaction with two events.
    const commits: [string, string[]][] = [
      ['order#1', ['OrderPlaced']],
      ['order#2', ['OrderPlaced']],
      ['order#1', ['OrderPaid', 'OrderPacked']],
      ['order#3', ['OrderPlaced']],
      ['order#2', ['OrderCancelled']],
      ['order#1', ['OrderShipped']],
      ['order#3', ['OrderPaid']],
    ];
    for (const [key, types] of commits) {
      const result = await writer.transact({
        aggregate: { key },
        events: types.map((type) => ({ type, data: { key } })),
      });
      written[key] = [...(written[key] ?? []), ...result.events.map((e) => e.id)];
    }
    streamRecords = await readStream(dynamoEndpoint(), outbox.streamArn);
    // The head items are on the stream too: the relay must ignore them.
    expect(streamRecords.some((r) => r.dynamodb?.NewImage?.sk?.S === 'HEAD')).toBe(true);

    const response = (await newRelay()({ Records: streamRecords }, context)) as DynamoDBBatchResponse;

    expect(response.batchItemFailures).toEqual([]);
    const received = await drain();
    expect(received).toHaveLength(8);
    expect(new Set(received.map((r) => r.id)).size).toBe(8);
    for (const [key, ids] of Object.entries(written)) {
      const ofKey = received.filter((r) => r.partitionkey === key);
      expect(ofKey.map((r) => r.id)).toEqual(ids);
      expect(ofKey.map((r) => r.sequence)).toEqual(ids.map((_, i) => i + 1));
      expect(new Set(ofKey.map((r) => r.groupId))).toEqual(new Set([key]));
    }
    expect(received.find((r) => r.partitionkey === 'order#2' && r.sequence === 2)?.type).toBe(
      'OrderCancelled',
    );

    const stored = await records('order#1');
    expect(stored.map((r) => r.status)).toEqual(['PUBLISHED', 'PUBLISHED', 'PUBLISHED', 'PUBLISHED']);
    for (const record of stored) {
      expect(record.pendingShard).toBeUndefined();
      expect(record.pendingDueAt).toBeUndefined();
      expect(record.expiresAt).toBe(Math.floor((record.publishedAt as number) / 1000) + 7 * 86_400);
    }
  });

  it('a redelivery of the same stream batch to a fresh container publishes no duplicate and changes nothing', async () => {
    const before = await records('order#1');

    const response = (await newRelay()({ Records: streamRecords }, context)) as DynamoDBBatchResponse;

    expect(response.batchItemFailures).toEqual([]);
    // SNS FIFO drops the re-sent messages by their deduplication id (the event id).
    expect(await drain()).toEqual([]);
    expect(await records('order#1')).toEqual(before);
  });

  it('quarantines a record a foreign writer stored with a broken envelope, and still publishes the next one', async () => {
    const _brokenId = await putForeignPoisonRecord(outbox, 'order#9', '{"specversion":"1.0",');
    await writer.transact({
      aggregate: { key: 'order#9', expectedVersion: 1 },
      events: [{ type: 'OrderPaid', data: {} }],
    });
    const all = await readStream(dynamoEndpoint(), outbox.streamArn);
    const fresh = all.filter((r) => r.dynamodb?.Keys?.pk?.S === 'order#9');

    const response = (await newRelay()({ Records: fresh }, context)) as DynamoDBBatchResponse;

    expect(response.batchItemFailures).toEqual([]);
    const [broken, paid] = await records('order#9');
    expect(broken).toMatchObject({
      status: 'QUARANTINED',
      lastError: 'the envelope is not valid JSON',
      pendingShard: `Q#${String(broken?.id).slice(-1)}`,
    });
    expect(broken?.expiresAt).toBeUndefined();
    expect(paid?.status).toBe('PUBLISHED');
    expect((await drain()).map((r) => [r.partitionkey, r.sequence])).toEqual([['order#9', 2]]);
  });

  it('after a lost stream delivery, publishes the READY predecessor first: the FIFO queue gets 1, 2, 3 in order', async () => {
    const ids: string[] = [];
    for (const type of ['OrderPlaced', 'OrderPaid', 'OrderShipped']) {
      const result = await writer.transact({
        aggregate: { key: 'order#lost' },
        events: [{ type, data: {} }],
      });
      ids.push(...result.events.map((e) => e.id));
    }
    const all = await readStream(dynamoEndpoint(), outbox.streamArn);
    // Event 1's stream record never reaches the relay (Lambda gave up on its batch): only 2 and 3 do.
    const delivered = all.filter(
      (r) =>
        r.dynamodb?.Keys?.pk?.S === 'order#lost' &&
        [eventSortKey(2), eventSortKey(3)].includes(r.dynamodb?.Keys?.sk?.S ?? ''),
    );
    expect(delivered).toHaveLength(2);

    const response = (await newRelay()({ Records: delivered }, context)) as DynamoDBBatchResponse;

    expect(response.batchItemFailures).toEqual([]);
    const received = await drain();
    expect(received.map((r) => [r.partitionkey, r.sequence, r.id])).toEqual([
      ['order#lost', 1, ids[0]],
      ['order#lost', 2, ids[1]],
      ['order#lost', 3, ids[2]],
    ]);
    expect((await records('order#lost')).map((r) => [r.sequence, r.status])).toEqual([
      [1, 'PUBLISHED'],
      [2, 'PUBLISHED'],
      [3, 'PUBLISHED'],
    ]);
  });
});
