/**
 * Operator CLI: argument parsing, exit codes, deployment discovery, formatting, and the AWS-only paths
 * (CloudFormation outputs, CloudWatch ages, partial failures) with mocked clients.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type CliIo,
  DeploymentNotFoundError,
  formatDuration,
  formatTable,
  truncate,
} from '../../bin/commands/cli-support.ts';
import { createClients } from '../../bin/commands/clients.ts';
import {
  type Deployment,
  deploymentFromOutputs,
  findSubscription,
  kebabCase,
  parseDeployment,
  pascalCase,
  resolveDeployment,
} from '../../bin/commands/deployment.ts';
import {
  describeBody,
  redriveDeduplicationId,
  redriveDlq,
  redriveEntry,
  runDlqCommand,
  sendBatches,
} from '../../bin/commands/dlq.ts';
import {
  deliver,
  replayDeduplicationId,
  type StoredEvent,
  sqsStandardPublisher,
} from '../../bin/commands/publish.ts';
import { runQuarantineCommand } from '../../bin/commands/quarantine.ts';
import { runReplayCommand } from '../../bin/commands/replay.ts';
import { oldestMessageAges, runStatusCommand, summarizeUnpublished } from '../../bin/commands/status.ts';
import { captureIo as capture } from '../support/cli-io.ts';

const SECRET = 'do-not-print-me';

// One mock per client class for the whole file (mocking a class twice makes the mocks fight).
const sqs = mockClient(SQSClient);
const cfn = mockClient(CloudFormationClient);
const cw = mockClient(CloudWatchClient);
beforeEach(() => {
  sqs.reset();
  cfn.reset();
  cw.reset();
});

const envelope = {
  specversion: '1.0',
  id: '01937f0e-8a4c-7b1e-9a33-5f1c2d3e4f50',
  source: '/orders',
  type: 'com.example.orders.OrderPlaced',
  time: '2026-11-22T16:00:00.000Z',
  datacontenttype: 'application/json',
  partitionkey: 'order#1001',
  sequence: 3,
  data: { secret: SECRET },
};

describe('argument parsing and exit codes', () => {
  it.each([
    [runStatusCommand, ['--bogus'], "Unknown option '--bogus'"],
    [runStatusCommand, ['extra'], 'unexpected argument "extra"'],
    [runStatusCommand, ['--local', '--deployment', 'x.json'], 'either --local or --deployment'],
    [runStatusCommand, ['--local', '--stack', 'S'], '--stack reads a deployed CloudFormation stack'],
    [runDlqCommand, ['list'], 'missing <subscription>'],
    [runDlqCommand, ['list', 'billing', '--max', '0'], '--max must be an integer from 1 to 1000'],
    [runDlqCommand, ['purge', 'billing'], 'unknown subcommand "purge"'],
    [runDlqCommand, [], 'missing subcommand'],
    [runQuarantineCommand, ['retry'], 'give either one event <id> or --all'],
    [
      runQuarantineCommand,
      ['retry', '01937f0e-8a4c-7b1e-9a33-5f1c2d3e4f50', '--all'],
      'give either one event <id> or --all',
    ],
    [runQuarantineCommand, ['retry', 'order#1'], 'is not an event id'],
    [runReplayCommand, ['--from', '2026-11-22T00:00:00Z'], '--from and --to are required'],
    [runReplayCommand, ['--from', 'yesterday', '--to', '2026-11-22T00:00:00Z'], 'must be an ISO-8601 time'],
    [
      runReplayCommand,
      ['--from', '2026-11-22T01:00:00Z', '--to', '2026-11-22T00:00:00Z'],
      'earlier than --to',
    ],
    [
      runReplayCommand,
      ['--from', '2026-11-22T00:00:00Z', '--to', '2026-11-23T00:00:00Z', '--target', 'queue'],
      '--target must be "topic" or "bus"',
    ],
    [
      runReplayCommand,
      [
        '--from',
        '2026-11-22T00:00:00Z',
        '--to',
        '2026-11-23T00:00:00Z',
        '--target',
        'bus',
        '--subscription',
        'x',
      ],
      'either --subscription',
    ],
  ])('%o %j → exit 2 with the reason and the usage', async (runner, argv, reason) => {
    const c = capture();
    const code = await (runner as (a: string[], io: CliIo) => Promise<number>)(argv as string[], c.io);
    expect(code).toBe(2);
    expect(c.err()).toContain(reason);
    expect(c.err()).toContain('usage: outbox ');
    expect(c.out()).toBe('');
  });

  it('--help prints the usage with exit code 0, before touching any deployment', async () => {
    const c = capture();
    expect(await runReplayCommand(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain('usage: outbox replay --from <ISO time> --to <ISO time>');
    expect(c.out()).toContain('--deployment <file>');
    const d = capture();
    expect(await runDlqCommand(['--help'], d.io)).toBe(0);
    expect(d.out()).toContain('outbox dlq redrive <subscription>');
  });

  it('an operational failure (no offline runtime) is exit code 1 with what to do', async () => {
    const c = capture();
    const dir = mkdtempSync(join(tmpdir(), 'outbox-cli-unit-'));
    const code = await runStatusCommand(['--deployment', join(dir, 'missing.json')], c.io);
    expect(code).toBe(1);
    expect(c.err()).toContain('does not exist');
  });
});

describe('deployment discovery', () => {
  const outputs = [
    { OutputKey: 'OutboxTableName', OutputValue: 'outbox-table' },
    { OutputKey: 'OutboxTopicArn', OutputValue: 'arn:aws:sns:eu-west-1:123456789012:outbox.fifo' },
    { OutputKey: 'OutboxBusName', OutputValue: 'outbox-bus' },
    {
      OutputKey: 'RelayFailureQueueUrl',
      OutputValue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/relay-failures',
    },
    { OutputKey: 'SubBillingQueueUrl', OutputValue: 'https://sqs/123/billing.fifo' },
    { OutputKey: 'SubBillingDlqUrl', OutputValue: 'https://sqs/123/billing-dlq.fifo' },
    { OutputKey: 'SubOrderHistoryQueueUrl', OutputValue: 'https://sqs/123/order-history' },
    { OutputKey: 'SubOrderHistoryDlqUrl', OutputValue: 'https://sqs/123/order-history-dlq' },
    { OutputKey: 'SomethingElse', OutputValue: 'ignored' },
  ];

  it('reads the stack outputs by convention, subscriptions generically', async () => {
    cfn.on(DescribeStacksCommand, { StackName: 'Prod' }).resolves({
      Stacks: [
        { StackName: 'Prod', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: outputs },
      ],
    });
    const deployment = await resolveDeployment({ stack: 'Prod', region: 'eu-west-1' });
    expect(deployment).toEqual({
      outboxTableName: 'outbox-table',
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:outbox.fifo',
      busName: 'outbox-bus',
      relayFailureQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/relay-failures',
      subscriptions: [
        {
          name: 'billing',
          queueUrl: 'https://sqs/123/billing.fifo',
          deadLetterQueueUrl: 'https://sqs/123/billing-dlq.fifo',
          fifo: true,
        },
        {
          name: 'order-history',
          queueUrl: 'https://sqs/123/order-history',
          deadLetterQueueUrl: 'https://sqs/123/order-history-dlq',
          fifo: false,
        },
      ],
    });
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(1);
  });

  it('defaults to the ServerlessOutbox stack and explains a missing stack', async () => {
    const error = Object.assign(new Error('Stack with id ServerlessOutbox does not exist'), {
      name: 'ValidationError',
    });
    cfn.on(DescribeStacksCommand, { StackName: 'ServerlessOutbox' }).rejects(error);
    const failure = await resolveDeployment({ region: 'eu-west-1' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(DeploymentNotFoundError);
    expect((failure as Error).message).toContain('stack ServerlessOutbox was not found in eu-west-1');
    expect((failure as Error).message).toContain('--local');
  });

  it('refuses a stack without OutboxTableName and a subscription missing its DLQ output', () => {
    expect(() => deploymentFromOutputs([{ OutputKey: 'SubBillingQueueUrl', OutputValue: 'u' }], 'S')).toThrow(
      /no OutboxTableName output/,
    );
    expect(() =>
      deploymentFromOutputs([
        { OutputKey: 'OutboxTableName', OutputValue: 't' },
        { OutputKey: 'SubBillingQueueUrl', OutputValue: 'u' },
      ]),
    ).toThrow(/output SubBillingDlqUrl is missing/);
  });

  it('--local reads .local-runs/deployment.json, and says how to start the runtime when it is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-local-'));
    const missing = await resolveDeployment({ local: true, cwd: dir }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DeploymentNotFoundError);
    expect((missing as Error).message).toContain(
      'start the offline runtime with `npm start -- --serve` first',
    );

    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, '.local-runs'));
    writeFileSync(
      join(dir, '.local-runs', 'deployment.json'),
      JSON.stringify({
        outboxTableName: 'outbox',
        subscriptions: [
          {
            name: 'billing',
            queueUrl: 'http://127.0.0.1:1/000/billing.fifo',
            deadLetterQueueUrl: 'http://127.0.0.1:1/000/billing-dlq.fifo',
          },
        ],
        endpoints: { dynamodb: 'http://127.0.0.1:8000', sqs: 'http://127.0.0.1:1' },
      }),
    );
    const local = await resolveDeployment({ local: true, cwd: dir });
    expect(local.subscriptions[0]?.fifo).toBe(true);
    expect(local.endpoints).toEqual({ dynamodb: 'http://127.0.0.1:8000', sqs: 'http://127.0.0.1:1' });
  });

  it('validates a deployment file field by field', () => {
    expect(() => parseDeployment({ subscriptions: [] }, 'f.json')).toThrow(
      /f.json: outboxTableName must be a non-empty string/,
    );
    expect(() => parseDeployment({ outboxTableName: 't' })).toThrow(/subscriptions must be an array/);
    expect(() =>
      parseDeployment({ outboxTableName: 't', subscriptions: [{ name: 'a', queueUrl: 'q' }] }),
    ).toThrow(/subscriptions\[0\].deadLetterQueueUrl/);
    expect(() =>
      parseDeployment({
        outboxTableName: 't',
        subscriptions: [
          { name: 'order-history', queueUrl: 'q', deadLetterQueueUrl: 'd' },
          { name: 'OrderHistory', queueUrl: 'q', deadLetterQueueUrl: 'd' },
        ],
      }),
    ).toThrow(/repeats "OrderHistory"/);
    expect(() =>
      parseDeployment({ outboxTableName: 't', subscriptions: [], endpoints: { sqs: 'localhost:1' } }),
    ).toThrow(/endpoints.sqs must be an http\(s\) URL/);
  });

  it('names: PascalCase outputs ↔ kebab-case subscriptions; lookups ignore case and separators', () => {
    expect(kebabCase('OrderHistory')).toBe('order-history');
    expect(kebabCase('Billing')).toBe('billing');
    expect(kebabCase('SmsV2')).toBe('sms-v2');
    expect(pascalCase('order-history')).toBe('OrderHistory');
    const deployment = deploymentFromOutputs([
      { OutputKey: 'OutboxTableName', OutputValue: 't' },
      { OutputKey: 'SubOrderHistoryQueueUrl', OutputValue: 'q' },
      { OutputKey: 'SubOrderHistoryDlqUrl', OutputValue: 'd' },
    ]);
    expect(findSubscription(deployment, 'OrderHistory').name).toBe('order-history');
    expect(findSubscription(deployment, 'order_history').queueUrl).toBe('q');
    expect(() => findSubscription(deployment, 'billing')).toThrow(/known: order-history/);
  });

  it('local endpoints get dummy credentials in us-east-1; AWS gets the default chain and --region', async () => {
    const local = createClients({
      endpoints: { sqs: 'http://127.0.0.1:4566', dynamodb: 'http://127.0.0.1:8000' },
    });
    expect(local.local).toBe(true);
    expect(await local.sqs.config.region()).toBe('us-east-1');
    expect((await local.sqs.config.credentials()).accessKeyId).toBe('local');
    const endpoint = await local.sqs.config.endpoint?.();
    expect(endpoint?.hostname).toBe('127.0.0.1');
    expect(endpoint?.port).toBe(4566);
    local.destroy();
    const aws = createClients({}, { region: 'eu-west-1' });
    expect(aws.local).toBe(false);
    expect(await aws.sqs.config.region()).toBe('eu-west-1');
    aws.destroy();
  });
});

describe('formatting', () => {
  it('durations', () => {
    expect(formatDuration(undefined)).toBe('-');
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_400)).toBe('12s');
    expect(formatDuration(187_000)).toBe('3m 07s');
    expect(formatDuration(3_725_000)).toBe('1h 02m');
    expect(formatDuration(2 * 86_400_000 + 3_600_000)).toBe('2d 01h');
    expect(formatDuration(-5000)).toBe('in 5s');
  });

  it('tables right-align numeric columns', () => {
    expect(
      formatTable(
        ['name', 'n'],
        [
          ['billing', 12],
          ['notifications', '-'],
        ],
      ),
    ).toBe('name            n\n-------------  --\nbilling        12\nnotifications   -\n');
    expect(truncate('a\nlong   text here', 9)).toBe('a long t…');
  });

  it('message bodies: raw envelope, SNS notification, EventBridge event, anything else — never the data', () => {
    const raw = describeBody(JSON.stringify(envelope));
    expect(raw).toMatchObject({
      format: 'envelope',
      eventId: envelope.id,
      type: envelope.type,
      partitionkey: 'order#1001',
      sequence: 3,
    });
    expect(JSON.stringify(raw)).not.toContain(SECRET);
    const sns = describeBody(
      JSON.stringify({ Type: 'Notification', MessageId: 'm', Message: JSON.stringify(envelope) }),
    );
    expect(sns).toMatchObject({ format: 'sns-notification', eventId: envelope.id });
    const eb = describeBody(
      JSON.stringify({ version: '0', 'detail-type': envelope.type, source: '/orders', detail: envelope }),
    );
    expect(eb).toMatchObject({ format: 'eventbridge-event', sequence: 3 });
    expect(describeBody('not json')).toEqual({ format: 'unrecognised', bodyBytes: 8 });
    expect(describeBody(JSON.stringify({ hello: 'world' })).format).toBe('unrecognised');
  });
});

describe('status', () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);
  it('oldest unpublished: by time since due (pendingDueAt), as the sweeper measures it; records due later do not count', () => {
    const summary = summarizeUnpublished(
      [
        {
          pk: 'a',
          sk: 'EVT#1',
          pendingShard: 'P#1',
          id: 'x1',
          status: 'SCHEDULED',
          pendingDueAt: now + 60_000,
          createdAt: now - 900_000,
        },
        {
          pk: 'b',
          sk: 'EVT#1',
          pendingShard: 'P#2',
          id: 'x2',
          status: 'READY',
          // Released or retried 5 minutes ago; committed long before: its age counts from when it became due.
          pendingDueAt: now - 300_000,
          createdAt: now - 3_600_000,
        },
        {
          pk: 'c',
          sk: 'EVT#1',
          pendingShard: 'P#3',
          id: 'x3',
          status: 'SCHEDULED',
          pendingDueAt: now - 10_000,
          createdAt: now - 800_000,
        },
      ],
      now,
    );
    // The READY record has been due for 5 minutes (not the hour since its commit); x1 is not due yet.
    expect(summary).toEqual({
      count: 3,
      byStatus: { SCHEDULED: 2, READY: 1 },
      oldestAgeMs: 300_000,
      oldest: { aggregateKey: 'b', id: 'x2', status: 'READY' },
    });
    expect(summarizeUnpublished([], now)).toEqual({ count: 0, byStatus: {}, oldestAgeMs: null });
  });

  it('does not count pending delivery acknowledgements as unpublished events', () => {
    const now = 1_000_000;
    const ack = {
      pk: 'ACK#e1',
      sk: 'billing',
      pendingShard: 'P#1',
      pendingDueAt: now - 1,
      status: 'PENDING',
      createdAt: 0,
    };
    expect(summarizeUnpublished([ack], now)).toEqual({ count: 0, byStatus: {}, oldestAgeMs: null });
  });

  it('against AWS, queue ages come from CloudWatch ApproximateAgeOfOldestMessage (latest datapoint)', async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'q0', Values: [42, 40], Timestamps: [new Date(now - 60_000), new Date(now - 120_000)] },
        { Id: 'q1', Values: [] },
      ],
    });
    const clients = createClients({}, { region: 'eu-west-1' });
    const deployment: Deployment = { outboxTableName: 't', subscriptions: [] };
    const ages = await oldestMessageAges(
      clients,
      deployment,
      ['https://sqs/1/billing.fifo', 'https://sqs/1/billing-dlq.fifo'],
      now,
    );
    expect(ages.source).toBe('cloudwatch');
    expect([...ages.ages]).toEqual([['https://sqs/1/billing.fifo', 42_000]]);
    const input = cw.commandCalls(GetMetricDataCommand)[0]?.args[0].input;
    expect(input?.MetricDataQueries?.[0]?.MetricStat?.Metric).toEqual({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: 'billing.fifo' }],
    });
    expect(input?.StartTime?.getTime()).toBe(now - 15 * 60_000);
    clients.destroy();
  });
});

describe('dlq redrive (mocked SQS)', () => {
  const subscription = {
    name: 'billing',
    queueUrl: 'https://sqs/1/billing.fifo',
    deadLetterQueueUrl: 'https://sqs/1/billing-dlq.fifo',
    fifo: true,
  };
  const message = (id: string, group: string) => ({
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: JSON.stringify({ ...envelope, id: `0193-${id}`, partitionkey: group }),
    Attributes: { MessageGroupId: group, ApproximateReceiveCount: '4', SentTimestamp: '1795363200000' },
    MessageAttributes: {
      type: { DataType: 'String', StringValue: 'OrderPlaced', StringListValues: [], BinaryListValues: [] },
    },
  });
  beforeEach(() => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '0' } });
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
    sqs.on(DeleteMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id })),
      Failed: [],
    }));
  });

  it('keeps the group, uses a fresh dedup id from the message id, and copies message attributes', () => {
    const entry = redriveEntry(message('m1', 'order#1'), 0, true);
    expect(entry).toEqual({
      Id: '0',
      MessageBody: message('m1', 'order#1').Body,
      MessageAttributes: { type: { DataType: 'String', StringValue: 'OrderPlaced' } },
      MessageGroupId: 'order#1',
      MessageDeduplicationId: 'redrive.m1',
    });
    expect(redriveDeduplicationId('m1')).toBe('redrive.m1');
    const standard = redriveEntry(message('m2', 'order#2'), 1, false);
    expect(standard.MessageGroupId).toBeUndefined();
    expect(standard.MessageDeduplicationId).toBeUndefined();
  });

  it('splits send batches at 10 entries and 256 KiB', () => {
    const small = Array.from({ length: 23 }, (_, i) => ({ MessageId: String(i), Body: 'x' }));
    expect(sendBatches(small).map((b) => b.length)).toEqual([10, 10, 3]);
    const big = Array.from({ length: 3 }, (_, i) => ({ MessageId: String(i), Body: 'x'.repeat(100_000) }));
    expect(sendBatches(big).map((b) => b.length)).toEqual([2, 1]);
  });

  it('stops at a failed send: the failed message stays in the DLQ (made visible again), exit code 1', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1', 'order#1'), message('m2', 'order#2')] })
      .resolves({ Messages: [] });
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [{ Id: '0', MessageId: 'n1', MD5OfMessageBody: 'x' }],
      Failed: [{ Id: '1', Code: 'KMS.ThrottlingException', SenderFault: false, Message: 'slow down' }],
    });
    const clients = createClients({}, { region: 'eu-west-1' });
    const result = await redriveDlq(clients, subscription);
    expect(result).toMatchObject({ moved: 1, failed: 1, returned: 0, sentNotDeleted: 0 });
    expect(result.errors.join()).toContain('KMS.ThrottlingException');
    expect(sqs.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-m1' },
    ]);
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand)[0]?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-m2', VisibilityTimeout: 0 },
    ]);
    // Stopped: no second receive after the failure.
    expect(sqs.commandCalls(ReceiveMessageCommand)).toHaveLength(1);
    clients.destroy();
  });

  it('stops when a message it moved comes back to the DLQ (the consumer still fails it)', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m1', 'order#1')] })
      .resolvesOnce({ Messages: [message('n1', 'order#1')] })
      .resolves({ Messages: [] });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'n1', MD5OfMessageBody: 'x' }] });
    const clients = createClients({}, { region: 'eu-west-1' });
    const result = await redriveDlq(clients, subscription);
    expect(result).toMatchObject({ moved: 1, returned: 1, failed: 0 });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand).at(-1)?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-n1', VisibilityTimeout: 0 },
    ]);
    clients.destroy();
  });
});

describe('replay publishing (mocked SQS, through the relay publishers)', () => {
  const event = (key: string, sequence: number): StoredEvent => {
    const id = `0193${key}${sequence}`;
    return {
      aggregateKey: key,
      sk: `EVT#${sequence}`,
      sequence,
      id,
      type: 'T',
      source: '/s',
      createdAt: 1,
      envelope: JSON.stringify({ ...envelope, id, partitionkey: key, sequence }),
    };
  };
  const noSleep = async () => {};

  it('a FIFO subscription gets group = aggregate key and a per-run replay dedup id; a failed event blocks its aggregate only', async () => {
    // Every send of order#1 seq 1 fails; everything else succeeds.
    sqs
      .on(SendMessageBatchCommand)
      .callsFake((input: { Entries: { Id: string; MessageDeduplicationId: string }[] }) => ({
        Successful: input.Entries.filter((e) => !e.MessageDeduplicationId.startsWith('0193a1.')).map((e) => ({
          Id: e.Id,
          MessageId: `m${e.Id}`,
        })),
        Failed: input.Entries.filter((e) => e.MessageDeduplicationId.startsWith('0193a1.')).map((e) => ({
          Id: e.Id,
          Code: 'InternalError',
          SenderFault: false,
        })),
      }));
    const clients = createClients({}, { region: 'eu-west-1' });
    const report = await deliver(
      clients,
      [{ kind: 'subscription', name: 'billing', queueUrl: 'https://sqs/1/billing.fifo', fifo: true }],
      [event('a', 1), event('a', 2), event('b', 1), event('b', 2)],
      { runId: '42', sleep: noSleep },
    );
    expect(report.sent).toBe(2);
    expect(report.failed).toEqual([{ id: '0193a1', reason: expect.stringContaining('InternalError') }]);
    expect(report.skipped).toEqual(['0193a2']);
    const sentEntries = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries ?? []);
    const b = sentEntries.filter((e) => e.MessageGroupId === 'b');
    expect(b.map((e) => e.MessageDeduplicationId)).toEqual(['0193b1.replay.42', '0193b2.replay.42']);
    expect(b.map((e) => JSON.parse(e.MessageBody ?? '').sequence)).toEqual([1, 2]);
    expect(sentEntries.some((e) => e.MessageDeduplicationId === '0193a2.replay.42')).toBe(false);
    expect(replayDeduplicationId('x', '7')).toBe('x.replay.7');
    clients.destroy();
  });

  it('a standard subscription gets the envelope as body with no group, dedup id or attributes', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m${e.Id}` })),
    }));
    const clients = createClients({}, { region: 'eu-west-1' });
    const publisher = sqsStandardPublisher(clients.sqs, 'https://sqs/1/notifications');
    const report = await deliver(clients, [], [event('a', 1), event('b', 1)], {
      runId: '1',
      publishers: [publisher],
      sleep: noSleep,
    });
    expect(report).toMatchObject({
      sent: 2,
      failed: [],
      skipped: [],
      targets: [{ target: 'sqs:notifications', accepted: 2 }],
    });
    const entries = sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => c.args[0].input.Entries ?? []);
    expect(entries.map((e) => Object.keys(e).sort())).toEqual([
      ['Id', 'MessageBody'],
      ['Id', 'MessageBody'],
    ]);
    expect(entries[0]?.MessageBody).toBe(event('a', 1).envelope);
    clients.destroy();
  });
});
