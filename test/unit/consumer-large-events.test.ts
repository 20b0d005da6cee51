import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, NoSuchKey, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CountingMetrics,
  createConsumer,
  LargeEventPayloadError,
  parseEnvelope,
} from '../../functions/consumer/index.ts';
import { claimCheck } from '../../functions/runtime/claim-check.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const s3 = mockClient(S3Client);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const s3Client = new S3Client({ region: 'us-east-1' });
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

afterEach(() => {
  ddb.reset();
  s3.reset();
});

const data = { orderId: '7', attachment: 'ä'.repeat(200_000) };

/** A claim-checked envelope as the relay publishes it, and the object the writer stored. */
function largeEvent(sequence = 1) {
  const built = buildEnvelope(
    { type: 'OrderPlaced', source: '/orders', data },
    { partitionKey: 'order#7', sequence, maxEventBytes: 1024 * 1024 },
  );
  const { built: reference, payload } = claimCheck(built, {
    bucket: 'payloads',
    prefix: 'outbox/',
    maxEventBytes: 10 * 1024 * 1024,
    client: s3Client,
  });
  const parsed = parseEnvelope(reference.json);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { published: parsed.envelope, body: payload.body, key: payload.key };
}

const objectBody = (text: string) => ({ Body: { transformToString: async () => text } as never });

function sqsRecord(envelope: OutboxEnvelope): SQSRecord {
  return {
    messageId: 'm1',
    receiptHandle: 'rh',
    body: JSON.stringify(envelope),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(NOW),
      SenderId: 'sns',
      ApproximateFirstReceiveTimestamp: String(NOW),
      MessageGroupId: 'order#7',
      MessageDeduplicationId: envelope.id,
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:billing.fifo',
    awsRegion: 'us-east-1',
  };
}

function consumerOf(mode: 'transactional' | 'ordered' | 'lease', seen: unknown[]) {
  const logged: { level: string; attributes?: Record<string, unknown> }[] = [];
  const log = (level: string) => (_m: string, attributes?: Record<string, unknown>) =>
    logged.push({ level, ...(attributes ? { attributes } : {}) });
  const consumer = createConsumer({
    name: 'billing',
    tableName: 'dedup',
    client,
    s3Client,
    sqsClient: new SQSClient({ region: 'us-east-1' }),
    metrics: new CountingMetrics(),
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    now: () => NOW,
    mode,
    handle: (event: OutboxEnvelope) => {
      seen.push(event.data);
      return mode === 'lease' ? undefined : [];
    },
  } as never);
  return { consumer, logged };
}

describe('consumer claim-check: the handler sees a large event data inline', () => {
  for (const mode of ['transactional', 'ordered', 'lease'] as const) {
    it(`${mode}: fetches the payload, verifies it and passes it as event.data`, async () => {
      const { published, body, key } = largeEvent();
      expect(published).not.toHaveProperty('data');
      s3.on(GetObjectCommand, { Bucket: 'payloads', Key: key }).resolves(objectBody(body));
      ddb.on(PutCommand).resolves({});
      ddb.on(UpdateCommand).resolves({});
      ddb.on(TransactWriteCommand).resolves({});
      const seen: unknown[] = [];
      const { consumer } = consumerOf(mode, seen);
      const result = await consumer.processBatch({ Records: [sqsRecord(published)] });
      expect(result.batchItemFailures).toEqual([]);
      expect(result.results[0]?.status).toBe('applied');
      expect(seen).toEqual([data]);
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
    });
  }

  it('does not call S3 for an inline event', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    const inline = buildEnvelope(
      { type: 'T', source: '/o', data: { a: 1 } },
      { partitionKey: 'k', sequence: 1 },
    );
    const seen: unknown[] = [];
    await consumerOf('transactional', seen).consumer.process(inline.envelope);
    expect(seen).toEqual([{ a: 1 }]);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
  });
});

describe('consumer claim-check: a missing or corrupt payload fails the record with LargeEventPayloadError', () => {
  const cases = [
    {
      name: 'missing object',
      problem: 'missing',
      retryable: false,
      arrange: () => s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'gone', $metadata: {} })),
    },
    {
      name: 'same size, other content (sha256)',
      problem: 'sha256',
      retryable: false,
      arrange: (body: string) => s3.on(GetObjectCommand).resolves(objectBody(body.replace('ä', 'ö'))),
    },
    {
      name: 'truncated object (size)',
      problem: 'size',
      retryable: false,
      arrange: (body: string) => s3.on(GetObjectCommand).resolves(objectBody(body.slice(0, -10))),
    },
    {
      name: 'access denied (unreadable, retryable)',
      problem: 'unreadable',
      retryable: true,
      arrange: () =>
        s3
          .on(GetObjectCommand)
          .rejects(
            Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
          ),
    },
  ] as const;

  for (const c of cases) {
    it(`${c.name}: handler not called, nothing committed, the message fails (redrive → DLQ)`, async () => {
      const { published, body } = largeEvent();
      c.arrange(body);
      ddb.on(TransactWriteCommand).resolves({});
      const seen: unknown[] = [];
      const { consumer, logged } = consumerOf('transactional', seen);
      const result = await consumer.processBatch({ Records: [sqsRecord(published)] });
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
      expect(result.results[0]).toMatchObject({ status: 'failed', error: 'LargeEventPayloadError' });
      expect(seen).toEqual([]);
      expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
      const line = logged.find((l) => l.attributes?.error === 'LargeEventPayloadError');
      expect(line?.level).toBe(c.retryable ? 'warn' : 'error');
      expect(line?.attributes?.reason).toContain(published.dataref);

      const error = await consumer.process(published).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LargeEventPayloadError);
      expect(error).toMatchObject({ problem: c.problem, eventId: published.id, dataref: published.dataref });
    });
  }

  it('lease mode: releases the claim when the payload cannot be used, so a retry need not wait', async () => {
    const { published } = largeEvent();
    s3.on(GetObjectCommand).rejects(new NoSuchKey({ message: 'gone', $metadata: {} }));
    ddb.on(PutCommand).resolves({});
    ddb.on(DeleteCommand).resolves({});
    const seen: unknown[] = [];
    const result = await consumerOf('lease', seen).consumer.processBatch({ Records: [sqsRecord(published)] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(seen).toEqual([]);
    expect(ddb.commandCalls(DeleteCommand)).toHaveLength(1);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('refuses as poison an envelope with a malformed reference (not silently applied without data)', () => {
    const { published } = largeEvent();
    const parsed = parseEnvelope(JSON.stringify({ ...published, datasha256: 'nope' }));
    expect(parsed.ok).toBe(false);
  });
});

describe('consumer claim-check: an envelope with inline data is inline', () => {
  it('ignores a dataref next to data (CloudEvents allows both): no S3 call, the handler gets the inline data', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const inline = buildEnvelope(
      { type: 'T', source: '/o', data: { a: 1 } },
      { partitionKey: 'k', sequence: 1 },
    );
    const parsed = parseEnvelope(
      JSON.stringify({ ...inline.envelope, dataref: 'https://example.com/elsewhere' }),
    );
    if (!parsed.ok) throw new Error(parsed.reason);
    const seen: unknown[] = [];
    await consumerOf('transactional', seen).consumer.process(parsed.envelope);
    expect(seen).toEqual([{ a: 1 }]);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
  });
});
