import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import { publishInOrder } from '../../functions/relay/publish.ts';
import { eventBridgePublisher, snsFifoPublisher } from '../../functions/relay/publishers.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { localAwsConfig, useFauxqs } from '../support/services.ts';

const fauxqsEndpoint = useFauxqs();

function record(pk: string, overrides: Partial<OutboxRecord> = {}): OutboxRecord {
  const id = `${pk}-1`;
  const envelope = JSON.stringify({ id, partitionkey: pk, sequence: 1 });
  return {
    pk,
    sk: 'EVT#000000000001',
    id,
    type: 'OrderPlaced',
    source: '/orders',
    sequence: 1,
    envelope,
    envelopeBytes: Buffer.byteLength(envelope),
    createdAt: Date.UTC(2026, 10, 30, 12, 0, 0),
    ...overrides,
  };
}

const forever = { deadline: Date.now() + 30_000, random: () => 0, retry: { maxAttempts: 2, baseDelayMs: 1 } };

describe('a client-side encoding error of one entry never fails the others (#11.4)', () => {
  it('SNS FIFO (fauxqs): a lone surrogate in one subject is rejected alone; the other aggregates are delivered', async () => {
    const sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    const sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const { topicArn, queueUrl } = await createFifoTopicWithQueue(sns, sqs, {
      topic: 'lone-surrogate',
      queue: 'lone-surrogate',
    });
    // JSON.parse('"\\ud800"') of a foreign writer's envelope gives a lone surrogate: valid JSON, invalid Unicode.
    const records = [record('order#1'), record('order#2', { subject: '\ud800' }), record('order#3')];
    const { outcomes } = await publishInOrder(
      records,
      [snsFifoPublisher({ client: sns, topicArn })],
      forever,
    );
    expect(outcomes.map((o) => o.status)).toEqual(['published', 'rejected', 'published']);
    expect(outcomes[1]).toMatchObject({ reason: expect.stringMatching(/lone UTF-16 surrogate/) });
    const delivered = (await drainQueue(sqs, queueUrl)).map((m) => JSON.parse(m.Body ?? '{}').partitionkey);
    expect(delivered.sort()).toEqual(['order#1', 'order#3']);
  });

  it('EventBridge: an absurd createdAt never turns the PutEvents body into invalid JSON', async () => {
    const client = new EventBridgeClient({
      ...localAwsConfig('http://127.0.0.1:9'),
      maxAttempts: 1,
    });
    const bodies: string[] = [];
    // The SDK's own serialisation, captured just before sending; answered here, so no endpoint is needed.
    client.middlewareStack.add(
      () => async (args) => {
        const body = String((args.request as { body?: unknown }).body ?? '');
        bodies.push(body);
        const count = (JSON.parse(body) as { Entries: unknown[] }).Entries.length;
        return {
          response: { statusCode: 200, headers: {}, body: undefined },
          output: {
            $metadata: {},
            FailedEntryCount: 0,
            Entries: Array.from({ length: count }, (_, i) => ({ EventId: `e${i}` })),
          },
        } as never;
      },
      { step: 'finalizeRequest', name: 'captureBody', priority: 'low' },
    );
    const records = [record('order#1', { createdAt: 1e20 }), record('order#2', { createdAt: -5 })];
    const { outcomes } = await publishInOrder(
      records,
      [eventBridgePublisher({ client, eventBusName: 'orders' })],
      forever,
    );
    expect(outcomes.map((o) => o.status)).toEqual(['published', 'published']);
    expect(bodies).toHaveLength(1);
    const entries = (JSON.parse(bodies[0] ?? '') as { Entries: { Time?: unknown }[] }).Entries;
    expect(entries.map((e) => e.Time)).toEqual([undefined, undefined]);
  });
});
