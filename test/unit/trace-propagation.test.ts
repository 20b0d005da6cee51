import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import {
  eventBridgePublisher,
  messageBytes,
  snsFifoPublisher,
  sqsFifoPublisher,
} from '../../functions/relay/publishers.ts';
import {
  buildEnvelope,
  traceparentFromXRay,
  xrayHeaderFromTraceparent,
} from '../../functions/runtime/envelope.ts';
import { OutboxValidationError } from '../../functions/runtime/errors.ts';
import { SNS_MAX_MESSAGE_BYTES, snsMessageBytes } from '../../functions/runtime/message-limits.ts';
import { eventSortKey } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { oneSweeperRun, relayConfigOf } from '../support/relay-fixtures.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
const eventBridge = mockClient(EventBridgeClient);
const ddb = mockClient(DynamoDBClient);
const doc = mockClient(DynamoDBDocumentClient);

afterEach(() => {
  for (const mock of [sns, sqs, eventBridge, ddb, doc]) mock.reset();
});

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const TRACEPARENT = '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01';
const XRAY = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:outbox.fifo';
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/billing.fifo';

function record(sequence: number, traceparent?: string): OutboxRecord {
  const { envelope, json, bytes } = buildEnvelope(
    { type: 'OrderPlaced', data: { n: sequence }, ...(traceparent ? { traceparent } : {}) },
    { partitionKey: 'order#1', sequence, defaultSource: '/orders', now: NOW, deriveTraceparent: false },
  );
  return {
    pk: 'order#1',
    sk: eventSortKey(sequence),
    id: envelope.id,
    type: envelope.type,
    source: envelope.source,
    sequence,
    envelope: json,
    envelopeBytes: bytes,
    createdAt: NOW,
  };
}

describe('xrayHeaderFromTraceparent', () => {
  it('turns a W3C traceparent into the X-Ray header, and traceparentFromXRay turns it back', () => {
    expect(xrayHeaderFromTraceparent(TRACEPARENT)).toBe(XRAY);
    expect(traceparentFromXRay(XRAY)).toBe(TRACEPARENT);
    for (const tp of [TRACEPARENT, '00-0123456789abcdef0123456789abcdef-0123456789abcdef-00']) {
      expect(traceparentFromXRay(xrayHeaderFromTraceparent(tp))).toBe(tp);
    }
    expect(xrayHeaderFromTraceparent('00-0123456789abcdef0123456789abcdef-0123456789abcdef-00')).toBe(
      'Root=1-01234567-89abcdef0123456789abcdef;Parent=0123456789abcdef;Sampled=0',
    );
  });

  it('refuses what is not a version-00 traceparent with non-zero ids', () => {
    for (const bad of [
      undefined,
      '',
      'Root=1-5759e988-bd862e3fe1be46a994272793',
      '01-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01',
      '00-00000000000000000000000000000000-53995c3f42cd8ad8-01',
      '00-5759e988bd862e3fe1be46a994272793-0000000000000000-01',
      '00-5759E988BD862E3FE1BE46A994272793-53995c3f42cd8ad8-01',
    ]) {
      expect(xrayHeaderFromTraceparent(bad)).toBeUndefined();
    }
  });
});

describe('the relay passes the producer trace on with each message (#14)', () => {
  it('SNS FIFO: a traceparent message attribute, counted in the message size', async () => {
    sns.on(PublishBatchCommand).resolves({ Successful: [{ Id: '0' }, { Id: '1' }] });
    const publisher = snsFifoPublisher({ client: new SNSClient({ region: 'us-east-1' }), topicArn: TOPIC });
    const traced = record(1, TRACEPARENT);
    const untraced = { ...record(2), pk: 'order#2' };
    expect(await publisher.send([traced, untraced])).toEqual([{ ok: true }, { ok: true }]);
    const [first, second] =
      sns.commandCalls(PublishBatchCommand)[0]?.args[0].input.PublishBatchRequestEntries ?? [];
    expect(first?.MessageAttributes?.traceparent).toEqual({ DataType: 'String', StringValue: TRACEPARENT });
    expect(second?.MessageAttributes?.traceparent).toBeUndefined();
    expect(messageBytes(traced)).toBe(
      messageBytes({ ...traced, envelope: '{}' }) + 'traceparent'.length + 6 + 55,
    );
  });

  it('SQS FIFO direct: the AWSTraceHeader system attribute in X-Ray format', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'a', MD5OfMessageBody: '' }] });
    const publisher = sqsFifoPublisher({ client: new SQSClient({ region: 'us-east-1' }), queueUrl: QUEUE });
    expect(await publisher.send([record(1, TRACEPARENT)])).toEqual([{ ok: true }]);
    const [entry] = sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries ?? [];
    expect(entry?.MessageSystemAttributes).toEqual({
      AWSTraceHeader: { DataType: 'String', StringValue: XRAY },
    });

    sqs.reset();
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'a', MD5OfMessageBody: '' }] });
    await publisher.send([record(2)]);
    const [plain] = sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries ?? [];
    expect(plain?.MessageSystemAttributes).toBeUndefined();
  });

  it('EventBridge: the PutEvents entry TraceHeader', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'a' }, { EventId: 'b' }] });
    const publisher = eventBridgePublisher({
      client: new EventBridgeClient({ region: 'us-east-1' }),
      eventBusName: 'orders',
    });
    await publisher.send([record(1, TRACEPARENT), record(2)]);
    const [traced, plain] = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries ?? [];
    expect(traced?.TraceHeader).toBe(XRAY);
    expect(plain && 'TraceHeader' in plain).toBe(false);
  });

  it('the sweeper republishes with the same trace headers (it goes through the relay publishers)', async () => {
    const relayConfig = relayConfigOf({ tableName: 'outbox', snsTopicArn: TOPIC, sqsQueueUrls: [QUEUE] });
    const silent = new Logger({ logLevel: 'SILENT' });
    const stuck = record(1, TRACEPARENT);
    sns.on(PublishBatchCommand).resolves({ Successful: [{ Id: '0' }] });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'a', MD5OfMessageBody: '' }] });
    ddb.on(UpdateItemCommand).resolves({});
    const { deps } = oneSweeperRun(relayConfig, { now: NOW, logger: silent });
    const outcome = await deps.republish([
      {
        pk: stuck.pk,
        sk: stuck.sk,
        id: stuck.id,
        type: stuck.type,
        source: stuck.source,
        sequence: 1,
        status: 'READY',
        envelope: stuck.envelope,
        createdAt: NOW - 600_000,
        attempts: 0,
        pendingShard: `P#${stuck.id.slice(-1)}`,
        pendingDueAt: NOW - 600_000,
      },
    ]);
    expect([...outcome.published]).toEqual([stuck.id]);
    const [published] =
      sns.commandCalls(PublishBatchCommand)[0]?.args[0].input.PublishBatchRequestEntries ?? [];
    expect(published?.MessageAttributes?.traceparent?.StringValue).toBe(TRACEPARENT);
    const [sent] = sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries ?? [];
    expect(sent?.MessageSystemAttributes?.AWSTraceHeader?.StringValue).toBe(XRAY);
  });
});

describe('the writer counts the traceparent attribute the relay sends (#14)', () => {
  it('refuses an event that fits SNS without the traceparent attribute but not with it', async () => {
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
    doc.on(TransactWriteCommand).resolves({});
    const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client, now: () => NOW });
    const probe = {
      type: 'OrderPlaced',
      id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
      traceparent: TRACEPARENT,
      data: '',
    };
    const built = writer.buildTransaction({ aggregate: { key: 'order#1' }, events: [probe] }, 0);
    const base = Buffer.byteLength(JSON.stringify(built.events[0]));
    const attributesWithoutTrace = snsMessageBytes({
      envelopeBytes: 0,
      type: 'OrderPlaced',
      source: '/orders',
      partitionKey: 'order#1',
      sequence: 1,
    });
    const envelopeBytes = SNS_MAX_MESSAGE_BYTES - attributesWithoutTrace;
    const event = { ...probe, data: 'x'.repeat(envelopeBytes - base) };
    const error = await writer
      .transact({ aggregate: { key: 'order#1', expectedVersion: 0 }, events: [event] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OutboxValidationError);
    expect((error as Error).message).toMatch(/SNS message incl\. attributes/);
    // Without a traceparent the same envelope size fits.
    const { traceparent: _, ...untraced } = probe;
    const plainBase = Buffer.byteLength(
      JSON.stringify(
        writer.buildTransaction({ aggregate: { key: 'order#1' }, events: [untraced] }, 0).events[0],
      ),
    );
    await expect(
      writer.transact({
        aggregate: { key: 'order#1', expectedVersion: 0 },
        events: [{ ...untraced, data: 'x'.repeat(envelopeBytes - plainBase) }],
      }),
    ).resolves.toBeDefined();
  });
});
