/**
 * `dlq list` grouped by aggregate and `dlq redrive --aggregate` with a mocked SQS: sequence order, group id,
 * other aggregates made visible again, delete only after a successful send, stop at a failed send, --max.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import { createClients } from '../../bin/commands/clients.ts';
import type { SubscriptionQueues } from '../../bin/commands/deployment.ts';
import * as dlq from '../../bin/commands/dlq.ts';

const sqs = mockClient(SQSClient);
const subscription: SubscriptionQueues = {
  name: 'billing',
  queueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/billing.fifo',
  deadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/billing-dlq.fifo',
  fifo: true,
};

function message(id: string, key: string, sequence: number, reason?: string): Message {
  return {
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: JSON.stringify({
      specversion: '1.0',
      id: `evt-${key}-${sequence}`,
      source: '/orders',
      type: 'com.example.orders.OrderPlaced',
      time: '2026-11-22T16:00:00.000Z',
      datacontenttype: 'application/json',
      partitionkey: key,
      sequence,
      data: { secret: 'x' },
    }),
    Attributes: { MessageGroupId: key, ApproximateReceiveCount: '3', SentTimestamp: '1763827200000' },
    ...(reason
      ? { MessageAttributes: { 'outbox.poison-reason': { DataType: 'String', StringValue: reason } } }
      : {}),
  };
}

beforeEach(() => {
  sqs.reset();
  sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '1' } });
  sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [], Failed: [] });
  sqs.on(DeleteMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id })),
    Failed: [],
  }));
});

describe('dlq list by aggregate', () => {
  it('groups by partitionkey: count, the lowest sequence and its poison reason, else its receive count', () => {
    const summaries = [
      message('m1', 'A', 3),
      message('m2', 'B', 7, 'not valid'),
      message('m3', 'A', 2),
      { MessageId: 'm4', Body: 'not json', Attributes: {} },
    ].map(dlq.summarizeMessage);
    expect(dlq.groupByAggregate(summaries)).toEqual([
      {
        aggregate: 'A',
        count: 2,
        firstSequence: 2,
        firstMessageId: 'm3',
        firstEventId: 'evt-A-2',
        error: 'received 3 time(s)',
      },
      {
        aggregate: 'B',
        count: 1,
        firstSequence: 7,
        firstMessageId: 'm2',
        firstEventId: 'evt-B-7',
        error: 'not valid',
      },
      { aggregate: dlq.NOT_AN_ENVELOPE, count: 1, firstMessageId: 'm4', error: 'no reason recorded' },
    ]);
  });
});

describe('dlq redrive --aggregate (mocked SQS)', () => {
  it('sends only the aggregate, sorted by sequence, group = the aggregate, fresh dedup id; the others are made visible again', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m3', 'A', 3), message('b1', 'B', 1), message('m2', 'A', 2)] })
      .resolves({ Messages: [] });
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `new-${e.Id}`, MD5OfMessageBody: 'x' })),
      Failed: [],
    }));
    const clients = createClients({}, { region: 'eu-west-1' });
    const result = await dlq.redriveAggregate(clients, subscription, 'A', { sleep: async () => {} });
    expect(result).toMatchObject({ moved: 2, sequences: [2, 3], skipped: 1, failed: 0, notReset: 0 });
    const sends = sqs.commandCalls(SendMessageBatchCommand);
    expect(sends).toHaveLength(1);
    expect(
      sends[0]?.args[0].input.Entries?.map((e) => [
        JSON.parse(e.MessageBody ?? '').sequence,
        e.MessageGroupId,
        e.MessageDeduplicationId,
      ]),
    ).toEqual([
      [2, 'A', 'redrive.m2'],
      [3, 'A', 'redrive.m3'],
    ]);
    // The receive held the others with the scan's visibility timeout; they are set back to 0 at the end.
    expect(sqs.commandCalls(ReceiveMessageCommand)[0]?.args[0].input.VisibilityTimeout).toBe(
      dlq.AGGREGATE_SCAN_VISIBILITY_SECONDS,
    );
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand).at(-1)?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-b1', VisibilityTimeout: 0 },
    ]);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-m2' },
      { Id: '1', ReceiptHandle: 'rh-m3' },
    ]);
    clients.destroy();
  });

  it('a failed send deletes nothing of it and stops; --max caps what is sent; the rest is made visible again', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m2', 'A', 2), message('m3', 'A', 3), message('m4', 'A', 4)] })
      .resolves({ Messages: [] });
    sqs.on(SendMessageBatchCommand).rejects(new Error('AccessDenied'));
    const clients = createClients({}, { region: 'eu-west-1' });
    const result = await dlq.redriveAggregate(clients, subscription, 'A', { max: 2, sleep: async () => {} });
    expect(result).toMatchObject({ moved: 0, failed: 2, sequences: [] });
    expect(result.errors.join()).toContain('AccessDenied');
    expect(sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries).toHaveLength(2);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(0);
    const reset = sqs
      .commandCalls(ChangeMessageVisibilityBatchCommand)
      .flatMap((c) => c.args[0].input.Entries?.map((e) => e.ReceiptHandle) ?? []);
    expect(reset.sort()).toEqual(['rh-m2', 'rh-m3', 'rh-m4']);
    clients.destroy();
  });

  it('stops when a message it moved comes back to the DLQ, and leaves it there', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [message('m2', 'A', 2)] })
      .resolvesOnce({ Messages: [] })
      .resolvesOnce({ Messages: [message('new-0', 'A', 2)] })
      .resolves({ Messages: [] });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'new-0', MD5OfMessageBody: 'x' }] });
    const clients = createClients({}, { region: 'eu-west-1' });
    const result = await dlq.redriveAggregate(clients, subscription, 'A', { sleep: async () => {} });
    expect(result).toMatchObject({ moved: 1, returned: 1, sequences: [2] });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand).at(-1)?.args[0].input.Entries).toEqual([
      { Id: '0', ReceiptHandle: 'rh-new-0', VisibilityTimeout: 0 },
    ]);
    expect(dlq.formatAggregateRedrive(result)).toContain('failed again and returned to the DLQ');
    clients.destroy();
  });

  it('prints what it moved, in order, and what it left', () => {
    const text = dlq.formatAggregateRedrive({
      subscription: 'billing',
      aggregate: 'A',
      from: subscription.deadLetterQueueUrl,
      to: subscription.queueUrl,
      moved: 2,
      sentNotDeleted: 0,
      failed: 0,
      returned: 0,
      sequences: [2, 3],
      skipped: 4,
      notReset: 0,
      scanLimited: false,
      errors: [],
      remaining: 4,
    });
    expect(text).toBe(
      'redrive billing --aggregate A: moved 2 message(s) from billing-dlq.fifo to billing.fifo (sequences 2, 3); failed 0; sent but not deleted 0; came back 0\n' +
        'other aggregates: 4 message(s) left in the DLQ (visible again); 4 left in the DLQ in all\n',
    );
  });

  it('refuses an empty --aggregate (exit 2)', async () => {
    let err = '';
    const io: CliIo = {
      stdout: () => {},
      stderr: (s) => {
        err += s;
      },
    };
    expect(await dlq.runDlqCommand(['redrive', 'billing', '--aggregate', ' ', '--yes'], io)).toBe(2);
    expect(err).toContain('--aggregate needs a value');
  });
});
