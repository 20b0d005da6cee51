import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LARGE_EVENTS_BUCKET_ENV, LARGE_EVENTS_PREFIX_ENV } from '../../functions/contract/large-events.ts';
import { envelopeProblems } from '../../functions/runtime/envelope.ts';
import { OutboxLimitError, OutboxRetryableError } from '../../functions/runtime/errors.ts';
import { SNS_MAX_MESSAGE_BYTES } from '../../functions/runtime/message-limits.ts';
import { envelopeJsonOf } from '../../functions/runtime/record-envelope.ts';
import { OutboxWriter, type OutboxWriterOptions } from '../../functions/runtime/writer.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const s3 = mockClient(S3Client);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const s3Client = new S3Client({ region: 'us-east-1' });
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const ID = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const LARGE = { bucket: 'payloads', prefix: 'outbox/orders/', client: s3Client };

function writerWith(options: Partial<OutboxWriterOptions> = {}): OutboxWriter {
  return new OutboxWriter({ tableName: 'outbox', source: '/orders', client, now: () => NOW, ...options });
}

afterEach(() => {
  ddb.reset();
  s3.reset();
  delete process.env[LARGE_EVENTS_BUCKET_ENV];
  delete process.env[LARGE_EVENTS_PREFIX_ENV];
});

const bigData = (bytes: number) => ({ attachment: 'x'.repeat(bytes), note: 'ünïcode' });
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function storedEnvelope(call: number): Record<string, unknown> {
  const items = ddb.commandCalls(TransactWriteCommand)[call]?.args[0].input.TransactItems ?? [];
  const record = items.at(-1)?.Put?.Item as Record<string, unknown>;
  return JSON.parse(envelopeJsonOf(record) ?? 'null');
}

describe('OutboxWriter claim-check (large events)', () => {
  it('puts data over the SNS limit in S3 before the transaction, and stores a reference envelope', async () => {
    const order: string[] = [];
    s3.on(PutObjectCommand).callsFake(() => {
      order.push('s3');
      return {};
    });
    ddb.on(TransactWriteCommand).callsFake(() => {
      order.push('ddb');
      return {};
    });
    const data = bigData(300 * 1024);
    const writer = writerWith({ largeEvents: LARGE });
    const result = await writer.transact({
      aggregate: { key: 'order#1', expectedVersion: 0 },
      events: [{ id: ID, type: 'OrderPlaced', data }],
    });
    expect(order).toEqual(['s3', 'ddb']);
    const put = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(put).toMatchObject({
      Bucket: 'payloads',
      Key: `outbox/orders/${ID}.json`,
      ContentType: 'application/json',
    });
    expect(put?.Body).toBe(JSON.stringify(data));
    const stored = storedEnvelope(0);
    expect(stored).not.toHaveProperty('data');
    expect(stored).toMatchObject({
      id: ID,
      datacontenttype: 'application/json',
      dataref: `s3://payloads/outbox/orders/${ID}.json`,
      datasize: Buffer.byteLength(JSON.stringify(data)),
      datasha256: sha256(JSON.stringify(data)),
    });
    expect(envelopeProblems(stored)).toEqual([]);
    expect(Buffer.byteLength(JSON.stringify(stored))).toBeLessThan(2048);
    // The caller gets the event as consumers' handlers will see it: data plus where it is stored.
    expect(result.events[0]?.data).toEqual(data);
    expect(result.events[0]?.dataref).toBe(stored.dataref);
  });

  it('keeps an event that fits inline, inline (no S3 call)', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    await writerWith({ largeEvents: LARGE }).transact({
      aggregate: { key: 'order#1', expectedVersion: 0 },
      events: [{ id: ID, type: 'OrderPlaced', data: bigData(1000) }],
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(storedEnvelope(0)).toHaveProperty('data');
  });

  it('offloads by the smallest configured target: an SQS-only outbox keeps a 300 KB event inline', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const writer = writerWith({ largeEvents: LARGE, targets: ['sqs'], maxEventBytes: 1024 * 1024 });
    const { payloads } = writer.buildTransaction(
      { aggregate: { key: 'order#1' }, events: [{ id: ID, type: 'T', data: bigData(300 * 1024) }] },
      0,
    );
    expect(payloads).toEqual([]);
    const sns = writerWith({ largeEvents: LARGE, targets: ['sns'], maxEventBytes: 1024 * 1024 });
    const offloaded = sns.buildTransaction(
      {
        aggregate: { key: 'order#1' },
        events: [{ id: ID, type: 'T', data: bigData(SNS_MAX_MESSAGE_BYTES) }],
      },
      0,
    );
    expect(offloaded.payloads).toHaveLength(1);
  });

  it('refuses an event over largeEvents.maxEventBytes with an OutboxLimitError saying what to do', async () => {
    const writer = writerWith({ largeEvents: { ...LARGE, maxEventBytes: 512 * 1024 } });
    const error = await writer
      .transact({
        aggregate: { key: 'order#1', expectedVersion: 0 },
        events: [{ type: 'T', data: bigData(600 * 1024) }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxLimitError);
    expect((error as Error).message).toMatch(/524288 bytes.*raise largeEvents\.maxEventBytes/);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('with large events off, refuses a large event at write time as before', async () => {
    process.env[LARGE_EVENTS_BUCKET_ENV] = 'payloads';
    const error = await writerWith({ largeEvents: false })
      .transact({
        aggregate: { key: 'order#1', expectedVersion: 0 },
        events: [{ type: 'T', data: bigData(300 * 1024) }],
      })
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('OutboxValidationError');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it('reads the bucket and prefix from the environment (outbox.producerEnvironment)', () => {
    process.env[LARGE_EVENTS_BUCKET_ENV] = 'env-bucket';
    process.env[LARGE_EVENTS_PREFIX_ENV] = 'p/';
    const writer = writerWith();
    expect(writer.largeEvents).toMatchObject({
      bucket: 'env-bucket',
      prefix: 'p/',
      maxEventBytes: 10 * 1024 * 1024,
    });
    const { payloads } = writer.buildTransaction(
      { aggregate: { key: 'order#1' }, events: [{ id: ID, type: 'T', data: bigData(300 * 1024) }] },
      0,
    );
    expect(payloads[0]).toMatchObject({ bucket: 'env-bucket', key: `p/${ID}.json` });
  });

  it('commits nothing when the S3 put fails (retryable error), and a retry overwrites the same key', async () => {
    s3.on(PutObjectCommand)
      .rejectsOnce(
        Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      )
      .resolves({});
    ddb.on(TransactWriteCommand).resolves({});
    const writer = writerWith({ largeEvents: LARGE });
    const input = {
      aggregate: { key: 'order#1', expectedVersion: 0 },
      events: [{ id: ID, type: 'T', data: bigData(300 * 1024) }],
    };
    await expect(writer.transact(input)).rejects.toBeInstanceOf(OutboxRetryableError);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    await writer.transact(input);
    const keys = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key);
    expect(keys).toEqual([`outbox/orders/${ID}.json`, `outbox/orders/${ID}.json`]);
  });

  it('a refused S3 put (access denied) is not retryable and names the grant to check', async () => {
    s3.on(PutObjectCommand).rejects(
      Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
    );
    const error = await writerWith({ largeEvents: LARGE })
      .transact({
        aggregate: { key: 'order#1', expectedVersion: 0 },
        events: [{ id: ID, type: 'T', data: bigData(300 * 1024) }],
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'OutboxError', retryable: false });
    expect((error as Error).message).toMatch(/AccessDenied.*nothing was committed.*s3:PutObject/);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('prepare() stores the data in S3 and confirm() commits the same reference without touching S3', async () => {
    s3.on(PutObjectCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    const data = bigData(400 * 1024);
    const writer = writerWith({ largeEvents: LARGE });
    await writer.prepare('order#1', { id: ID, type: 'T', data });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
    const item = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item as Record<string, unknown>;
    const prepared = JSON.parse(item.preparedEvent as string);
    expect(prepared).not.toHaveProperty('data');
    expect(prepared.dataref).toBe(`s3://payloads/outbox/orders/${ID}.json`);

    ddb
      .on(GetCommand)
      .callsFake((input: { Key: { sk: string } }) =>
        input.Key.sk === 'HEAD' ? { Item: { lastSequence: 2 } } : { Item },
      );
    const Item = item;
    ddb.on(TransactWriteCommand).resolves({});
    // The sweeper confirms with a writer that has no large-event settings: it must not need them.
    await writerWith({ largeEvents: false }).confirm({ aggregateKey: 'order#1', id: ID });
    const stored = storedEnvelope(0);
    expect(stored).not.toHaveProperty('data');
    expect(stored).toMatchObject({
      id: ID,
      sequence: 3,
      dataref: prepared.dataref,
      datasha256: sha256(JSON.stringify(data)),
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
  });
});
