import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, DynamoDBBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CountingMetrics,
  createConsumer,
  type IdempotentConsumer,
  pollOnce,
} from '../../functions/consumer/index.ts';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import { createRecoveryHandler, type RecoveryRunSummary } from '../../functions/recovery/handler.ts';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import type { TrackingSettings } from '../../functions/relay/tracking.ts';
import { getStatus } from '../../functions/runtime/acks.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { relayConfigOf } from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const ORDER_PLACED = 'com.example.orders.OrderPlaced';

const lambdaContext = { getRemainingTimeInMillis: () => 30_000, functionName: 'fn' } as unknown as Context;

describe('tracked mode: writer → stream → relay → SNS FIFO → SQS FIFO → consumers → acks → sweeper redelivery', () => {
  let outbox: LocalOutbox;
  let sns: SNSClient;
  let sqs: SQSClient;
  let dedupTable: string;
  const queues: Record<'billing' | 'shipping', string> = { billing: '', shipping: '' };
  let relayConfig: RelayConfig;
  let tracking: TrackingSettings;
  let clock = Date.UTC(2026, 10, 22, 12, 0, 0);
  let effectsTable: string;

  /** How many times a consumer's effect was committed for an event (the handler itself also runs for duplicates). */
  async function effects(name: string, eventId: string): Promise<number> {
    const item = await outbox.doc.send(
      new GetCommand({ TableName: effectsTable, Key: { pk: `${name}#${eventId}` }, ConsistentRead: true }),
    );
    return Number(item.Item?.applied ?? 0);
  }

  /** A transactional consumer whose effect counts its applications of each event. */
  function consumer(name: 'billing' | 'shipping', acknowledge: boolean): IdempotentConsumer {
    return createConsumer({
      name,
      mode: 'transactional',
      tableName: dedupTable,
      client: outbox.doc,
      metrics: new CountingMetrics(),
      logger: silent,
      now: () => clock,
      handle: (event) => [
        {
          Update: {
            TableName: effectsTable,
            Key: { pk: `${name}#${event.id}` },
            UpdateExpression: 'ADD applied :one',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
      acknowledge: acknowledge ? { tableName: outbox.tableName, eventTypes: [ORDER_PLACED] } : false,
    });
  }

  /** Polls until the queue is empty (FIFO hands out a group's next message after the previous one is deleted). */
  async function poll(name: 'billing' | 'shipping', c: IdempotentConsumer) {
    const total = { received: 0, deleted: 0, failed: 0 };
    for (;;) {
      const result = await pollOnce({
        sqs,
        queueUrl: queues[name],
        handler: c.handler,
        context: lambdaContext,
      });
      if (result.received === 0) return total;
      total.received += result.received;
      total.deleted += result.deleted;
      total.failed += result.failed;
      if (result.failed > 0) return total;
    }
  }

  function recovery() {
    const run = createRecoveryHandler({
      relayConfig,
      recoveryConfig: readRecoveryConfig({}),
      tracking,
      clients: { dynamodb: outbox.client, sns, redeliverySqs: sqs },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'recovery' }),
      now: () => clock,
    });
    return () => run({}, lambdaContext) as Promise<RecoveryRunSummary>;
  }

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'tracked');
    dedupTable = `dedup-tracked-${process.pid}`;
    effectsTable = `effects-tracked-${process.pid}`;
    for (const TableName of [dedupTable, effectsTable]) {
      await outbox.client.send(
        new CreateTableCommand({
          TableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        }),
      );
    }
    sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const topicArn =
      (
        await sns.send(
          new CreateTopicCommand({
            Name: 'tracked-events.fifo',
            Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
          }),
        )
      ).TopicArn ?? '';
    for (const name of ['billing', 'shipping'] as const) {
      const url =
        (
          await sqs.send(
            new CreateQueueCommand({
              QueueName: `tracked-${name}.fifo`,
              Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' },
            }),
          )
        ).QueueUrl ?? '';
      queues[name] = url;
      const arn = (
        await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))
      ).Attributes?.QueueArn;
      await sns.send(
        new SubscribeCommand({
          TopicArn: topicArn,
          Protocol: 'sqs',
          Endpoint: arn,
          Attributes: { RawMessageDelivery: 'true' },
        }),
      );
    }
    relayConfig = relayConfigOf({ tableName: outbox.tableName, snsTopicArn: topicArn });
    tracking = {
      config: {
        [ORDER_PLACED]: [
          { name: 'billing', queueUrl: queues.billing, fifo: true },
          { name: 'shipping', queueUrl: queues.shipping, fifo: true },
        ],
      },
      ackTimeoutSeconds: 300,
    };
  });

  it('redelivers to the subscriber whose acknowledgement was lost, not to the one that acknowledged, and completes it', async () => {
    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
    const { events } = await writer.transact({
      aggregate: { key: 'order#1' },
      events: [
        { type: ORDER_PLACED, data: { orderId: '1' } },
        { type: 'com.example.orders.OrderShipped', data: { orderId: '1' } },
      ],
    });
    const [placed, shipped] = events;
    if (!placed || !shipped) throw new Error('no events');

    // The relay publishes both and records pending acks for the tracked type only.
    const relay = createRelayHandler({
      config: relayConfig,
      tracking,
      clients: { sns, dynamodb: outbox.client },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
      now: () => clock,
    });
    const response = (await relay(
      { Records: await readStream(dynamoEndpoint(), outbox.streamArn) },
      lambdaContext,
    )) as DynamoDBBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    expect(
      (await getStatus(outbox.doc, outbox.tableName, placed.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({
      billing: { status: 'pending', attempts: 0 },
      shipping: { status: 'pending', attempts: 0 },
    });
    expect(
      (await getStatus(outbox.doc, outbox.tableName, shipped.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({});

    // billing applies and acknowledges; shipping applies but its acknowledgement is lost (acks off).
    expect((await poll('billing', consumer('billing', true))).deleted).toBe(2);
    expect((await poll('shipping', consumer('shipping', false))).deleted).toBe(2);
    for (const name of ['billing', 'shipping']) {
      for (const e of [placed, shipped]) expect(await effects(name, e.id), `${name} ${e.type}`).toBe(1);
    }
    expect(
      (await getStatus(outbox.doc, outbox.tableName, placed.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({
      billing: { status: 'done', attempts: 0 },
      shipping: { status: 'pending', attempts: 0 },
    });

    // Before the ack timeout nothing is redelivered.
    const sweep = recovery();
    clock += 299_000;
    expect((await sweep()).redelivered).toBe(0);
    // After it, only shipping gets the event again.
    clock += 2000;
    const run = await sweep();
    expect(run).toMatchObject({ redelivered: 1, acksFailed: 0, republished: 0 });
    expect((await poll('billing', consumer('billing', true))).received).toBe(0);

    // The redelivery reaches shipping's (now healthy) consumer: a duplicate, not applied again, but acknowledged.
    const shipping = consumer('shipping', true);
    expect(await poll('shipping', shipping)).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    expect(await effects('shipping', placed.id)).toBe(1);
    expect(
      (await getStatus(outbox.doc, outbox.tableName, placed.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({
      billing: { status: 'done', attempts: 0 },
      shipping: { status: 'done', attempts: 1 },
    });

    // Nothing is pending any more: later runs redeliver nothing.
    clock += 600_000;
    expect(await sweep()).toMatchObject({ redelivered: 0, acksFailed: 0, unpublishedCount: 0 });
  });

  it('does not reset a completed acknowledgement when the event is published again', async () => {
    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
    const { events } = await writer.transact({
      aggregate: { key: 'order#2' },
      events: [{ type: ORDER_PLACED, data: {} }],
    });
    const placed = events[0];
    if (!placed) throw new Error('no event');
    const relayOnce = () =>
      createRelayHandler({
        config: relayConfig,
        tracking,
        clients: { sns, dynamodb: outbox.client },
        logger: new Logger({ logLevel: 'SILENT' }),
        metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
        now: () => clock,
      });
    const records = (await readStream(dynamoEndpoint(), outbox.streamArn)).filter(
      (r) => r.dynamodb?.Keys?.pk?.S === 'order#2',
    );
    await relayOnce()({ Records: records }, lambdaContext);
    await poll('billing', consumer('billing', true));
    expect(
      (await getStatus(outbox.doc, outbox.tableName, placed.id, ['billing', 'shipping'])).subscribers.billing
        ?.status,
    ).toBe('done');

    // A redelivered stream batch in a fresh container: published (FIFO dedup drops it), acks written again.
    await relayOnce()({ Records: records }, lambdaContext);
    expect(
      (await getStatus(outbox.doc, outbox.tableName, placed.id, ['billing', 'shipping'])).subscribers.billing,
    ).toEqual({
      status: 'done',
      attempts: 0,
    });
  });
});
