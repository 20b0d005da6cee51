import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { type SqsLambdaRecord, type SqsMappingConfig, SqsPoller } from '../../local/runtime/sqs-poller.ts';
import { localAwsConfig, useFauxqs } from '../support/services.ts';
import { eventually, recordingInvoker, useHandlerDirs } from './fixtures.ts';

// body.fail = n: the message fails its first n receives (reported as a batch item failure);
// body.throw = n: the whole invocation throws on the first n receives; body.sleep: ms to work.
const HANDLER = `
exports.handler = async (event) => {
  const failures = [];
  for (const r of event.Records) {
    const body = JSON.parse(r.body);
    const receives = Number(r.attributes.ApproximateReceiveCount);
    if (body.sleep) await new Promise((resolve) => setTimeout(resolve, body.sleep));
    if (body.throw && receives <= body.throw) throw new Error('cannot process ' + body.id);
    if (body.fail && receives <= body.fail) failures.push({ itemIdentifier: r.messageId });
  }
  return { batchItemFailures: failures };
};`;

type Records = { Records: SqsLambdaRecord[] };
const idsOf = (event: unknown): string[] => (event as Records).Records.map((r) => JSON.parse(r.body).id);

describe('SqsPoller', () => {
  const endpoint = useFauxqs();
  const handlerDir = useHandlerDirs();
  let sqs: SQSClient;
  let runtime: LambdaRuntime;
  const pollers: SqsPoller[] = [];

  beforeAll(async () => {
    sqs = new SQSClient(localAwsConfig(endpoint()));
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'consumer',
      codeDir: await handlerDir({ 'index.js': HANDLER }),
      handler: 'index.handler',
    });
  });
  afterAll(async () => {
    await Promise.all(pollers.map((p) => p.stop()));
    await runtime.stop();
  });

  async function queue(
    name: string,
    attributes: Record<string, string> = {},
  ): Promise<{ url: string; arn: string }> {
    const url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
      .QueueUrl as string;
    const arn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn as string;
    return { url, arn };
  }

  function startPoller(
    config: Omit<SqsMappingConfig, 'id' | 'functionName'>,
    compression: { failedVisibilitySeconds?: number; crashedVisibilitySeconds?: () => number } = {},
  ) {
    const recording = recordingInvoker(runtime);
    const poller = new SqsPoller(
      { id: 'test-mapping', functionName: 'consumer', ...config },
      { invoker: recording.invoker, sqs, waitTimeSeconds: 1, log: () => {}, ...compression },
    );
    pollers.push(poller);
    poller.start();
    return { poller, calls: recording.calls };
  }

  async function visibleAndInFlight(url: string): Promise<[number, number]> {
    const attributes = (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes;
    return [
      Number(attributes?.ApproximateNumberOfMessages),
      Number(attributes?.ApproximateNumberOfMessagesNotVisible),
    ];
  }

  it('builds the Lambda SQS event and deletes processed and filtered-out messages', async () => {
    const { url, arn } = await queue('sqs-shape');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: JSON.stringify({ id: 'm1', type: 'OrderPlaced' }),
        MessageAttributes: {
          tenant: { DataType: 'String', StringValue: 't-1' },
          blob: { DataType: 'Binary', BinaryValue: Buffer.from('hi') },
        },
      }),
    );
    await sqs.send(
      new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ id: 'm2', type: 'Noise' }) }),
    );

    const { calls, poller } = startPoller({
      queueUrl: url,
      queueArn: arn,
      batchSize: 10,
      maximumBatchingWindowInSeconds: 1,
      filterPatterns: ['{"body":{"type":["OrderPlaced"]}}'],
    });
    await eventually(() => (poller.stats.deleted === 2 ? true : undefined));

    expect(calls).toHaveLength(1);
    const record = (calls[0]?.event as Records | undefined)?.Records[0];
    expect(record).toEqual({
      messageId: expect.any(String),
      receiptHandle: expect.any(String),
      body: JSON.stringify({ id: 'm1', type: 'OrderPlaced' }),
      attributes: expect.objectContaining({
        ApproximateReceiveCount: '1',
        SentTimestamp: expect.stringMatching(/^\d+$/),
        SenderId: expect.any(String),
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
      }),
      messageAttributes: {
        tenant: { stringValue: 't-1', stringListValues: [], binaryListValues: [], dataType: 'String' },
        blob: {
          binaryValue: Buffer.from('hi').toString('base64'),
          stringListValues: [],
          binaryListValues: [],
          dataType: 'Binary',
        },
      },
      md5OfMessageAttributes: expect.stringMatching(/^[0-9a-f]{32}$/),
      md5OfBody: expect.stringMatching(/^[0-9a-f]{32}$/),
      eventSource: 'aws:sqs',
      eventSourceARN: arn,
      awsRegion: 'us-east-1',
    });
    expect(poller.stats.filtered).toBe(1);
    expect(await visibleAndInFlight(url)).toEqual([0, 0]);
  });

  it('with ReportBatchItemFailures deletes the successes; the failure comes back after the visibility timeout', async () => {
    const { url, arn } = await queue('sqs-partial.fifo', {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
      VisibilityTimeout: '1',
    });
    for (const [id, group, fail] of [
      ['a1', 'a', 1],
      ['b1', 'b', 0],
    ] as const) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: JSON.stringify({ id, fail }),
          MessageGroupId: group,
        }),
      );
    }

    const { calls } = startPoller({
      queueUrl: url,
      queueArn: arn,
      reportBatchItemFailures: true,
      maximumConcurrency: 2,
    });
    await eventually(() =>
      calls.flatMap((c) => idsOf(c.event)).filter((id) => id === 'a1').length === 2 ? true : undefined,
    );

    const deliveries = calls.flatMap((c) => (c.event as Records).Records);
    expect(deliveries.filter((r) => JSON.parse(r.body).id === 'b1')).toHaveLength(1);
    const a1 = deliveries.filter((r) => JSON.parse(r.body).id === 'a1');
    expect(a1.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    expect(a1[0]?.attributes).toMatchObject({ MessageGroupId: 'a', SequenceNumber: expect.any(String) });
    // Redelivery waited for the 1 s visibility timeout.
    expect(Number(a1[1]?.attributes.ApproximateFirstReceiveTimestamp)).toBeLessThan(
      (calls.at(-1)?.startedAt ?? 0) - 900,
    );
    await eventually(async () => ((await visibleAndInFlight(url)).join() === '0,0' ? true : undefined));
  });

  it('leaves the whole batch on a function error, and never runs two batches of one message group at once', async () => {
    const { url, arn } = await queue('sqs-groups.fifo', {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'true',
      VisibilityTimeout: '1',
    });
    const messages = [
      { id: 'g1-1', group: 'g1', sleep: 200, throw: 1 },
      { id: 'g1-2', group: 'g1', sleep: 50 },
      { id: 'g2-1', group: 'g2', sleep: 200 },
      { id: 'g2-2', group: 'g2', sleep: 50 },
    ];
    for (const m of messages) {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(m), MessageGroupId: m.group }),
      );
    }

    const { calls } = startPoller({ queueUrl: url, queueArn: arn, maximumConcurrency: 3 });
    await eventually(() =>
      calls.filter((c) => !c.result.error).flatMap((c) => idsOf(c.event)).length === 4 ? true : undefined,
    );

    const succeeded = calls.filter((c) => !c.result.error).flatMap((c) => idsOf(c.event));
    // Per group, order is kept even though g1-1 failed once.
    expect(succeeded.filter((id) => id.startsWith('g1'))).toEqual(['g1-1', 'g1-2']);
    expect(succeeded.filter((id) => id.startsWith('g2'))).toEqual(['g2-1', 'g2-2']);
    expect(calls.find((c) => c.result.error)?.result.error?.errorMessage).toBe('cannot process g1-1');
    for (const group of ['g1', 'g2']) {
      const spans = calls
        .filter((c) => idsOf(c.event).some((id) => id.startsWith(group)))
        .map((c) => [c.startedAt, c.endedAt] as const)
        .sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++)
        expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] ?? 0);
    }
  });

  it('with time compression, messages of a crashed invocation come back only after the crash visibility (chaos seed 1: leases a dead consumer held outlived the compressed returns and maxReceiveCount dead-lettered live events)', async () => {
    const { url, arn } = await queue('sqs-crash-visibility', { VisibilityTimeout: '30' });
    await sqs.send(
      new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ id: 'c1', throw: 1 }) }),
    );
    const { calls, poller } = startPoller(
      { queueUrl: url, queueArn: arn, batchSize: 1 },
      { failedVisibilitySeconds: 1, crashedVisibilitySeconds: () => 4 },
    );
    await eventually(() => (poller.stats.deleted === 1 ? true : undefined), 15_000);
    expect(calls).toHaveLength(2);
    const returnedAfterMs = (calls[1]?.startedAt ?? 0) - (calls[0]?.endedAt ?? 0);
    expect(returnedAfterMs).toBeGreaterThanOrEqual(3_500);
  });
});
