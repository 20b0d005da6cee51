import { gzipSync } from 'node:zlib';
import { ConditionalCheckFailedException, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createBookkeeper } from '../../functions/relay/bookkeeping.ts';
import { readRelayConfig } from '../../functions/relay/config.ts';
import { decodeImage, type OutboxRecord } from '../../functions/relay/decode.ts';
import { batchItemFailures, compareSequenceNumbers } from '../../functions/relay/handler.ts';
import { publishInOrder } from '../../functions/relay/publish.ts';
import {
  classifyCallError,
  classifyEntryError,
  type EntryResult,
  messageGroupId,
  type Publisher,
} from '../../functions/relay/publishers.ts';
import { FinishedMemory, type RelayResult } from '../../functions/relay/relay.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';

function record(pk: string, sequence: number, bytes = 100): OutboxRecord {
  return {
    pk,
    sk: `EVT#${String(sequence).padStart(12, '0')}`,
    id: `${pk}-${sequence}`,
    type: 'T',
    source: '/s',
    sequence,
    envelope: 'x'.repeat(bytes),
    envelopeBytes: bytes,
    createdAt: 0,
  };
}

/** A publisher that records every call and answers with `answer` (default: all accepted). */
function fakePublisher(
  options: {
    perGroup?: number;
    maxBatchBytes?: number;
    answer?: (batch: readonly OutboxRecord[], call: number) => EntryResult[];
  } = {},
) {
  const calls: OutboxRecord[][] = [];
  const publisher: Publisher = {
    name: 'fake',
    maxBatchBytes: options.maxBatchBytes ?? 262_144,
    recordsPerGroupPerCall: options.perGroup ?? 1,
    entryBytes: (r) => r.envelopeBytes,
    problem: () => undefined,
    send: async (batch) => {
      calls.push([...batch]);
      return options.answer ? options.answer(batch, calls.length) : batch.map(() => ({ ok: true }));
    },
  };
  return { publisher, calls };
}

const forever = { deadline: Number.MAX_SAFE_INTEGER, random: () => 0 };

describe('publishInOrder', () => {
  it('needs 100 calls for 1,000 events of 100 aggregates: full batches of 10', async () => {
    const records = Array.from({ length: 1000 }, (_, i) => record(`agg${i % 100}`, Math.floor(i / 100) + 1));
    const { publisher, calls } = fakePublisher();

    const result = await publishInOrder(records, [publisher], forever);

    expect(calls).toHaveLength(100);
    expect(calls.every((c) => c.length === 10)).toBe(true);
    expect(result.outcomes.every((o) => o.status === 'published')).toBe(true);
    expect(result.stats).toMatchObject({ calls: { fake: 100 }, accepted: { fake: 1000 }, retried: 0 });
  });

  it('lets a target that does not keep order take consecutive events of one aggregate in one call', async () => {
    const records = Array.from({ length: 25 }, (_, i) => record('one', i + 1));
    const { publisher, calls } = fakePublisher({ perGroup: 10 });

    await publishInOrder(records, [publisher], forever);

    expect(calls.map((c) => c.map((r) => r.sequence))).toEqual([
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      [21, 22, 23, 24, 25],
    ]);
  });

  it('closes a batch before it exceeds the byte limit', async () => {
    const records = Array.from({ length: 6 }, (_, i) => record(`k${i}`, 1, 100_000));
    const { publisher, calls } = fakePublisher({ maxBatchBytes: 262_144 });

    await publishInOrder(records, [publisher], forever);

    expect(calls.map((c) => c.length)).toEqual([2, 2, 2]);
  });

  it('quarantines (rejects) an entry the target refuses and carries on with its aggregate', async () => {
    const records = [record('a', 1), record('a', 2), record('a', 3)];
    const { publisher } = fakePublisher({
      answer: (batch) =>
        batch.map((r) =>
          r.sequence === 2
            ? { ok: false, kind: 'rejected', code: 'InvalidMessageContents', message: 'bad' }
            : { ok: true },
        ),
    });

    const { outcomes } = await publishInOrder(records, [publisher], forever);

    expect(outcomes.map((o) => o.status)).toEqual(['published', 'rejected', 'published']);
  });

  it('stops the aggregate on every target when one target fails for good', async () => {
    const records = [record('a', 1), record('a', 2), record('a', 3), record('b', 1)];
    const failing = fakePublisher({
      answer: (batch) =>
        batch.map((r) =>
          r.id === 'a-2'
            ? { ok: false, kind: 'fatal', code: 'KMSAccessDenied', message: 'denied' }
            : { ok: true },
        ),
    });
    const healthy = fakePublisher();

    const { outcomes } = await publishInOrder(
      records,
      [failing.publisher, { ...healthy.publisher, name: 'ok' }],
      forever,
    );

    expect(outcomes.map((o) => o.status)).toEqual(['published', 'failed', 'blocked', 'published']);
    expect(outcomes[1]).toMatchObject({ target: 'fake', code: 'KMSAccessDenied', attempts: 1 });
    expect(healthy.calls.flat().map((r) => r.id)).not.toContain('a-3');
  });

  it('publishes nothing once the deadline has passed and reports the records as failed', async () => {
    const { publisher, calls } = fakePublisher();

    const { outcomes } = await publishInOrder([record('a', 1), record('a', 2)], [publisher], { deadline: 0 });

    expect(calls).toEqual([]);
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'blocked']);
    expect(outcomes[0]).toMatchObject({ code: 'DeadlineExceeded' });
  });
});

describe('decodeImage', () => {
  const image = {
    pk: { S: 'a' },
    sk: { S: 'EVT#000000000001' },
    id: { S: '0190a0f0-0000-7000-8000-000000000001' },
    type: { S: 'T' },
    source: { S: '/s' },
    sequence: { N: '1' },
    status: { S: 'READY' },
    createdAt: { N: '5' },
  };
  const envelope = JSON.stringify({
    specversion: '1.0',
    id: image.id.S,
    source: '/s',
    type: 'T',
    time: '2026-01-01T00:00:00Z',
    datacontenttype: 'application/json',
    partitionkey: 'a',
    sequence: 1,
    subject: 'order-1',
    data: {},
  });

  it('reads a gzipped envelope given as bytes (an SDK read) and keeps the subject', () => {
    const decoded = decodeImage({ ...image, envelopeGzip: { B: new Uint8Array(gzipSync(envelope)) } });

    expect(decoded).toMatchObject({
      kind: 'publish',
      record: { envelope, subject: 'order-1', createdAt: 5 },
    });
  });

  it('ignores items that are not READY event records', () => {
    expect(decodeImage({ ...image, status: { S: 'PUBLISHED' }, envelope: { S: envelope } }).kind).toBe(
      'ignore',
    );
    expect(decodeImage({ pk: { S: 'a' }, sk: { S: 'HEAD' } }).kind).toBe('ignore');
  });
});

describe('FIFO group ids, error classes, sequence numbers', () => {
  it('uses the aggregate key as group id when SNS/SQS accept it, else a stable hash', () => {
    expect(messageGroupId('order#123')).toBe('order#123');
    const odd = messageGroupId('bestellung äöü');
    expect(odd).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(messageGroupId('bestellung äöü')).toBe(odd);
    expect(messageGroupId('k'.repeat(129))).toMatch(/^sha256:/);
  });

  it.each([
    ['ThrottledException', 'retryable'],
    ['KMSThrottlingException', 'retryable'],
    ['InternalErrorException', 'retryable'],
    ['AuthorizationErrorException', 'fatal'],
    ['NotFoundException', 'fatal'],
    ['InvalidParameterException', 'split'],
    ['BatchRequestTooLong', 'split'],
  ])('classifies a thrown %s as %s', (name, kind) => {
    expect(
      classifyCallError(Object.assign(new Error('x'), { name, $metadata: { httpStatusCode: 400 } })).kind,
    ).toBe(kind);
  });

  it('classifies entry errors by code, then by sender fault', () => {
    expect(classifyEntryError('InvalidMessageContents', true)).toBe('rejected');
    expect(classifyEntryError('InternalError', false)).toBe('retryable');
    expect(classifyEntryError('KmsAccessDenied', true)).toBe('fatal');
    expect(classifyEntryError('AccessDeniedException', undefined)).toBe('fatal'); // EventBridge has no sender fault
    expect(classifyEntryError('Unknown', false)).toBe('retryable');
  });

  it('compares stream sequence numbers numerically', () => {
    expect(compareSequenceNumbers('99', '100')).toBeLessThan(0);
    expect(compareSequenceNumbers('200', '100')).toBeGreaterThan(0);
  });

  it('reports one item failure per failed aggregate: its lowest sequence number', () => {
    const retry = (pk: string): RelayResult => ({
      status: 'retry',
      key: { pk, sk: '' },
      eventId: '',
      code: 'X',
      reason: '',
    });
    const results: RelayResult[] = [retry('a'), { status: 'ignored', reason: '' }, retry('a'), retry('b')];

    expect(batchItemFailures(['300', '100', '200', '1000'], results)).toEqual([
      { itemIdentifier: '200' },
      { itemIdentifier: '1000' },
    ]);
  });

  it('forgets the oldest finished change first', () => {
    const memory = new FinishedMemory(2);
    memory.set('a', 'done');
    memory.set('b', 'done');
    memory.set('c', 'published');
    expect([memory.get('a'), memory.get('b'), memory.get('c'), memory.size]).toEqual([
      undefined,
      'done',
      'published',
      2,
    ]);
  });
});

describe('bookkeeping', () => {
  const ddb = mockClient(DynamoDBClient);
  afterEach(() => ddb.reset());
  const bookkeeper = createBookkeeper({
    client: new DynamoDBClient({ region: 'us-east-1' }),
    tableName: 'outbox',
    retentionDays: 3,
  });

  it('quarantines only a READY record: status, reason, no expiry, moved to a Q# index shard', async () => {
    ddb.on(UpdateItemCommand).resolves({});

    expect(await bookkeeper.quarantine({ pk: 'a', sk: 'EVT#000000000001' }, 'r'.repeat(5000))).toBe(
      'updated',
    );

    const input = ddb.commandCalls(UpdateItemCommand)[0]?.args[0].input;
    expect(input?.UpdateExpression).toBe(
      'SET #status = :quarantined, lastError = :reason, pendingShard = :shard REMOVE expiresAt',
    );
    expect(input?.ExpressionAttributeValues?.[':shard']?.S).toBe('Q#1');
    expect(input?.ConditionExpression).toBe('#status = :ready');
    expect(input?.ExpressionAttributeValues?.[':reason']?.S).toHaveLength(1000);
  });

  it('reports a record that is no longer READY as unchanged, and rethrows other errors', async () => {
    ddb
      .on(UpdateItemCommand)
      .rejectsOnce(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }))
      .rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));

    expect(await bookkeeper.markPublished({ pk: 'a', sk: 's' }, 1_000)).toBe('unchanged');
    await expect(bookkeeper.markPublished({ pk: 'a', sk: 's' }, 1_000)).rejects.toThrow('slow down');
    expect(
      ddb.commandCalls(UpdateItemCommand)[0]?.args[0].input.ExpressionAttributeValues?.[':expires'],
    ).toEqual({
      N: String(1 + 3 * 86_400),
    });
  });
});

describe('readRelayConfig', () => {
  const base = {
    OUTBOX_TABLE_NAME: 'outbox',
    OUTBOX_SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:events.fifo',
  };

  it('reads targets, retention and limits', () => {
    expect(
      readRelayConfig({
        ...base,
        OUTBOX_EVENT_BUS_NAME: 'bus',
        OUTBOX_SQS_QUEUE_URLS:
          'https://sqs.us-east-1.amazonaws.com/123456789012/a.fifo, https://sqs.us-east-1.amazonaws.com/123456789012/b.fifo',
        OUTBOX_RETENTION_DAYS: '3',
        OUTBOX_SNS_MAX_MESSAGE_BYTES: '1048576',
      }),
    ).toMatchObject({
      tableName: 'outbox',
      retentionDays: 3,
      eventBusName: 'bus',
      sqsQueueUrls: [
        'https://sqs.us-east-1.amazonaws.com/123456789012/a.fifo',
        'https://sqs.us-east-1.amazonaws.com/123456789012/b.fifo',
      ],
      snsMaxMessageBytes: 1_048_576,
      eventBridgeMaxEntryBytes: 1_048_576,
    });
  });

  it.each([
    ['no table', { OUTBOX_SNS_TOPIC_ARN: base.OUTBOX_SNS_TOPIC_ARN }, /OUTBOX_TABLE_NAME is not set/],
    ['no target', { OUTBOX_TABLE_NAME: 'outbox' }, /no target/],
    [
      'a standard topic',
      { ...base, OUTBOX_SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:events' },
      /FIFO topic/,
    ],
    [
      'a standard queue',
      { ...base, OUTBOX_SQS_QUEUE_URLS: 'https://sqs.us-east-1.amazonaws.com/1/q' },
      /\.fifo/,
    ],
    ['the default bus', { ...base, OUTBOX_EVENT_BUS_NAME: 'default' }, /custom bus/],
    [
      'a bad retention',
      { ...base, OUTBOX_RETENTION_DAYS: 'week' },
      /OUTBOX_RETENTION_DAYS must be an integer.*"week"/,
    ],
  ])('rejects %s with a configuration error', (_name, env, message) => {
    expect(() => readRelayConfig(env)).toThrow(OutboxConfigurationError);
    expect(() => readRelayConfig(env)).toThrow(message);
  });
});
