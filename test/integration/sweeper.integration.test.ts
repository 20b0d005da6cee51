import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckbackAnswer,
  DEFAULT_SWEEPER_OPTIONS,
  type SweeperDependencies,
  sweep,
} from '../../functions/recovery/sweeper.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const MINUTE = 60_000;

describe('recovery sweeper against DynamoDB Local', () => {
  let outbox: LocalOutbox;
  let clock: number;
  let writer: OutboxWriter;
  const answers = new Map<string, CheckbackAnswer>();
  const checkbackCalls: string[] = [];

  function deps(overrides: Partial<SweeperDependencies> = {}): SweeperDependencies {
    return {
      client: outbox.doc,
      tableName: outbox.tableName,
      now: () => clock,
      republish: async () => ({ published: [], failed: new Map() }),
      checkback: async ({ eventId }) => {
        checkbackCalls.push(eventId);
        return answers.get(eventId) ?? 'unknown';
      },
      confirm: (m) => writer.confirm(m),
      cancel: (m, reason) => writer.cancel(m, reason),
      ...overrides,
    };
  }

  async function record(pk: string, sk: string) {
    return (
      await outbox.doc.send(
        new GetCommand({ TableName: outbox.tableName, Key: { pk, sk }, ConsistentRead: true }),
      )
    ).Item;
  }

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'sweeper');
    clock = Date.UTC(2026, 10, 22, 12, 0, 0);
    writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/orders',
      client: outbox.doc,
      now: () => clock,
    });
  });

  it('does not release a delayed event early, and releases it within one sweeper period after deliverAt', async () => {
    const deliverAt = clock + 30 * MINUTE;
    await writer.transact({
      aggregate: { key: 'delayed#1' },
      events: [{ type: 'CancelIfUnpaid', data: {}, deliverAt }],
    });
    const period = MINUTE;
    // Sweeper runs every period; before deliverAt it must leave the record scheduled.
    for (let t = clock; t < deliverAt; t += period) {
      clock = t;
      await sweep(deps());
      expect((await record('delayed#1', 'EVT#000000000001'))?.status).toBe('SCHEDULED');
    }
    clock = deliverAt + period - 1; // the first run at or after deliverAt
    const result = await sweep(deps());
    expect(result.released).toBe(1);
    expect((await record('delayed#1', 'EVT#000000000001'))?.status).toBe('READY');
  });

  it('resolves a stale prepared message by check-back: committed → confirmed, rolled back → cancelled', async () => {
    const committed = await writer.prepare('pay#9', { type: 'Charged', data: {} });
    const rolledBack = await writer.prepare('pay#10', { type: 'Charged', data: {} });
    answers.set(committed.id, 'committed');
    answers.set(rolledBack.id, 'rolled-back');
    // Not stale yet: no check-back call.
    await sweep(deps());
    expect(checkbackCalls).not.toContain(committed.id);
    clock += DEFAULT_SWEEPER_OPTIONS.checkbackAfterMs;
    const result = await sweep(deps());
    expect(result.confirmed).toBe(1);
    expect(result.cancelled).toBe(1);
    expect((await record('pay#9', 'EVT#000000000001'))?.status).toBe('READY');
    expect((await record('pay#10', `PRE#${rolledBack.id}`))?.status).toBe('CANCELLED');
    expect(await record('pay#10', 'EVT#000000000001')).toBeUndefined();
  });

  it('retries an unknown check-back answer with backoff, then quarantines it', async () => {
    const unknown = await writer.prepare('pay#11', { type: 'Charged', data: {} });
    clock += DEFAULT_SWEEPER_OPTIONS.checkbackAfterMs;
    for (let run = 0; run < 20; run++) {
      await sweep(deps());
      if ((await record('pay#11', `PRE#${unknown.id}`))?.status !== 'PREPARED') break;
      clock += 60 * MINUTE;
    }
    const item = await record('pay#11', `PRE#${unknown.id}`);
    expect(item?.status).toBe('QUARANTINED');
    expect(item?.attempts).toBe(DEFAULT_SWEEPER_OPTIONS.maxAttempts);
    expect(item?.pendingShard).toBe(`Q#${unknown.id.slice(-1)}`);
    expect(checkbackCalls.filter((id) => id === unknown.id)).toHaveLength(
      DEFAULT_SWEEPER_OPTIONS.maxAttempts,
    );
  });

  it('reports the oldest unpublished age and count, and reads the same index units when nothing is stuck', async () => {
    const empty = await createLocalOutboxTable(endpoint(), 'sweeper-empty');
    const quiet = { ...deps(), client: empty.doc, tableName: empty.tableName };
    const first = await sweep(quiet);
    expect(first.unpublishedCount).toBe(0);
    expect(first.oldestUnpublishedAgeMs).toBe(0);
    const w = new OutboxWriter({
      tableName: empty.tableName,
      source: '/s',
      client: empty.doc,
      now: () => clock - 5000,
    });
    await w.transact({ aggregate: { key: 'x' }, events: [{ type: 'T', data: {} }] });
    const second = await sweep(quiet);
    expect(second.unpublishedCount).toBe(1);
    expect(second.oldestUnpublishedAgeMs).toBe(5000);
  });
});
