import { describe, expect, it } from 'vitest';
import {
  type ClosingAudit,
  closingAuditProblems,
  renderClosingAudit,
} from '../../examples/orders/closing-audit.ts';

const audit = (missing: number, metric: number | undefined): ClosingAudit => ({
  window: { from: '2026-11-30T06:40:00.000Z', to: '2026-11-30T06:41:00.000Z' },
  itemsRead: 121,
  readUnits: 40,
  subscriptions: [
    {
      subscription: 'billing',
      selected: 120,
      applied: 120 - missing,
      missing,
      quarantined: 0,
      pending: 0,
      ...(metric === undefined ? {} : { missingEffectsMetric: metric }),
      missingEventIds: missing > 0 ? ['evt-7'] : [],
    },
  ],
});

describe('the demo closing audit', () => {
  it('prints one line per subscription and passes when nothing is missing and the metric agrees', () => {
    expect(renderClosingAudit(audit(0, 0))).toBe(
      'audit billing: selected=120 applied=120 missing=0 quarantined=0 pending=0 MissingEffects=0',
    );
    expect(closingAuditProblems(audit(0, 0))).toEqual([]);
  });

  it('fails the run on a missing effect, naming it', () => {
    expect(renderClosingAudit(audit(1, 1))).toContain(
      'missing=1 quarantined=0 pending=0 MissingEffects=1  missing: evt-7',
    );
    expect(closingAuditProblems(audit(1, 1))).toEqual([
      "audit billing: 1 selected event(s) without the consumer's effect",
    ]);
  });

  it('fails the run when the metric the alarm watches is absent or disagrees', () => {
    expect(closingAuditProblems(audit(0, undefined))).toEqual([
      'audit billing: MissingEffects metric absent ≠ 0',
    ]);
  });
});
