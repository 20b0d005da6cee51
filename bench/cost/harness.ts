/**
 * The pieces every pipeline of the cost bench shares: tables, metered clients, the stream a function is
 * triggered by (read as Lambda's DynamoDB event source would hand it over), and an SQS poller that works like
 * Lambda's (receive up to 10, invoke once per batch, delete what succeeded).
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord, SQSEvent, SQSRecord } from 'aws-lambda';
import { readStream } from '../../test/support/outbox-table.ts';
import { localAwsConfig } from '../../test/support/services.ts';
import type { BillingMeter } from './meter.ts';

export const silentLogger = { info: () => {}, warn: () => {}, error: () => {} };

let tables = 0;

/** A PAY_PER_REQUEST table with a string partition key, optionally with a NEW_AND_OLD_IMAGES stream. */
export async function createTable(
  endpoint: string,
  prefix: string,
  key: string,
  stream = false,
): Promise<{ tableName: string; streamArn?: string }> {
  const client = new DynamoDBClient(localAwsConfig(endpoint));
  const tableName = `${prefix}-${process.pid}-${++tables}`;
  const created = await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
      ...(stream
        ? { StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }
        : {}),
    }),
  );
  client.destroy();
  const streamArn = created.TableDescription?.LatestStreamArn;
  return { tableName, ...(streamArn ? { streamArn } : {}) };
}

/** A DynamoDB client (and DocumentClient over it) whose calls the meter bills under `label`. */
export function meteredDynamoDb(
  meter: BillingMeter,
  endpoint: string,
  label: string,
): { client: DynamoDBClient; doc: DynamoDBDocumentClient } {
  const client = meter.meterDynamoDb(new DynamoDBClient(localAwsConfig(endpoint)), label);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { client, doc };
}

/**
 * New records of a table's stream since the last call, in stream order, kept when `filter` matches (Lambda's
 * event filtering: filtered-out records never invoke the function and are not billed). Reading the stream is
 * free for Lambda triggers, so nothing here is metered.
 */
export function streamFeed(
  endpoint: string,
  streamArn: string,
  filter: (record: DynamoDBRecord) => boolean = () => true,
): () => Promise<DynamoDBRecord[]> {
  const seen = new Set<string>();
  return async () => {
    const fresh: DynamoDBRecord[] = [];
    for (const record of await readStream(endpoint, streamArn)) {
      const sequence = record.dynamodb?.SequenceNumber ?? '';
      if (seen.has(sequence)) continue;
      seen.add(sequence);
      if (filter(record)) fresh.push(record);
    }
    return fresh;
  };
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function toSqsRecord(message: Message, queueArn: string): SQSRecord {
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: (message.Attributes ?? {}) as unknown as SQSRecord['attributes'],
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: 'us-east-1',
  };
}

/**
 * Drains a queue as Lambda's SQS poller does: receive up to 10, invoke the function once per batch, delete the
 * messages it did not report as failed (DeleteMessageBatch), all billed to `label`. The receive that finds the
 * queue empty is not billed: idle polling is a fixed cost per queue (Lambda long-polls), not a cost per event.
 * Returns how many messages the function processed.
 */
export async function drainToFunction(
  meter: BillingMeter,
  label: string,
  sqs: SQSClient,
  queueUrl: string,
  invoke: (event: SQSEvent) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined>,
): Promise<number> {
  let processed = 0;
  const queueArn = `arn:aws:sqs:us-east-1:000000000000:${queueUrl.split('/').pop()}`;
  for (let empty = 0; empty < 2; ) {
    const page = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages = page.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    meter.billSqs(
      label,
      queueUrl,
      messages.reduce((n, m) => n + Buffer.byteLength(m.Body ?? ''), 0),
    );
    const result = await invoke({ Records: messages.map((m) => toSqsRecord(m, queueArn)) });
    const failed = new Set(result?.batchItemFailures?.map((f) => f.itemIdentifier) ?? []);
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
    processed += done.length;
    if (done.length > 0) {
      meter.billSqs(label, queueUrl, 0);
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
    }
  }
  return processed;
}
