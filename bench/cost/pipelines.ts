/**
 * The three designs the cost bench bills, each run on DynamoDB Local and fauxqs with the real code:
 * - `outbox`: our writer (the order item and its event in one transaction) → stream → our relay → SNS FIFO →
 *   one SQS FIFO queue per subscriber → our idempotent consumer (ordered; the second subscriber transactional),
 *   or, for the Powertools peer, a consumer wrapped in @aws-lambda-powertools/idempotency.
 * - `sample`: the AWS serverless-patterns outbox sample's design: the order item alone (no outbox record), its
 *   table's stream → a function that sends each change to EventBridge (PutEvents, 10 entries a call) → rule → SQS
 *   → a consumer that applies the effect with no deduplication and no ordering.
 *
 * Every design applies the same effect per event (one UpdateItem of a per-order item) and writes the same order
 * item per event. Functions are invoked as their event sources would invoke them and billed by the meter.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import { CountingMetrics, createConsumer, type OutboxEnvelope } from '../../functions/consumer/index.ts';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue } from '../../test/support/fifo-topic.ts';
import { createLocalOutboxTable } from '../../test/support/outbox-table.ts';
import { localAwsConfig } from '../../test/support/services.ts';
import { chunk, createTable, drainToFunction, meteredDynamoDb, silentLogger, streamFeed } from './harness.ts';
import type { BillingMeter } from './meter.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

export interface Services {
  readonly dynamodb: string;
  readonly fauxqs: string;
}

/** Which events go to the stream function together: one event per aggregate per batch, or ten. */
export interface WorkloadShape {
  readonly name: string;
  readonly aggregates: number;
  readonly eventsPerAggregate: number;
  /** Events of one aggregate committed before the stream function runs. */
  readonly eventsPerAggregatePerBatch: number;
  /** Aggregates committed together before the stream function runs. */
  readonly aggregatesPerBatch: number;
}

/** Memory sizes billed: the library's defaults (relay 512 MB, consumers 256 MB); every other function 256 MB. */
export const MEMORY_MB = { producer: 256, relay: 512, consumer: 256, forwarder: 256 } as const;

export interface PipelineRun {
  readonly events: number;
  readonly effectsApplied: number;
  readonly effectsExpected: number;
}

const CONTEXT = {
  functionName: 'bench',
  awsRequestId: 'bench',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench',
  memoryLimitInMB: '256',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

/** An order's state after an event, about 850 bytes as a DynamoDB item; its event envelope is about 1 KB. */
export function orderState(order: string, sequence: number) {
  return {
    orderId: order,
    status: `S${sequence}`,
    customerId: `customer-${order.length % 97}`,
    amountCents: 1999 + sequence,
    currency: 'EUR',
    lines: Array.from({ length: 8 }, (_, j) => ({ sku: `SKU-${j}-${sequence % 13}`, quantity: 1 + (j % 3) })),
    notes: 'x'.repeat(420),
  };
}

/** The commit order of a shape: a list of batches, each a list of (order, sequence). */
function batchesOf(shape: WorkloadShape, prefix: string): [string, number][][] {
  const batches: [string, number][][] = [];
  for (let first = 0; first < shape.aggregates; first += shape.aggregatesPerBatch) {
    const orders = Array.from(
      { length: Math.min(shape.aggregatesPerBatch, shape.aggregates - first) },
      (_, i) => `${prefix}-${first + i}`,
    );
    for (let seq = 1; seq <= shape.eventsPerAggregate; seq += shape.eventsPerAggregatePerBatch) {
      const batch: [string, number][] = [];
      for (let s = seq; s < seq + shape.eventsPerAggregatePerBatch && s <= shape.eventsPerAggregate; s++)
        for (const order of orders) batch.push([order, s]);
      batches.push(batch);
    }
  }
  return batches;
}

const effectUpdate = (tableName: string, key: string, sequence: number) => ({
  TableName: tableName,
  Key: { id: key },
  UpdateExpression: 'ADD applied :one SET lastSequence = :sequence',
  ExpressionAttributeValues: { ':one': 1, ':sequence': sequence },
});

/** Only records that are or become READY invoke the relay (OutboxRelay's stream filter). */
function relayFilter(record: DynamoDBRecord): boolean {
  const status = (image: unknown) => (image as Record<string, { S?: string }> | undefined)?.status?.S;
  if (status(record.dynamodb?.NewImage) !== 'READY') return false;
  return record.eventName === 'INSERT' || status(record.dynamodb?.OldImage) !== 'READY';
}

async function subscribeQueue(
  sns: SNSClient,
  sqs: SQSClient,
  topicArn: string,
  name: string,
): Promise<string> {
  const queueUrl =
    (await sqs.send(new CreateQueueCommand({ QueueName: `${name}.fifo`, Attributes: { FifoQueue: 'true' } })))
      .QueueUrl ?? '';
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: queueArn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  return queueUrl;
}

export interface OutboxPipelineOptions {
  readonly subscribers: 1 | 2;
  /**
   * `ours`: IdempotentConsumer (ordered, then transactional); `single-item`: the first subscriber in mode
   * 'single-item' (its cursor on the effect's item); `powertools`: makeIdempotent per record.
   */
  readonly consumer: 'ours' | 'single-item' | 'powertools';
  /** The writer keeps the aggregate version on the order item (`aggregate.versionOn`), no head item. */
  readonly versionOnOrder?: boolean;
  /**
   * The producer passes the aggregate version it read (`aggregate.expectedVersion`), as a command handler that
   * loaded the order does, so the writer does not read it again. @default false (the writer reads it)
   */
  readonly callerKnowsVersion?: boolean;
  /** The writer's `compressEnvelopes`. @default the writer's default */
  readonly compressEnvelopes?: 'large-only' | 'when-cheaper';
}

export async function runOutboxPipeline(
  meter: BillingMeter,
  services: Services,
  shape: WorkloadShape,
  options: OutboxPipelineOptions,
): Promise<PipelineRun> {
  const run = `${options.consumer}-${options.compressEnvelopes ?? 'default'}-${options.versionOnOrder ? 'v' : 'h'}-${shape.name}-${options.subscribers}-${process.pid}-${Date.now()}`;
  const outbox = await createLocalOutboxTable(services.dynamodb, 'cost-outbox');
  const orders = await createTable(services.dynamodb, 'cost-orders', 'orderId');
  const producer = meteredDynamoDb(meter, services.dynamodb, 'producer');
  const writer = new OutboxWriter({
    tableName: outbox.tableName,
    source: '/orders',
    client: producer.doc,
    ...(options.compressEnvelopes ? { compressEnvelopes: options.compressEnvelopes } : {}),
  });

  const plainSqs = new SQSClient(localAwsConfig(services.fauxqs));
  const plainSns = new SNSClient(localAwsConfig(services.fauxqs));
  const fifo = await createFifoTopicWithQueue(plainSns, plainSqs, { topic: `t-${run}`, queue: `q1-${run}` });
  const queues = [fifo.queueUrl];
  if (options.subscribers === 2)
    queues.push(await subscribeQueue(plainSns, plainSqs, fifo.topicArn, `q2-${run}`));

  const relayDb = meteredDynamoDb(meter, services.dynamodb, 'relay');
  const relaySns = meter.meterMessaging(
    new SNSClient({ ...localAwsConfig(services.fauxqs), maxAttempts: 1 }),
    'relay',
  );
  const config: RelayConfig = {
    tableName: outbox.tableName,
    retentionDays: 7,
    snsTopicArn: fifo.topicArn,
    sqsQueueUrls: [],
    snsMaxMessageBytes: 262_144,
    sqsMaxMessageBytes: 1_048_576,
    eventBridgeMaxEntryBytes: 1_048_576,
  };
  const relay = createRelayHandler({
    config,
    clients: { sns: relaySns, dynamodb: relayDb.client },
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Bench', serviceName: 'relay' }),
  });
  const feed = streamFeed(services.dynamodb, outbox.streamArn, relayFilter);

  // One consumer per subscriber queue.
  const consumers: ((
    event: import('aws-lambda').SQSEvent,
  ) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>)[] = [];
  for (const [index] of queues.entries()) {
    const label = `consumer-${index + 1}`;
    const db = meteredDynamoDb(meter, services.dynamodb, label);
    const effects = await createTable(services.dynamodb, `cost-effects${index + 1}`, 'id');
    if (options.consumer === 'single-item' && index === 0) {
      const consumer = createConsumer({
        name: `subscriber-${index + 1}`,
        mode: 'single-item',
        client: db.doc,
        metrics: new CountingMetrics(),
        logger: silentLogger,
        handle: (event: OutboxEnvelope) => ({
          Update: effectUpdate(effects.tableName, event.partitionkey, event.sequence),
        }),
      });
      consumers.push((event) => consumer.processBatch(event, CONTEXT));
    } else if (options.consumer !== 'powertools') {
      const dedup = await createTable(services.dynamodb, 'cost-dedup', 'pk');
      const consumer = createConsumer({
        name: `subscriber-${index + 1}`,
        mode: index === 0 ? 'ordered' : 'transactional',
        tableName: dedup.tableName,
        client: db.doc,
        metrics: new CountingMetrics(),
        logger: silentLogger,
        handle: (event: OutboxEnvelope) => [
          { Update: effectUpdate(effects.tableName, event.partitionkey ?? event.id, event.sequence ?? 0) },
        ],
      });
      consumers.push((event) => consumer.processBatch(event, CONTEXT));
    } else {
      const { IdempotencyConfig, makeIdempotent } = await import('@aws-lambda-powertools/idempotency');
      const { DynamoDBPersistenceLayer } = await import('@aws-lambda-powertools/idempotency/dynamodb');
      const idempotency = await createTable(services.dynamodb, 'cost-powertools', 'id');
      const persistenceStore = new DynamoDBPersistenceLayer({
        tableName: idempotency.tableName,
        awsSdkV3Client: db.client,
      });
      const idempotencyConfig = new IdempotencyConfig({ eventKeyJmesPath: 'id' });
      const apply = makeIdempotent(
        async (event: OutboxEnvelope) => {
          await db.doc.send(
            new UpdateCommand(
              effectUpdate(effects.tableName, event.partitionkey ?? event.id, event.sequence ?? 0),
            ),
          );
          return { ok: true };
        },
        { persistenceStore, config: idempotencyConfig },
      );
      consumers.push(async (event) => {
        idempotencyConfig.registerLambdaContext(CONTEXT);
        // FIFO: records in order, one at a time (Powertools' own batch processor does the same for FIFO).
        for (const record of event.Records) await apply(JSON.parse(record.body) as OutboxEnvelope);
        return { batchItemFailures: [] };
      });
    }
  }

  let events = 0;
  let effectsApplied = 0;
  for (const batch of batchesOf(shape, run)) {
    for (const [order, sequence] of batch) {
      const state = orderState(order, sequence);
      await meter.invoke('producer', MEMORY_MB.producer, () =>
        writer.transact({
          aggregate: {
            key: `order#${order}`,
            ...(options.versionOnOrder
              ? { versionOn: { TableName: orders.tableName, Key: { orderId: order } } }
              : {}),
            ...(options.callerKnowsVersion ? { expectedVersion: sequence - 1 } : {}),
          },
          events: [{ type: `Order${sequence}`, data: state }],
          writes: [{ Put: { TableName: orders.tableName, Item: state } }],
        }),
      );
      events++;
    }
    for (const records of chunk(await feed(), 100)) {
      const result = await meter.invoke('relay', MEMORY_MB.relay, () => relay({ Records: records }, CONTEXT));
      if (result?.batchItemFailures?.length)
        throw new Error(`the relay failed ${result.batchItemFailures.length} records`);
    }
    for (const [index, queueUrl] of queues.entries()) {
      const label = `consumer-${index + 1}`;
      const handler = consumers[index];
      if (!handler) continue;
      effectsApplied += await drainToFunction(meter, label, plainSqs, queueUrl, (event) =>
        meter.invoke(label, MEMORY_MB.consumer, () => handler(event)),
      );
    }
  }
  return { events, effectsApplied, effectsExpected: events * queues.length };
}

/** The serverless-patterns sample: business table stream → PutEvents → rule → SQS → consumer, no dedup. */
export async function runSamplePipeline(
  meter: BillingMeter,
  services: Services,
  shape: WorkloadShape,
): Promise<PipelineRun> {
  const run = `sample-${shape.name}-${process.pid}-${Date.now()}`;
  const orders = await createTable(services.dynamodb, 'cost-sample-orders', 'orderId', true);
  const effects = await createTable(services.dynamodb, 'cost-sample-effects', 'id');
  const producer = meteredDynamoDb(meter, services.dynamodb, 'producer');
  const consumerDb = meteredDynamoDb(meter, services.dynamodb, 'consumer-1');
  const plainSqs = new SQSClient(localAwsConfig(services.fauxqs));
  const queueUrl = (await plainSqs.send(new CreateQueueCommand({ QueueName: `q-${run}` }))).QueueUrl ?? '';
  const feed = streamFeed(services.dynamodb, orders.streamArn ?? '');

  let events = 0;
  let effectsApplied = 0;
  for (const batch of batchesOf(shape, run)) {
    for (const [order, sequence] of batch) {
      await meter.invoke('producer', MEMORY_MB.producer, () =>
        producer.doc.send(new PutCommand({ TableName: orders.tableName, Item: orderState(order, sequence) })),
      );
      events++;
    }
    for (const records of chunk(await feed(), 100)) {
      await meter.invoke('forwarder', MEMORY_MB.forwarder, async () => {
        for (const entries of chunk(records, 10)) {
          const details = entries.map((r) =>
            JSON.stringify(unmarshall((r.dynamodb?.NewImage ?? {}) as Record<string, AttributeValue>)),
          );
          // PutEvents, billed per entry; the rule's SQS target then receives each event (as EventBridge would).
          meter.countEventBridgeEvents(
            'forwarder',
            details.map((d) => Buffer.byteLength(d) + 200),
          );
          await plainSqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: details.map((detail, i) => ({
                Id: String(i),
                MessageBody: JSON.stringify({
                  source: '/orders',
                  'detail-type': 'OrderChanged',
                  detail: JSON.parse(detail),
                }),
              })),
            }),
          );
        }
      });
    }
    effectsApplied += await drainToFunction(meter, 'consumer-1', plainSqs, queueUrl, (event) =>
      meter.invoke('consumer-1', MEMORY_MB.consumer, async () => {
        for (const record of event.Records) {
          const { detail } = JSON.parse(record.body) as { detail: { orderId: string; status: string } };
          await consumerDb.doc.send(
            new UpdateCommand(
              effectUpdate(effects.tableName, detail.orderId, Number(detail.status.slice(1))),
            ),
          );
        }
        return { batchItemFailures: [] };
      }),
    );
  }
  return { events, effectsApplied, effectsExpected: events };
}
