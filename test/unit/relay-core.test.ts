import { gzipSync } from 'node:zlib';
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { type Bookkeeper, createBookkeeper } from '../../functions/relay/bookkeeping.ts';
import { readRelayConfig } from '../../functions/relay/config.ts';
import { type Decoded, decodeImage, type OutboxRecord } from '../../functions/relay/decode.ts';
import { batchItemFailures, compareSequenceNumbers } from '../../functions/relay/handler.ts';
import {
  createPredecessorFinder,
  TooManyUnpublishedPredecessorsError,
} from '../../functions/relay/predecessors.ts';
import { publishInOrder } from '../../functions/relay/publish.ts';
import {
  classifyCallError,
  classifyEntryError,
  type EntryResult,
  messageGroupId,
  type Publisher,
} from '../../functions/relay/publishers.ts';
import {
  FinishedMemory,
  type PredecessorFinder,
  type RelayCandidate,
  type RelayResult,
  relay,
} from '../../functions/relay/relay.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';
import { relayRecord } from '../support/relay-fixtures.ts';

/** One mock for the file: a second mockClient of the same class would replace the first one's stub. */
const ddb = mockClient(DynamoDBClient);

const record = (pk: string, sequence: number, bytes = 100) => relayRecord(pk, sequence, 'x'.repeat(bytes));

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

describe('relay: unpublished predecessors (a lost stream delivery)', () => {
  /** A bookkeeper that records what it marks, in call order. */
  function recordingBookkeeper() {
    const marked: string[] = [];
    const quarantined: string[] = [];
    const bookkeeper: Bookkeeper = {
      markPublished: async (key) => {
        marked.push(`${key.pk}/${key.sk}`);
        return 'updated';
      },
      quarantine: async (key) => {
        quarantined.push(`${key.pk}/${key.sk}`);
        return 'updated';
      },
      hold: async () => 'updated',
    };
    return { bookkeeper, marked, quarantined };
  }

  /** A finder answering from `table` (aggregate → decoded READY predecessors) and recording its lookups. */
  function fakeFinder(table: Record<string, readonly Decoded[]> = {}, error?: Error) {
    const lookups: [string, number, number | undefined][] = [];
    const predecessors: PredecessorFinder = {
      findUnpublishedPredecessors: async (aggregate, before, after) => {
        lookups.push([aggregate, before, after]);
        if (error) throw error;
        return { unpublished: table[aggregate] ?? [] };
      },
    };
    return { predecessors, lookups };
  }

  const candidate = (r: OutboxRecord, ref = r.id): RelayCandidate => ({
    ref,
    decoded: { kind: 'publish', record: r },
  });
  const sent = (calls: OutboxRecord[][]) => calls.flat().map((r) => `${r.pk}#${r.sequence}`);

  it('publishes a READY predecessor before its successors and marks it PUBLISHED, without making it a candidate', async () => {
    const { publisher, calls } = fakePublisher();
    const { bookkeeper, marked } = recordingBookkeeper();
    const { predecessors, lookups } = fakeFinder({ a: [{ kind: 'publish', record: record('a', 4) }] });

    const report = await relay(
      [candidate(record('a', 6)), candidate(record('a', 5))],
      {
        publishers: [publisher],
        bookkeeper,
        predecessors,
      },
      forever,
    );

    expect(lookups).toEqual([['a', 5, 0]]);
    expect(sent(calls)).toEqual(['a#4', 'a#5', 'a#6']);
    expect(report.results.map((r) => r.status)).toEqual(['published', 'published']);
    expect(report.predecessors).toEqual([
      expect.objectContaining({ status: 'published', record: record('a', 4), sent: true, marked: true }),
    ]);
    expect(report.predecessorLookups).toBe(1);
    expect(marked.sort()).toEqual(['a/EVT#000000000004', 'a/EVT#000000000005', 'a/EVT#000000000006']);
  });

  it('publishes nothing extra when the predecessor is already PUBLISHED (the finder finds nothing READY)', async () => {
    const { publisher, calls } = fakePublisher();
    const { predecessors, lookups } = fakeFinder();

    const report = await relay(
      [candidate(record('a', 5)), candidate(record('a', 6))],
      { publishers: [publisher], bookkeeper: recordingBookkeeper().bookkeeper, predecessors },
      forever,
    );

    expect(lookups).toEqual([['a', 5, 0]]);
    expect(sent(calls)).toEqual(['a#5', 'a#6']);
    expect(report.predecessors).toEqual([]);
  });

  it('quarantines a predecessor that cannot be decoded, and it does not block its successors', async () => {
    const { publisher, calls } = fakePublisher();
    const { bookkeeper, quarantined } = recordingBookkeeper();
    const { predecessors } = fakeFinder({
      a: [
        {
          kind: 'quarantine',
          key: { pk: 'a', sk: 'EVT#000000000003' },
          reason: 'the envelope is not valid JSON',
        },
        { kind: 'publish', record: record('a', 4) },
      ],
    });

    const report = await relay(
      [candidate(record('a', 5))],
      { publishers: [publisher], bookkeeper, predecessors },
      forever,
    );

    expect(quarantined).toEqual(['a/EVT#000000000003']);
    expect(sent(calls)).toEqual(['a#4', 'a#5']);
    expect(report.results[0]?.status).toBe('published');
    expect(report.predecessors.map((r) => r.status).sort()).toEqual(['published', 'quarantined']);
  });

  it('does not look up an aggregate whose previous sequence is in the call, or that starts at 1', async () => {
    const { publisher, calls } = fakePublisher();
    const { predecessors, lookups } = fakeFinder({ a: [{ kind: 'publish', record: record('a', 3) }] });
    const memory = new FinishedMemory();
    memory.set('c-done', 'done');

    await relay(
      [
        // a#4 is in the call (even though it is quarantined): a#5 needs no lookup.
        {
          ref: 'q',
          decoded: { kind: 'quarantine', key: { pk: 'a', sk: 'EVT#000000000004' }, reason: 'bad' },
        },
        candidate(record('a', 5)),
        // b starts at 1.
        candidate(record('b', 1)),
        candidate(record('b', 2)),
        // c#7 was finished earlier by this container and arrives again with c#8.
        { ref: 'c7', changeId: 'c-done', decoded: { kind: 'publish', record: record('c', 7) } },
        candidate(record('c', 8)),
      ],
      { publishers: [publisher], bookkeeper: recordingBookkeeper().bookkeeper, predecessors, memory },
      forever,
    );

    expect(lookups).toEqual([]);
    expect(sent(calls).sort()).toEqual(['a#5', 'b#1', 'b#2', 'c#8']);
  });

  it('looks up a gap inside the call too, bounded by the sequence before it', async () => {
    const { publisher, calls } = fakePublisher();
    const { predecessors, lookups } = fakeFinder({ a: [{ kind: 'publish', record: record('a', 6) }] });

    await relay(
      [candidate(record('a', 5)), candidate(record('a', 7))],
      { publishers: [publisher], bookkeeper: recordingBookkeeper().bookkeeper, predecessors },
      forever,
    );

    expect(lookups.sort()).toEqual([
      ['a', 5, 0],
      ['a', 7, 5],
    ]);
    expect(sent(calls)).toEqual(['a#5', 'a#6', 'a#7']);
  });

  it('stops the aggregate when its predecessor cannot be published, and reports its first candidate with the cause', async () => {
    const { publisher, calls } = fakePublisher({
      answer: (batch) =>
        batch.map((r) =>
          r.id === 'a-4'
            ? { ok: false, kind: 'fatal', code: 'KMSAccessDenied', message: 'denied' }
            : { ok: true },
        ),
    });
    const { bookkeeper, marked } = recordingBookkeeper();
    const { predecessors } = fakeFinder({ a: [{ kind: 'publish', record: record('a', 4) }] });

    const report = await relay(
      [candidate(record('a', 6), '300'), candidate(record('a', 5), '200'), candidate(record('b', 1), '100')],
      { publishers: [publisher], bookkeeper, predecessors },
      forever,
    );

    expect(sent(calls).filter((s) => s.startsWith('a'))).toEqual(['a#4']);
    expect(report.results[1]).toMatchObject({
      status: 'retry',
      eventId: 'a-5',
      code: 'KMSAccessDenied',
      target: 'fake',
      reason: expect.stringMatching(
        /unpublished predecessor a-4 \(sequence 4\) could not be published to fake/,
      ),
    });
    expect(report.results[0]).toMatchObject({ status: 'retry', code: 'Blocked' });
    expect(report.results[2]?.status).toBe('published');
    expect(report.predecessors).toEqual([
      expect.objectContaining({ status: 'retry', code: 'KMSAccessDenied' }),
    ]);
    expect(marked).toEqual(['b/EVT#000000000001']);
    // The stream handler reports the aggregate's lowest stream position: a#5's.
    expect(batchItemFailures(['300', '200', '100'], report.results)).toEqual([{ itemIdentifier: '200' }]);
  });

  it('holds an aggregate back when its predecessors cannot be read, and publishes the others', async () => {
    const { publisher, calls } = fakePublisher();
    const { predecessors } = fakeFinder(
      {},
      Object.assign(new Error('Throughput exceeds the current capacity'), {
        name: 'ProvisionedThroughputExceededException',
      }),
    );

    const report = await relay(
      [candidate(record('a', 5)), candidate(record('a', 6)), candidate(record('b', 1))],
      { publishers: [publisher], bookkeeper: recordingBookkeeper().bookkeeper, predecessors },
      forever,
    );

    expect(sent(calls)).toEqual(['b#1']);
    expect(report.results.map((r) => (r.status === 'retry' ? r.code : r.status))).toEqual([
      'ProvisionedThroughputExceededException',
      'Blocked',
      'published',
    ]);
  });
});

describe('createPredecessorFinder (strongly consistent Query on the table, newest first)', () => {
  afterEach(() => ddb.reset());
  const finder = createPredecessorFinder({
    client: new DynamoDBClient({ region: 'us-east-1' }),
    tableName: 'outbox',
    maxPredecessors: 3,
  });

  /** An outbox item image as a Query on the low-level client returns it. */
  function image(sequence: number, status: string): Record<string, AttributeValue> {
    const id = `0190a0f0-0000-7000-8000-00000000000${sequence}`;
    return {
      pk: { S: 'a' },
      sk: { S: `EVT#${String(sequence).padStart(12, '0')}` },
      id: { S: id },
      type: { S: 'T' },
      source: { S: '/s' },
      sequence: { N: String(sequence) },
      status: { S: status },
      createdAt: { N: '5' },
      envelope: {
        S: JSON.stringify({
          specversion: '1.0',
          id,
          source: '/s',
          type: 'T',
          time: '2026-01-01T00:00:00Z',
          datacontenttype: 'application/json',
          partitionkey: 'a',
          sequence,
          data: {},
        }),
      },
    };
  }

  it('reads one item first: the usual PUBLISHED predecessor ends the walk with nothing to publish', async () => {
    ddb.on(QueryCommand).resolves({ Items: [image(4, 'PUBLISHED')], LastEvaluatedKey: { pk: { S: 'a' } } });

    expect(await finder.findUnpublishedPredecessors('a', 5)).toEqual({ unpublished: [] });

    const calls = ddb.commandCalls(QueryCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      TableName: 'outbox',
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
      ExpressionAttributeValues: {
        ':pk': { S: 'a' },
        ':from': { S: 'EVT#000000000001' },
        ':to': { S: 'EVT#000000000004' },
      },
      ConsistentRead: true,
      ScanIndexForward: false,
      Limit: 1,
    });
  });

  it('walks back over READY records, paging, until one that is not READY, and returns them oldest first', async () => {
    ddb
      .on(QueryCommand)
      .resolvesOnce({
        Items: [image(9, 'READY')],
        LastEvaluatedKey: { pk: { S: 'a' }, sk: { S: 'EVT#000000000009' } },
      })
      .resolves({ Items: [image(8, 'READY'), image(7, 'QUARANTINED'), image(6, 'READY')] });

    const found = await finder.findUnpublishedPredecessors('a', 10, 2);

    expect(found.unpublished.map((d) => (d.kind === 'publish' ? d.record.sequence : d.kind))).toEqual([8, 9]);
    const second = ddb.commandCalls(QueryCommand)[1]?.args[0].input;
    expect(second).toMatchObject({
      Limit: 10,
      ExclusiveStartKey: { pk: { S: 'a' }, sk: { S: 'EVT#000000000009' } },
      ExpressionAttributeValues: { ':from': { S: 'EVT#000000000003' }, ':to': { S: 'EVT#000000000009' } },
    });
  });

  it('decodes a READY predecessor that cannot be published as one to quarantine', async () => {
    ddb.on(QueryCommand).resolves({ Items: [{ ...image(2, 'READY'), envelope: { S: '{"id": oops' } }] });

    expect((await finder.findUnpublishedPredecessors('a', 3)).unpublished).toEqual([
      expect.objectContaining({ kind: 'quarantine', reason: 'the envelope is not valid JSON' }),
    ]);
  });

  it('does not query when there is no gap, and fails past the limit of READY predecessors', async () => {
    expect(await finder.findUnpublishedPredecessors('a', 1)).toEqual({ unpublished: [] });
    expect(await finder.findUnpublishedPredecessors('a', 6, 5)).toEqual({ unpublished: [] });
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);

    ddb.on(QueryCommand).resolves({ Items: [5, 4, 3, 2].map((s) => image(s, 'READY')) });
    await expect(finder.findUnpublishedPredecessors('a', 6)).rejects.toThrow(
      TooManyUnpublishedPredecessorsError,
    );
  });
});
