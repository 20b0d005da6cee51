import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_SWEEPER_OPTIONS,
  type SweeperDependencies,
  sweep,
} from '../../functions/recovery/sweeper.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { eventSortKey, pendingShardOf } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const MINUTE = 60_000;

/** Sweeper runs against a fresh table per test, with a republish stub that records what it was given. */
describe('sweeper due times against DynamoDB Local', () => {
  let clock: number;

  async function freshOutbox(prefix: string) {
    const outbox = await createLocalOutboxTable(endpoint(), prefix);
    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
    const republished: string[] = [];
    const deps = (overrides: Partial<SweeperDependencies> = {}): SweeperDependencies => ({
      client: outbox.doc,
      tableName: outbox.tableName,
      now: () => clock,
      republish: async (items) => {
        const ids = items.map((item) => String(item.id));
        republished.push(...ids);
        return { published: [], failed: new Map(ids.map((id) => [id, 'not published in this test'])) };
      },
      checkback: async () => 'unknown',
      confirm: async () => undefined,
      cancel: async () => undefined,
      ...overrides,
    });
    const item = async (pk: string, sk: string) =>
      (
        await outbox.doc.send(
          new GetCommand({ TableName: outbox.tableName, Key: { pk, sk }, ConsistentRead: true }),
        )
      ).Item;
    return { outbox, writer, republished, deps, item };
  }

  beforeAll(() => {
    clock = Date.UTC(2026, 10, 30, 12, 0, 0);
  });

  it('republishes a stuck READY record that a foreign writer stored without createdAt (#10.8)', async () => {
    const { outbox, republished, deps } = await freshOutbox('no-created-at');
    const committedAt = clock - 10 * MINUTE;
    const id = uuidv7(committedAt);
    const envelope = { specversion: '1.0', id, type: 'T', source: '/go', partitionkey: 'go#1', sequence: 1 };
    // What a writer in another language may store: no createdAt, everything else per the record format.
    await outbox.doc.send(
      new PutCommand({
        TableName: outbox.tableName,
        Item: {
          pk: 'go#1',
          sk: eventSortKey(1),
          id,
          type: 'T',
          source: '/go',
          sequence: 1,
          status: 'READY',
          envelope: JSON.stringify(envelope),
          attempts: 0,
          pendingShard: pendingShardOf(id),
          pendingDueAt: committedAt,
        },
      }),
    );
    const result = await sweep(deps());
    expect(republished).toEqual([id]);
    expect(result.oldestUnpublishedAgeMs).toBe(10 * MINUTE);
  });

  it('does not count a record released from SCHEDULED as stuck on the next run: its age starts at release', async () => {
    const { writer, republished, deps, item } = await freshOutbox('released-age');
    const deliverAt = clock + 60 * MINUTE;
    await writer.transact({ aggregate: { key: 'late#1' }, events: [{ type: 'T', data: {}, deliverAt }] });
    clock = deliverAt + 30_000;
    expect((await sweep(deps())).released).toBe(1);
    expect((await item('late#1', eventSortKey(1)))?.status).toBe('READY');
    // One sweeper period later the stream path has had its chance; the record is not yet stuck.
    clock += MINUTE;
    const next = await sweep(deps());
    expect(republished).toEqual([]);
    expect(next.oldestUnpublishedAgeMs).toBe(MINUTE);
    // Only once it has been READY for the stuck threshold does the sweeper republish it.
    clock += DEFAULT_SWEEPER_OPTIONS.stuckAfterMs;
    await sweep(deps());
    expect(republished).toHaveLength(1);
  });

  it('does not count a record retried out of quarantine as stuck on the next run', async () => {
    const { outbox, writer, republished, deps } = await freshOutbox('retried-age');
    const committed = clock;
    await writer.transact({ aggregate: { key: 'fixed#1' }, events: [{ type: 'T', data: {} }] });
    const [{ id }] = [
      (
        await outbox.doc.send(
          new GetCommand({ TableName: outbox.tableName, Key: { pk: 'fixed#1', sk: eventSortKey(1) } }),
        )
      ).Item as { id: string },
    ];
    clock = committed + 3 * 60 * MINUTE;
    // What `outbox quarantine retry <id>` writes: READY, attempts 0, back in its P# shard, due now.
    await outbox.doc.send(
      new UpdateCommand({
        TableName: outbox.tableName,
        Key: { pk: 'fixed#1', sk: eventSortKey(1) },
        UpdateExpression:
          'SET #status = :ready, attempts = :zero, pendingShard = :shard, pendingDueAt = :now',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':ready': 'READY',
          ':zero': 0,
          ':shard': pendingShardOf(id),
          ':now': clock,
        },
      }),
    );
    clock += MINUTE;
    const next = await sweep(deps());
    expect(republished).toEqual([]);
    expect(next.oldestUnpublishedAgeMs).toBe(MINUTE);
  });
});
