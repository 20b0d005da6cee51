import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  DynamoDBClient,
  QueryCommand as TableQueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import {
  ACK_PARTITION_PREFIX as CONTRACT_ACK_PREFIX,
  RecoveryDefaults,
} from '../../functions/recovery/contract.ts';
import {
  createRecoveryHandler,
  createRecoveryResources,
  parseCheckbackAnswer,
  type RecoveryHandlerOptions,
  type RunCounters,
  sweeperDependencies,
} from '../../functions/recovery/handler.ts';
import { DEFAULT_SWEEPER_OPTIONS, lateSince, type PendingEntry } from '../../functions/recovery/sweeper.ts';
import { RelayEnv } from '../../functions/relay/config.ts';
import { readTrackingSettings } from '../../functions/relay/tracking.ts';
import { ACK_PARTITION_PREFIX, ACK_TIMEOUT_ENV, TRACKING_ENV } from '../../functions/runtime/acks.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { recoveryClients, relayConfigOf } from '../support/relay-fixtures.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const ddb = mockClient(DynamoDBClient);
const doc = mockClient(DynamoDBDocumentClient);
const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);

afterEach(() => {
  for (const mock of [ddb, doc, sns, sqs, lambda]) mock.reset();
});

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:outbox.fifo';
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/billing.fifo';
const relayConfig = relayConfigOf({ tableName: 'outbox', snsTopicArn: TOPIC });
const silent = new Logger({ logLevel: 'SILENT' });

function options(overrides: Partial<RecoveryHandlerOptions> = {}): RecoveryHandlerOptions {
  return {
    relayConfig,
    recoveryConfig: readRecoveryConfig({
      OUTBOX_CHECKBACK_FUNCTIONS: JSON.stringify({ '/payments': 'payments-checkback' }),
    }),
    tracking: { config: {}, ackTimeoutSeconds: 300 },
    clients: recoveryClients(),
    logger: silent,
    now: () => NOW,
    retry: { maxAttempts: 1 },
    sleep: async () => {},
    random: () => 0,
    ...overrides,
  };
}

function run(overrides: Partial<RecoveryHandlerOptions> = {}) {
  const counters: RunCounters = { relayQuarantined: 0, checkbackUnknown: 0, redeliveryErrors: 0 };
  const deps = sweeperDependencies(createRecoveryResources(options(overrides)), {
    deadline: NOW + 20_000,
    now: () => NOW,
    logger: silent,
    counters,
    retry: { maxAttempts: 1 },
    sleep: async () => {},
    random: () => 0,
  });
  return { deps, counters };
}

/** An outbox item as the DocumentClient returns it. */
function item(pk: string, sequence: number, type = 'com.example.OrderPlaced'): Record<string, unknown> {
  const { envelope, json } = buildEnvelope(
    { type, data: { n: sequence } },
    { partitionKey: pk, sequence, defaultSource: '/orders', now: NOW - 600_000 },
  );
  return {
    pk,
    sk: eventSortKey(sequence),
    id: envelope.id,
    type,
    source: '/orders',
    sequence,
    status: 'READY',
    envelope: json,
    createdAt: NOW - 600_000,
    attempts: 0,
    pendingShard: `P#${envelope.id.slice(-1)}`,
    pendingDueAt: NOW - 600_000,
  };
}

/** A Lambda response payload (the SDK's blob adapter is a Uint8Array with helpers the code does not use). */
const payload = (value: unknown) =>
  Buffer.from(JSON.stringify(value), 'utf8') as unknown as InvokeCommandOutput['Payload'];

describe('recovery configuration', () => {
  it('defaults to the sweeper core defaults', () => {
    const config = readRecoveryConfig({});
    const { ackTimeoutMs: _fromTheRelay, ...sweeperDefaults } = DEFAULT_SWEEPER_OPTIONS;
    expect(config.sweeper).toEqual(sweeperDefaults);
    expect(config.checkbackFunctions).toEqual({});
    expect(config.checkbackTimeoutMs).toBe(RecoveryDefaults.checkbackTimeoutSeconds * 1000);
  });

  it('reads every setting from the environment', () => {
    const config = readRecoveryConfig({
      OUTBOX_RECOVERY_STUCK_AFTER_SECONDS: '30',
      OUTBOX_RECOVERY_CHECKBACK_AFTER_SECONDS: '45',
      OUTBOX_RECOVERY_MAX_ATTEMPTS: '7',
      OUTBOX_RECOVERY_BACKOFF_BASE_SECONDS: '5',
      OUTBOX_RECOVERY_MAX_ENTRIES_PER_RUN: '50',
      OUTBOX_ACK_MAX_REDELIVERIES: '0',
      OUTBOX_CHECKBACK_TIMEOUT_SECONDS: '3',
      OUTBOX_RECOVERY_MAX_EVENT_BYTES: '524288',
      OUTBOX_CHECKBACK_FUNCTIONS: '{"/a":"fn-a","/b":"arn:aws:lambda:us-east-1:123456789012:function:b"}',
    });
    expect(config).toEqual({
      sweeper: {
        stuckAfterMs: 30_000,
        checkbackAfterMs: 45_000,
        maxAttempts: 7,
        backoffBaseMs: 5000,
        maxEntriesPerRun: 50,
        maxRedeliveries: 0,
      },
      checkbackFunctions: { '/a': 'fn-a', '/b': 'arn:aws:lambda:us-east-1:123456789012:function:b' },
      checkbackTimeoutMs: 3000,
      maxEventBytes: 524_288,
    });
  });

  it.each([
    ['OUTBOX_RECOVERY_STUCK_AFTER_SECONDS', '5'],
    ['OUTBOX_RECOVERY_MAX_ATTEMPTS', '0'],
    ['OUTBOX_RECOVERY_MAX_ATTEMPTS', 'five'],
    ['OUTBOX_CHECKBACK_TIMEOUT_SECONDS', '1.5'],
    ['OUTBOX_CHECKBACK_FUNCTIONS', '{"/a":'],
    ['OUTBOX_CHECKBACK_FUNCTIONS', '["fn"]'],
    ['OUTBOX_CHECKBACK_FUNCTIONS', '{"/a":""}'],
  ])('rejects %s=%s, naming the variable', (name, value) => {
    expect(() => readRecoveryConfig({ [name]: value })).toThrow(OutboxConfigurationError);
    expect(() => readRecoveryConfig({ [name]: value })).toThrow(name);
  });

  it('reads the tracked subscribers and the ack timeout the relay reads', () => {
    expect(RelayEnv.trackedSubscribers).toBe(TRACKING_ENV);
    expect(RelayEnv.ackTimeoutSeconds).toBe(ACK_TIMEOUT_ENV);
    expect(CONTRACT_ACK_PREFIX).toBe(ACK_PARTITION_PREFIX);
    const tracking = readTrackingSettings({
      [TRACKING_ENV]: JSON.stringify({ T: [{ name: 'billing', queueUrl: QUEUE, fifo: true }] }),
      [ACK_TIMEOUT_ENV]: '120',
    });
    expect(tracking).toEqual({
      config: { T: [{ name: 'billing', queueUrl: QUEUE, fifo: true }] },
      ackTimeoutSeconds: 120,
    });
    expect(() => readTrackingSettings({ [ACK_TIMEOUT_ENV]: '2' })).toThrow(/OUTBOX_ACK_TIMEOUT_SECONDS/);
    expect(() => readTrackingSettings({ [TRACKING_ENV]: '{"T":[{}]}' })).toThrow(OutboxConfigurationError);
  });
});

describe('check-back', () => {
  it('invokes the function configured for the source with { eventId, aggregateKey, source } and returns its answer', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ status: 'committed' }) });
    const { deps, counters } = run();
    const answer = await deps.checkback({ eventId: 'e1', aggregateKey: 'pay#1', source: '/payments' });
    expect(answer).toBe('committed');
    const call = lambda.commandCalls(InvokeCommand)[0]?.args[0].input;
    expect(call?.FunctionName).toBe('payments-checkback');
    expect(call?.InvocationType).toBe('RequestResponse');
    expect(JSON.parse(Buffer.from(call?.Payload as Uint8Array).toString('utf8'))).toEqual({
      eventId: 'e1',
      aggregateKey: 'pay#1',
      source: '/payments',
    });
    expect(counters.checkbackUnknown).toBe(0);
  });

  it('passes on rolled-back', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ status: 'rolled-back' }) });
    expect(await run().deps.checkback({ eventId: 'e', aggregateKey: 'k', source: '/payments' })).toBe(
      'rolled-back',
    );
  });

  it.each([
    ['an unknown answer', { StatusCode: 200, Payload: payload({ status: 'unknown' }) }],
    ['an invalid answer', { StatusCode: 200, Payload: payload({ status: 'COMMITTED' }) }],
    [
      'an answer that is not JSON',
      { StatusCode: 200, Payload: Buffer.from('yes') as unknown as InvokeCommandOutput['Payload'] },
    ],
    ['no payload', { StatusCode: 200 }],
    [
      'a function error',
      { StatusCode: 200, FunctionError: 'Unhandled', Payload: payload({ status: 'committed' }) },
    ],
  ])('counts %s as unknown', async (_name, response: Partial<InvokeCommandOutput>) => {
    lambda.on(InvokeCommand).resolves(response);
    const { deps, counters } = run();
    expect(await deps.checkback({ eventId: 'e', aggregateKey: 'k', source: '/payments' })).toBe('unknown');
    expect(counters.checkbackUnknown).toBe(1);
  });

  it('answers unknown without a call when the source has no check-back function, and when invoking fails', async () => {
    const { deps, counters } = run();
    expect(await deps.checkback({ eventId: 'e', aggregateKey: 'k', source: '/orders' })).toBe('unknown');
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
    lambda.on(InvokeCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    expect(await deps.checkback({ eventId: 'e', aggregateKey: 'k', source: '/payments' })).toBe('unknown');
    expect(counters.checkbackUnknown).toBe(2);
  });

  it('parses only the three documented answers', () => {
    expect(parseCheckbackAnswer(payload({ status: 'committed' }))).toBe('committed');
    expect(parseCheckbackAnswer(payload({ status: 'rolled-back' }))).toBe('rolled-back');
    expect(parseCheckbackAnswer(payload({ status: 'unknown' }))).toBe('unknown');
    expect(parseCheckbackAnswer(payload('committed'))).toBeUndefined();
    expect(parseCheckbackAnswer(payload(null))).toBeUndefined();
  });
});

describe('republish through the relay core', () => {
  it('publishes stuck items to the relay targets, marks them PUBLISHED and reports their ids', async () => {
    const items = [item('order#1', 1), item('order#1', 2), item('order#2', 1)];
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: { Id: string }[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })),
      Failed: [],
    }));
    ddb.on(UpdateItemCommand).resolves({});
    const outcome = await run().deps.republish(items);
    expect([...outcome.published].sort()).toEqual(items.map((i) => String(i.id)).sort());
    expect(outcome.failed.size).toBe(0);
    const sent = sns
      .commandCalls(PublishBatchCommand)
      .flatMap((c) => c.args[0].input.PublishBatchRequestEntries ?? []);
    expect(sent.map((e) => e.Message)).toEqual(expect.arrayContaining(items.map((i) => i.envelope)));
    expect(sent.find((e) => e.Message === items[0]?.envelope)?.MessageGroupId).toBe('order#1');
    const marks = ddb.commandCalls(UpdateItemCommand).map((c) => c.args[0].input);
    expect(marks).toHaveLength(3);
    expect(marks.every((m) => m.ExpressionAttributeValues?.[':published']?.S === 'PUBLISHED')).toBe(true);
  });

  it('lets the relay quarantine an unpublishable item and counts it, without reporting it as a failure', async () => {
    const poison = { ...item('order#9', 1), envelope: '{"specversion":"1.0",' };
    ddb.on(UpdateItemCommand).resolves({});
    const { deps, counters } = run();
    const outcome = await deps.republish([poison]);
    expect(outcome.published).toEqual([]);
    expect(outcome.failed.size).toBe(0);
    expect(counters.relayQuarantined).toBe(1);
    expect(sns.commandCalls(PublishBatchCommand)).toHaveLength(0);
    const update = ddb.commandCalls(UpdateItemCommand)[0]?.args[0].input;
    expect(update?.ExpressionAttributeValues?.[':quarantined']?.S).toBe('QUARANTINED');
    expect(update?.ExpressionAttributeValues?.[':reason']?.S).toBe('the envelope is not valid JSON');
  });

  it('reports a target failure as the reason, so the sweeper counts an attempt', async () => {
    const stuck = item('order#3', 1);
    sns
      .on(PublishBatchCommand)
      .rejects(Object.assign(new Error('no access'), { name: 'AuthorizationErrorException' }));
    const outcome = await run().deps.republish([stuck]);
    expect(outcome.published).toEqual([]);
    expect(outcome.failed.get(String(stuck.id))).toMatch(/AuthorizationErrorException/);
    expect(ddb.commandCalls(UpdateItemCommand)).toHaveLength(0);
  });

  it('writes the pending acknowledgements of a tracked event, never overwriting an existing one', async () => {
    const stuck = item('order#4', 1, 'T');
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: { Id: string }[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })),
    }));
    ddb.on(UpdateItemCommand).resolves({});
    const { deps } = run({
      tracking: { config: { T: [{ name: 'billing', queueUrl: QUEUE, fifo: true }] }, ackTimeoutSeconds: 60 },
    });
    expect((await deps.republish([stuck])).published).toEqual([stuck.id]);
    const ack = ddb
      .commandCalls(UpdateItemCommand)
      .map((c) => c.args[0].input)
      .find((i) => i.Key?.pk?.S === `ACK#${stuck.id}#billing`);
    expect(ack?.Key?.sk?.S).toBe('billing');
    expect(ack?.ConditionExpression).toBe('attribute_not_exists(#pk)');
    const values = Object.values(ack?.ExpressionAttributeValues ?? {});
    expect(values).toEqual(
      expect.arrayContaining([{ S: 'PENDING' }, { S: QUEUE }, { N: String(NOW + 60_000) }]),
    );
  });
});

describe('republish keeps per-aggregate order', () => {
  it('publishes a READY predecessor of a stuck item first (its stream delivery was lost) and reports both', async () => {
    const predecessor = item('order#7', 2);
    const stuck = item('order#7', 3);
    ddb
      .on(TableQueryCommand)
      .resolvesOnce({ Items: [marshall(predecessor)], LastEvaluatedKey: marshall({ pk: 'order#7' }) })
      .resolves({ Items: [marshall({ ...item('order#7', 1), status: 'PUBLISHED' })] });
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: { Id: string }[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })),
    }));
    ddb.on(UpdateItemCommand).resolves({});

    const outcome = await run().deps.republish([stuck]);

    expect([...outcome.published].sort()).toEqual([String(predecessor.id), String(stuck.id)].sort());
    const sent = sns
      .commandCalls(PublishBatchCommand)
      .flatMap((c) => c.args[0].input.PublishBatchRequestEntries ?? [])
      .map((e) => e.Message);
    expect(sent).toEqual([predecessor.envelope, stuck.envelope]);
    const query = ddb.commandCalls(TableQueryCommand)[0]?.args[0].input;
    expect(query).toMatchObject({ TableName: 'outbox', ConsistentRead: true, ScanIndexForward: false });
    expect(query?.IndexName).toBeUndefined();
  });
});

describe('redelivery', () => {
  it('sends to the subscriber queue with a hashed group for long keys, and counts a failed send without throwing', async () => {
    sqs.on(SendMessageCommand).resolvesOnce({}).rejects(new Error('queue gone'));
    const { deps, counters } = run();
    const key = `order#${'x'.repeat(200)}`;
    const envelope = buildEnvelope(
      { type: 'T', data: {} },
      { partitionKey: key, sequence: 3, defaultSource: '/o' },
    );
    const target = { queueUrl: QUEUE, fifo: true, subscriber: 'billing', attempt: 1 };
    await deps.redeliver?.(target, envelope.json);
    const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(sent?.MessageGroupId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(sent?.MessageDeduplicationId).toBe(`${envelope.envelope.id}.redeliver.1`);
    expect(sent?.MessageAttributes?.sequence).toEqual({ DataType: 'Number', StringValue: '3' });
    await expect(deps.redeliver?.({ ...target, attempt: 2 }, envelope.json)).resolves.toBeUndefined();
    expect(counters.redeliveryErrors).toBe(1);
  });
});

describe('the scheduled handler', () => {
  const context = {
    getRemainingTimeInMillis: () => 60_000,
    awsRequestId: 'r',
    functionName: 'recovery',
  } as unknown as Context;

  it('sweeps once per invocation and emits the run metrics', async () => {
    const stuck = item('order#5', 1);
    doc.on(QueryCommand).callsFake((input: { ExpressionAttributeValues: { ':shard': string } }) => ({
      Items: input.ExpressionAttributeValues[':shard'] === stuck.pendingShard ? [stuck] : [],
      ConsumedCapacity: { CapacityUnits: 0.5 },
    }));
    doc.on(BatchGetCommand).resolves({ Responses: { outbox: [stuck] } });
    doc.on(UpdateCommand).resolves({});
    sns.on(PublishBatchCommand).callsFake((input: { PublishBatchRequestEntries: { Id: string }[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })),
    }));
    ddb.on(UpdateItemCommand).resolves({});
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'recovery' });
    const added = vi.spyOn(metrics, 'addMetric');
    const handler = createRecoveryHandler({ ...options(), metrics });

    const summary = await handler({ source: 'aws.events' }, context);

    expect(summary).toMatchObject({
      republished: 1,
      unpublishedCount: 1,
      oldestUnpublishedAgeMs: 600_000,
      indexReadUnits: 8,
      quarantined: 0,
    });
    const emitted = Object.fromEntries(added.mock.calls.map(([name, unit, value]) => [name, [unit, value]]));
    expect(emitted).toMatchObject({
      OldestUnpublishedAgeSeconds: ['Seconds', 600],
      UnpublishedCount: ['Count', 1],
      Republished: ['Count', 1],
      Released: ['Count', 0],
      Quarantined: ['Count', 0],
      CheckbackUnknown: ['Count', 0],
      Redelivered: ['Count', 0],
      AcksFailed: ['Count', 0],
      IndexReadUnits: ['Count', 8],
    });
    expect(doc.commandCalls(QueryCommand)).toHaveLength(16);
    for (const call of doc.commandCalls(QueryCommand)) {
      expect(call.args[0].input.IndexName).toBe('pending-by-due-time');
    }
  });

  it('fails the invocation on a configuration error, naming the variable', async () => {
    const handler = createRecoveryHandler({
      ...options(),
      recoveryConfig: undefined,
      relayConfig: relayConfig,
    });
    const previous = process.env.OUTBOX_RECOVERY_MAX_ATTEMPTS;
    process.env.OUTBOX_RECOVERY_MAX_ATTEMPTS = '0';
    try {
      await expect(handler({}, context)).rejects.toThrow(/OUTBOX_RECOVERY_MAX_ATTEMPTS/);
    } finally {
      if (previous === undefined) delete process.env.OUTBOX_RECOVERY_MAX_ATTEMPTS;
      else process.env.OUTBOX_RECOVERY_MAX_ATTEMPTS = previous;
    }
  });
});

describe('oldest unpublished age: since when a record is late', () => {
  const entry = (status: string, createdAt: number, pendingDueAt: number, attempts = 0): PendingEntry => ({
    pk: 'k',
    sk: 'EVT#000000000001',
    id: 'e',
    status,
    attempts,
    createdAt,
    pendingDueAt,
  });
  const options = DEFAULT_SWEEPER_OPTIONS;

  it('READY: since it became due, also while attempts are counted (backoff leaves the due time)', () => {
    expect(lateSince(entry('READY', NOW - 10_000, NOW - 10_000), NOW, options)).toBe(NOW - 10_000);
    // Released from SCHEDULED a minute ago, committed an hour ago: late for a minute.
    expect(lateSince(entry('READY', NOW - 3_600_000, NOW - 60_000), NOW, options)).toBe(NOW - 60_000);
    expect(lateSince(entry('READY', NOW - 600_000, NOW - 300_000, 2), NOW, options)).toBe(NOW - 300_000);
  });

  it('SCHEDULED: not late before deliverAt, late since deliverAt after it', () => {
    expect(lateSince(entry('SCHEDULED', NOW - 600_000, NOW + 1_800_000), NOW, options)).toBeUndefined();
    expect(lateSince(entry('SCHEDULED', NOW - 600_000, NOW - 5000), NOW, options)).toBe(NOW - 5000);
  });

  it('PREPARED: late only once the check-back threshold has passed', () => {
    expect(lateSince(entry('PREPARED', NOW - 60_000, NOW - 60_000), NOW, options)).toBeUndefined();
    const created = NOW - options.checkbackAfterMs - 30_000;
    expect(lateSince(entry('PREPARED', created, created), NOW, options)).toBe(NOW - 30_000);
  });

  it('anything else (a stray QUARANTINED entry) is not counted', () => {
    expect(lateSince(entry('QUARANTINED', NOW - 600_000, NOW - 600_000), NOW, options)).toBeUndefined();
  });
});
