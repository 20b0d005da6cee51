import { gzipSync } from 'node:zlib';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  QueryCommand,
  type AttributeValue as SdkAttributeValue,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PublishBatchCommand, type PublishBatchRequestEntry, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AttributeValue, Context, DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { FinishedMemory } from '../../functions/relay/relay.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { relayClients, relayConfigOf } from '../support/relay-fixtures.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const sns = mockClient(SNSClient);
const eventBridge = mockClient(EventBridgeClient);
const sqs = mockClient(SQSClient);
const ddb = mockClient(DynamoDBClient);

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:outbox.fifo';
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/billing.fifo';
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const snsOnly = relayConfigOf({ tableName: 'outbox', snsTopicArn: TOPIC });
const allTargets: RelayConfig = { ...snsOnly, eventBusName: 'outbox-bus', sqsQueueUrls: [QUEUE] };

let streamSequence = 0n;
function nextSequenceNumber(): string {
  streamSequence++;
  return String(400_000_000_000_000_000_000n + streamSequence);
}

interface RecordOptions {
  readonly pk: string;
  readonly sequence: number;
  readonly data?: unknown;
  readonly eventName?: 'INSERT' | 'MODIFY' | 'REMOVE';
  readonly status?: string;
  readonly sequenceNumber?: string;
  /** Replace or remove attributes of the new image (undefined removes). */
  readonly image?: Record<string, AttributeValue | undefined>;
  readonly gzip?: boolean;
}

/** A Lambda DynamoDB stream record of an outbox event, as the writer stores it. */
function streamRecord(options: RecordOptions): DynamoDBRecord {
  const { envelope, json } = buildEnvelope(
    { type: 'com.example.OrderPlaced', data: options.data ?? { n: options.sequence } },
    {
      partitionKey: options.pk,
      sequence: options.sequence,
      defaultSource: '/orders',
      now: NOW - 1000,
      maxEventBytes: 1_048_576,
    },
  );
  const image: Record<string, AttributeValue> = {
    pk: { S: options.pk },
    sk: { S: eventSortKey(options.sequence) },
    id: { S: envelope.id },
    type: { S: envelope.type },
    source: { S: envelope.source },
    sequence: { N: String(options.sequence) },
    status: { S: options.status ?? 'READY' },
    ...(options.gzip
      ? { envelopeGzip: { B: gzipSync(json).toString('base64') } }
      : { envelope: { S: json } }),
    createdAt: { N: String(NOW - 1000) },
    attempts: { N: '0' },
    pendingShard: { S: `P#${envelope.id.slice(-1)}` },
    pendingDueAt: { N: String(NOW - 1000) },
  };
  for (const [name, value] of Object.entries(options.image ?? {})) {
    if (value === undefined) delete image[name];
    else image[name] = value;
  }
  return {
    eventID: `evt-${uuidv7()}`,
    eventName: options.eventName ?? 'INSERT',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      Keys: { pk: { S: options.pk }, sk: { S: eventSortKey(options.sequence) } },
      NewImage: image,
      SequenceNumber: options.sequenceNumber ?? nextSequenceNumber(),
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

function idOf(record: DynamoDBRecord): string {
  return record.dynamodb?.NewImage?.id?.S ?? '';
}

const context = {
  functionName: 'relay',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:relay',
  memoryLimitInMB: '512',
  awsRequestId: 'request-1',
  logGroupName: '/aws/lambda/relay',
  logStreamName: 'stream',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

function makeHandler(
  config: RelayConfig = snsOnly,
  memory = new FinishedMemory(),
  logger = new Logger({ logLevel: 'SILENT' }),
) {
  const metrics = new Metrics({ namespace: 'Test', serviceName: 'relay' });
  const handler = createRelayHandler({
    config,
    clients: relayClients(),
    logger,
    metrics,
    retry: { maxAttempts: 4 },
    random: () => 0,
    now: () => NOW,
    memory,
  });
  const invoke = (records: DynamoDBRecord[]) =>
    handler({ Records: records }, context) as Promise<DynamoDBBatchResponse>;
  return { invoke, metrics };
}

type SnsEntries = PublishBatchRequestEntry[];

/** SNS answers with every entry successful unless `fail(entry)` returns an error code. */
function snsAnswers(
  fail: (entry: PublishBatchRequestEntry, call: number) => string | undefined = () => undefined,
) {
  let call = 0;
  sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: SnsEntries }) => {
    call++;
    const entries = input.PublishBatchRequestEntries;
    const failed = entries
      .map((e) => ({ e, code: fail(e, call) }))
      .filter((x): x is { e: PublishBatchRequestEntry; code: string } => x.code !== undefined);
    return {
      Successful: entries
        .filter((e) => !failed.some((f) => f.e === e))
        .map((e) => ({ Id: e.Id, MessageId: `m-${e.MessageDeduplicationId}` })),
      Failed: failed.map((f) => ({
        Id: f.e.Id,
        Code: f.code,
        SenderFault: f.code.startsWith('Invalid') || f.code === 'AuthorizationError',
        Message: `${f.code} for this entry`,
      })),
    };
  });
}

/** Every PublishBatch call's entries, in call order. */
function snsCalls(): SnsEntries[] {
  return sns.commandCalls(PublishBatchCommand).map((c) => c.args[0].input.PublishBatchRequestEntries ?? []);
}

function publishedDedupIds(): string[] {
  return snsCalls()
    .flat()
    .map((e) => e.MessageDeduplicationId ?? '');
}

function markedPublished(): string[] {
  return ddb
    .commandCalls(UpdateItemCommand)
    .filter((c) => c.args[0].input.ExpressionAttributeValues?.[':published'])
    .map((c) => `${c.args[0].input.Key?.pk?.S}/${c.args[0].input.Key?.sk?.S}`);
}

function quarantines() {
  return ddb
    .commandCalls(UpdateItemCommand)
    .filter((c) => c.args[0].input.ExpressionAttributeValues?.[':quarantined'])
    .map((c) => ({
      key: `${c.args[0].input.Key?.pk?.S}/${c.args[0].input.Key?.sk?.S}`,
      reason: c.args[0].input.ExpressionAttributeValues?.[':reason']?.S ?? '',
    }));
}

beforeEach(() => {
  ddb.on(UpdateItemCommand).resolves({});
});

afterEach(() => {
  sns.reset();
  eventBridge.reset();
  sqs.reset();
  ddb.reset();
});

describe('relay handler: publishing', () => {
  it('publishes ten aggregates in one PublishBatch with group, dedup id and attributes, then marks them PUBLISHED', async () => {
    snsAnswers();
    const records = Array.from({ length: 10 }, (_, i) => streamRecord({ pk: `order#${i}`, sequence: 1 }));
    const { invoke } = makeHandler();

    const response = await invoke(records);

    expect(response).toEqual({ batchItemFailures: [] });
    const calls = snsCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(10);
    const first = sns.commandCalls(PublishBatchCommand)[0]?.args[0].input;
    expect(first?.TopicArn).toBe(TOPIC);
    expect(first?.PublishBatchRequestEntries?.[0]).toMatchObject({
      Message: records[0]?.dynamodb?.NewImage?.envelope?.S,
      MessageGroupId: 'order#0',
      MessageDeduplicationId: idOf(records[0] as DynamoDBRecord),
      MessageAttributes: {
        type: { DataType: 'String', StringValue: 'com.example.OrderPlaced' },
        source: { DataType: 'String', StringValue: '/orders' },
        partitionkey: { DataType: 'String', StringValue: 'order#0' },
        sequence: { DataType: 'Number', StringValue: '1' },
      },
    });
    const update = ddb.commandCalls(UpdateItemCommand)[0]?.args[0].input;
    expect(update).toMatchObject({
      TableName: 'outbox',
      Key: { pk: { S: 'order#0' }, sk: { S: 'EVT#000000000001' } },
      ConditionExpression: '#status = :ready',
      ExpressionAttributeValues: {
        ':published': { S: 'PUBLISHED' },
        ':ready': { S: 'READY' },
        ':at': { N: String(NOW) },
        ':expires': { N: String(NOW / 1000 + 7 * 86_400) },
      },
    });
    expect(update?.UpdateExpression).toMatch(/REMOVE pendingShard, pendingDueAt/);
    expect(markedPublished()).toHaveLength(10);
  });

  it('retries only the one failed entry of ten, then marks all ten published', async () => {
    const records = Array.from({ length: 10 }, (_, i) => streamRecord({ pk: `order#${i}`, sequence: 1 }));
    const flaky = idOf(records[6] as DynamoDBRecord);
    snsAnswers((entry, call) =>
      call === 1 && entry.MessageDeduplicationId === flaky ? 'InternalError' : undefined,
    );
    const { invoke, metrics } = makeHandler();
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([]);
    const calls = snsCalls();
    expect(calls.map((c) => c.length)).toEqual([10, 1]);
    expect(calls[1]?.[0]?.MessageDeduplicationId).toBe(flaky);
    expect(markedPublished()).toHaveLength(10);
    expect(addMetric).toHaveBeenCalledWith('Retried', 'Count', 1);
    expect(addMetric).toHaveBeenCalledWith('Failed', 'Count', 0);
    // Commit (NOW - 1 s) to publish (NOW): one value per published event.
    expect(addMetric.mock.calls.filter(([name]) => name === 'EventAgeAtPublish')).toEqual(
      Array.from({ length: 10 }, () => ['EventAgeAtPublish', 'Milliseconds', 1000]),
    );
  });

  it('counts accepted entries per target in a metric with a target dimension', async () => {
    snsAnswers();
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: String(i) })),
    }));
    const { invoke, metrics } = makeHandler({ ...snsOnly, eventBusName: 'bus' });
    const published: [string, number][] = [];
    vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
      let target = '';
      const single = {
        addDimension: (_name: string, value: string) => {
          target = value;
          return single;
        },
        addMetric: (name: string, _unit: string, value: number) => {
          if (name === 'Published') published.push([target, value]);
          return single;
        },
      };
      return single as unknown as Metrics;
    });

    await invoke([streamRecord({ pk: 'a', sequence: 1 }), streamRecord({ pk: 'b', sequence: 1 })]);

    expect(published.sort()).toEqual([
      ['eventbridge', 2],
      ['sns', 2],
    ]);
  });

  it('stops an aggregate at an entry that keeps failing: reports it, holds back its later events, publishes the others', async () => {
    const a = [1, 2, 3].map((sequence) => streamRecord({ pk: 'order#A', sequence }));
    const b = [1, 2].map((sequence) => streamRecord({ pk: 'order#B', sequence }));
    const c = [streamRecord({ pk: 'order#C', sequence: 1 })];
    const stuck = idOf(a[1] as DynamoDBRecord);
    snsAnswers((entry) => (entry.MessageDeduplicationId === stuck ? 'InternalError' : undefined));
    const { invoke, metrics } = makeHandler();
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const response = await invoke([a[0], b[0], a[1], c[0], b[1], a[2]] as DynamoDBRecord[]);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: a[1]?.dynamodb?.SequenceNumber }]);
    const sent = publishedDedupIds();
    expect(sent.filter((id) => id === stuck)).toHaveLength(4); // maxAttempts
    expect(sent).not.toContain(idOf(a[2] as DynamoDBRecord));
    expect(new Set(sent)).toEqual(new Set([...a.slice(0, 2), ...b, ...c].map(idOf)));
    expect(markedPublished().sort()).toEqual([
      'order#A/EVT#000000000001',
      'order#B/EVT#000000000001',
      'order#B/EVT#000000000002',
      'order#C/EVT#000000000001',
    ]);
    expect(addMetric).toHaveBeenCalledWith('Failed', 'Count', 2);
  });

  it('reports the lowest stream sequence number of a failed aggregate, even when a later event arrived first', async () => {
    // Stream order across items is not promised: A#3 reached the stream before A#2.
    const a3 = streamRecord({ pk: 'order#A', sequence: 3 });
    const a1 = streamRecord({ pk: 'order#A', sequence: 1 });
    const a2 = streamRecord({ pk: 'order#A', sequence: 2 });
    snsAnswers((entry) => (entry.MessageDeduplicationId === idOf(a2) ? 'InternalError' : undefined));
    const { invoke } = makeHandler();

    const response = await invoke([a3, a1, a2]);

    // Lambda resumes from the lowest reported number: A#3's, so both A#2 and A#3 come back.
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: a3.dynamodb?.SequenceNumber }]);
    expect(publishedDedupIds()).not.toContain(idOf(a3));
  });

  it('fails fast on a fatal error (no retries in the invocation) and reports every aggregate', async () => {
    sns.on(PublishBatchCommand).rejects(
      Object.assign(new Error('User is not authorized to perform SNS:Publish'), {
        name: 'AuthorizationErrorException',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const records = [streamRecord({ pk: 'x', sequence: 1 }), streamRecord({ pk: 'y', sequence: 1 })];
    const { invoke } = makeHandler();

    const response = await invoke(records);

    expect(snsCalls()).toHaveLength(1);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      records.map((r) => r.dynamodb?.SequenceNumber).sort(),
    );
    expect(markedPublished()).toEqual([]);
  });

  it.each([
    ['ThrottledException', 400],
    ['KMSThrottlingException', 400],
    ['InternalErrorException', 500],
    ['ServiceUnavailable', 503],
  ])('retries a whole call that failed with %s and loses nothing', async (name, status) => {
    const failure = Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    let calls = 0;
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: SnsEntries }) => {
      calls++;
      if (calls <= 2) throw failure;
      return { Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })) };
    });
    const records = Array.from({ length: 4 }, (_, i) => streamRecord({ pk: `k${i}`, sequence: 1 }));
    const { invoke } = makeHandler();

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([]);
    expect(snsCalls().map((c) => c.length)).toEqual([4, 4, 4]);
    expect(markedPublished()).toHaveLength(4);
  });

  it('retries EventBridge entries throttled inside a 200 response (FailedEntryCount)', async () => {
    let call = 0;
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => {
      call++;
      return {
        FailedEntryCount: call === 1 ? 2 : 0,
        Entries: input.Entries.map((_, i) =>
          call === 1 && i < 2
            ? { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }
            : { EventId: `e-${call}-${i}` },
        ),
      };
    });
    const config: RelayConfig = { ...snsOnly, snsTopicArn: undefined, eventBusName: 'outbox-bus' };
    const records = Array.from({ length: 5 }, (_, i) => streamRecord({ pk: `k${i}`, sequence: 1 }));
    const { invoke } = makeHandler(config);

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([]);
    const calls = eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries ?? []);
    expect(calls.map((c) => c.length)).toEqual([5, 2]);
    expect(calls[0]?.[0]).toMatchObject({
      EventBusName: 'outbox-bus',
      Source: '/orders',
      DetailType: 'com.example.OrderPlaced',
      Detail: records[0]?.dynamodb?.NewImage?.envelope?.S,
    });
    expect(markedPublished()).toHaveLength(5);
  });

  it('publishes to every target and marks a record only when all of them accepted it', async () => {
    snsAnswers();
    const records = [streamRecord({ pk: 'a', sequence: 1 }), streamRecord({ pk: 'b', sequence: 1 })];
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }, { EventId: '2' }] });
    sqs
      .on(SendMessageBatchCommand)
      .callsFake((input: { Entries: { Id: string; MessageGroupId: string }[] }) => ({
        Successful: input.Entries.filter((e) => e.MessageGroupId !== 'b').map((e) => ({ Id: e.Id })),
        Failed: input.Entries.filter((e) => e.MessageGroupId === 'b').map((e) => ({
          Id: e.Id,
          Code: 'KmsAccessDenied',
          SenderFault: true,
          Message: 'denied',
        })),
      }));
    const { invoke } = makeHandler(allTargets);

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[1]?.dynamodb?.SequenceNumber }]);
    expect(markedPublished()).toEqual(['a/EVT#000000000001']);
    const sqsEntry = sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input;
    expect(sqsEntry?.QueueUrl).toBe(QUEUE);
    expect(sqsEntry?.Entries?.[0]).toMatchObject({
      MessageGroupId: 'a',
      MessageDeduplicationId: idOf(records[0] as DynamoDBRecord),
    });
  });

  it('publishes a gzipped envelope as the original JSON', async () => {
    snsAnswers();
    const record = streamRecord({ pk: 'big', sequence: 1, gzip: true });
    const { invoke } = makeHandler();

    await invoke([record]);

    const message = snsCalls()[0]?.[0]?.Message ?? '';
    expect(JSON.parse(message)).toMatchObject({ id: idOf(record), partitionkey: 'big', sequence: 1 });
  });
});

describe('relay handler: ordering', () => {
  it('publishes records that arrive shuffled across aggregates in per-aggregate sequence order', async () => {
    snsAnswers();
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: String(i) })),
    }));
    const records = ['a', 'b', 'c', 'd', 'e'].flatMap((pk) =>
      [1, 2, 3, 4, 5, 6].map((sequence) => streamRecord({ pk, sequence })),
    );
    let seed = 7;
    const shuffled = [...records].sort(() => {
      seed = (seed * 16807) % 2147483647;
      return (seed % 3) - 1;
    });
    expect(shuffled.map(idOf)).not.toEqual(records.map(idOf));
    const { invoke } = makeHandler({ ...snsOnly, eventBusName: 'bus' });

    const response = await invoke(shuffled);

    expect(response.batchItemFailures).toEqual([]);
    const sequencesOf = (entries: { group: string; sequence: number }[]) => {
      const byGroup: Record<string, number[]> = {};
      for (const e of entries) {
        byGroup[e.group] ??= [];
        byGroup[e.group]?.push(e.sequence);
      }
      return byGroup;
    };
    const expected = {
      a: [1, 2, 3, 4, 5, 6],
      b: [1, 2, 3, 4, 5, 6],
      c: [1, 2, 3, 4, 5, 6],
      d: [1, 2, 3, 4, 5, 6],
      e: [1, 2, 3, 4, 5, 6],
    };
    const snsOrder = snsCalls()
      .flat()
      .map((e) => ({
        group: e.MessageGroupId ?? '',
        sequence: Number(e.MessageAttributes?.sequence?.StringValue),
      }));
    expect(sequencesOf(snsOrder)).toEqual(expected);
    // A FIFO call never carries two events of one group: a retried entry cannot be overtaken by its successor.
    for (const call of snsCalls()) {
      expect(new Set(call.map((e) => e.MessageGroupId)).size).toBe(call.length);
    }
    const ebOrder = eventBridge
      .commandCalls(PutEventsCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => {
        const envelope = JSON.parse(e.Detail ?? '{}') as { partitionkey: string; sequence: number };
        return { group: envelope.partitionkey, sequence: envelope.sequence };
      });
    expect(sequencesOf(ebOrder)).toEqual(expected);
  });
});

describe('relay handler: quarantine', () => {
  it.each([
    ['an envelope that is not JSON', { envelope: { S: '{"id": oops' } }, /not valid JSON/],
    ['an envelope that is not a CloudEvent', { envelope: { S: '{"hello":"world"}' } }, /not a CloudEvent/],
    ['a missing envelope', { envelope: undefined }, /neither "envelope"/],
    [
      'a corrupt gzip envelope',
      { envelope: undefined, envelopeGzip: { B: 'bm90IGd6aXA=' } },
      /not a valid gzip/,
    ],
    ['an envelope of another event', { id: { S: uuidv7() } }, /disagrees with the record's attributes: id/],
    ['a sequence that does not match the sort key', { sequence: { N: '9' } }, /sort key does not match/],
  ])(
    'quarantines a poison record (%s) without failing the batch or blocking the others',
    async (_name, image, reason) => {
      snsAnswers();
      const poison = streamRecord({ pk: 'order#P', sequence: 1, image });
      const healthy = [
        streamRecord({ pk: 'order#P', sequence: 2 }),
        streamRecord({ pk: 'order#Q', sequence: 1 }),
      ];
      const { invoke, metrics } = makeHandler();
      const addMetric = vi.spyOn(metrics, 'addMetric');

      const response = await invoke([poison, ...healthy]);

      expect(response.batchItemFailures).toEqual([]);
      const [quarantined] = quarantines();
      expect(quarantined?.key).toBe('order#P/EVT#000000000001');
      expect(quarantined?.reason).toMatch(reason);
      expect(quarantined?.reason).not.toContain('oops'); // reasons never quote the payload
      expect(publishedDedupIds().sort()).toEqual(healthy.map(idOf).sort());
      expect(addMetric).toHaveBeenCalledWith('Quarantined', 'Count', 1);
    },
  );

  it('quarantines a record over the SNS size limit before sending anything, and publishes the rest', async () => {
    snsAnswers();
    const oversized = streamRecord({ pk: 'order#O', sequence: 1, data: 'x'.repeat(262_000) });
    const others = [
      streamRecord({ pk: 'order#O', sequence: 2 }),
      streamRecord({ pk: 'order#Z', sequence: 1 }),
    ];
    const { invoke } = makeHandler();

    const response = await invoke([oversized, ...others]);

    expect(response.batchItemFailures).toEqual([]);
    expect(quarantines()).toEqual([
      {
        key: 'order#O/EVT#000000000001',
        reason: expect.stringMatching(/sns refuses it: .*over the 262144-byte limit/),
      },
    ]);
    expect(publishedDedupIds()).not.toContain(idOf(oversized));
    expect(markedPublished().sort()).toEqual(['order#O/EVT#000000000002', 'order#Z/EVT#000000000001']);
  });

  it('isolates an entry that makes SNS refuse the whole call, quarantines it and publishes the rest', async () => {
    const records = Array.from({ length: 6 }, (_, i) => streamRecord({ pk: `k${i}`, sequence: 1 }));
    const bad = idOf(records[4] as DynamoDBRecord);
    // SDK v3 names SNS's InvalidParameter error InvalidParameterException.
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: SnsEntries }) => {
      if (input.PublishBatchRequestEntries.some((e) => e.MessageDeduplicationId === bad)) {
        throw Object.assign(new Error('Invalid parameter: Message'), {
          name: 'InvalidParameterException',
          $metadata: { httpStatusCode: 400 },
        });
      }
      return { Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })) };
    });
    const { invoke } = makeHandler();

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([]);
    expect(quarantines().map((q) => q.key)).toEqual(['k4/EVT#000000000001']);
    expect(markedPublished()).toHaveLength(5);
  });

  it('treats a refusal of every entry in a call as configuration, not content: nothing is quarantined', async () => {
    sns.on(PublishBatchCommand).rejects(
      Object.assign(new Error('Invalid parameter: TopicArn'), {
        name: 'InvalidParameterException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const records = Array.from({ length: 3 }, (_, i) => streamRecord({ pk: `k${i}`, sequence: 1 }));
    const { invoke } = makeHandler();

    const response = await invoke(records);

    expect(quarantines()).toEqual([]);
    expect(response.batchItemFailures).toHaveLength(3);
  });
});

describe('relay handler: what it ignores and redeliveries', () => {
  it('ignores the head item, records that are not READY and removals', async () => {
    snsAnswers();
    const head: DynamoDBRecord = {
      eventID: 'h',
      eventName: 'MODIFY',
      dynamodb: {
        NewImage: { pk: { S: 'a' }, sk: { S: 'HEAD' }, lastSequence: { N: '1' } },
        SequenceNumber: '1',
      },
    };
    const published = streamRecord({ pk: 'a', sequence: 1, eventName: 'MODIFY', status: 'PUBLISHED' });
    const removed: DynamoDBRecord = { eventID: 'r', eventName: 'REMOVE', dynamodb: { SequenceNumber: '2' } };
    const { invoke } = makeHandler();

    const response = await invoke([head, published, removed]);

    expect(response.batchItemFailures).toEqual([]);
    expect(snsCalls()).toEqual([]);
    expect(ddb.commandCalls(UpdateItemCommand)).toEqual([]);
  });

  it('skips a redelivered change it already finished: no publish, no write', async () => {
    snsAnswers();
    const records = [streamRecord({ pk: 'a', sequence: 1 }), streamRecord({ pk: 'b', sequence: 1 })];
    const { invoke } = makeHandler();
    await invoke(records);
    sns.resetHistory();
    ddb.resetHistory();

    const response = await invoke(records);

    expect(response.batchItemFailures).toEqual([]);
    expect(snsCalls()).toEqual([]);
    expect(ddb.commandCalls(UpdateItemCommand)).toEqual([]);
  });

  it('treats a redelivery already marked by another container as done (the condition fails, nothing breaks)', async () => {
    snsAnswers();
    ddb
      .on(UpdateItemCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }),
      );
    const { invoke } = makeHandler();

    const response = await invoke([streamRecord({ pk: 'a', sequence: 1 })]);

    expect(response.batchItemFailures).toEqual([]);
  });

  it('reports a record whose bookkeeping failed, and on redelivery only retries the bookkeeping', async () => {
    snsAnswers();
    const record = streamRecord({ pk: 'a', sequence: 1 });
    ddb
      .on(UpdateItemCommand)
      .rejectsOnce(
        Object.assign(new Error('Throughput exceeded'), { name: 'ProvisionedThroughputExceededException' }),
      )
      .resolves({});
    const { invoke } = makeHandler();

    const first = await invoke([record]);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: record.dynamodb?.SequenceNumber }]);
    expect(snsCalls()).toHaveLength(1);

    const second = await invoke([record]);
    expect(second.batchItemFailures).toEqual([]);
    expect(snsCalls()).toHaveLength(1);
    expect(markedPublished()).toHaveLength(2);
  });

  it('publishes again when a published record is made READY again later (a new change, not a redelivery)', async () => {
    snsAnswers();
    const record = streamRecord({ pk: 'a', sequence: 1 });
    const { invoke } = makeHandler();
    await invoke([record]);

    await invoke([{ ...record, eventID: 'replay', eventName: 'MODIFY' }]);

    expect(snsCalls()).toHaveLength(2);
  });

  it('gives up on retries when the invocation has no time left and reports the records', async () => {
    sns
      .on(PublishBatchCommand)
      .rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    const records = [streamRecord({ pk: 'a', sequence: 1 })];
    const handler = createRelayHandler({
      config: snsOnly,
      clients: {
        sns: new SNSClient({ region: 'us-east-1' }),
        dynamodb: new DynamoDBClient({ region: 'us-east-1' }),
      },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
      random: () => 0.99,
      retry: { maxAttempts: 100, baseDelayMs: 10_000, maxDelayMs: 10_000 },
      reserveMs: 1000,
    });
    const shortContext = { ...context, getRemainingTimeInMillis: () => 3000 } as Context;

    const response = (await handler({ Records: records }, shortContext)) as DynamoDBBatchResponse;

    // The first retry would wait ~9.9 s, past the 2 s left for publishing: the record is handed back at once.
    expect(snsCalls()).toHaveLength(1);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[0]?.dynamodb?.SequenceNumber }]);
  });

  it('fails the invocation with a clear message when the configuration is missing', async () => {
    const handler = createRelayHandler({
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });
    const saved = process.env.OUTBOX_TABLE_NAME;
    delete process.env.OUTBOX_TABLE_NAME;
    try {
      await expect(handler({ Records: [] }, context)).rejects.toThrow(/OUTBOX_TABLE_NAME is not set/);
    } finally {
      if (saved !== undefined) process.env.OUTBOX_TABLE_NAME = saved;
    }
  });
});

describe('relay handler: unpublished predecessors (a lost stream delivery)', () => {
  /** The record as a Query on the table returns it (status as stored now). */
  function tableItem(record: DynamoDBRecord, status: string): Record<string, SdkAttributeValue> {
    return { ...(record.dynamodb?.NewImage as Record<string, SdkAttributeValue>), status: { S: status } };
  }
  const sequenceOf = (e: PublishBatchRequestEntry) => Number(e.MessageAttributes?.sequence?.StringValue);

  it('publishes the READY predecessor of a lost delivery first, marks it PUBLISHED and warns with its id', async () => {
    snsAnswers();
    const [e3, e4, e5, e6] = [3, 4, 5, 6].map((sequence) => streamRecord({ pk: 'order#L', sequence })) as [
      DynamoDBRecord,
      DynamoDBRecord,
      DynamoDBRecord,
      DynamoDBRecord,
    ];
    // Newest first: 4 is still READY (its delivery was lost), 3 was published.
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: [tableItem(e4, 'READY')], LastEvaluatedKey: { pk: { S: 'order#L' } } })
      .resolves({ Items: [tableItem(e3, 'PUBLISHED')] });
    const logger = new Logger({ logLevel: 'SILENT' });
    const warn = vi.spyOn(logger, 'warn');
    const { invoke, metrics } = makeHandler(snsOnly, new FinishedMemory(), logger);
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const response = await invoke([e5, e6]);

    expect(response.batchItemFailures).toEqual([]);
    expect(snsCalls().flat().map(sequenceOf)).toEqual([4, 5, 6]);
    expect(snsCalls().map((call) => call.length)).toEqual([1, 1, 1]);
    expect(markedPublished().sort()).toEqual([
      'order#L/EVT#000000000004',
      'order#L/EVT#000000000005',
      'order#L/EVT#000000000006',
    ]);
    const query = ddb.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(query).toMatchObject({
      TableName: 'outbox',
      ConsistentRead: true,
      ScanIndexForward: false,
      Limit: 1,
    });
    expect(query?.ExpressionAttributeValues?.[':to']).toEqual({ S: 'EVT#000000000004' });
    expect(addMetric).toHaveBeenCalledWith('PredecessorsPublished', 'Count', 1);
    expect(addMetric).toHaveBeenCalledWith('Failed', 'Count', 0);
    const warning = warn.mock.calls.find(([message]) => /predecessors/.test(String(message)));
    expect(warning?.[1]).toEqual({ predecessors: [{ eventId: idOf(e4), pk: 'order#L', sequence: 4 }] });
    expect(JSON.stringify(warning)).not.toContain('"n":4'); // ids, never payloads
  });

  it('publishes nothing extra when the predecessor is PUBLISHED, and skips the lookup when it is in the batch', async () => {
    snsAnswers();
    const [e1, e2, e3] = [1, 2, 3].map((sequence) => streamRecord({ pk: 'order#M', sequence }));
    ddb.on(QueryCommand).resolves({ Items: [tableItem(e1 as DynamoDBRecord, 'PUBLISHED')] });
    const { invoke, metrics } = makeHandler();
    const addMetric = vi.spyOn(metrics, 'addMetric');

    await invoke([e2, e3] as DynamoDBRecord[]);

    expect(ddb.commandCalls(QueryCommand)).toHaveLength(1);
    expect(snsCalls().flat().map(sequenceOf)).toEqual([2, 3]);
    expect(addMetric).toHaveBeenCalledWith('PredecessorsPublished', 'Count', 0);

    ddb.resetHistory();
    await invoke([
      streamRecord({ pk: 'order#N', sequence: 1 }),
      streamRecord({ pk: 'order#N', sequence: 2 }),
    ]);
    expect(ddb.commandCalls(QueryCommand)).toEqual([]);
  });

  it('does not wait for a QUARANTINED predecessor', async () => {
    snsAnswers();
    const e4 = streamRecord({ pk: 'order#Q', sequence: 4 });
    const e5 = streamRecord({ pk: 'order#Q', sequence: 5 });
    ddb.on(QueryCommand).resolves({ Items: [tableItem(e4, 'QUARANTINED')] });
    const { invoke } = makeHandler();

    const response = await invoke([e5]);

    expect(response.batchItemFailures).toEqual([]);
    expect(publishedDedupIds()).toEqual([idOf(e5)]);
  });

  it('stops the aggregate when its predecessor cannot be published and reports its first stream record', async () => {
    const e4 = streamRecord({ pk: 'order#F', sequence: 4 });
    const e5 = streamRecord({ pk: 'order#F', sequence: 5 });
    const e6 = streamRecord({ pk: 'order#F', sequence: 6 });
    const other = streamRecord({ pk: 'order#G', sequence: 1 });
    ddb.on(QueryCommand).resolves({ Items: [tableItem(e4, 'READY')] });
    snsAnswers((entry) => (entry.MessageDeduplicationId === idOf(e4) ? 'InternalError' : undefined));
    const { invoke, metrics } = makeHandler();
    const addMetric = vi.spyOn(metrics, 'addMetric');

    const response = await invoke([e5, other, e6]);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: e5.dynamodb?.SequenceNumber }]);
    const sent = publishedDedupIds();
    expect(sent.filter((id) => id === idOf(e4))).toHaveLength(4); // maxAttempts
    expect(sent).not.toContain(idOf(e5));
    expect(sent).not.toContain(idOf(e6));
    expect(markedPublished()).toEqual(['order#G/EVT#000000000001']);
    expect(addMetric).toHaveBeenCalledWith('Failed', 'Count', 2);
    expect(addMetric).toHaveBeenCalledWith('PredecessorsPublished', 'Count', 0);
  });
});
