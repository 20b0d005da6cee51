/**
 * Guard rails of the destructive operator commands end to end, on DynamoDB Local and fauxqs: replay needs a
 * target choice, `--max` caps what is sent, `--rate` spaces the sends (counted sleeps on a fake clock, never the
 * wall clock), the Scan is streamed (sends happen before the Scan ends), and `dlq redrive` / `quarantine retry
 * --all` ask before acting.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import type { Deployment } from '../../bin/commands/deployment.ts';
import { runDlqCommand } from '../../bin/commands/dlq.ts';
import { runQuarantineCommand } from '../../bin/commands/quarantine.ts';
import { runReplayCommand } from '../../bin/commands/replay.ts';
import type { OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { OutboxStatus, quarantineShardOf } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { type CapturedIo, captureIo } from '../support/cli-io.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqsService } from '../support/services.ts';

const ddbEndpoint = useDynamoDbLocal();
const fauxqs = useFauxqsService();

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
/** "Now" for the commands: 2 minutes after T0, so the replay window lies within the retention. */
const NOW = T0 + 120_000;
const WINDOW = ['--from', new Date(T0).toISOString(), '--to', new Date(T0 + 60_000).toISOString()];
let counter = 0;

type Runner = (argv: readonly string[], io: CliIo) => Promise<number>;

type Session = CapturedIo;

/** Captured output, the fake clock at NOW (`onSleep` runs inside each sleep), and `answer` at the terminal. */
function session(options: { answer?: boolean; onSleep?: (ms: number) => Promise<void> } = {}): Session {
  return captureIo({ now: NOW, ...options });
}

interface Fixture {
  outbox: LocalOutbox;
  sqs: SQSClient;
  deployment: Deployment;
  billing: { queueUrl: string; dlqUrl: string; name: string; dlqName: string };
  cli: (runner: Runner, argv: readonly string[], s: Session) => Promise<number>;
}

/** A fresh table, a FIFO subscription `billing` (subscribed raw to a FIFO topic) and a deployment file. */
async function setup(): Promise<Fixture> {
  const n = `${process.pid}-g${++counter}`;
  const outbox = await createLocalOutboxTable(ddbEndpoint(), 'cli-guards');
  const sqs = new SQSClient(localAwsConfig(fauxqs().endpoint));
  const sns = new SNSClient(localAwsConfig(fauxqs().endpoint));
  const dlqName = `billing-dlq-${n}.fifo`;
  const dlqUrl = (
    await sqs.send(new CreateQueueCommand({ QueueName: dlqName, Attributes: { FifoQueue: 'true' } }))
  ).QueueUrl as string;
  const name = `billing-${n}.fifo`;
  const queueUrl = (
    await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true' } }))
  ).QueueUrl as string;
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  const topicArn = (
    await sns.send(new CreateTopicCommand({ Name: `outbox-${n}.fifo`, Attributes: { FifoTopic: 'true' } }))
  ).TopicArn as string;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: queueArn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  sns.destroy();
  const deployment: Deployment = {
    outboxTableName: outbox.tableName,
    subscriptions: [{ name: 'billing', queueUrl, deadLetterQueueUrl: dlqUrl, fifo: true }],
    topicArn,
    endpoints: { dynamodb: ddbEndpoint(), sqs: fauxqs().endpoint, sns: fauxqs().endpoint },
  };
  const file = join(mkdtempSync(join(tmpdir(), 'outbox-cli-guards-')), 'deployment.json');
  writeFileSync(file, JSON.stringify(deployment));
  return {
    outbox,
    sqs,
    deployment,
    billing: { queueUrl, dlqUrl, name, dlqName },
    cli: (runner, argv, s) => runner([...argv, '--deployment', file], s.io),
  };
}

/** Commits `count` events (one per aggregate) in the window and marks them PUBLISHED, as the relay does. */
async function seedPublished(f: Fixture, count: number): Promise<OutboxEnvelope[]> {
  const events: OutboxEnvelope[] = [];
  for (let i = 0; i < count; i++) {
    const at = T0 + 1000 * (i + 1);
    const writer = new OutboxWriter({
      tableName: f.outbox.tableName,
      source: '/orders',
      client: f.outbox.doc,
      now: () => at,
    });
    const result = await writer.transact({
      aggregate: { key: `order#${i}` },
      events: [{ type: 'OrderPlaced', data: { n: i } }],
    });
    for (const e of result.events) {
      await f.outbox.doc.send(
        new UpdateCommand({
          TableName: f.outbox.tableName,
          Key: { pk: `order#${i}`, sk: `EVT#${String(e.sequence).padStart(12, '0')}` },
          UpdateExpression: 'SET #status = :published, publishedAt = :at REMOVE pendingShard, pendingDueAt',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':published': OutboxStatus.Published, ':at': at + 100 },
        }),
      );
      events.push(e);
    }
  }
  return events;
}

async function drain(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const messages =
      (
        await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        )
      ).Messages ?? [];
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

async function readyCount(queueName: string): Promise<number> {
  return (await fauxqs().inspectQueue(queueName))?.messages.ready.length ?? 0;
}

describe('outbox replay guard rails', () => {
  it('refuses without --subscription or --all-subscribers (exit 2), before scanning or sending anything', async () => {
    const f = await setup();
    await seedPublished(f, 2);
    const s = session({ answer: true });
    const code = await f.cli(runReplayCommand, [...WINDOW, '--yes'], s);
    expect(s.err()).toContain('say where to send: --subscription <name>');
    expect(s.err()).toContain('or --all-subscribers to republish to the topic/bus');
    expect(code).toBe(2);
    expect(s.out()).toBe('');
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(0);
  });

  it('--all-subscribers republishes to the topic after the confirmation; --max caps what is sent and stops the Scan', async () => {
    const f = await setup();
    const seeded = await seedPublished(f, 5);
    const s = session({ answer: true });
    const code = await f.cli(runReplayCommand, [...WINDOW, '--all-subscribers', '--max', '3', '--json'], s);
    expect(s.questions).toEqual(['Proceed with replay to every subscriber (topic and bus)?']);
    expect(s.err()).toContain('at most: 3 event(s) (--max)');
    expect(code).toBe(0);
    const report = JSON.parse(s.out());
    expect(report).toMatchObject({
      matched: 3,
      stoppedAtMax: 3,
      delivery: { sent: 3, failed: [], skipped: [] },
    });
    const received = await drain(f.sqs, f.billing.queueUrl);
    expect(received).toHaveLength(3);
    const ids = new Set(seeded.map((e) => e.id));
    expect(received.every((m) => ids.has((JSON.parse(m.Body as string) as OutboxEnvelope).id))).toBe(true);
  });

  it('--rate spaces the sends: counted sleeps on a fake clock, 2 events per second', async () => {
    const f = await setup();
    await seedPublished(f, 5);
    const s = session();
    const code = await f.cli(
      runReplayCommand,
      [...WINDOW, '--subscription', 'billing', '--rate', '2', '--segments', '1', '--yes', '--json'],
      s,
    );
    expect(code).toBe(0);
    expect(JSON.parse(s.out()).delivery.sent).toBe(5);
    // Batches of at most 2 (the rate): events 1–2 at 0 s, 3–4 at 1 s, 5 at 2 s.
    expect(s.sleeps).toEqual([1000, 1000]);
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(5);
  });

  it('streams the Scan: events of the first pages are sent before the Scan has read the later pages', async () => {
    const f = await setup();
    await seedPublished(f, 4);
    const progress = () => (s.err().match(/^scan page \d+/gm) ?? []).length;
    const atSleeps: { pagesRead: number; sent: number }[] = [];
    const s: Session = session({
      onSleep: async () => {
        atSleeps.push({ pagesRead: progress(), sent: await readyCount(f.billing.name) });
      },
    });
    const code = await f.cli(
      runReplayCommand,
      [
        ...WINDOW,
        '--subscription',
        'billing',
        '--segments',
        '1',
        '--page-size',
        '1',
        '--rate',
        '1',
        '--yes',
        '--json',
      ],
      s,
    );
    expect(code).toBe(0);
    const report = JSON.parse(s.out());
    expect(report.delivery.sent).toBe(4);
    // One item per page: far more pages than events (the writer's other items are read too).
    expect(report.pages).toBeGreaterThan(4);
    expect(progress()).toBe(4);
    // Before sending the 2nd event, the 1st was already in the queue and only the pages up to the 2nd event had
    // been read: pages are processed as they arrive, not collected first.
    expect(atSleeps[0]).toEqual({ pagesRead: 2, sent: 1 });
    expect(atSleeps.map((a) => a.sent)).toEqual([1, 2, 3]);
    expect(atSleeps.map((a) => a.pagesRead)).toEqual([2, 3, 4]);
  });

  it('a dry run needs no confirmation and no --yes, and sends nothing', async () => {
    const f = await setup();
    await seedPublished(f, 3);
    const s = session();
    const code = await f.cli(
      runReplayCommand,
      [...WINDOW, '--subscription', 'billing', '--dry-run', '--max', '2'],
      s,
    );
    expect(code).toBe(0);
    expect(s.out()).toContain(
      '2 published event(s) in the window (stopped at --max 2: the window may hold more)',
    );
    expect(s.out()).toContain('dry run: nothing was sent');
    expect(await drain(f.sqs, f.billing.queueUrl)).toHaveLength(0);
  });
});

describe('outbox dlq redrive asks first', () => {
  it('no terminal without --yes: exit 2; "no": exit 1; both leave the DLQ as it was; "yes" moves them', async () => {
    const f = await setup();
    for (let i = 0; i < 3; i++) {
      await f.sqs.send(
        new SendMessageCommand({
          QueueUrl: f.billing.dlqUrl,
          MessageBody: JSON.stringify({ n: i }),
          MessageGroupId: `g${i}`,
          MessageDeduplicationId: `d${i}`,
        }),
      );
    }
    const script = session();
    expect(await f.cli(runDlqCommand, ['redrive', 'billing'], script)).toBe(2);
    expect(script.err()).toContain('pass --yes to confirm without a prompt');

    const no = session({ answer: false });
    expect(await f.cli(runDlqCommand, ['redrive', 'billing'], no)).toBe(1);
    expect(no.questions).toEqual(['Proceed with dlq redrive billing?']);
    expect(no.err()).toContain('in the DLQ: 3 message(s) now');
    expect(no.err()).toContain('not confirmed');
    expect(await readyCount(f.billing.dlqName)).toBe(3);
    expect(await readyCount(f.billing.name)).toBe(0);

    const yes = session({ answer: true });
    expect(await f.cli(runDlqCommand, ['redrive', 'billing', '--max', '2', '--json'], yes)).toBe(0);
    expect(JSON.parse(yes.out())).toMatchObject({ moved: 2, remaining: 1 });
    expect(await readyCount(f.billing.name)).toBe(2);
  });
});

describe('outbox quarantine retry --all asks first', () => {
  it('"no" leaves every record QUARANTINED; "yes" with --max 1 retries exactly one', async () => {
    const f = await setup();
    const writer = new OutboxWriter({
      tableName: f.outbox.tableName,
      source: '/orders',
      client: f.outbox.doc,
      now: () => T0,
    });
    const keys: string[] = [];
    for (const key of ['order#50', 'order#51']) {
      const { events } = await writer.transact({ aggregate: { key }, events: [{ type: 'T', data: {} }] });
      const id = events[0]?.id as string;
      await f.outbox.doc.send(
        new UpdateCommand({
          TableName: f.outbox.tableName,
          Key: { pk: key, sk: 'EVT#000000000001' },
          UpdateExpression:
            'SET #status = :q, attempts = :five, lastError = :reason, pendingShard = :shard, pendingDueAt = :at',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':q': OutboxStatus.Quarantined,
            ':five': 5,
            ':reason': 'AccessDenied',
            ':shard': quarantineShardOf(id),
            ':at': T0,
          },
        }),
      );
      keys.push(key);
    }
    const statuses = async () =>
      Promise.all(
        keys.map(
          async (pk) =>
            (
              await f.outbox.doc.send(
                new GetCommand({
                  TableName: f.outbox.tableName,
                  Key: { pk, sk: 'EVT#000000000001' },
                  ConsistentRead: true,
                }),
              )
            ).Item?.status,
        ),
      );

    const no = session({ answer: false });
    expect(await f.cli(runQuarantineCommand, ['retry', '--all'], no)).toBe(1);
    expect(no.questions).toEqual(['Proceed with quarantine retry --all?']);
    expect(no.err()).toContain('quarantined: 2 record(s) now (index count)');
    expect(await statuses()).toEqual(['QUARANTINED', 'QUARANTINED']);

    const yes = session({ answer: true });
    expect(await f.cli(runQuarantineCommand, ['retry', '--all', '--max', '1', '--json'], yes)).toBe(0);
    expect(JSON.parse(yes.out())).toMatchObject({ retried: 1, stoppedAtMax: 1 });
    expect((await statuses()).sort()).toEqual(['QUARANTINED', 'READY']);
  });
});
