/**
 * Per-aggregate redrive end to end, on DynamoDB Local and fauxqs, with a real ordered consumer: event 2 of
 * aggregate A is poison until it is "fixed", so events 2 and 3 of A dead-letter (3 on its sequence gap) while
 * aggregate B flows. `dlq list` groups the DLQ by aggregate; after the fix, `dlq redrive --aggregate A` moves A's
 * messages back in sequence order and leaves B's in the DLQ; the consumer then applies A 1, 2, 3 exactly once.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import { runDlqCommand } from '../../bin/commands/dlq.ts';
import {
  CountingMetrics,
  createConsumer,
  type IdempotentConsumer,
  POISON_REASON_ATTRIBUTE,
  pollOnce,
} from '../../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqsService } from '../support/services.ts';

const ddbEndpoint = useDynamoDbLocal();
const fauxqs = useFauxqsService();
const silent = { info: () => {}, warn: () => {}, error: () => {} };
let counter = 0;

let raw: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let sqs: SQSClient;

beforeAll(() => {
  raw = new DynamoDBClient({ ...localAwsConfig(ddbEndpoint()), maxAttempts: 1 });
  doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  sqs = new SQSClient(localAwsConfig(fauxqs().endpoint));
});

async function createTable(prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${++counter}`;
  await raw.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  return name;
}

async function createQueue(name: string, deadLetterArn?: string): Promise<{ url: string; arn: string }> {
  const attributes: Record<string, string> = { FifoQueue: 'true' };
  if (deadLetterArn) {
    attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: '1' });
  }
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
    .QueueUrl as string;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
    .Attributes?.QueueArn as string;
  return { url, arn };
}

function event(aggregate: string, sequence: number): OutboxEnvelope {
  return buildEnvelope(
    { type: 'com.example.orders.OrderChanged', source: '/orders', data: { aggregate, sequence } },
    { partitionKey: aggregate, sequence },
  ).envelope;
}

/** Output capture, a fake clock, and a terminal answering `answer` (absent: no terminal). */
function cliSession(answer?: boolean): {
  io: CliIo;
  out: () => string;
  err: () => string;
  questions: string[];
} {
  const questions: string[] = [];
  let out = '';
  let err = '';
  let t = Date.UTC(2026, 10, 30, 5, 0, 0);
  return {
    io: {
      stdout: (s) => {
        out += s;
      },
      stderr: (s) => {
        err += s;
      },
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
      ...(answer === undefined
        ? {}
        : {
            confirm: async (question: string) => {
              questions.push(question);
              return answer;
            },
          }),
    },
    out: () => out,
    err: () => err,
    questions,
  };
}

interface Fixture {
  consumer: IdempotentConsumer;
  queue: { url: string; arn: string };
  dlq: { url: string; arn: string; name: string };
  fix: () => void;
  /** The sequences applied to `aggregate`, in the order the consumer applied them. */
  applied: (aggregate: string) => Promise<number[]>;
  /** Polls until the queue has nothing visible or in flight (failed messages come back at once). */
  drainWithConsumer: () => Promise<void>;
  cli: (
    argv: readonly string[],
    answer?: boolean,
  ) => Promise<{ code: number; stdout: string; stderr: string; questions: string[] }>;
}

async function setup(): Promise<Fixture> {
  const n = `${process.pid}-a${++counter}`;
  const dedupTable = await createTable('dedup');
  const effectsTable = await createTable('effects');
  const dlqName = `projection-dlq-${n}.fifo`;
  const dlq = { ...(await createQueue(dlqName)), name: dlqName };
  const queue = await createQueue(`projection-${n}.fifo`, dlq.arn);
  let fixed = false;
  const consumer = createConsumer({
    name: 'projection',
    tableName: dedupTable,
    client: doc,
    metrics: new CountingMetrics(),
    logger: silent,
    mode: 'ordered',
    deadLetterQueueUrl: dlq.url,
    handle: (e) => {
      if (e.partitionkey === 'A' && e.sequence === 2 && !fixed) throw new Error('A#2 cannot be applied yet');
      return [
        {
          Update: {
            TableName: effectsTable,
            Key: { pk: e.partitionkey },
            UpdateExpression: 'SET applied = list_append(if_not_exists(applied, :empty), :seq)',
            ExpressionAttributeValues: { ':empty': [], ':seq': [e.sequence] },
          },
        },
      ];
    },
  });
  const deployment = {
    outboxTableName: 'unused',
    subscriptions: [{ name: 'projection', queueUrl: queue.url, deadLetterQueueUrl: dlq.url, fifo: true }],
    endpoints: { dynamodb: ddbEndpoint(), sqs: fauxqs().endpoint, sns: fauxqs().endpoint },
  };
  const file = join(mkdtempSync(join(tmpdir(), 'outbox-cli-dlq-aggregate-')), 'deployment.json');
  writeFileSync(file, JSON.stringify(deployment));
  const queueName = queue.url.slice(queue.url.lastIndexOf('/') + 1);
  return {
    consumer,
    queue,
    dlq,
    fix: () => {
      fixed = true;
    },
    applied: async (aggregate) =>
      (
        await doc.send(
          new GetCommand({ TableName: effectsTable, Key: { pk: aggregate }, ConsistentRead: true }),
        )
      ).Item?.applied ?? [],
    drainWithConsumer: async () => {
      for (let i = 0; i < 50; i++) {
        const polled = await pollOnce({
          sqs,
          queueUrl: queue.url,
          handler: consumer.handler,
          visibilityTimeout: 0,
        });
        if (polled.received > 0) continue;
        const state = await fauxqs().inspectQueue(queueName);
        if ((state?.messages.ready.length ?? 0) + (state?.messages.inflight.length ?? 0) === 0) return;
      }
      throw new Error('the queue did not drain');
    },
    cli: async (argv, answer) => {
      const s = cliSession(answer);
      const code = await runDlqCommand([...argv, '--deployment', file], s.io);
      return { code, stdout: s.out(), stderr: s.err(), questions: s.questions };
    },
  };
}

async function send(url: string, e: OutboxEnvelope, attributes?: Record<string, string>): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: url,
      MessageBody: JSON.stringify(e),
      MessageGroupId: e.partitionkey,
      MessageDeduplicationId: e.id,
      ...(attributes
        ? {
            MessageAttributes: Object.fromEntries(
              Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
            ),
          }
        : {}),
    }),
  );
}

describe('ordered subscription: fix, then redrive the aggregate from its first failed event', () => {
  it('dlq list groups by aggregate; redrive --aggregate A applies A 1, 2, 3 in order once and leaves B in the DLQ', async () => {
    const f = await setup();
    const a = [1, 2, 3].map((s) => event('A', s));
    const b = [1, 2].map((s) => event('B', s));
    for (const e of [a[0], b[0], a[1], b[1], a[2]]) await send(f.queue.url, e as OutboxEnvelope);

    await f.drainWithConsumer();
    expect(await f.applied('A')).toEqual([1]);
    expect(await f.applied('B')).toEqual([1, 2]);
    const dlqState = await fauxqs().inspectQueue(f.dlq.name);
    expect(dlqState?.messages.ready).toHaveLength(2);

    // B has a dead-lettered message too (a poison reason set by the consumer library).
    const b3 = event('B', 3);
    await send(f.dlq.url, b3, { [POISON_REASON_ATTRIBUTE]: 'B#3 is not valid' });

    const listed = await f.cli(['list', 'projection', '--json']);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.stdout);
    expect(list.depth).toBe(3);
    const byKey = new Map(list.aggregates.map((g: { aggregate: string }) => [g.aggregate, g]));
    expect(byKey.get('A')).toMatchObject({ aggregate: 'A', firstSequence: 2, firstEventId: a[1]?.id });
    expect((byKey.get('A') as { count: number }).count).toBeGreaterThanOrEqual(1);
    expect((byKey.get('A') as { error: string }).error).toMatch(/^received \d+ time\(s\)$/);
    expect(byKey.get('B')).toEqual({
      aggregate: 'B',
      count: 1,
      firstSequence: 3,
      firstMessageId: expect.any(String),
      firstEventId: b3.id,
      error: 'B#3 is not valid',
    });
    const text = await f.cli(['list', 'projection']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/aggregate\s+messages\s+first failed seq\s+error of the first/);
    expect(text.stdout).toMatch(/B\s+1\s+3\s+B#3 is not valid/);

    f.fix();
    const redriven = await f.cli(['redrive', 'projection', '--aggregate', 'A', '--yes', '--json']);
    expect(redriven.stderr).toContain('move the messages of aggregate A (and only those)');
    expect(redriven.stderr).not.toContain('error');
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.stdout)).toMatchObject({
      aggregate: 'A',
      moved: 2,
      sequences: [2, 3],
      skipped: 1,
      failed: 0,
      sentNotDeleted: 0,
      returned: 0,
      notReset: 0,
      remaining: 1,
    });
    // B's message stays in the DLQ, visible again at once.
    const afterRedrive = await fauxqs().inspectQueue(f.dlq.name);
    expect(afterRedrive?.messages.ready).toHaveLength(1);
    expect(afterRedrive?.messages.inflight).toHaveLength(0);
    expect(JSON.parse(afterRedrive?.messages.ready[0]?.body ?? '{}').id).toBe(b3.id);

    await f.drainWithConsumer();
    expect(await f.applied('A')).toEqual([1, 2, 3]);
    expect(await f.applied('B')).toEqual([1, 2]);

    // Nothing of A left: a re-run moves nothing, and nothing is applied twice.
    const again = await f.cli(['redrive', 'projection', '--aggregate', 'A', '--yes', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ moved: 0, skipped: 1, remaining: 1 });
    await f.drainWithConsumer();
    expect(await f.applied('A')).toEqual([1, 2, 3]);
    expect((await fauxqs().inspectQueue(f.dlq.name))?.messages.ready).toHaveLength(1);
  });

  it('asks first: the summary names the aggregate; no terminal without --yes and "no" leave the DLQ as it was', async () => {
    const f = await setup();
    await send(f.dlq.url, event('A', 2));
    await send(f.dlq.url, event('B', 1));

    const refused = await f.cli(['redrive', 'projection', '--aggregate', 'A']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');

    const no = await f.cli(['redrive', 'projection', '--aggregate', 'A', '--max', '1'], false);
    expect(no.code).toBe(1);
    expect(no.questions).toEqual(['Proceed with dlq redrive projection --aggregate A?']);
    expect(no.stderr).toContain('move the messages of aggregate A (and only those)');
    expect(no.stderr).toContain('the others stay there');
    expect(no.stderr).toContain('1 message(s) of A (--max 1)');
    const state = await fauxqs().inspectQueue(f.dlq.name);
    expect(state?.messages.ready).toHaveLength(2);
    expect(state?.messages.inflight).toHaveLength(0);
  });
});
