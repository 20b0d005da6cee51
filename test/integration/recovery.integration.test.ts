import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { InvokeCommand, InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import {
  createRecoveryHandler,
  type RecoveryHandlerOptions,
  type RecoveryRunSummary,
} from '../../functions/recovery/handler.ts';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { eventSortKey, pendingShardOf } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { relayConfigOf } from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();
const MINUTE = 60_000;

const context = { getRemainingTimeInMillis: () => 60_000, functionName: 'recovery' } as unknown as Context;

/** A stand-in Lambda client for the producer's check-back function (no Lambda emulator is needed). */
function checkbackLambda(answers: Map<string, unknown>, calls: unknown[]): LambdaClient {
  return {
    send: async (command: InvokeCommand): Promise<Partial<InvokeCommandOutput>> => {
      const request = JSON.parse(Buffer.from(command.input.Payload as Uint8Array).toString('utf8')) as {
        eventId: string;
      };
      calls.push({ functionName: command.input.FunctionName, ...request });
      const answer = answers.get(request.eventId) ?? { status: 'unknown' };
      return {
        StatusCode: 200,
        Payload: Buffer.from(JSON.stringify(answer)) as unknown as InvokeCommandOutput['Payload'],
      };
    },
  } as unknown as LambdaClient;
}

describe('recovery function against DynamoDB Local and fauxqs (SNS FIFO → SQS FIFO)', () => {
  let outbox: LocalOutbox;
  let sns: SNSClient;
  let sqs: SQSClient;
  let queueUrl: string;
  let relayConfig: RelayConfig;
  let clock = Date.UTC(2026, 10, 22, 12, 0, 0);
  let writer: OutboxWriter;
  const answers = new Map<string, unknown>();
  const checkbackCalls: unknown[] = [];

  function handler(overrides: Partial<RecoveryHandlerOptions> = {}) {
    const run = createRecoveryHandler({
      relayConfig,
      recoveryConfig: readRecoveryConfig({
        OUTBOX_CHECKBACK_FUNCTIONS: JSON.stringify({ '/payments': 'payments-checkback' }),
      }),
      tracking: { config: {}, ackTimeoutSeconds: 300 },
      clients: {
        dynamodb: outbox.client,
        sns,
        redeliverySqs: sqs,
        lambda: checkbackLambda(answers, checkbackCalls),
      },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'recovery' }),
      now: () => clock,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      ...overrides,
    });
    return () =>
      run({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, context) as Promise<RecoveryRunSummary>;
  }

  async function drain(): Promise<{ id: string; sequence: number; groupId?: string; body: string }[]> {
    return (await drainQueue(sqs, queueUrl)).map((m) => {
      const envelope = JSON.parse(m.Body ?? '{}') as { id: string; sequence: number };
      return {
        id: envelope.id,
        sequence: envelope.sequence,
        ...(m.Attributes?.MessageGroupId ? { groupId: m.Attributes.MessageGroupId } : {}),
        body: m.Body ?? '',
      };
    });
  }

  async function item(pk: string, sk: string) {
    return (
      await outbox.doc.send(
        new GetCommand({ TableName: outbox.tableName, Key: { pk, sk }, ConsistentRead: true }),
      )
    ).Item;
  }

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'recovery');
    sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const fifo = await createFifoTopicWithQueue(sns, sqs, {
      topic: 'recovery-events',
      queue: 'recovery-consumer',
    });
    queueUrl = fifo.queueUrl;
    relayConfig = relayConfigOf({
      tableName: outbox.tableName,
      retentionDays: 3,
      snsTopicArn: fifo.topicArn,
    });
    writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
  });

  it('republishes records whose stream delivery was lost, in order, through the relay code, once', async () => {
    // Committed READY; the relay never runs (the stream delivery was lost).
    const { events } = await writer.transact({
      aggregate: { key: 'order#1' },
      events: [
        { type: 'OrderPlaced', data: { n: 1 } },
        { type: 'OrderPaid', data: { n: 2 } },
      ],
    });
    expect((await readStream(dynamoEndpoint(), outbox.streamArn)).length).toBeGreaterThan(0);
    const sweep = handler();

    // Not stuck yet: nothing is published before the threshold.
    clock += MINUTE;
    const early = await sweep();
    expect(early.republished).toBe(0);
    expect(early.unpublishedCount).toBe(2);
    expect(await drain()).toEqual([]);

    clock += 2 * MINUTE;
    const run = await sweep();
    expect(run.republished).toBe(2);
    expect(run.oldestUnpublishedAgeMs).toBe(3 * MINUTE);
    const received = await drain();
    expect(received.map((r) => r.id)).toEqual(events.map((e) => e.id));
    expect(received.map((r) => r.groupId)).toEqual(['order#1', 'order#1']);
    // The envelope byte for byte as the writer stored it.
    expect(received[0]?.body).toBe((await item('order#1', eventSortKey(1)))?.envelope);

    for (const sequence of [1, 2]) {
      const record = await item('order#1', eventSortKey(sequence));
      expect(record).toMatchObject({ status: 'PUBLISHED', publishedAt: clock });
      expect(record?.pendingShard).toBeUndefined();
      // Retention from the relay configuration: 3 days after publishing.
      expect(record?.expiresAt).toBe(Math.floor(clock / 1000) + 3 * 86_400);
    }

    // The next run finds nothing to do and reads the same (empty) index.
    clock += MINUTE;
    const after = await sweep();
    expect(after).toMatchObject({ republished: 0, unpublishedCount: 0, oldestUnpublishedAgeMs: 0 });
    expect(await drain()).toEqual([]);
  });

  it('quarantines a poison record through the relay decode path and publishes the next one of its aggregate', async () => {
    const brokenId = uuidv7(clock);
    await outbox.client.send(
      new PutItemCommand({
        TableName: outbox.tableName,
        Item: {
          pk: { S: 'order#9' },
          sk: { S: eventSortKey(1) },
          id: { S: brokenId },
          type: { S: 'OrderPlaced' },
          source: { S: '/legacy' },
          sequence: { N: '1' },
          status: { S: 'READY' },
          envelope: { S: '{"specversion":"1.0",' },
          createdAt: { N: String(clock) },
          attempts: { N: '0' },
          pendingShard: { S: pendingShardOf(brokenId) },
          pendingDueAt: { N: String(clock) },
        },
      }),
    );
    await outbox.client.send(
      new PutItemCommand({
        TableName: outbox.tableName,
        Item: { pk: { S: 'order#9' }, sk: { S: 'HEAD' }, lastSequence: { N: '1' } },
      }),
    );
    const { events } = await writer.transact({
      aggregate: { key: 'order#9', expectedVersion: 1 },
      events: [{ type: 'OrderPaid', data: {} }],
    });
    clock += 3 * MINUTE;

    const run = await handler()();

    expect(run.relayQuarantined).toBe(1);
    expect(run.republished).toBe(1);
    const broken = await item('order#9', eventSortKey(1));
    expect(broken).toMatchObject({
      status: 'QUARANTINED',
      lastError: 'the envelope is not valid JSON',
      pendingShard: `Q#${brokenId.slice(-1)}`,
    });
    // Quarantined records never expire.
    expect(broken?.expiresAt).toBeUndefined();
    expect((await drain()).map((r) => r.id)).toEqual([events[0]?.id]);
    expect((await handler()()).unpublishedCount).toBe(0);
  });

  it('counts attempts while a target keeps failing and quarantines the record after the limit', async () => {
    const missingTopic = { ...relayConfig, snsTopicArn: 'arn:aws:sns:us-east-1:000000000000:missing.fifo' };
    const sweep = handler({
      relayConfig: missingTopic,
      recoveryConfig: readRecoveryConfig({ OUTBOX_RECOVERY_MAX_ATTEMPTS: '3' }),
    });
    const { events } = await writer.transact({
      aggregate: { key: 'order#20' },
      events: [{ type: 'OrderPlaced', data: {} }],
    });
    clock += 3 * MINUTE;
    const quarantinedAt: number[] = [];
    for (let run = 0; run < 10 && quarantinedAt.length === 0; run++) {
      const summary = await sweep();
      if (summary.quarantined > 0) quarantinedAt.push(run);
      clock += 10 * MINUTE; // past the backoff (1, 2, 4 minutes)
    }
    const record = await item('order#20', eventSortKey(1));
    expect(record).toMatchObject({
      status: 'QUARANTINED',
      attempts: 3,
      pendingShard: `Q#${events[0]?.id.slice(-1)}`,
    });
    expect(String(record?.lastError)).toMatch(/attempt 3 of 3/);
    expect(record?.expiresAt).toBeUndefined();
    expect(quarantinedAt).toEqual([2]);
  });

  it('does not count a future delayed event or a fresh prepared message as late', async () => {
    const empty = await createLocalOutboxTable(dynamoEndpoint(), 'recovery-age');
    const w = new OutboxWriter({
      tableName: empty.tableName,
      source: '/orders',
      client: empty.doc,
      now: () => clock,
    });
    await w.transact({
      aggregate: { key: 'later#1' },
      events: [{ type: 'CancelIfUnpaid', data: {}, deliverAt: clock + 30 * MINUTE }],
    });
    await w.prepare('pay#later', { type: 'Charged', data: {} });
    const sweep = handler({ relayConfig: { ...relayConfig, tableName: empty.tableName } });
    clock += 10 * MINUTE; // past the stuck alarm's 5 minutes, before deliverAt, past checkbackAfter (5 min)
    answers.clear();
    const run = await sweep();
    // Only due records are read (#10.9): the prepared message counts, the event delayed to later does not.
    expect(run.unpublishedCount).toBe(1);
    // Only the prepared message is late: by 5 minutes (10 since prepare − the 5-minute check-back threshold).
    expect(run.oldestUnpublishedAgeMs).toBe(5 * MINUTE);
    clock += 25 * MINUTE; // deliverAt passed 5 minutes ago: released now
    expect((await sweep()).released).toBe(1);
  });

  it("resolves stale prepared messages with the producer's check-back function, and counts unknown answers", async () => {
    const payments = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/payments',
      client: outbox.doc,
      now: () => clock,
    });
    const committed = await payments.prepare('pay#1', { type: 'Charged', data: {} });
    const rolledBack = await payments.prepare('pay#2', { type: 'Charged', data: {} });
    const unknown = await payments.prepare('pay#3', { type: 'Charged', data: {} });
    const otherSource = await writer.prepare('pay#4', { type: 'Charged', data: {} });
    answers.set(committed.id, { status: 'committed' });
    answers.set(rolledBack.id, { status: 'rolled-back' });
    answers.set(unknown.id, { status: 'maybe' });
    clock += 6 * MINUTE;

    const run = await handler()();

    expect(run).toMatchObject({ confirmed: 1, cancelled: 1, checkbackUnknown: 2 });
    expect(checkbackCalls).toEqual(
      expect.arrayContaining([
        {
          functionName: 'payments-checkback',
          eventId: committed.id,
          aggregateKey: 'pay#1',
          source: '/payments',
        },
      ]),
    );
    // No check-back function for /orders: no call, answer unknown.
    expect(checkbackCalls.some((c) => (c as { eventId: string }).eventId === otherSource.id)).toBe(false);
    expect((await item('pay#1', eventSortKey(1)))?.status).toBe('READY');
    expect((await item('pay#2', `PRE#${rolledBack.id}`))?.status).toBe('CANCELLED');
    expect(await item('pay#2', eventSortKey(1))).toBeUndefined();
    expect((await item('pay#3', `PRE#${unknown.id}`))?.attempts).toBe(1);
  });
});
