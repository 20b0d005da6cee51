import { BatchWriteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
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

describe('sweeper index reads against DynamoDB Local', () => {
  const now = Date.UTC(2026, 10, 30, 12, 0, 0);

  /** Puts READY or SCHEDULED records straight into the table (a BatchWrite per 25), with ids chosen by the test. */
  async function putRecords(
    outbox: Awaited<ReturnType<typeof createLocalOutboxTable>>,
    records: readonly { pk: string; id: string; status: string; dueAt: number }[],
  ) {
    for (let i = 0; i < records.length; i += 25) {
      await outbox.doc.send(
        new BatchWriteCommand({
          RequestItems: {
            [outbox.tableName]: records.slice(i, i + 25).map((r) => ({
              PutRequest: {
                Item: {
                  pk: r.pk,
                  sk: eventSortKey(1),
                  id: r.id,
                  type: 'T',
                  source: '/s',
                  sequence: 1,
                  status: r.status,
                  envelope: '{}',
                  createdAt: r.dueAt,
                  attempts: 0,
                  pendingShard: pendingShardOf(r.id),
                  pendingDueAt: r.dueAt,
                },
              },
            })),
          },
        }),
      );
    }
  }

  const quietDeps = (outbox: Awaited<ReturnType<typeof createLocalOutboxTable>>): SweeperDependencies => ({
    client: outbox.doc,
    tableName: outbox.tableName,
    now: () => now,
    republish: async () => ({ published: [], failed: new Map() }),
    checkback: async () => 'unknown',
    confirm: async () => undefined,
    cancel: async () => undefined,
  });

  it('reads the same index units on a quiet run whether or not 1,000 future-dated records exist (#10.9)', async () => {
    const empty = await createLocalOutboxTable(endpoint(), 'quiet-empty');
    const future = await createLocalOutboxTable(endpoint(), 'quiet-future');
    await putRecords(
      future,
      Array.from({ length: 1000 }, (_, i) => ({
        pk: `later#${i}`,
        id: uuidv7(now + i),
        status: 'SCHEDULED',
        dueAt: now + 86_400_000 + i,
      })),
    );
    const baseline = await sweep(quietDeps(empty));
    const withFuture = await sweep(quietDeps(future));
    expect(withFuture.released).toBe(0);
    expect(withFuture.indexReadUnits).toBe(baseline.indexReadUnits);
  });

  it('takes the oldest due entries across shards when more are due than one run handles', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'cap-oldest');
    // The oldest records live in the last shards (P#f, P#e), the newest in the first ones.
    const withLastDigit = (digit: string, at: number) => `${uuidv7(at).slice(0, -1)}${digit}`;
    const records = [
      { pk: 'old#1', id: withLastDigit('f', now), status: 'READY', dueAt: now - 50 * MINUTE },
      { pk: 'old#2', id: withLastDigit('e', now), status: 'READY', dueAt: now - 40 * MINUTE },
      { pk: 'new#1', id: withLastDigit('0', now), status: 'READY', dueAt: now - 10 * MINUTE },
      { pk: 'new#2', id: withLastDigit('1', now), status: 'READY', dueAt: now - 9 * MINUTE },
      { pk: 'new#3', id: withLastDigit('2', now), status: 'READY', dueAt: now - 8 * MINUTE },
    ];
    await putRecords(outbox, records);
    const republished: string[] = [];
    await sweep(
      {
        ...quietDeps(outbox),
        republish: async (items) => {
          republished.push(...items.map((item) => String(item.pk)));
          return { published: items.map((item) => String(item.id)), failed: new Map() };
        },
      },
      { ...DEFAULT_SWEEPER_OPTIONS, maxEntriesPerRun: 2 },
    );
    expect(republished.sort()).toEqual(['old#1', 'old#2']);
  });

  it('keeps a record being retried in the age metric between attempts', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'backoff-visible');
    const id = uuidv7(now);
    await putRecords(outbox, [{ pk: 'failing#1', id, status: 'READY', dueAt: now - 10 * MINUTE }]);
    let clock = now;
    const attempts: number[] = [];
    const deps = {
      ...quietDeps(outbox),
      now: () => clock,
      republish: async () => {
        attempts.push(clock);
        return { published: [], failed: new Map([[id, 'target down']]) };
      },
    };
    await sweep(deps);
    expect(attempts).toHaveLength(1);
    clock += 30_000; // inside the first backoff (1 minute)
    const between = await sweep(deps);
    expect(attempts).toHaveLength(1);
    expect(between.oldestUnpublishedAgeMs).toBe(10 * MINUTE + 30_000);
    expect(between.unpublishedCount).toBe(1);
    clock += DEFAULT_SWEEPER_OPTIONS.backoffBaseMs;
    await sweep(deps);
    expect(attempts).toHaveLength(2);
  });

  it('never releases or republishes a due record in the reserved key space, and counts it (#11.2)', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'reserved-keys');
    await putRecords(outbox, [
      { pk: 'P#3', id: uuidv7(now), status: 'READY', dueAt: now - 10 * MINUTE },
      { pk: 'ACK#forged', id: uuidv7(now), status: 'READY', dueAt: now - 10 * MINUTE },
      { pk: 'Q#a', id: uuidv7(now), status: 'SCHEDULED', dueAt: now - MINUTE },
    ]);
    const republished: string[] = [];
    const result = await sweep({
      ...quietDeps(outbox),
      republish: async (items) => {
        republished.push(...items.map((item) => String(item.pk)));
        return { published: [], failed: new Map() };
      },
    });
    expect(republished).toEqual([]);
    expect(result.released).toBe(0);
    // A READY item under ACK# is no ack (acks are PENDING): reserved too.
    expect(result.reservedKeyIgnored).toBe(3);
    expect(result.reservedKeys.map((k) => k.pk).sort()).toEqual(['ACK#forged', 'P#3', 'Q#a']);
  });
});
