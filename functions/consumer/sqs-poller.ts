import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

/**
 * Drives an SQS batch handler from a queue the way Lambda's event source mapping does, for consumers that
 * run in a container (or locally): receive up to 10 messages, call the handler, delete the messages it
 * did not report as failed. A thrown error or an unknown `itemIdentifier` fails the whole batch (nothing is
 * deleted), as in Lambda. Failed messages reappear after their visibility timeout.
 */
export interface PollOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;
  /** 1 to 10. @default 10 */
  readonly maxMessages?: number;
  /** Long-poll wait, 0 to 20 s. @default 0 */
  readonly waitTimeSeconds?: number;
  /** Overrides the queue's visibility timeout for the received messages (seconds). */
  readonly visibilityTimeout?: number;
  /** @default syntheticLambdaContext() */
  readonly context?: Context;
}

export interface PollResult {
  readonly received: number;
  readonly deleted: number;
  readonly failed: number;
  /** Set when the handler threw (the whole batch failed). */
  readonly error?: unknown;
}

const arnCache = new Map<string, string>();

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const cached = arnCache.get(queueUrl);
  if (cached) return cached;
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = attributes.Attributes?.QueueArn ?? queueUrl;
  arnCache.set(queueUrl, arn);
  return arn;
}

/** A Lambda-like context for running a handler outside Lambda; the deadline is `timeoutMs` from now. */
export function syntheticLambdaContext(timeoutMs = 30_000, functionName = 'local-consumer'): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Converts a received SQS message to the record shape Lambda passes to handlers. */
export function toLambdaRecord(message: Message, eventSourceARN: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      stringListValues: [],
      binaryListValues: [],
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined
        ? {}
        : { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
    };
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(attributes.MessageGroupId === undefined ? {} : { MessageGroupId: attributes.MessageGroupId }),
      ...(attributes.MessageDeduplicationId === undefined
        ? {}
        : { MessageDeduplicationId: attributes.MessageDeduplicationId }),
      ...(attributes.SequenceNumber === undefined ? {} : { SequenceNumber: attributes.SequenceNumber }),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion: eventSourceARN.split(':')[3] ?? 'us-east-1',
  };
}

/** Receives one batch, hands it to the handler and deletes what succeeded. */
export async function pollOnce(options: PollOptions): Promise<PollResult> {
  const { sqs, queueUrl } = options;
  const received = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: options.maxMessages ?? 10,
      WaitTimeSeconds: options.waitTimeSeconds ?? 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
      ...(options.visibilityTimeout === undefined ? {} : { VisibilityTimeout: options.visibilityTimeout }),
    }),
  );
  const messages = received.Messages ?? [];
  if (messages.length === 0) return { received: 0, deleted: 0, failed: 0 };
  const arn = await queueArn(sqs, queueUrl);
  const records = messages.map((m) => toLambdaRecord(m, arn));
  let failedIds: Set<string>;
  try {
    const response = await options.handler({ Records: records }, options.context ?? syntheticLambdaContext());
    const identifiers = (response?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
    const known = new Set(records.map((r) => r.messageId));
    if (identifiers.some((id) => !id || !known.has(id))) {
      return { received: records.length, deleted: 0, failed: records.length };
    }
    failedIds = new Set(identifiers);
  } catch (error) {
    return { received: records.length, deleted: 0, failed: records.length, error };
  }
  const done = records.filter((r) => !failedIds.has(r.messageId));
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
      }),
    );
  }
  return { received: records.length, deleted: done.length, failed: failedIds.size };
}
