import { describe, expect, it } from 'vitest';
import { auditConfigFromEnv } from '../../functions/audit/config.ts';
import { AuditEnv } from '../../functions/audit/contract.ts';
import { planRun } from '../../functions/audit/run-plan.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';

const MIN = 60_000;
const T0 = Date.parse('2026-11-22T16:00:00Z');

describe('planRun', () => {
  const base = { lagMs: 10 * MIN, windowMs: 5 * MIN, itemCount: 1000, maxItemsPerRun: 50_000 };

  it('audits the aligned window that closed at least the lag ago, whatever the invocation jitter', () => {
    for (const jitter of [0, 1, 59_000, 4 * MIN + 59_000]) {
      const plan = planRun({ ...base, now: T0 + 15 * MIN + jitter });
      expect(plan.window).toEqual({ from: T0, to: T0 + 5 * MIN });
      expect(plan.settledBefore).toBe(T0 + 10 * MIN + jitter);
    }
    // The next run audits the next window: no gap, no overlap.
    expect(planRun({ ...base, now: T0 + 20 * MIN }).window).toEqual({
      from: T0 + 5 * MIN,
      to: T0 + 10 * MIN,
    });
  });

  it('scans the whole table while it fits the budget, and rotates over segments once it does not', () => {
    expect(planRun({ ...base, now: T0 }).totalSegments).toBe(1);
    const big = { ...base, itemCount: 400_000 };
    const plans = Array.from({ length: 10 }, (_, i) => planRun({ ...big, now: T0 + 15 * MIN + i * 5 * MIN }));
    expect(plans[0]?.totalSegments).toBe(10);
    expect(new Set(plans.map((p) => p.segment)).size).toBe(10);
  });
});

describe('auditConfigFromEnv', () => {
  it('reads the subscriptions and the defaults', () => {
    const config = auditConfigFromEnv({
      [AuditEnv.outboxTable]: 'outbox',
      [AuditEnv.dedupTable]: 'dedup',
      [AuditEnv.subscriptions]: JSON.stringify([
        { name: 'billing', filter: { kind: 'event-types', types: ['a'] } },
      ]),
    });
    expect(config).toEqual({
      outboxTableName: 'outbox',
      dedupTableName: 'dedup',
      subscriptions: [{ name: 'billing', filter: { kind: 'event-types', types: ['a'], prefixes: [] } }],
      lagMs: 600_000,
      windowMs: 300_000,
      maxItemsPerRun: 50_000,
    });
  });

  it('refuses a bad filter, naming the entry', () => {
    expect(() =>
      auditConfigFromEnv({
        [AuditEnv.outboxTable]: 'outbox',
        [AuditEnv.dedupTable]: 'dedup',
        [AuditEnv.subscriptions]: JSON.stringify([{ name: 'billing', filter: { kind: 'sns' } }]),
      }),
    ).toThrow(OutboxConfigurationError);
    expect(() => auditConfigFromEnv({ [AuditEnv.outboxTable]: 'o', [AuditEnv.lagSeconds]: '5' })).toThrow(
      /OUTBOX_AUDIT_LAG_SECONDS must be an integer from 60/,
    );
  });
});
