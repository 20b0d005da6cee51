import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, type Message, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBBatchResponse } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import { relayConfigOf } from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();

const context = {
  functionName: 'relay',
  awsRequestId: 'integration',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:relay',
  memoryLimitInMB: '512',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const TRACEPARENT = '00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01';

async function receiveAll(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const page = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return page.Messages ?? [];
}

describe('trace propagation: writer → stream → relay → SNS FIFO → SQS FIFO and SQS FIFO direct (fauxqs) (#14)', () => {
  let outbox: LocalOutbox;
  let sns: SNSClient;
  let sqs: SQSClient;

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'trace');
    sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
  });

  it('the subscribed queue gets the traceparent attribute; only the traced event has it', async () => {
    const fifo = await createFifoTopicWithQueue(sns, sqs, { topic: 'trace-events', queue: 'trace-consumer' });
    const direct = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'trace-direct.fifo',
        Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' },
      }),
    );
    const writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    const traced = await writer.transact({
      aggregate: { key: 'order#1' },
      events: [{ type: 'OrderPlaced', data: {}, traceparent: TRACEPARENT }],
    });
    const untraced = await writer.transact({
      aggregate: { key: 'order#2' },
      events: [{ type: 'OrderPlaced', data: {} }],
    });
    const relay = createRelayHandler({
      config: relayConfigOf({
        tableName: outbox.tableName,
        snsTopicArn: fifo.topicArn,
        sqsQueueUrls: [direct.QueueUrl ?? ''],
      }),
      clients: { sns, sqs, dynamodb: outbox.client },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });
    const records = await readStream(dynamoEndpoint(), outbox.streamArn);
    const response = (await relay({ Records: records }, context)) as DynamoDBBatchResponse;
    expect(response.batchItemFailures).toEqual([]);

    const byId = (messages: Message[]) =>
      new Map(messages.map((m) => [(JSON.parse(m.Body ?? '{}') as { id: string }).id, m]));
    const tracedId = traced.events[0]?.id ?? '';
    const untracedId = untraced.events[0]?.id ?? '';

    const viaSns = byId(await receiveAll(sqs, fifo.queueUrl));
    expect(viaSns.get(tracedId)?.MessageAttributes?.traceparent?.StringValue).toBe(TRACEPARENT);
    expect(viaSns.has(untracedId)).toBe(true);
    expect(viaSns.get(untracedId)?.MessageAttributes?.traceparent).toBeUndefined();

    const viaSqs = byId(await receiveAll(sqs, direct.QueueUrl ?? ''));
    expect(viaSqs.get(tracedId)?.MessageAttributes?.traceparent?.StringValue).toBe(TRACEPARENT);
    expect(viaSqs.get(untracedId)?.MessageAttributes?.traceparent).toBeUndefined();
    // fauxqs ignores MessageSystemAttributes on SendMessageBatch (it never returns AWSTraceHeader), so the
    // AWSTraceHeader the relay sends is asserted on the request in test/unit/trace-propagation.test.ts.
  });
});
