import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocalAppCommand } from '../../local/cli.ts';
import { type DeliveryCheck, formatDeliveryCheck, type LocalApp, startLocal } from '../../local/index.ts';

const APP_DIR = path.join(import.meta.dirname, 'fixtures', 'outbox-app');

async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const row = (check: DeliveryCheck, name: string) => check.subscriptions.find((s) => s.subscription === name);

describe('local.check() on an outbox app (two stacks, ordered + rule subscriptions)', () => {
  let local: LocalApp;
  const eventIds: Record<string, string> = {};

  beforeAll(async () => {
    local = await startLocal({ cwd: APP_DIR, failedVisibilitySeconds: 1, log: () => {} });
  });
  afterAll(async () => {
    await local?.stop();
  });

  const place = async (orderId: string, other = false) => {
    const out = await local.invoke<{ eventId: string }>('Platform/PlaceOrder', { orderId, other });
    eventIds[orderId] = out.eventId;
  };

  it('counts per subscription what its filter expects, what it applied and what is in its DLQ', async () => {
    await place('o-1');
    await place('o-2');
    await place('n-1', true); // another type: the audit rule takes it, billing's filter policy does not
    await place('poison-1'); // both consumers fail it; audit (maxReceiveCount 2) dead-letters it
    const check = await eventually(async () => {
      const c = await local.check();
      const audit = row(c, 'audit');
      return audit &&
        audit.applied === 3 &&
        audit.deadLettered === 1 &&
        (row(c, 'billing')?.applied ?? 0) >= 2
        ? c
        : undefined;
    });
    expect(check.events).toBe(4);
    expect(row(check, 'audit')).toMatchObject({
      stackName: 'Ops',
      filter: 'event-pattern',
      expected: 4,
      applied: 3,
      deadLettered: 1,
      missing: 0,
      unexpectedApplied: 0,
    });
    expect(row(check, 'billing')).toMatchObject({
      stackName: 'Platform',
      filter: 'sns-filter-policy',
      expected: 3, // not n-1
      applied: 2,
      unexpectedApplied: 0,
    });
    const table = formatDeliveryCheck(check);
    expect(table).toMatch(/subscription\s+stack\s+filter\s+expected\s+applied\s+missing\s+dead-lettered/);
    expect(table).toMatch(/audit\s+Ops\s+event-pattern\s+4\s+3\s+0\s+1/);
  });

  it('reports an event its consumer never got as missing, and `outbox local --check` exits 1', async () => {
    // The audit consumer stops reading its queue: what is published now stays there.
    await Promise.all(
      [...local.runtime.sqsPollers.entries()]
        .filter(([id]) => id.startsWith('Ops/'))
        .map(([, p]) => p.stop()),
    );
    await place('o-3');
    const check = await eventually(async () => {
      const c = await local.check();
      return (row(c, 'billing')?.applied ?? 0) >= 3 ? c : undefined;
    });
    expect(row(check, 'audit')).toMatchObject({ expected: 5, applied: 3, deadLettered: 1, missing: 1 });
    expect(row(check, 'audit')?.missingEventIds).toEqual([eventIds['o-3']]);
    expect(check.ok).toBe(false);

    const out: string[] = [];
    const code = await runLocalAppCommand(
      ['--check', '--settle-seconds', '0'],
      { stdout: (s) => out.push(s), stderr: (s) => out.push(s) },
      { start: async () => local },
    );
    expect(code).toBe(1);
    expect(out.join('\n')).toMatch(new RegExp(`missing for audit: ${eventIds['o-3']}[\\s\\S]*MISSING`));
  });
});
