import { gzipSync } from 'node:zlib';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { type SweeperDependencies, sweep } from '../../functions/recovery/sweeper.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { eventSortKey, pendingShardOf } from '../../functions/runtime/record-format.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const MINUTE = 60_000;

/** Tracked mode: an event record and one overdue PENDING ack of subscriber `billing`. */
async function eventWithOverdueAck(outbox: LocalOutbox, event: Record<string, unknown>) {
  const id = String(event.id);
  await outbox.doc.send(new PutCommand({ TableName: outbox.tableName, Item: event }));
  await outbox.doc.send(
    new PutCommand({
      TableName: outbox.tableName,
      Item: {
        pk: `ACK#${id}`,
        sk: 'billing',
        id,
        status: 'PENDING',
        subscriber: 'billing',
        queueUrl: 'http://localhost/000000000000/billing.fifo',
        fifo: true,
        eventPk: event.pk,
        eventSk: event.sk,
        attempts: 0,
        createdAt: NOW - 10 * MINUTE,
        pendingShard: pendingShardOf(id),
        pendingDueAt: NOW - 5 * MINUTE,
      },
    }),
  );
}

function sweeperDeps(outbox: LocalOutbox, redelivered: string[]): SweeperDependencies {
  return {
    client: outbox.doc,
    tableName: outbox.tableName,
    now: () => NOW,
    republish: async () => ({ published: [], failed: new Map() }),
    checkback: async () => 'unknown',
    confirm: async () => undefined,
    cancel: async () => undefined,
    redeliver: async (_target, envelope) => {
      redelivered.push(envelope);
    },
  };
}

describe('sweeper redelivery of overdue acks against DynamoDB Local', () => {
  it('does not inflate an envelopeGzip past 1 MiB: the ack is marked FAILED, nothing is redelivered (#11.6)', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'ack-zip-bomb');
    const id = uuidv7(NOW - 10 * MINUTE);
    // 2 MiB of JSON in a few KB of gzip (a 397 KB item inflates to ~400 MB the same way).
    const bomb = gzipSync(Buffer.from(JSON.stringify({ id, pad: ' '.repeat(2 * 1_048_576) })));
    expect(bomb.byteLength).toBeLessThan(10_000);
    await eventWithOverdueAck(outbox, {
      pk: 'order#1',
      sk: eventSortKey(1),
      id,
      type: 'T',
      source: '/s',
      sequence: 1,
      status: 'PUBLISHED',
      envelopeGzip: bomb,
      createdAt: NOW - 10 * MINUTE,
    });
    const redelivered: string[] = [];
    const result = await sweep(sweeperDeps(outbox, redelivered));
    // Lengths, not the strings: a failing diff of 2 MiB would take minutes.
    expect(redelivered.map((envelope) => envelope.length)).toEqual([]);
    expect(result.acksFailed).toBe(1);
    const ack = (
      await outbox.doc.send(
        new GetCommand({ TableName: outbox.tableName, Key: { pk: `ACK#${id}`, sk: 'billing' } }),
      )
    ).Item;
    expect(ack?.status).toBe('FAILED');
    expect(String(ack?.lastError)).toMatch(/at most 1048576 bytes/);
  });

  it('does not redeliver while the event is not yet PUBLISHED: the ack waits another timeout (#10.6)', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'ack-before-publish');
    const id = uuidv7(NOW - 10 * MINUTE);
    await eventWithOverdueAck(outbox, {
      pk: 'order#2',
      sk: eventSortKey(1),
      id,
      type: 'T',
      source: '/s',
      sequence: 1,
      status: 'READY',
      envelope: JSON.stringify({ id }),
      createdAt: NOW - 10 * MINUTE,
    });
    const redelivered: string[] = [];
    const result = await sweep(sweeperDeps(outbox, redelivered));
    expect(redelivered).toEqual([]);
    expect(result).toMatchObject({ redelivered: 0, acksFailed: 0 });
    const ack = (
      await outbox.doc.send(
        new GetCommand({ TableName: outbox.tableName, Key: { pk: `ACK#${id}`, sk: 'billing' } }),
      )
    ).Item;
    expect(ack).toMatchObject({ status: 'PENDING', attempts: 0, pendingDueAt: NOW + 5 * MINUTE });
  });
});
