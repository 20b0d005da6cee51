import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqsRedeliverer } from '../../functions/recovery/redeliver.ts';
import { DEFAULT_SWEEPER_OPTIONS, sweep } from '../../functions/recovery/sweeper.ts';
import {
  acknowledge,
  getStatus,
  pendingAckItems,
  type TrackingConfig,
} from '../../functions/runtime/acks.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

const dynamo = useDynamoDbLocal();
const fauxqs = useFauxqs();

describe('delivery acknowledgements (tracked mode)', () => {
  let outbox: LocalOutbox;
  let sqs: SQSClient;
  let tracking: TrackingConfig;
  let clock = Date.UTC(2026, 10, 22, 12, 0, 0);

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamo(), 'acks');
    sqs = new SQSClient(localAwsConfig(fauxqs()));
    const billing = await sqs.send(
      new CreateQueueCommand({ QueueName: 'billing.fifo', Attributes: { FifoQueue: 'true' } }),
    );
    const shipping = await sqs.send(
      new CreateQueueCommand({ QueueName: 'shipping.fifo', Attributes: { FifoQueue: 'true' } }),
    );
    tracking = {
      OrderPlaced: [
        { name: 'billing', queueUrl: billing.QueueUrl ?? '', fifo: true },
        { name: 'shipping', queueUrl: shipping.QueueUrl ?? '', fifo: true },
      ],
    };
  });

  async function receiveAll(queueUrl: string) {
    const page = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    return page.Messages ?? [];
  }

  it('keeps a pending ack from TTL until it is done or failed; a done ack expires its retention after the ack (#10)', async () => {
    const publishedAt = Date.UTC(2026, 10, 22, 12, 0, 0);
    const items = pendingAckItems(
      { id: 'evt-ttl', type: 'OrderPlaced', pk: 'order#ttl', sk: 'EVT#000000000001' },
      tracking,
      publishedAt,
      300,
      7 * 86_400,
    );
    await outbox.doc.send(
      new BatchWriteCommand({
        RequestItems: { [outbox.tableName]: items.map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    const read = async (subscriber: string) =>
      (
        await outbox.doc.send(
          new GetCommand({
            TableName: outbox.tableName,
            Key: { pk: `ACK#evt-ttl#${subscriber}`, sk: subscriber },
            ConsistentRead: true,
          }),
        )
      ).Item;
    // Pending: no expiry at all, however long the redeliveries take.
    expect((await read('billing'))?.expiresAt).toBeUndefined();
    const ackedAt = publishedAt + 20 * 86_400 * 1000;
    expect(await acknowledge(outbox.doc, outbox.tableName, 'evt-ttl', 'billing', ackedAt)).toBe(true);
    expect((await read('billing'))?.expiresAt).toBe(Math.floor(ackedAt / 1000) + 7 * 86_400);
    expect((await read('shipping'))?.expiresAt).toBeUndefined();
  });

  it('redelivers to the subscriber that did not acknowledge, not to the one that did, then marks it failed', async () => {
    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
    const { events } = await writer.transact({
      aggregate: { key: 'order#1' },
      events: [{ type: 'OrderPlaced', data: {} }],
    });
    const event = events[0];
    if (!event) throw new Error('no event');
    // What the relay writes when it publishes a tracked event.
    const items = pendingAckItems(
      { id: event.id, type: event.type, pk: 'order#1', sk: 'EVT#000000000001' },
      tracking,
      clock,
      300,
      86_400,
    );
    await outbox.doc.send(
      new BatchWriteCommand({
        RequestItems: { [outbox.tableName]: items.map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    // The relay marks it PUBLISHED once every target took it (the sweeper redelivers only a published event).
    await outbox.doc.send(
      new UpdateCommand({
        TableName: outbox.tableName,
        Key: { pk: 'order#1', sk: 'EVT#000000000001' },
        UpdateExpression: 'SET #status = :published REMOVE pendingShard, pendingDueAt',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':published': 'PUBLISHED' },
      }),
    );
    expect(await acknowledge(outbox.doc, outbox.tableName, event.id, 'billing', clock)).toBe(true);
    expect(
      (await getStatus(outbox.doc, outbox.tableName, event.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({
      billing: { status: 'done', attempts: 0 },
      shipping: { status: 'pending', attempts: 0 },
    });

    const deps = {
      client: outbox.doc,
      tableName: outbox.tableName,
      now: () => clock,
      // The stuck READY event itself is republished successfully by the relay path (not under test here).
      republish: async (records: readonly Record<string, unknown>[]) => ({
        published: records.map((r) => String(r.id)),
        failed: new Map<string, string>(),
      }),
      checkback: async () => 'unknown' as const,
      confirm: async () => undefined,
      cancel: async () => undefined,
      redeliver: sqsRedeliverer(sqs),
    };
    clock += DEFAULT_SWEEPER_OPTIONS.ackTimeoutMs - 1;
    expect((await sweep(deps)).redelivered).toBe(0);
    clock += 2;
    expect((await sweep(deps)).redelivered).toBe(1);

    const [billingQueue, shippingQueue] = (tracking.OrderPlaced ?? []).map((s) => s.queueUrl);
    expect(await receiveAll(billingQueue ?? '')).toHaveLength(0);
    const redelivered = await receiveAll(shippingQueue ?? '');
    expect(redelivered.map((m) => JSON.parse(m.Body ?? '{}').id)).toEqual([event.id]);

    for (let i = 0; i < DEFAULT_SWEEPER_OPTIONS.maxRedeliveries + 1; i++) {
      clock += DEFAULT_SWEEPER_OPTIONS.ackTimeoutMs;
      await sweep(deps);
    }
    expect(
      (await getStatus(outbox.doc, outbox.tableName, event.id, ['billing', 'shipping'])).subscribers,
    ).toEqual({
      billing: { status: 'done', attempts: 0 },
      shipping: { status: 'failed', attempts: DEFAULT_SWEEPER_OPTIONS.maxRedeliveries },
    });
    expect(await acknowledge(outbox.doc, outbox.tableName, 'unknown-event', 'billing')).toBe(false);
  });
});
