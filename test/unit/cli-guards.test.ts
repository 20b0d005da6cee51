/**
 * Guard rails of the commands that send, move or change many items (`replay`, `dlq redrive`,
 * `quarantine retry --all`): argument validation, the confirmation prompt (accept, decline, no terminal) and the
 * `--max` / `--rate` limits, with mocked AWS clients, a fake clock and counted sleeps.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import { runDlqCommand } from '../../bin/commands/dlq.ts';
import { runQuarantineCommand } from '../../bin/commands/quarantine.ts';
import { runReplayCommand } from '../../bin/commands/replay.ts';
import { type CapturedIo, captureIo } from '../support/cli-io.ts';

const sqs = mockClient(SQSClient);
const ddb = mockClient(DynamoDBDocumentClient);
beforeEach(() => {
  sqs.reset();
  ddb.reset();
});

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const EVENT_ID = '01937f0e-8a4c-7b1e-9a33-5f1c2d3e4f50';

type Runner = (argv: readonly string[], io: CliIo) => Promise<number>;

/** Captured output, the fake clock at NOW, and (with `answer`) a terminal that answers the confirmation. */
function capture(answer?: boolean): CapturedIo {
  return captureIo({ now: NOW, ...(answer === undefined ? {} : { answer }) });
}

function deploymentFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-cli-guards-'));
  const file = join(dir, 'deployment.json');
  writeFileSync(
    file,
    JSON.stringify({
      outboxTableName: 'outbox',
      subscriptions: [
        {
          name: 'billing',
          queueUrl: 'http://127.0.0.1:1/000000000000/billing',
          deadLetterQueueUrl: 'http://127.0.0.1:1/000000000000/billing-dlq',
          fifo: false,
        },
      ],
      topicArn: 'arn:aws:sns:us-east-1:000000000000:outbox.fifo',
      endpoints: { dynamodb: 'http://127.0.0.1:1', sqs: 'http://127.0.0.1:1', sns: 'http://127.0.0.1:1' },
    }),
  );
  return file;
}

/** A deployment file that does not exist: reaching it is exit 1 "does not exist", so exit 2 proves an early refusal. */
function missingDeployment(): string[] {
  return ['--deployment', join(mkdtempSync(join(tmpdir(), 'outbox-cli-guards-')), 'missing.json')];
}

const window = ['--from', iso(NOW - HOUR), '--to', iso(NOW)];

describe('argument validation (exit 2, before any deployment is read)', () => {
  it.each([
    [runReplayCommand, [...window, '--yes'], 'say where to send: --subscription <name>'],
    [runReplayCommand, [...window, '--target', 'topic', '--yes'], 'add --all-subscribers'],
    [
      runReplayCommand,
      [...window, '--subscription', 'billing', '--all-subscribers', '--yes'],
      'either --subscription <name> (one queue) or --all-subscribers',
    ],
    [
      runReplayCommand,
      ['--from', '0001-01-01', '--to', '9999-12-31', '--subscription', 'billing', '--yes'],
      '--to 9999-12-31T00:00:00.000Z is more than 5 minutes in the future',
    ],
    [
      runReplayCommand,
      ['--from', '0001-01-01', '--to', iso(NOW), '--subscription', 'billing', '--yes'],
      `is before anything the outbox still holds: published records expire 7 day(s) after publishing (the relay's \`retention\`) and TTL deletes them within about 2 days. Use --from ${iso(NOW - 9 * DAY)} or later, or pass --retention-days <days>`,
    ],
    [
      runReplayCommand,
      [
        '--from',
        iso(NOW - 20 * DAY),
        '--to',
        iso(NOW),
        '--subscription',
        'b',
        '--retention-days',
        '14',
        '--yes',
      ],
      `Use --from ${iso(NOW - 16 * DAY)} or later`,
    ],
    [
      runReplayCommand,
      ['--from', iso(NOW), '--to', iso(NOW), '--subscription', 'billing', '--yes'],
      'must be earlier than --to',
    ],
    [
      runReplayCommand,
      [...window, '--subscription', 'billing', '--rate', '0', '--yes'],
      '--rate must be an integer from 1 to 1000, got "0"',
    ],
    [
      runReplayCommand,
      [...window, '--subscription', 'billing', '--rate', '5000', '--yes'],
      '--rate must be an integer from 1 to 1000',
    ],
    [
      runReplayCommand,
      [...window, '--subscription', 'billing', '--max', '0', '--yes'],
      '--max must be an integer from 1',
    ],
    [
      runReplayCommand,
      [...window, '--subscription', 'billing', '--page-size', 'x', '--yes'],
      '--page-size must be an integer',
    ],
    [runDlqCommand, ['redrive', 'billing', '--rate', '2.5', '--yes'], '--rate must be an integer'],
    [runQuarantineCommand, ['retry', EVENT_ID, '--max', '5'], '--max applies to --all'],
    [runQuarantineCommand, ['retry', '--all', '--max', '1.5', '--yes'], '--max must be an integer'],
  ])('%o %j → exit 2: %s', async (runner, argv, reason) => {
    const c = capture(true);
    const code = await (runner as Runner)([...(argv as string[]), ...missingDeployment()], c.io);
    expect(c.err()).toContain(reason);
    expect(code).toBe(2);
    expect(c.err()).not.toContain('does not exist');
    expect(c.questions).toEqual([]);
  });
});

describe('no terminal and no --yes: refuse with exit 2, never wait for an answer', () => {
  it.each([
    [runReplayCommand, [...window, '--subscription', 'billing'], 'replay to subscription billing'],
    [runReplayCommand, [...window, '--all-subscribers'], 'replay to every subscriber (topic and bus)'],
    [runDlqCommand, ['redrive', 'billing'], 'dlq redrive billing'],
    [runQuarantineCommand, ['retry', '--all'], 'quarantine retry --all'],
  ])('%o %j', async (runner, argv, action) => {
    const c = capture();
    const code = await (runner as Runner)([...(argv as string[]), ...missingDeployment()], c.io);
    expect(c.err()).toContain(`error: ${action} changes things and asks for a confirmation first`);
    expect(c.err()).toContain('stdin is not a terminal: pass --yes to confirm without a prompt');
    expect(code).toBe(2);
    expect(c.err()).not.toContain('does not exist');
  });
});

describe('dlq redrive: summary, confirmation, --max and --rate (mocked SQS)', () => {
  const body = (n: number) =>
    JSON.stringify({
      specversion: '1.0',
      id: `0193-${n}`,
      source: '/orders',
      type: 'T',
      time: iso(NOW),
      datacontenttype: 'application/json',
      partitionkey: `order#${n}`,
      sequence: 1,
      data: {},
    });
  let next = 0;
  beforeEach(() => {
    next = 0;
    sqs.on(GetQueueAttributesCommand).resolves({
      Attributes: { ApproximateNumberOfMessages: '30', ApproximateNumberOfMessagesNotVisible: '0' },
    });
    sqs.on(ReceiveMessageCommand).callsFake((input: { MaxNumberOfMessages: number }) => ({
      Messages: Array.from({ length: input.MaxNumberOfMessages }, () => {
        const n = ++next;
        return { MessageId: `m${n}`, ReceiptHandle: `rh-${n}`, Body: body(n) };
      }),
    }));
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e, i) => ({
        Id: e.Id,
        MessageId: `sent-${next}-${i}`,
        MD5OfMessageBody: 'x',
      })),
      Failed: [],
    }));
    sqs.on(DeleteMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id })),
      Failed: [],
    }));
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
  });

  it('shows what it will do and asks; "no" is exit 1 with nothing received, sent or deleted', async () => {
    const c = capture(false);
    const code = await runDlqCommand(
      ['redrive', 'billing', '--max', '5', '--deployment', deploymentFile()],
      c.io,
    );
    expect(c.questions).toEqual(['Proceed with dlq redrive billing?']);
    expect(c.err()).toContain('dlq redrive billing: move messages from billing-dlq back to billing');
    expect(c.err()).toContain('in the DLQ: 30 message(s) now');
    expect(c.err()).toContain('at most:    5 message(s) (--max 5)');
    expect(c.err()).toContain('rate:       50 message(s) per second (--rate)');
    expect(c.err()).toContain('not confirmed: dlq redrive billing did nothing');
    expect(code).toBe(1);
    expect(sqs.commandCalls(ReceiveMessageCommand)).toHaveLength(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(0);
    expect(c.out()).toBe('');
  });

  it('"yes" moves at most --max messages, in batches spaced by --rate on the fake clock', async () => {
    const c = capture(true);
    const code = await runDlqCommand(
      ['redrive', 'billing', '--max', '25', '--rate', '10', '--json', '--deployment', deploymentFile()],
      c.io,
    );
    expect(c.questions).toHaveLength(1);
    expect(code).toBe(0);
    expect(JSON.parse(c.out())).toMatchObject({ moved: 25, failed: 0 });
    expect(
      sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries?.length),
    ).toEqual([10, 10, 5]);
    // 10 per second: the 2nd batch starts 1 s after the 1st, the 3rd 1 s after that. No wall clock involved.
    expect(c.sleeps).toEqual([1000, 1000]);
  });

  it('--yes skips the question (and works without a terminal)', async () => {
    const c = capture();
    const code = await runDlqCommand(
      ['redrive', 'billing', '--max', '3', '--yes', '--deployment', deploymentFile()],
      c.io,
    );
    expect(code).toBe(0);
    expect(c.err()).toContain('at most:    3 message(s) (--max 3)');
    expect(c.out()).toContain('moved 3 message(s)');
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
  });
});

describe('quarantine retry --all: summary and confirmation (mocked DynamoDB)', () => {
  beforeEach(() => {
    ddb
      .on(QueryCommand)
      .callsFake((input: { Select?: string; ExpressionAttributeValues: { ':shard': string } }) => {
        const shard = input.ExpressionAttributeValues[':shard'];
        if (input.Select === 'COUNT') return { Count: shard === 'Q#0' ? 3 : 0 };
        if (shard !== 'Q#0') return { Items: [] };
        return {
          Items: [1, 2, 3].map((n) => ({
            pk: `order#${n}`,
            sk: 'EVT#000000000001',
            pendingShard: 'Q#0',
            pendingDueAt: NOW - n,
            id: `0193-${n}0`,
            status: 'QUARANTINED',
          })),
        };
      });
    ddb.on(UpdateCommand).resolves({});
  });

  it('"no" is exit 1 and no record is updated', async () => {
    const c = capture(false);
    const code = await runQuarantineCommand(['retry', '--all', '--deployment', deploymentFile()], c.io);
    expect(c.questions).toEqual(['Proceed with quarantine retry --all?']);
    expect(c.err()).toContain('quarantined: 3 record(s) now (index count)');
    expect(c.err()).toContain('at most:     3 record(s) (all; --max N retries fewer)');
    expect(c.err()).toContain('not confirmed: quarantine retry --all did nothing');
    expect(code).toBe(1);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    // Only the COUNT Queries ran: no entry was read.
    expect(ddb.commandCalls(QueryCommand).every((call) => call.args[0].input.Select === 'COUNT')).toBe(true);
  });

  it('"yes" retries at most --max records at --rate', async () => {
    const c = capture(true);
    const code = await runQuarantineCommand(
      ['retry', '--all', '--max', '2', '--rate', '1', '--json', '--deployment', deploymentFile()],
      c.io,
    );
    expect(code).toBe(0);
    expect(c.err()).toContain('at most:     2 record(s) (--max 2)');
    expect(JSON.parse(c.out())).toMatchObject({ retried: 2, stoppedAtMax: 2 });
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(2);
    expect(c.sleeps).toEqual([1000]);
  });
});

describe('replay: summary and confirmation (mocked DynamoDB)', () => {
  it('says what, where, how many at most, how fast and what the Scan costs; "no" is exit 1 and nothing is scanned', async () => {
    ddb.on(ScanCommand).resolves({ Items: [], ScannedCount: 0 });
    const c = capture(false);
    const code = await runReplayCommand(
      [...window, '--all-subscribers', '--max', '100', '--rate', '20', '--deployment', deploymentFile()],
      c.io,
    );
    expect(c.questions).toEqual(['Proceed with replay to every subscriber (topic and bus)?']);
    const summary = c.err();
    expect(summary).toContain(
      `replay: re-send the PUBLISHED events committed from ${iso(NOW - HOUR)} to ${iso(NOW)} (exclusive)`,
    );
    expect(summary).toContain(
      'to:      topic arn:aws:sns:us-east-1:000000000000:outbox.fifo — every subscriber receives them again',
    );
    expect(summary).toContain('at most: 100 event(s) (--max)');
    expect(summary).toContain('rate:    20 event(s) per second (--rate)');
    expect(summary).toContain('a parallel Scan of the WHOLE table in 4 segment(s)');
    expect(summary).toContain('the read units used are printed after');
    expect(code).toBe(1);
    expect(ddb.commandCalls(ScanCommand)).toHaveLength(0);
  });
});
