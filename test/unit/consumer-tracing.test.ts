import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { CountingMetrics, createConsumer, type EventContext } from '../../functions/consumer/index.ts';
import { buildEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const sqsMock = mockClient(SQSClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

afterEach(() => {
  ddb.reset();
  sqsMock.reset();
});

const TRACE_A = '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01';
const TRACE_B = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-00';
const XRAY_B = 'Root=1-01234567-89abcdef0123456789abcdef;Parent=0123456789abcdef;Sampled=0';

interface LogLine {
  level: string;
  message: string;
  attributes: Record<string, unknown> | undefined;
}

function capturingLogger() {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, attributes?: Record<string, unknown>) =>
    lines.push({ level, message, attributes });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function body(key: string, traceparent?: string): { id: string; json: string } {
  const { envelope, json } = buildEnvelope(
    { type: 'OrderPlaced', source: '/orders', data: {}, ...(traceparent ? { traceparent } : {}) },
    { partitionKey: key, sequence: 1, now: NOW, deriveTraceparent: false },
  );
  return { id: envelope.id, json };
}

function sqsRecord(
  json: string,
  messageId: string,
  extra: { awsTraceHeader?: string; traceparentAttribute?: string } = {},
): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body: json,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(NOW),
      SenderId: 'sns',
      ApproximateFirstReceiveTimestamp: String(NOW),
      MessageGroupId: messageId,
      MessageDeduplicationId: messageId,
      ...(extra.awsTraceHeader ? { AWSTraceHeader: extra.awsTraceHeader } : {}),
    },
    messageAttributes: extra.traceparentAttribute
      ? { traceparent: { dataType: 'String', stringValue: extra.traceparentAttribute } }
      : {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:billing.fifo',
    awsRegion: 'us-east-1',
  };
}

describe('consumer trace context (#14)', () => {
  it('gives the handler the producer trace: envelope first, else AWSTraceHeader, else the traceparent attribute', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    ddb.on(GetCommand).resolves({});
    const seen = new Map<string, EventContext>();
    const consumer = createConsumer({
      name: 'billing',
      tableName: 'dedup',
      client,
      metrics: new CountingMetrics(),
      logger: capturingLogger(),
      now: () => NOW,
      mode: 'transactional',
      handle: (event, context) => {
        seen.set(event.partitionkey, context);
        return [];
      },
    });
    const a = body('order#1', TRACE_A);
    const b = body('order#2');
    const c = body('order#3');
    const d = body('order#4');
    const result = await consumer.processBatch({
      Records: [
        // The envelope wins over a record header (which SNS active tracing sets to the relay's trace).
        sqsRecord(a.json, 'm1', { awsTraceHeader: XRAY_B }),
        sqsRecord(b.json, 'm2', { awsTraceHeader: XRAY_B }),
        sqsRecord(c.json, 'm3', { traceparentAttribute: TRACE_A }),
        sqsRecord(d.json, 'm4'),
      ],
    });
    expect(result.batchItemFailures).toEqual([]);
    expect(seen.get('order#1')).toMatchObject({
      traceparent: TRACE_A,
      traceId: '5759e988bd862e3fe1be46a994272793',
    });
    expect(seen.get('order#2')).toMatchObject({
      traceparent: TRACE_B,
      traceId: '0123456789abcdef0123456789abcdef',
    });
    expect(seen.get('order#3')?.traceparent).toBe(TRACE_A);
    expect(seen.get('order#4')?.traceparent).toBeUndefined();
    expect(seen.get('order#4')?.traceId).toBeUndefined();
  });

  it('puts the trace id and event id on every line it logs for an event, concurrently, and only for that event', async () => {
    ddb.on(UpdateCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    sqsMock.on(SendMessageCommand).resolves({});
    const logger = capturingLogger();
    const consumer = createConsumer({
      name: 'billing',
      tableName: 'dedup',
      client,
      metrics: new CountingMetrics(),
      logger,
      now: () => NOW,
      mode: 'transactional',
      handle: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw new Error('payments API unavailable');
      },
    });
    const a = body('order#1', TRACE_A);
    const b = body('order#2', TRACE_B);
    await consumer.processBatch({
      Records: [sqsRecord(a.json, 'm1'), sqsRecord(b.json, 'm2'), sqsRecord('not json', 'm3')],
    });
    const failed = logger.lines.filter((l) => /^Event (not applied|failed)/.test(l.message));
    expect(failed).toHaveLength(2);
    const byEvent = new Map(failed.map((l) => [l.attributes?.eventId, l.attributes]));
    expect(byEvent.get(a.id)).toMatchObject({
      eventId: a.id,
      traceId: '5759e988bd862e3fe1be46a994272793',
      xrayTraceId: '1-5759e988-bd862e3fe1be46a994272793',
    });
    expect(byEvent.get(b.id)).toMatchObject({ eventId: b.id, traceId: '0123456789abcdef0123456789abcdef' });
    // The poison message's line is not an event's: no eventId or traceId left over from another one.
    const poison = logger.lines.find((l) => /poison/i.test(l.message));
    expect(poison).toBeDefined();
    expect(poison?.attributes?.traceId).toBeUndefined();
    expect(poison?.attributes?.eventId).toBeUndefined();
  });

  it('also on the lines written while the event is applied (lease mode release warning), not after it', async () => {
    ddb.on(PutCommand).resolves({});
    ddb
      .on(DeleteCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'gone', $metadata: { httpStatusCode: 400 } }));
    const logger = capturingLogger();
    const consumer = createConsumer({
      name: 'billing',
      tableName: 'dedup',
      client,
      metrics: new CountingMetrics(),
      logger,
      now: () => NOW,
      mode: 'lease',
      handle: () => {
        throw new Error('provider down');
      },
    });
    const { envelope } = buildEnvelope(
      { type: 'OrderPlaced', source: '/orders', data: {}, traceparent: TRACE_A },
      { partitionKey: 'order#1', sequence: 1, now: NOW },
    );
    await expect(consumer.process(envelope)).rejects.toThrow('provider down');
    const line = logger.lines.find((l) => /no longer ours/.test(l.message));
    expect(line?.attributes).toMatchObject({
      eventId: envelope.id,
      traceId: '5759e988bd862e3fe1be46a994272793',
    });
    consumer.logger.info('after the event');
    expect(logger.lines.at(-1)?.attributes).toBeUndefined();
  });
});
