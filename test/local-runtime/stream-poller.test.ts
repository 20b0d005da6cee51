import {
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBStreamsClient,
  GetRecordsCommand,
  TrimmedDataAccessException,
} from '@aws-sdk/client-dynamodb-streams';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import {
  type DynamoDbLambdaRecord,
  type StreamMappingConfig,
  StreamPoller,
  type StreamPollerDeps,
} from '../../local/runtime/stream-poller.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';
import { eventually, recordingInvoker, useHandlerDirs } from './fixtures.ts';

// Behaviour is driven by the item: mode=throw|report|bad-id fails its first `failTimes` deliveries.
const HANDLER = `
const attempts = new Map();
exports.handler = async (event) => {
  const failures = [];
  for (const r of event.Records) {
    const key = r.dynamodb.Keys.pk.S;
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    const image = r.dynamodb.NewImage ?? {};
    if (n > Number(image.failTimes?.N ?? 0)) continue;
    if (image.mode?.S === 'throw') throw new Error('poison ' + key);
    if (image.mode?.S === 'report') failures.push({ itemIdentifier: r.dynamodb.SequenceNumber });
    if (image.mode?.S === 'bad-id') return { batchItemFailures: [{ itemIdentifier: '' }] };
  }
  return { batchItemFailures: failures };
};`;

type Records = { Records: DynamoDbLambdaRecord[] };
const keysOf = (event: unknown): string[] =>
  (event as Records).Records.map((r) => String((r.dynamodb.Keys as { pk: { S: string } }).pk.S));

describe('StreamPoller', () => {
  const dynamoEndpoint = useDynamoDbLocal();
  const fauxqsEndpoint = useFauxqs();
  const handlerDir = useHandlerDirs();
  let ddb: DynamoDBClient;
  let streams: DynamoDBStreamsClient;
  let sqs: SQSClient;
  let runtime: LambdaRuntime;
  let tableCount = 0;
  const pollers: StreamPoller[] = [];

  beforeAll(async () => {
    ddb = new DynamoDBClient(localAwsConfig(dynamoEndpoint()));
    streams = new DynamoDBStreamsClient(localAwsConfig(dynamoEndpoint()));
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'consumer',
      codeDir: await handlerDir({ 'index.js': HANDLER }),
      handler: 'index.handler',
    });
  });
  afterAll(async () => {
    await Promise.all(pollers.map((p) => p.stop()));
    await runtime.stop();
  });

  async function newTable(): Promise<{ table: string; streamArn: string }> {
    const table = `stream-test-${++tableCount}`;
    const created = await ddb.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    return { table, streamArn: created.TableDescription?.LatestStreamArn as string };
  }

  async function put(
    table: string,
    pk: string,
    extra: Record<string, { S: string } | { N: string }> = {},
  ): Promise<void> {
    await ddb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk }, ...extra } }));
  }

  async function startPoller(
    config: Omit<StreamMappingConfig, 'id' | 'functionName'>,
    faults: Pick<StreamPollerDeps, 'drop' | 'duplicate'> = {},
  ) {
    // A fresh recording per poller, so each test sees only its own invocations.
    const recording = recordingInvoker(runtime);
    const poller = new StreamPoller(
      { id: 'test-mapping', functionName: 'consumer', ...config },
      {
        invoker: recording.invoker,
        streams,
        sqs,
        pollIntervalMs: 50,
        retryDelayMs: () => 0,
        log: () => {},
        ...faults,
      },
    );
    pollers.push(poller);
    await poller.start();
    return { poller, calls: recording.calls };
  }

  it('delivers Lambda-shaped records in order, in batches, without records the filter rejects', async () => {
    const { table, streamArn } = await newTable();
    await put(table, 'e1', { kind: { S: 'event' } });
    await put(table, 'x', { kind: { S: 'other' } });
    await put(table, 'e2', { kind: { S: 'event' } });
    await ddb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: 'e1' } },
        UpdateExpression: 'SET n = :n',
        ExpressionAttributeValues: { ':n': { N: '1' } },
      }),
    );
    await ddb.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'e2' } } }));

    const { calls, poller } = await startPoller({
      streamArn,
      startingPosition: 'TRIM_HORIZON',
      batchSize: 2,
      filterPatterns: ['{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"kind":{"S":["event"]}}}}'],
    });
    await eventually(() => (calls.length === 2 ? true : undefined));

    expect(calls.map((c) => keysOf(c.event))).toEqual([['e1', 'e2'], ['e1']]);
    const records = calls.flatMap((c) => (c.event as Records).Records);
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'INSERT', 'MODIFY']);
    const modify = records[2] as DynamoDbLambdaRecord;
    expect(modify).toEqual({
      eventID: expect.any(String),
      eventName: 'MODIFY',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: 'us-east-1',
      eventSourceARN: streamArn,
      dynamodb: {
        ApproximateCreationDateTime: expect.any(Number),
        Keys: { pk: { S: 'e1' } },
        NewImage: { pk: { S: 'e1' }, kind: { S: 'event' }, n: { N: '1' } },
        OldImage: { pk: { S: 'e1' }, kind: { S: 'event' } },
        SequenceNumber: expect.stringMatching(/^\d+$/),
        SizeBytes: expect.any(Number),
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
    });
    expect(poller.stats.recordsFiltered).toBe(2);
  });

  it('fault injection: a dropped record is never delivered; a duplicated one comes again once, in a later batch, ahead of newer records', async () => {
    const { table, streamArn } = await newTable();
    for (const key of ['a', 'b', 'c', 'd']) await put(table, key);
    const asked: string[] = [];
    const pkOf = (r: DynamoDbLambdaRecord) => String((r.dynamodb.Keys as { pk: { S: string } }).pk.S);
    const { calls, poller } = await startPoller(
      { streamArn, startingPosition: 'TRIM_HORIZON', batchSize: 2 },
      {
        drop: (r) => pkOf(r) === 'c',
        duplicate: (r) => {
          asked.push(pkOf(r));
          return pkOf(r) === 'b';
        },
      },
    );
    await eventually(() => (calls.length === 2 ? true : undefined));
    await put(table, 'e');
    await eventually(() => (keysOf(calls.at(-1)?.event).includes('e') ? true : undefined));

    const delivered = calls.map((c) => keysOf(c.event));
    expect(delivered.slice(0, 2)).toEqual([
      ['a', 'b'],
      ['b', 'd'],
    ]);
    expect(delivered.flat().filter((k) => k === 'b')).toHaveLength(2);
    expect(delivered.flat()).not.toContain('c');
    // The copy is not asked about again: a record is duplicated at most once.
    expect(asked.filter((k) => k === 'b')).toHaveLength(1);
    expect(poller.stats.recordsDuplicated).toBe(1);
    expect(poller.stats.recordsDelivered).toBe(4);
  });

  it('with ReportBatchItemFailures, retries from the lowest failed record, then sends batch metadata to the on-failure queue', async () => {
    const { table, streamArn } = await newTable();
    const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: 'stream-dlq-report' })))
      .QueueUrl as string;
    await put(table, 'r1');
    await put(table, 'r2', { mode: { S: 'report' }, failTimes: { N: '99' } });
    await put(table, 'r3');
    await put(table, 'r4');

    const { calls, poller } = await startPoller({
      streamArn,
      startingPosition: 'TRIM_HORIZON',
      batchSize: 3,
      reportBatchItemFailures: true,
      maximumRetryAttempts: 2,
      onFailure: { queueUrl: dlq },
    });
    await eventually(() => (poller.stats.recordsDiscarded === 2 && calls.length === 4 ? true : undefined));

    expect(calls.map((c) => keysOf(c.event))).toEqual([
      ['r1', 'r2', 'r3'],
      ['r2', 'r3'],
      ['r2', 'r3'],
      ['r4'],
    ]);
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 1 }));
    const failure = JSON.parse(received.Messages?.[0]?.Body ?? '{}');
    const first = (calls[0]?.event as Records | undefined)?.Records ?? [];
    expect(failure).toMatchObject({
      requestContext: {
        functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:consumer',
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST' },
      version: '1.0',
      DDBStreamBatchInfo: {
        shardId: expect.stringMatching(/^shardId-/),
        startSequenceNumber: first[1]?.dynamodb.SequenceNumber,
        endSequenceNumber: first[2]?.dynamodb.SequenceNumber,
        approximateArrivalOfFirstRecord: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        batchSize: 2,
        streamArn,
      },
    });
  });

  it('bisects a failing batch until only the poisoned record is given up on', async () => {
    const { table, streamArn } = await newTable();
    const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: 'stream-dlq-bisect' })))
      .QueueUrl as string;
    for (const pk of ['p1', 'p2']) await put(table, pk);
    await put(table, 'p3', { mode: { S: 'throw' }, failTimes: { N: '99' } });
    await put(table, 'p4');

    const { calls, poller } = await startPoller({
      streamArn,
      startingPosition: 'TRIM_HORIZON',
      batchSize: 4,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 1,
      onFailure: { queueUrl: dlq },
    });
    await eventually(() =>
      poller.stats.recordsDiscarded === 1 && calls.at(-1)?.result.error === undefined ? true : undefined,
    );

    expect(calls.map((c) => keysOf(c.event))).toEqual([
      ['p1', 'p2', 'p3', 'p4'],
      ['p1', 'p2'],
      ['p3', 'p4'],
      ['p3'],
      ['p3'],
      ['p4'],
    ]);
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, WaitTimeSeconds: 1 }));
    const failure = JSON.parse(received.Messages?.[0]?.Body ?? '{}');
    expect(failure.DDBStreamBatchInfo.batchSize).toBe(1);
    expect(failure.responseContext.functionError).toBe('Unhandled');
  });

  it('treats an empty itemIdentifier as a failure of the whole batch', async () => {
    const { table, streamArn } = await newTable();
    await put(table, 'b1');
    await put(table, 'b2', { mode: { S: 'bad-id' }, failTimes: { N: '1' } });

    const { calls } = await startPoller({
      streamArn,
      startingPosition: 'TRIM_HORIZON',
      reportBatchItemFailures: true,
    });
    await eventually(() => (calls.length === 2 ? true : undefined));

    expect(calls.map((c) => keysOf(c.event))).toEqual([
      ['b1', 'b2'],
      ['b1', 'b2'],
    ]);
  });

  it('LATEST skips what was written before start; blocks the shard until a failing batch succeeds', async () => {
    const { table, streamArn } = await newTable();
    await put(table, 'old');
    const { calls } = await startPoller({ streamArn, startingPosition: 'LATEST' });
    await put(table, 'new', { mode: { S: 'throw' }, failTimes: { N: '2' } });
    await put(table, 'later');

    // Wait for 'later' to be handled successfully: it may first arrive in the same (failing) batch as 'new'.
    await eventually(() =>
      calls.some((c) => keysOf(c.event).includes('later') && !c.result.error) ? true : undefined,
    );

    const keys = calls.map((c) => keysOf(c.event));
    expect(keys.flat()).not.toContain('old');
    // 'new' failed twice; until it succeeds, 'later' only ever comes in the same batch, behind it.
    const newSucceeded = calls.findIndex((c) => keysOf(c.event).includes('new') && !c.result.error);
    expect(newSucceeded).toBe(2);
    for (const k of keys.slice(0, newSucceeded)) expect(k[0]).toBe('new');
    expect(calls.slice(0, 2).every((c) => c.result.error?.errorMessage === 'poison new')).toBe(true);
  });

  it("re-reads at once, reporting no failure, when a GetRecords races the shard's first write (TrimmedDataAccessException)", async () => {
    const { table, streamArn } = await newTable();
    const logged: string[] = [];
    let trimmedAnswers = 0;
    // DynamoDB Local answers a GetRecords that overlaps the first write of a shard this way; here on cue.
    const racing = {
      send: (command: unknown, ...rest: unknown[]) => {
        if (command instanceof GetRecordsCommand && armed && trimmedAnswers === 0) {
          trimmedAnswers++;
          return Promise.reject(
            new TrimmedDataAccessException({
              message: 'The operation attempted to read past the oldest stream record in a shard.',
              $metadata: {},
            }),
          );
        }
        return (streams.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
      },
    } as unknown as DynamoDBStreamsClient;
    let armed = false;
    const recording = recordingInvoker(runtime);
    const poller = new StreamPoller(
      { id: 'racing-mapping', functionName: 'consumer', streamArn, startingPosition: 'LATEST' },
      {
        invoker: recording.invoker,
        streams: racing,
        sqs,
        pollIntervalMs: 50,
        log: (level, message) => logged.push(`${level} ${message}`),
      },
    );
    pollers.push(poller);
    await poller.start();
    armed = true;
    await eventually(() => (trimmedAnswers === 1 ? true : undefined));
    await put(table, 'first');

    await eventually(() =>
      recording.calls.some((c) => keysOf(c.event).includes('first')) ? true : undefined,
    );
    expect(trimmedAnswers).toBe(1);
    expect(logged).toEqual([]);
  });
});
