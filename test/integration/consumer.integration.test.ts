import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBillingConsumer, ORDER_PAID, ORDER_PLACED } from '../../examples/orders/billing.ts';
import { NotificationSink } from '../../examples/orders/notification-sink.ts';
import { createNotificationsConsumer } from '../../examples/orders/notifications.ts';
import {
  ConsumerMetric,
  type ConsumerOptions,
  CountingMetrics,
  createConsumer,
  type IdempotentConsumer,
  LeaseLostError,
  POISON_REASON_ATTRIBUTE,
  pollOnce,
  SequenceGapError,
  syntheticLambdaContext,
} from '../../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqsService } from '../support/services.ts';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqs = useFauxqsService();
const silent = { info: () => {}, warn: () => {}, error: () => {} };

let raw: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let sqs: SQSClient;
let tableCounter = 0;

async function createTable(prefix: string, key: string): Promise<string> {
  const name = `${prefix}-${++tableCounter}`;
  await raw.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
    }),
  );
  return name;
}

async function createQueue(
  name: string,
  options: { fifo?: boolean; deadLetterArn?: string; maxReceiveCount?: number } = {},
): Promise<{ url: string; arn: string }> {
  const attributes: Record<string, string> = {};
  if (options.fifo) attributes.FifoQueue = 'true';
  if (options.deadLetterArn) {
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: options.deadLetterArn,
      maxReceiveCount: String(options.maxReceiveCount ?? 3),
    });
  }
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl as string;
  const described = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, arn: described.Attributes?.QueueArn as string };
}

async function visibleMessages(url: string): Promise<number> {
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(attributes.Attributes?.ApproximateNumberOfMessages ?? 0);
}

function orderEvent(orderId: string, sequence: number, type = ORDER_PLACED): OutboxEnvelope {
  return buildEnvelope(
    { type, source: '/demo/orders', data: { orderId, customerId: `c-${orderId}`, amountCents: 1000 } },
    { partitionKey: `order#${orderId}`, sequence },
  ).envelope;
}

beforeAll(() => {
  raw = new DynamoDBClient({ ...localAwsConfig(dynamoEndpoint()), maxAttempts: 1 });
  doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  sqs = new SQSClient(localAwsConfig(fauxqs().endpoint));
});

/** Three consumers with countable effects: a counter item (transactional), a charge (ordered), sink calls (lease). */
interface ModeCase {
  readonly consumer: IdempotentConsumer;
  readonly metrics: CountingMetrics;
  /** How many times the effect of `event` was applied. */
  effects(event: OutboxEnvelope): Promise<number>;
}

async function modeCase(mode: 'transactional' | 'ordered' | 'lease'): Promise<ModeCase> {
  const dedupTable = await createTable('dedup', 'pk');
  const metrics = new CountingMetrics();
  const base = { tableName: dedupTable, client: doc, metrics, logger: silent };
  if (mode === 'lease') {
    const sinkTable = await createTable('sink', 'idempotencyKey');
    const sink = new NotificationSink({ tableName: sinkTable, client: doc });
    return {
      consumer: createNotificationsConsumer({ ...base, sink }),
      metrics,
      async effects(event) {
        const item = await doc.send(
          new GetCommand({ TableName: sinkTable, Key: { idempotencyKey: event.id }, ConsistentRead: true }),
        );
        return Number(item.Item?.calls ?? 0);
      },
    };
  }
  const effectsTable = await createTable('effects', 'id');
  const consumer = createConsumer({
    ...base,
    name: `effects-${mode}`,
    mode,
    handle: (event) => [
      {
        Update: {
          TableName: effectsTable,
          Key: { id: event.id },
          UpdateExpression: 'ADD applied :one',
          ExpressionAttributeValues: { ':one': 1 },
        },
      },
    ],
  } as ConsumerOptions);
  return {
    consumer,
    metrics,
    async effects(event) {
      const item = await doc.send(
        new GetCommand({ TableName: effectsTable, Key: { id: event.id }, ConsistentRead: true }),
      );
      return Number(item.Item?.applied ?? 0);
    },
  };
}

/** Redelivers an event until the consumer stops failing (as SQS would), returning the outcomes. */
async function deliverUntilSettled(consumer: IdempotentConsumer, event: OutboxEnvelope): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await consumer.process(event)).status;
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

describe.each(['transactional', 'ordered', 'lease'] as const)('%s mode against DynamoDB Local', (mode) => {
  it('applies an event delivered five times sequentially exactly once', async () => {
    const c = await modeCase(mode);
    const event = orderEvent(`seq-${mode}`, 1);
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) outcomes.push((await c.consumer.process(event)).status);
    expect(outcomes).toEqual(['applied', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect(await c.effects(event)).toBe(1);
    expect(c.metrics.get(ConsumerMetric.DuplicatesSuppressed)).toBe(4);
  });

  it('applies an event delivered five times concurrently exactly once', async () => {
    const c = await modeCase(mode);
    const event = orderEvent(`conc-${mode}`, 1);
    const first = await Promise.allSettled(Array.from({ length: 5 }, () => c.consumer.process(event)));
    const applied = first.filter((r) => r.status === 'fulfilled' && r.value.status === 'applied');
    expect(applied).toHaveLength(1);
    // The losers either saw the winner's record (duplicate) or were told to retry; retries are duplicates.
    const retried = await Promise.all(
      first.filter((r) => r.status === 'rejected').map(() => deliverUntilSettled(c.consumer, event)),
    );
    expect(retried.every((status) => status === 'duplicate')).toBe(true);
    expect(await c.effects(event)).toBe(1);
  });
});

describe('transactional mode: crashes', () => {
  it('a crash after the commit but before the ack redelivers the message and the effect stays single', async () => {
    const c = await modeCase('transactional');
    const queue = await createQueue(`crash-${Date.now()}`);
    const event = orderEvent('crash', 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(event) }));

    // Invocation 1: commits, then the function dies before Lambda could delete the message.
    const crashed = await pollOnce({
      sqs,
      queueUrl: queue.url,
      visibilityTimeout: 0, // the crashed invocation's visibility timeout has run out
      handler: async (batch, context) => {
        await c.consumer.handler(batch, context);
        throw new Error('Runtime.ExitError: the sandbox died before returning');
      },
    });
    expect(crashed).toMatchObject({ received: 1, deleted: 0 });
    expect(await c.effects(event)).toBe(1);

    // Invocation 2: the redelivery is recognised and acknowledged.
    const redelivered = await pollOnce({ sqs, queueUrl: queue.url, handler: c.consumer.handler });
    expect(redelivered).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    expect(await c.effects(event)).toBe(1);
    expect(c.metrics.get(ConsumerMetric.DuplicatesSuppressed)).toBe(1);
    expect(await visibleMessages(queue.url)).toBe(0);
  });

  it('a commit whose response is lost (the call fails after DynamoDB applied it) is not applied twice', async () => {
    const dedupTable = await createTable('dedup', 'pk');
    const effectsTable = await createTable('effects', 'id');
    const flaky = DynamoDBDocumentClient.from(
      new DynamoDBClient({ ...localAwsConfig(dynamoEndpoint()), maxAttempts: 1 }),
    );
    let loseNextResponse = true;
    flaky.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        if (loseNextResponse) {
          loseNextResponse = false;
          throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseResponse' },
    );
    const consumer = createConsumer({
      name: 'lost-response',
      tableName: dedupTable,
      client: flaky,
      metrics: new CountingMetrics(),
      logger: silent,
      mode: 'transactional',
      handle: (event) => [
        {
          Update: {
            TableName: effectsTable,
            Key: { id: event.id },
            UpdateExpression: 'ADD applied :one',
            ExpressionAttributeValues: { ':one': 1 },
          },
        },
      ],
    });
    const event = orderEvent('lost', 1);
    await expect(consumer.process(event)).rejects.toThrow(/retried/);
    expect(await consumer.process(event)).toMatchObject({ status: 'duplicate' });
    const item = await doc.send(
      new GetCommand({ TableName: effectsTable, Key: { id: event.id }, ConsistentRead: true }),
    );
    expect(item.Item?.applied).toBe(1);
  });

  it('an expired dedup record is reclaimed by its expiresAt condition even though TTL has not deleted it', async () => {
    const c = await modeCase('transactional');
    const event = orderEvent('expired', 1);
    await c.consumer.process(event);
    const dedupTable = c.consumer.store.tableName;
    await doc.send(
      new PutCommand({
        TableName: dedupTable,
        Item: {
          pk: `E#effects-transactional#${event.id}`,
          status: 'COMPLETED',
          expiresAt: Math.floor(Date.now() / 1000) - 1,
        },
      }),
    );
    expect((await c.consumer.process(event)).status).toBe('applied');
  });
});

describe('lease mode: expiry', () => {
  it("rejects the owner's late completion after another worker took over the expired lease", async () => {
    const dedupTable = await createTable('dedup', 'pk');
    const sinkTable = await createTable('sink', 'idempotencyKey');
    const sink = new NotificationSink({ tableName: sinkTable, client: doc });
    const event = orderEvent('lease', 1);
    let releaseOwner: () => void = () => {};
    const ownerMayFinish = new Promise<void>((resolve) => {
      releaseOwner = resolve;
    });
    let ownerCalledSink: () => void = () => {};
    const ownerInsideEffect = new Promise<void>((resolve) => {
      ownerCalledSink = resolve;
    });
    const common = { tableName: dedupTable, client: doc, logger: silent };
    const ownerMetrics = new CountingMetrics();
    // The owner holds a 1-second lease and is slow: it is still running when the lease expires.
    const owner = createConsumer({
      ...common,
      name: 'notifications',
      metrics: ownerMetrics,
      mode: 'lease',
      leaseMs: 1_000,
      handle: async (e, ctx) => {
        await sink.send({ idempotencyKey: ctx.idempotencyKey, recipient: 'c', template: e.type });
        ownerCalledSink();
        await ownerMayFinish;
      },
    });
    // A redelivery reaches a second worker whose clock is past the owner's lease.
    const rival = createConsumer({
      ...common,
      name: 'notifications',
      metrics: new CountingMetrics(),
      mode: 'lease',
      leaseMs: 1_000,
      now: () => Date.now() + 5_000,
      handle: async (e, ctx) => {
        await sink.send({ idempotencyKey: ctx.idempotencyKey, recipient: 'c', template: e.type });
      },
    });
    const ownerRun = owner.process(event).catch((error: unknown) => error);
    await ownerInsideEffect;
    expect(await rival.process(event)).toMatchObject({ status: 'applied' });
    releaseOwner();
    const ownerError = await ownerRun;
    expect(ownerError).toBeInstanceOf(LeaseLostError);
    expect((ownerError as LeaseLostError).state).toBe('completed-by-other');
    expect(ownerMetrics.get(ConsumerMetric.LeasesLost)).toBe(1);
    // The sink shows the double call (same idempotency key, so it delivered once) ...
    const record = await doc.send(
      new GetCommand({ TableName: sinkTable, Key: { idempotencyKey: event.id }, ConsistentRead: true }),
    );
    expect(record.Item?.calls).toBe(2);
    // ... and the dedup record belongs to the rival's completion: a further delivery is a duplicate.
    expect(await owner.process(event)).toMatchObject({ status: 'duplicate' });
  });
});

describe('ordered mode: out-of-order delivery', () => {
  it('default policy: a gap is failed (retry later) and applied once the missing event arrived', async () => {
    const dedupTable = await createTable('dedup', 'pk');
    const chargesTable = await createTable('charges', 'orderId');
    const metrics = new CountingMetrics();
    const billing = createBillingConsumer({
      chargesTableName: chargesTable,
      tableName: dedupTable,
      client: doc,
      metrics,
      logger: silent,
    });
    const placed = orderEvent('ooo', 1, ORDER_PLACED);
    const paid = orderEvent('ooo', 2, ORDER_PAID);

    await expect(billing.process(paid)).rejects.toThrow(SequenceGapError);
    expect(metrics.get(ConsumerMetric.SequenceGaps)).toBe(1);
    const before = await doc.send(
      new GetCommand({ TableName: chargesTable, Key: { orderId: 'ooo' }, ConsistentRead: true }),
    );
    expect(before.Item).toBeUndefined();

    expect((await billing.process(placed)).status).toBe('applied');
    expect((await billing.process(paid)).status).toBe('applied');
    expect((await billing.process(placed)).status).toBe('stale');
    expect(metrics.get(ConsumerMetric.StaleSkipped)).toBe(1);
    const charge = await doc.send(
      new GetCommand({ TableName: chargesTable, Key: { orderId: 'ooo' }, ConsistentRead: true }),
    );
    expect(charge.Item?.status).toBe('CAPTURED');
    expect(charge.Item?.ledger.map((e: { eventId: string }) => e.eventId)).toEqual([placed.id, paid.id]);
  });

  it("onGap: 'accept' applies the later event, counts the gap and then skips the late one as stale", async () => {
    const dedupTable = await createTable('dedup', 'pk');
    const metrics = new CountingMetrics();
    const applied: number[] = [];
    const consumer = createConsumer({
      name: 'projection',
      tableName: dedupTable,
      client: doc,
      metrics,
      logger: silent,
      mode: 'ordered',
      onGap: 'accept',
      handle: (e) => {
        applied.push(e.sequence);
        return [];
      },
    });
    expect(await consumer.process(orderEvent('acc', 1))).toMatchObject({ status: 'applied' });
    expect(await consumer.process(orderEvent('acc', 3))).toMatchObject({
      status: 'applied',
      skippedSequences: 1,
    });
    expect(await consumer.process(orderEvent('acc', 2))).toMatchObject({ status: 'stale', lastSequence: 3 });
    expect(metrics.get(ConsumerMetric.SequenceGaps)).toBe(1);
    expect(metrics.get(ConsumerMetric.StaleSkipped)).toBe(1);
  });
});

describe('through SNS FIFO → SQS FIFO (fauxqs), as the relay publishes', () => {
  it('billing receives only order events, per order in order, and charges each order once', async () => {
    const sns = new SNSClient(localAwsConfig(fauxqs().endpoint));
    const topic = await sns.send(
      new CreateTopicCommand({
        Name: `events-${Date.now()}.fifo`,
        Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
      }),
    );
    const dlq = await createQueue(`billing-dlq-${Date.now()}.fifo`, { fifo: true });
    const queue = await createQueue(`billing-${Date.now()}.fifo`, {
      fifo: true,
      deadLetterArn: dlq.arn,
      maxReceiveCount: 5,
    });
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: {
          RawMessageDelivery: 'true',
          FilterPolicy: JSON.stringify({ type: [{ prefix: 'com.example.orders.' }] }),
        },
      }),
    );
    const events = [
      orderEvent('e2e-1', 1, ORDER_PLACED),
      orderEvent('e2e-2', 1, ORDER_PLACED),
      orderEvent('e2e-1', 2, ORDER_PAID),
      buildEnvelope(
        { type: 'com.example.users.UserCreated', source: '/users', data: {} },
        { partitionKey: 'user#1', sequence: 1 },
      ).envelope,
    ];
    const publish = (e: OutboxEnvelope) =>
      sns.send(
        new PublishCommand({
          TopicArn: topic.TopicArn,
          Message: JSON.stringify(e),
          MessageGroupId: e.partitionkey,
          MessageDeduplicationId: e.id,
          MessageAttributes: {
            type: { DataType: 'String', StringValue: e.type },
            source: { DataType: 'String', StringValue: e.source },
            partitionkey: { DataType: 'String', StringValue: e.partitionkey },
          },
        }),
      );
    for (const e of events) await publish(e);
    // The relay republishes (e.g. the sweeper) with a new dedup window: same event id, new SQS message id.
    await publish(events[0] as OutboxEnvelope);

    const dedupTable = await createTable('dedup', 'pk');
    const chargesTable = await createTable('charges', 'orderId');
    const metrics = new CountingMetrics();
    const billing = createBillingConsumer({
      chargesTableName: chargesTable,
      tableName: dedupTable,
      client: doc,
      metrics,
      logger: silent,
      deadLetterQueueUrl: dlq.url,
    });
    let received = 0;
    for (let i = 0; i < 10 && received < 4; i++) {
      received += (await pollOnce({ sqs, queueUrl: queue.url, handler: billing.handler })).received;
    }
    const charges =
      (await doc.send(new ScanCommand({ TableName: chargesTable, ConsistentRead: true }))).Items ?? [];
    expect(charges.map((c) => [c.orderId, c.status]).sort()).toEqual([
      ['e2e-1', 'CAPTURED'],
      ['e2e-2', 'PENDING'],
    ]);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(3);
    expect(await visibleMessages(queue.url)).toBe(0);
    sns.destroy();
  });
});

describe('poison messages', () => {
  it('go straight to the DLQ without burning retries, counted by the metric the DLQ alarm watches', async () => {
    const dlq = await createQueue(`poison-dlq-${Date.now()}`);
    const queue = await createQueue(`poison-${Date.now()}`, { deadLetterArn: dlq.arn, maxReceiveCount: 5 });
    const dedupTable = await createTable('dedup', 'pk');
    const metrics = new CountingMetrics();
    const logged: string[] = [];
    const consumer = createConsumer({
      name: 'poison',
      tableName: dedupTable,
      client: doc,
      sqsClient: sqs,
      metrics,
      logger: {
        ...silent,
        error: (message, attributes) => logged.push(message + JSON.stringify(attributes)),
      },
      deadLetterQueueUrl: dlq.url,
      mode: 'transactional',
      handle: () => [],
    });
    const poison = '{"card":"4111-1111-1111-1111"';
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: poison }));
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(orderEvent('fine', 1)) }),
    );

    const result = await pollOnce({ sqs, queueUrl: queue.url, handler: consumer.handler });
    expect(result).toMatchObject({ received: 2, deleted: 2, failed: 0 });
    expect(await visibleMessages(queue.url)).toBe(0);
    // ApproximateNumberOfMessages(Visible) on the DLQ is what the DeadLetterAlarm watches (≥ 1).
    expect(await visibleMessages(dlq.url)).toBe(1);
    const dead = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlq.url,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    expect(dead.Messages?.[0]?.Body).toBe(poison);
    expect(dead.Messages?.[0]?.MessageAttributes?.[POISON_REASON_ATTRIBUTE]?.StringValue).toBe(
      'body is not JSON',
    );
    expect(dead.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe('1');
    expect(metrics.get(ConsumerMetric.Poison)).toBe(1);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(1);
    expect(logged.join('\n')).not.toContain('4111');
  });

  it('without a DLQ URL, reach the DLQ through the redrive policy', async () => {
    const dlq = await createQueue(`redrive-dlq-${Date.now()}`);
    const queue = await createQueue(`redrive-${Date.now()}`, { deadLetterArn: dlq.arn, maxReceiveCount: 2 });
    const metrics = new CountingMetrics();
    const consumer = createConsumer({
      name: 'redrive',
      tableName: await createTable('dedup', 'pk'),
      client: doc,
      metrics,
      logger: silent,
      mode: 'transactional',
      handle: () => [],
    });
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify({ not: 'an envelope' }) }),
    );
    for (let i = 0; i < 3; i++) {
      await pollOnce({ sqs, queueUrl: queue.url, handler: consumer.handler, visibilityTimeout: 0 });
    }
    expect(await visibleMessages(queue.url)).toBe(0);
    expect(await visibleMessages(dlq.url)).toBe(1);
    expect(metrics.get(ConsumerMetric.Poison)).toBe(2);
  });
});

describe('the notifications subscriber in a Lambda-shaped invocation', () => {
  it('dedupes the same event sent as two SQS messages (dedup by event id, not message id)', async () => {
    const queue = await createQueue(`notify-${Date.now()}`);
    const sinkTable = await createTable('sink', 'idempotencyKey');
    const consumer = createNotificationsConsumer({
      sink: new NotificationSink({ tableName: sinkTable, client: doc }),
      tableName: await createTable('dedup', 'pk'),
      client: doc,
      metrics: new CountingMetrics(),
      logger: silent,
    });
    const event = orderEvent('notify', 1);
    for (let i = 0; i < 2; i++) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(event) }));
    }
    const context: Context = syntheticLambdaContext(30_000, 'notifications');
    const handler = (batch: SQSEvent, ctx: Context): Promise<SQSBatchResponse> =>
      consumer.handler(batch, ctx);
    let received = 0;
    for (let i = 0; i < 5 && received < 2; i++)
      received += (await pollOnce({ sqs, queueUrl: queue.url, handler, context })).received;
    const item = await doc.send(
      new GetCommand({ TableName: sinkTable, Key: { idempotencyKey: event.id }, ConsistentRead: true }),
    );
    expect(item.Item?.calls).toBe(1);
  });
});
