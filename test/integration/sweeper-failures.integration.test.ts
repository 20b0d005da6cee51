import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  type CheckbackAnswer,
  DEFAULT_SWEEPER_OPTIONS,
  type SweeperDependencies,
  sweep,
} from '../../functions/recovery/sweeper.ts';
import { OutboxRetryableError } from '../../functions/runtime/errors.ts';
import { eventSortKey, preparedSortKey } from '../../functions/runtime/record-format.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const HOUR = 3_600_000;

describe('sweeper with a failing check-back step, against DynamoDB Local (#10.4)', () => {
  it('counts a confirm that throws as an attempt, quarantines it at the limit, and still resolves the others', async () => {
    const outbox = await createLocalOutboxTable(endpoint(), 'failing-confirm');
    let clock = Date.UTC(2026, 10, 30, 12, 0, 0);
    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/payments',
      client: outbox.doc,
      now: () => clock,
    });
    // Prepared first, so its entry comes first in the run: it must not stop the two after it.
    const broken = await writer.prepare('pay#broken', { type: 'Charged', data: {} });
    const committed = await writer.prepare('pay#ok', { type: 'Charged', data: {} });
    const rolledBack = await writer.prepare('pay#undo', { type: 'Charged', data: {} });
    const answers = new Map<string, CheckbackAnswer>([
      [broken.id, 'committed'],
      [committed.id, 'committed'],
      [rolledBack.id, 'rolled-back'],
    ]);
    const deps: SweeperDependencies = {
      client: outbox.doc,
      tableName: outbox.tableName,
      now: () => clock,
      republish: async () => ({ published: [], failed: new Map() }),
      checkback: async ({ eventId }) => answers.get(eventId) ?? 'unknown',
      confirm: async (message) => {
        if (message.id === broken.id)
          throw new OutboxRetryableError('Confirming failed', new Error('throttled'));
        return writer.confirm(message);
      },
      cancel: (message, reason) => writer.cancel(message, reason),
    };
    const item = async (pk: string, sk: string) =>
      (
        await outbox.doc.send(
          new GetCommand({ TableName: outbox.tableName, Key: { pk, sk }, ConsistentRead: true }),
        )
      ).Item;

    clock += DEFAULT_SWEEPER_OPTIONS.checkbackAfterMs;
    const first = await sweep(deps);
    expect(first).toMatchObject({ confirmed: 1, cancelled: 1, retried: 1, quarantined: 0 });
    expect(first.failures.map((f) => [f.step, f.eventId])).toEqual([['confirm', broken.id]]);
    expect((await item('pay#ok', eventSortKey(1)))?.status).toBe('READY');
    expect((await item('pay#undo', preparedSortKey(rolledBack.id)))?.status).toBe('CANCELLED');
    const afterFirst = await item('pay#broken', preparedSortKey(broken.id));
    expect(afterFirst).toMatchObject({ status: 'PREPARED', attempts: 1 });
    expect(String(afterFirst?.lastError)).toMatch(/confirm failed: OutboxRetryableError/);

    let quarantined = 0;
    for (let run = 0; run < 10 && quarantined === 0; run++) {
      clock += HOUR;
      quarantined = (await sweep(deps)).quarantined;
    }
    expect(quarantined).toBe(1);
    expect(await item('pay#broken', preparedSortKey(broken.id))).toMatchObject({
      status: 'QUARANTINED',
      attempts: DEFAULT_SWEEPER_OPTIONS.maxAttempts,
      pendingShard: `Q#${broken.id.slice(-1)}`,
    });
  });
});
