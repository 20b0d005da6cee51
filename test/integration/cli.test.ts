/**
 * The operator commands end to end: the real command entry points (argument parsing, `--deployment` file,
 * local endpoints) against DynamoDB Local and fauxqs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import type { Deployment } from '../../bin/commands/deployment.ts';
import { runDlqCommand } from '../../bin/commands/dlq.ts';
import { runQuarantineCommand } from '../../bin/commands/quarantine.ts';
import { runReplayCommand } from '../../bin/commands/replay.ts';
import { runStatusCommand } from '../../bin/commands/status.ts';
import type { OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { OutboxStatus, pendingShardOf, quarantineShardOf } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqsService } from '../support/services.ts';

const ddbEndpoint = useDynamoDbLocal();
const fauxqs = useFauxqsService();

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const SECRET = 'card-4111-1111-1111-1111';
let setupCounter = 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Runner = (argv: readonly string[], io: CliIo) => Promise<number>;

async function run(runner: Runner, argv: readonly string[], now?: number): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    ...(now === undefined ? {} : { now: () => now }),
  };
  const code = await runner(argv, io);
  return { code, stdout, stderr };
}

interface Fixture {
  outbox: LocalOutbox;
  sqs: SQSClient;
  sns: SNSClient;
  deployment: Deployment;
  deploymentFile: string;
  billing: { queueUrl: string; dlqUrl: string; name: string; dlqName: string };
  notifications: { queueUrl: string; dlqUrl: string };
  writer: (now: number) => OutboxWriter;
  /** Runs a command with `--deployment <file>` appended. */
  cli: (runner: Runner, argv: readonly string[], now?: number) => Promise<Run>;
}

/** A fresh outbox table, a FIFO subscription with a FIFO DLQ (maxReceiveCount 1), a standard one, and a deployment file. */
async function setup(options: { topic?: boolean } = {}): Promise<Fixture> {
  const n = `${process.pid}-${++setupCounter}`;
  const outbox = await createLocalOutboxTable(ddbEndpoint(), 'cli');
  const sqs = new SQSClient(localAwsConfig(fauxqs().endpoint));
  const sns = new SNSClient(localAwsConfig(fauxqs().endpoint));
  const createQueue = async (name: string, attributes: Record<string, string>) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl as string;
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string;

  const billingDlqName = `billing-dlq-${n}.fifo`;
  const billingDlq = await createQueue(billingDlqName, { FifoQueue: 'true' });
  const billingName = `billing-${n}.fifo`;
  const billing = await createQueue(billingName, {
    FifoQueue: 'true',
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(billingDlq), maxReceiveCount: 1 }),
  });
  const notificationsDlq = await createQueue(`notifications-dlq-${n}`, {});
  const notifications = await createQueue(`notifications-${n}`, {
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(notificationsDlq), maxReceiveCount: 3 }),
  });

  let topicArn: string | undefined;
  if (options.topic) {
    topicArn = (
      await sns.send(new CreateTopicCommand({ Name: `outbox-${n}.fifo`, Attributes: { FifoTopic: 'true' } }))
    ).TopicArn as string;
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: await arnOf(billing),
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
  }

  const deployment: Deployment = {
    outboxTableName: outbox.tableName,
    subscriptions: [
      { name: 'billing', queueUrl: billing, deadLetterQueueUrl: billingDlq, fifo: true },
      { name: 'notifications', queueUrl: notifications, deadLetterQueueUrl: notificationsDlq, fifo: false },
    ],
    ...(topicArn === undefined ? {} : { topicArn }),
    endpoints: { dynamodb: ddbEndpoint(), sqs: fauxqs().endpoint, sns: fauxqs().endpoint },
  };
  const dir = mkdtempSync(join(tmpdir(), 'outbox-cli-'));
  const deploymentFile = join(dir, 'deployment.json');
  writeFileSync(deploymentFile, JSON.stringify(deployment, null, 2));
  return {
    outbox,
    sqs,
    sns,
    deployment,
    deploymentFile,
    billing: { queueUrl: billing, dlqUrl: billingDlq, name: billingName, dlqName: billingDlqName },
    notifications: { queueUrl: notifications, dlqUrl: notificationsDlq },
    writer: (now) =>
      new OutboxWriter({
        tableName: outbox.tableName,
        source: '/orders',
        client: outbox.doc,
        now: () => now,
      }),
    cli: (runner, argv, now) => run(runner, [...argv, '--deployment', deploymentFile], now),
  };
}

function envelopeBody(partitionkey: string, sequence: number, id: string): string {
  const envelope: OutboxEnvelope = {
    specversion: '1.0',
    id,
    source: '/orders',
    type: 'com.example.orders.OrderPlaced',
    time: new Date(T0).toISOString(),
    datacontenttype: 'application/json',
    partitionkey,
    sequence,
    data: { card: SECRET },
  };
  return JSON.stringify(envelope);
}

/** Receives everything from a FIFO queue (deleting it), as fauxqs hands it out: returns bodies in receive order. */
async function drain(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const response = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = response.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    for (const m of messages) {
      all.push(m);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return all;
}

/** A failing consumer: receives and releases until the redrive policy moved everything to the DLQ. */
async function failUntilDeadLettered(sqs: SQSClient, queueUrl: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const response = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const messages = response.Messages ?? [];
    if (messages.length === 0) {
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      if (
        attrs.Attributes?.ApproximateNumberOfMessages === '0' &&
        attrs.Attributes?.ApproximateNumberOfMessagesNotVisible === '0'
      )
        return;
      continue;
    }
    for (const m of messages) {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
  }
  throw new Error('messages never reached the DLQ');
}

/** Marks an event record as the relay does after publishing it. */
async function markPublished(f: Fixture, pk: string, sk: string, at: number): Promise<void> {
  await f.outbox.doc.send(
    new UpdateCommand({
      TableName: f.outbox.tableName,
      Key: { pk, sk },
      UpdateExpression:
        'SET #status = :published, publishedAt = :at, expiresAt = :exp REMOVE pendingShard, pendingDueAt',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':published': OutboxStatus.Published,
        ':at': at,
        ':exp': Math.floor(at / 1000) + 604_800,
      },
    }),
  );
}

/** Quarantines a record as the sweeper does. */
async function quarantine(
  f: Fixture,
  pk: string,
  sk: string,
  id: string,
  at: number,
  reason: string,
): Promise<void> {
  await f.outbox.doc.send(
    new UpdateCommand({
      TableName: f.outbox.tableName,
      Key: { pk, sk },
      UpdateExpression:
        'SET #status = :q, attempts = :five, lastError = :reason, pendingShard = :shard, pendingDueAt = :at',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':q': OutboxStatus.Quarantined,
        ':five': 5,
        ':reason': reason,
        ':shard': quarantineShardOf(id),
        ':at': at,
      },
    }),
  );
}

/** Quarantines a record as the relay's bookkeeping does: status and reason only, it stays in its P# shard. */
async function relayQuarantine(f: Fixture, pk: string, sk: string, reason: string): Promise<void> {
  await f.outbox.doc.send(
    new UpdateCommand({
      TableName: f.outbox.tableName,
      Key: { pk, sk },
      UpdateExpression: 'SET #status = :q, lastError = :reason REMOVE expiresAt',
      ConditionExpression: '#status = :ready',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':q': OutboxStatus.Quarantined,
        ':reason': reason,
        ':ready': OutboxStatus.Ready,
      },
    }),
  );
}

describe('outbox status', () => {
  it('reports backlog, in flight, DLQ depth and ages per subscription, and unpublished / quarantined records', async () => {
    const f = await setup();
    // The queue ages come from fauxqs' real SentTimestamps, so this test runs on the wall clock.
    const t0 = Date.now() - 120_000;
    // Outbox: order#1 has 2 READY events (committed at t0), order#2 one event committed 30 s later that is
    // quarantined, order#3 one PUBLISHED event, order#4 one SCHEDULED event due in an hour.
    const first = await f.writer(t0).transact({
      aggregate: { key: 'order#1' },
      events: [
        { type: 'OrderPlaced', data: { card: SECRET } },
        { type: 'OrderPriced', data: {} },
      ],
    });
    const poison = await f
      .writer(t0 + 30_000)
      .transact({ aggregate: { key: 'order#2' }, events: [{ type: 'Bad', data: {} }] });
    const poisonId = poison.events[0]?.id as string;
    await quarantine(f, 'order#2', 'EVT#000000000001', poisonId, t0 + 40_000, 'envelope too large');
    // order#9: a poison record the relay quarantined (it stays in its P# shard).
    await f
      .writer(t0 + 50_000)
      .transact({ aggregate: { key: 'order#9' }, events: [{ type: 'Poison', data: {} }] });
    await relayQuarantine(f, 'order#9', 'EVT#000000000001', 'the envelope is not valid JSON');
    await f
      .writer(t0)
      .transact({ aggregate: { key: 'order#3' }, events: [{ type: 'OrderPlaced', data: {} }] });
    await markPublished(f, 'order#3', 'EVT#000000000001', t0 + 1000);
    await f.writer(t0).transact({
      aggregate: { key: 'order#4' },
      events: [{ type: 'ReminderDue', data: {}, deliverAt: t0 + 3_600_000 }],
    });
    expect(first.events).toHaveLength(2);

    // Queues: billing gets 3 messages, one of which a consumer holds (in flight); 2 already sit in its DLQ.
    const sentFrom = Date.now();
    for (const [i, key] of ['order#1', 'order#5', 'order#6'].entries()) {
      await f.sqs.send(
        new SendMessageCommand({
          QueueUrl: f.billing.queueUrl,
          MessageBody: envelopeBody(key, 1, `0193${i}`),
          MessageGroupId: key,
          MessageDeduplicationId: `d${i}`,
        }),
      );
    }
    for (const [i, key] of ['order#7', 'order#8'].entries()) {
      await f.sqs.send(
        new SendMessageCommand({
          QueueUrl: f.billing.dlqUrl,
          MessageBody: envelopeBody(key, 1, `0194${i}`),
          MessageGroupId: key,
          MessageDeduplicationId: `q${i}`,
        }),
      );
    }
    const sentUntil = Date.now();
    await f.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: f.billing.queueUrl,
        MaxNumberOfMessages: 1,
        VisibilityTimeout: 300,
      }),
    );

    const now = Math.max(Date.now(), t0 + 120_000) + 5_000;
    const result = await f.cli(runStatusCommand, ['--json'], now);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.unpublished.count).toBe(3);
    expect(report.unpublished.byStatus).toEqual({ READY: 2, SCHEDULED: 1 });
    expect(report.unpublished.oldestAgeMs).toBe(now - t0);
    expect(report.unpublished.oldest.aggregateKey).toBe('order#1');
    expect(report.quarantined).toEqual({ count: 2, oldestQuarantinedForMs: now - t0 - 40_000 });
    expect(report.ageSource).toBe('fauxqs-inspection');

    const billing = report.subscriptions.find((s: { name: string }) => s.name === 'billing');
    expect(billing.queue).toEqual({ visible: 2, inFlight: 1, delayed: 0 });
    expect(billing.deadLetter).toBe(2);
    expect(billing.fifo).toBe(true);
    // The oldest message was sent between sentFrom and sentUntil; the in-flight one counts too.
    expect(billing.oldestAgeMs).toBeGreaterThanOrEqual(now - sentUntil);
    expect(billing.oldestAgeMs).toBeLessThanOrEqual(now - sentFrom);
    expect(billing.deadLetterOldestAgeMs).toBeGreaterThanOrEqual(now - sentUntil);
    expect(billing.deadLetterOldestAgeMs).toBeLessThanOrEqual(now - sentFrom);
    const notifications = report.subscriptions.find((s: { name: string }) => s.name === 'notifications');
    expect(notifications).toMatchObject({
      queue: { visible: 0, inFlight: 0 },
      deadLetter: 0,
      oldestAgeMs: null,
    });

    const table = await f.cli(runStatusCommand, [], now);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /unpublished records: 3 \(READY 2, SCHEDULED 1\); oldest 2m \d\ds \(READY order#1 /,
    );
    expect(table.stdout).toContain('quarantined records: 2');
    expect(table.stdout).toMatch(/billing\s+fifo\s+2\s+1\s+0\s+\d+s\s+2\s+\d+s/);
    expect(table.stdout).toMatch(/notifications\s+standard\s+0\s+0\s+0\s+-\s+0\s+-/);
    expect(table.stdout).toContain('fauxqs queue inspection');
  });
});

describe('outbox dlq', () => {
  it('lists DLQ messages without consuming them or printing event data, then redrives them back in order', async () => {
    const f = await setup();
    const sent = [
      { key: 'order#1', seq: 1, id: '01937f0e-0000-7000-8000-000000000001' },
      { key: 'order#1', seq: 2, id: '01937f0e-0000-7000-8000-000000000002' },
      { key: 'order#2', seq: 1, id: '01937f0e-0000-7000-8000-000000000003' },
    ];
    for (const m of sent) {
      await f.sqs.send(
        new SendMessageCommand({
          QueueUrl: f.billing.queueUrl,
          MessageBody: envelopeBody(m.key, m.seq, m.id),
          MessageGroupId: m.key,
          // As the relay does: dedup id = event id. A redrive within 5 minutes must not be dropped by it.
          MessageDeduplicationId: m.id,
        }),
      );
    }
    await failUntilDeadLettered(f.sqs, f.billing.queueUrl);
    expect((await fauxqs().inspectQueue(f.billing.dlqName))?.messages.ready).toHaveLength(3);

    const listed = await f.cli(runDlqCommand, ['list', 'billing', '--json']);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.stdout);
    expect(list.depth).toBe(3);
    expect(list.notReset).toBe(0);
    // A FIFO peek sees the head of each message group (SQS hides the rest of a group while its head is in flight).
    expect(list.messages.length).toBeGreaterThanOrEqual(2);
    const first = list.messages.find((m: { eventId: string }) => m.eventId === sent[0]?.id);
    expect(first).toMatchObject({
      format: 'envelope',
      type: 'com.example.orders.OrderPlaced',
      partitionkey: 'order#1',
      sequence: 1,
      messageGroupId: 'order#1',
    });
    expect(first.receiveCount).toBeGreaterThanOrEqual(2);
    expect(Date.parse(first.sentAt)).toBeGreaterThan(0);
    expect(listed.stdout).not.toContain(SECRET);

    // Not consumed: all three are visible again right away.
    const afterList = await fauxqs().inspectQueue(f.billing.dlqName);
    expect(afterList?.messages.ready).toHaveLength(3);
    expect(afterList?.messages.inflight).toHaveLength(0);

    const text = await f.cli(runDlqCommand, ['list', 'billing']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(sent[0]?.id);
    expect(text.stdout).toContain('3 message(s)');
    expect(text.stdout).not.toContain(SECRET);

    const redriven = await f.cli(runDlqCommand, ['redrive', 'billing', '--json', '--yes']);
    expect(redriven.stderr).not.toContain('error');
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.stdout)).toMatchObject({
      moved: 3,
      failed: 0,
      returned: 0,
      sentNotDeleted: 0,
      remaining: 0,
    });

    const back = await drain(f.sqs, f.billing.queueUrl);
    const bodies = back.map((m) => JSON.parse(m.Body as string) as OutboxEnvelope);
    expect(bodies.map((b) => b.id).sort()).toEqual(sent.map((s) => s.id).sort());
    expect(bodies.filter((b) => b.partitionkey === 'order#1').map((b) => b.sequence)).toEqual([1, 2]);
    expect(back.map((m) => m.Attributes?.MessageGroupId).sort()).toEqual(['order#1', 'order#1', 'order#2']);
    expect(back.every((m) => m.Attributes?.MessageDeduplicationId?.startsWith('redrive.'))).toBe(true);

    // Safe to re-run: nothing left, nothing sent twice.
    const again = await f.cli(runDlqCommand, ['redrive', 'billing', '--json', '--yes']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ moved: 0, remaining: 0 });
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(0);
  });

  it('redrives a standard DLQ and refuses an unknown subscription with exit code 2', async () => {
    const f = await setup();
    await f.sqs.send(new SendMessageCommand({ QueueUrl: f.notifications.dlqUrl, MessageBody: 'not json' }));
    const result = await f.cli(runDlqCommand, ['redrive', 'notifications', '--yes']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('moved 1 message(s)');
    const back = await drain(f.sqs, f.notifications.queueUrl);
    expect(back.map((m) => m.Body)).toEqual(['not json']);

    const unknown = await f.cli(runDlqCommand, ['list', 'shipping']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no subscription "shipping"');
    expect(unknown.stderr).toContain('billing, notifications');
  });
});

describe('outbox quarantine', () => {
  it('lists quarantined records through the index and retries one back to READY in its P# shard', async () => {
    const f = await setup();
    const writer = f.writer(T0);
    const a = await writer.transact({
      aggregate: { key: 'order#10' },
      events: [{ type: 'OrderPlaced', data: {} }],
    });
    const b = await writer.transact({
      aggregate: { key: 'order#11' },
      events: [{ type: 'OrderPaid', data: {} }],
    });
    const aId = a.events[0]?.id as string;
    const bId = b.events[0]?.id as string;
    await quarantine(
      f,
      'order#10',
      'EVT#000000000001',
      aId,
      T0 + 60_000,
      'SNS rejected the message: too large (attempt 5 of 5)',
    );
    await quarantine(
      f,
      'order#11',
      'EVT#000000000001',
      bId,
      T0 + 61_000,
      'republish failed (attempt 5 of 5)',
    );
    // A poison record the relay quarantined: still in its P# shard.
    const c = await f
      .writer(T0 + 63_000)
      .transact({ aggregate: { key: 'order#13' }, events: [{ type: 'Poison', data: {} }] });
    const cId = c.events[0]?.id as string;
    await relayQuarantine(f, 'order#13', 'EVT#000000000001', 'the envelope is not valid JSON');
    // A prepared message that check-back could not resolve.
    const prepared = await writer.prepare('order#12', { type: 'PaymentCaptured', data: {} });
    await quarantine(
      f,
      'order#12',
      `PRE#${prepared.id}`,
      prepared.id,
      T0 + 62_000,
      'check-back answered unknown',
    );

    const now = T0 + 600_000;
    const listed = await f.cli(runQuarantineCommand, ['list', '--json'], now);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.stdout);
    expect(list.records).toHaveLength(4);
    expect(list.records[0]).toMatchObject({
      aggregateKey: 'order#10',
      kind: 'event',
      id: aId,
      sequence: 1,
      type: 'OrderPlaced',
      attempts: 5,
      lastError: 'SNS rejected the message: too large (attempt 5 of 5)',
      ageMs: 600_000,
      quarantinedForMs: 540_000,
    });
    expect(list.records[2]).toMatchObject({ aggregateKey: 'order#12', kind: 'prepared', id: prepared.id });
    expect(list.records[3]).toMatchObject({
      aggregateKey: 'order#13',
      id: cId,
      type: 'Poison',
      lastError: 'the envelope is not valid JSON',
      quarantinedForMs: 600_000 - 63_000,
    });

    const text = await f.cli(runQuarantineCommand, ['list'], now);
    expect(text.stdout).toContain('4 quarantined record(s)');
    expect(text.stdout).toContain(aId);
    expect(text.stdout).toContain('10m 00s');

    const retried = await f.cli(runQuarantineCommand, ['retry', aId, '--json'], now);
    expect(retried.stderr).toBe('');
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ retried: 1, skipped: 0, errors: 0 });

    const item = (
      await f.outbox.doc.send(
        new GetCommand({
          TableName: f.outbox.tableName,
          Key: { pk: 'order#10', sk: 'EVT#000000000001' },
          ConsistentRead: true,
        }),
      )
    ).Item;
    expect(item).toMatchObject({
      status: 'READY',
      attempts: 0,
      pendingShard: pendingShardOf(aId),
      pendingDueAt: now,
    });
    expect(item?.lastError).toBeUndefined();
    // The stream shows QUARANTINED → READY: the MODIFY the relay's filter forwards (old ≠ READY, new = READY).
    const modify = (await readStream(ddbEndpoint(), f.outbox.streamArn))
      .filter((r) => r.eventName === 'MODIFY' && r.dynamodb?.Keys?.pk?.S === 'order#10')
      .at(-1);
    expect(unmarshall(modify?.dynamodb?.OldImage as never).status).toBe('QUARANTINED');
    expect(unmarshall(modify?.dynamodb?.NewImage as never).status).toBe('READY');

    // Already retried: not found, exit code 1.
    const twice = await f.cli(runQuarantineCommand, ['retry', aId], now);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toContain(`no quarantined record with id ${aId}`);

    // The relay-quarantined one is found by id in its P# shard.
    const relayRetry = await f.cli(runQuarantineCommand, ['retry', cId, '--json'], now);
    expect(relayRetry.code).toBe(0);
    expect(JSON.parse(relayRetry.stdout)).toMatchObject({ retried: 1 });
    const cItem = (
      await f.outbox.doc.send(
        new GetCommand({
          TableName: f.outbox.tableName,
          Key: { pk: 'order#13', sk: 'EVT#000000000001' },
          ConsistentRead: true,
        }),
      )
    ).Item;
    expect(cItem).toMatchObject({
      status: 'READY',
      attempts: 0,
      pendingShard: pendingShardOf(cId),
      pendingDueAt: now,
    });
    expect(cItem?.lastError).toBeUndefined();

    const all = await f.cli(runQuarantineCommand, ['retry', '--all', '--json', '--yes'], now);
    expect(all.code).toBe(0);
    const allResult = JSON.parse(all.stdout);
    expect(allResult.retried).toBe(2);
    expect(allResult.records.map((r: { newStatus: string }) => r.newStatus).sort()).toEqual([
      'PREPARED',
      'READY',
    ]);
    const pre = (
      await f.outbox.doc.send(
        new GetCommand({
          TableName: f.outbox.tableName,
          Key: { pk: 'order#12', sk: `PRE#${prepared.id}` },
          ConsistentRead: true,
        }),
      )
    ).Item;
    expect(pre).toMatchObject({
      status: 'PREPARED',
      attempts: 0,
      checkbackAttempts: 0,
      pendingShard: pendingShardOf(prepared.id),
    });

    const empty = await f.cli(runQuarantineCommand, ['list', '--json'], now);
    expect(JSON.parse(empty.stdout).records).toEqual([]);
  });
});

describe('outbox replay', () => {
  /** The replays run "now" = 2 minutes after T0: the window must lie within the retention, not in the future. */
  const NOW = T0 + 120_000;
  /** Commits events at given times; those in `published` are marked PUBLISHED. Returns envelopes by key. */
  async function seed(f: Fixture) {
    const committed: OutboxEnvelope[] = [];
    const commit = async (key: string, at: number, count: number, publish = true) => {
      const result = await f.writer(at).transact({
        aggregate: { key },
        events: Array.from({ length: count }, (_, i) => ({ type: `Step${i}`, data: { card: SECRET } })),
      });
      for (const e of result.events) {
        if (publish) await markPublished(f, key, `EVT#${String(e.sequence).padStart(12, '0')}`, at + 100);
        committed.push(e);
      }
      return result.events;
    };
    const before = await commit('order#20', T0 - 3_600_000, 1); // outside the window
    const inA1 = await commit('order#21', T0 + 1000, 2);
    const inB = await commit('order#22', T0 + 2000, 2);
    const inA2 = await commit('order#21', T0 + 3000, 1);
    const unpublished = await commit('order#23', T0 + 4000, 1, false); // in the window, but not published yet
    return { before, inWindow: [...inA1, ...inA2, ...inB], unpublished, committed };
  }

  it('re-sends the published events of the window straight to a subscription queue, in per-aggregate order', async () => {
    const f = await setup();
    const { inWindow, before, unpublished } = await seed(f);
    const window = ['--from', new Date(T0).toISOString(), '--to', new Date(T0 + 60_000).toISOString()];

    const dry = await f.cli(runReplayCommand, [...window, '--subscription', 'billing', '--dry-run'], NOW);
    expect(dry.stderr).not.toContain('error');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('5 published event(s) in the window');
    expect(dry.stdout).toMatch(
      /parallel Scan of the whole table in 4 segment\(s\) read \d+ item\(s\) in \d+ page\(s\), [\d.]+ read units/,
    );
    expect(dry.stdout).toContain(
      `dry run: nothing was sent (would send to subscription billing (queue ${f.billing.name})).`,
    );
    expect(dry.stdout).not.toContain(SECRET);
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(0);

    const result = await f.cli(
      runReplayCommand,
      [...window, '--subscription', 'billing', '--json', '--yes'],
      NOW,
    );
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.matched).toBe(5);
    expect(report.delivery).toMatchObject({ sent: 5, failed: [], skipped: [] });
    expect(report.delivery.targets).toEqual([
      { target: `sqs:${f.billing.name}`, accepted: 5, calls: expect.any(Number) },
    ]);
    expect(report.scannedCount).toBeGreaterThanOrEqual(7);

    const received = await drain(f.sqs, f.billing.queueUrl);
    const bodies = received.map((m) => m.Body as string);
    const envelopes = bodies.map((b) => JSON.parse(b) as OutboxEnvelope);
    expect(envelopes.map((e) => e.id).sort()).toEqual(inWindow.map((e) => e.id).sort());
    expect(envelopes.some((e) => e.id === before[0]?.id || e.id === unpublished[0]?.id)).toBe(false);
    expect(envelopes.filter((e) => e.partitionkey === 'order#21').map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(envelopes.filter((e) => e.partitionkey === 'order#22').map((e) => e.sequence)).toEqual([1, 2]);
    for (const m of received) {
      const envelope = JSON.parse(m.Body as string) as OutboxEnvelope;
      expect(m.Attributes?.MessageGroupId).toBe(envelope.partitionkey);
      expect(m.Attributes?.MessageDeduplicationId).toMatch(new RegExp(`^${envelope.id}\\.replay\\.\\d+$`));
      // The relay's message attributes, as an SNS raw delivery would carry them.
      expect(m.MessageAttributes?.type?.StringValue).toBe(envelope.type);
      expect(m.MessageAttributes?.sequence?.StringValue).toBe(String(envelope.sequence));
    }
    // The body is the stored envelope, byte for byte.
    const stored = (
      await f.outbox.doc.send(
        new GetCommand({ TableName: f.outbox.tableName, Key: { pk: 'order#22', sk: 'EVT#000000000001' } }),
      )
    ).Item;
    expect(bodies).toContain(stored?.envelope);

    // A rule-based (standard) subscription gets the envelope alone, as its EventBridge rule delivers it.
    const standard = await f.cli(
      runReplayCommand,
      [...window, '--subscription', 'notifications', '--yes'],
      NOW,
    );
    expect(standard.code).toBe(0);
    const plain = await drain(f.sqs, f.notifications.queueUrl);
    expect(plain.map((m) => m.Body).sort()).toEqual([...bodies].sort());
    expect(plain.every((m) => m.MessageAttributes === undefined)).toBe(true);

    // A second replay right away is not swallowed by the FIFO dedup window (fresh dedup ids per run).
    await new Promise((r) => setTimeout(r, 5));
    const again = await f.cli(
      runReplayCommand,
      [...window, '--subscription', 'billing', '--json', '--yes'],
      NOW,
    );
    expect(again.code).toBe(0);
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(5);
  });

  it('republishes to the SNS FIFO topic with --all-subscribers', async () => {
    const f = await setup({ topic: true });
    const { inWindow } = await seed(f);
    const result = await f.cli(
      runReplayCommand,
      [
        '--from',
        new Date(T0).toISOString(),
        '--to',
        new Date(T0 + 60_000).toISOString(),
        '--all-subscribers',
        '--yes',
      ],
      NOW,
    );
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`sent 5 of 5 to topic ${f.deployment.topicArn}`);
    const envelopes = (await drain(f.sqs, f.billing.queueUrl)).map(
      (m) => JSON.parse(m.Body as string) as OutboxEnvelope,
    );
    expect(envelopes.map((e) => e.id).sort()).toEqual(inWindow.map((e) => e.id).sort());
    expect(envelopes.filter((e) => e.partitionkey === 'order#21').map((e) => e.sequence)).toEqual([1, 2, 3]);
  });

  it('refuses --all-subscribers on a deployment without topic or bus (exit code 2)', async () => {
    const f = await setup();
    const result = await f.cli(
      runReplayCommand,
      [
        '--from',
        new Date(T0).toISOString(),
        '--to',
        new Date(T0 + 60_000).toISOString(),
        '--all-subscribers',
        '--yes',
      ],
      NOW,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('neither a topic nor a bus');
  });
});
