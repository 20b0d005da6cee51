import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACK_EVENT_TYPES_ENV,
  ACK_TABLE_ENV,
  ConsumerConfigurationError,
  ConsumerMetric,
  CountingMetrics,
  createConsumer,
  type TransactionalConsumerOptions,
} from '../../functions/consumer/index.ts';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import type { Publisher } from '../../functions/relay/publishers.ts';
import { type AckRecorder, FinishedMemory, relay } from '../../functions/relay/relay.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const silent = { info: () => {}, warn: () => {}, error: () => {} };

afterEach(() => ddb.reset());

function event(type = 'com.example.orders.OrderPlaced'): OutboxEnvelope {
  return buildEnvelope({ type, source: '/orders', data: {} }, { partitionKey: 'order#1', sequence: 1 })
    .envelope;
}

function billing(overrides: Partial<TransactionalConsumerOptions> = {}) {
  const metrics = new CountingMetrics();
  const consumer = createConsumer({
    name: 'billing',
    mode: 'transactional',
    tableName: 'dedup',
    handle: () => [],
    client,
    metrics,
    logger: silent,
    now: () => NOW,
    acknowledge: { tableName: 'outbox', eventTypes: ['com.example.orders.OrderPlaced'] },
    ...overrides,
  });
  return { consumer, metrics };
}

const acks = () =>
  ddb
    .commandCalls(UpdateCommand)
    .map((c) => c.args[0].input)
    .filter((i) => i.TableName === 'outbox');

function sqsRecord(body: string, messageId: string): SQSRecord {
  return {
    messageId,
    receiptHandle: messageId,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(NOW),
      SenderId: 'sns',
      ApproximateFirstReceiveTimestamp: String(NOW),
      MessageGroupId: 'order#1',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:billing.fifo',
    awsRegion: 'us-east-1',
  } as SQSRecord;
}

describe('tracked consumer: acknowledgements', () => {
  it('acknowledges after applying the effect: ACK#<event id>#<consumer> / <consumer> set DONE, expiring retainFor later', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    const e = event();
    const { consumer } = billing();
    expect((await consumer.process(e)).status).toBe('applied');
    expect(acks()).toEqual([
      expect.objectContaining({
        TableName: 'outbox',
        Key: { pk: `ACK#${e.id}#billing`, sk: 'billing' },
        ConditionExpression: 'attribute_exists(pk)',
        UpdateExpression: expect.stringContaining('expiresAt = retainFor + :nowSeconds'),
        ExpressionAttributeValues: { ':done': 'DONE', ':now': NOW, ':nowSeconds': Math.floor(NOW / 1000) },
      }),
    ]);
    // The dedup write comes first: the ack is only written once the effect is in place.
    expect(ddb.calls()[0]?.args[0]).toBeInstanceOf(PutCommand);
  });

  it('acknowledges a duplicate too, so a redelivery after a lost acknowledgement completes it', async () => {
    ddb.on(PutCommand).rejects(
      new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: { httpStatusCode: 400 },
        Item: marshall({ pk: 'E#billing#x', status: 'COMPLETED' }),
      }),
    );
    ddb.on(UpdateCommand).resolves({});
    const { consumer } = billing();
    expect((await consumer.process(event())).status).toBe('duplicate');
    expect(acks()).toHaveLength(1);
  });

  it('does not acknowledge event types it is not tracked for', async () => {
    ddb.on(PutCommand).resolves({});
    await billing().consumer.process(event('com.example.orders.OrderShipped'));
    expect(acks()).toEqual([]);
  });

  it('fails the message when the acknowledgement fails (the effect stays applied once), so it is redelivered', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    const { consumer, metrics } = billing();
    const result = await consumer.processBatch({ Records: [sqsRecord(JSON.stringify(event()), 'm1')] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(1);
    expect(metrics.get(ConsumerMetric.Failed)).toBe(1);
  });

  it('reads the outbox table and tracked types from OUTBOX_ACK_TABLE_NAME / OUTBOX_ACK_EVENT_TYPES, and can be turned off', async () => {
    const saved = { table: process.env[ACK_TABLE_ENV], types: process.env[ACK_EVENT_TYPES_ENV] };
    process.env[ACK_TABLE_ENV] = 'outbox';
    process.env[ACK_EVENT_TYPES_ENV] = 'com.example.orders.OrderPaid, com.example.orders.OrderPlaced';
    try {
      ddb.on(PutCommand).resolves({});
      ddb.on(UpdateCommand).resolves({});
      // `acknowledge: undefined`: the default, read from the environment.
      await billing({ acknowledge: undefined }).consumer.process(event());
      await billing({ acknowledge: undefined }).consumer.process(event('com.example.orders.OrderShipped'));
      expect(acks()).toHaveLength(1);
      await billing({ acknowledge: false }).consumer.process(event());
      expect(acks()).toHaveLength(1);
    } finally {
      for (const [name, value] of [
        [ACK_TABLE_ENV, saved.table],
        [ACK_EVENT_TYPES_ENV, saved.types],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('rejects an empty table name', () => {
    expect(() => billing({ acknowledge: { tableName: '' } })).toThrow(ConsumerConfigurationError);
  });
});

describe('relay core: tracked events', () => {
  const record: OutboxRecord = {
    pk: 'order#1',
    sk: 'EVT#000000000001',
    id: 'e-1',
    type: 'T',
    source: '/s',
    sequence: 1,
    envelope: '{}',
    envelopeBytes: 2,
    createdAt: 0,
  };
  /** Accepts everything; `order` (set by setUp) records each send among the other steps. */
  let sendOrder: string[] = [];
  const accepting: Publisher = {
    name: 'fake',
    maxBatchBytes: 262_144,
    recordsPerGroupPerCall: 1,
    entryBytes: (r) => r.envelopeBytes,
    problem: () => undefined,
    send: async (batch) => {
      for (const r of batch) sendOrder.push(`send ${r.id}`);
      return batch.map(() => ({ ok: true as const }));
    },
  };
  const forever = { deadline: Number.MAX_SAFE_INTEGER, random: () => 0 };

  function setUp(markResult: 'updated' | 'unchanged', ackFailures: number) {
    const order: string[] = [];
    sendOrder = order;
    let failuresLeft = ackFailures;
    const acks: AckRecorder = {
      recordExpected: async (r) => {
        order.push(`ack ${r.id}`);
        if (failuresLeft-- > 0) throw Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
        return 1;
      },
    };
    const deps = {
      publishers: [accepting],
      bookkeeper: {
        markPublished: async (k: { sk: string }) => {
          order.push(`mark ${k.sk}`);
          return markResult;
        },
        quarantine: async () => 'updated' as const,
        hold: async () => 'updated' as const,
      },
      acks,
      memory: new FinishedMemory(),
    };
    return { deps, order };
  }

  it('writes the pending acknowledgements before sending the record, so an early ack finds its item (#10.6)', async () => {
    const { deps, order } = setUp('updated', 0);
    const report = await relay(
      [{ ref: '1', changeId: 'c1', decoded: { kind: 'publish', record } }],
      deps,
      forever,
    );
    expect(report.results[0]?.status).toBe('published');
    expect(order).toEqual(['ack e-1', 'send e-1', 'mark EVT#000000000001']);
  });

  it('does not send a record whose acknowledgements could not be written, nor the rest of its aggregate', async () => {
    const { deps, order } = setUp('updated', 1);
    const second = { ...record, sk: 'EVT#000000000002', id: 'e-2', sequence: 2 };
    const first = await relay(
      [
        { ref: '1', changeId: 'c1', decoded: { kind: 'publish' as const, record } },
        { ref: '2', changeId: 'c2', decoded: { kind: 'publish' as const, record: second } },
      ],
      deps,
      forever,
    );
    expect(first.results[0]).toMatchObject({
      status: 'retry',
      reason: expect.stringMatching(/pending delivery acknowledgements failed, so it was not sent/),
    });
    expect(first.results[1]).toMatchObject({ status: 'retry', code: 'Blocked' });
    expect(order.filter((step) => step.startsWith('send'))).toEqual([]);
    // Lambda redelivers: the acks are written, then the records are sent in order.
    const again = await relay(
      [
        { ref: '1', changeId: 'c1', decoded: { kind: 'publish' as const, record } },
        { ref: '2', changeId: 'c2', decoded: { kind: 'publish' as const, record: second } },
      ],
      deps,
      forever,
    );
    expect(again.results.map((r) => r.status)).toEqual(['published', 'published']);
    expect(order.filter((step) => step.startsWith('send'))).toEqual(['send e-1', 'send e-2']);
  });
});
