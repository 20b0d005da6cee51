import { describe, expect, it } from 'vitest';
import {
  type AppliedEffect,
  buildReport,
  type CommittedEvent,
  isClean,
  renderReport,
  resultLine,
} from '../../examples/orders/report.ts';

const committed: CommittedEvent[] = [
  { id: 'e1', aggregateKey: 'a', sequence: 1, type: 'Placed', committedAt: 1000 },
  { id: 'e2', aggregateKey: 'a', sequence: 2, type: 'Paid', committedAt: 1100 },
  { id: 'e3', aggregateKey: 'b', sequence: 1, type: 'Placed', committedAt: 1200 },
];
const subscribers = [
  { name: 'billing', types: ['Placed', 'Paid'], ordered: true },
  { name: 'notify', types: ['Placed'], ordered: false },
];
const effect = (subscriber: string, eventId: string, appliedAt: number): AppliedEffect => {
  const e = committed.find((c) => c.id === eventId);
  return { subscriber, eventId, aggregateKey: e?.aggregateKey ?? '', sequence: e?.sequence ?? 0, appliedAt };
};

describe('buildReport', () => {
  it('is clean when every expected effect is applied once and in order, with latencies', () => {
    const report = buildReport({
      committed,
      subscribers,
      effects: [
        effect('billing', 'e1', 1050),
        effect('billing', 'e2', 1200),
        effect('billing', 'e3', 1300),
        effect('notify', 'e1', 1010),
        effect('notify', 'e3', 1210),
      ],
    });
    expect(isClean(report)).toBe(true);
    expect(report.subscribers.map((s) => [s.name, s.expected, s.applied])).toEqual([
      ['billing', 3, 3],
      ['notify', 2, 2],
    ]);
    expect(report.latencyMs.p50).toBe(50);
    expect(report.latencyMs.p99).toBe(100);
    expect(resultLine(report)).toBe(
      'RESULT committed=3 lost=0 duplicate_effects=0 order_violations=0 p50_ms=50 p99_ms=100',
    );
  });

  it('counts lost events, duplicate effects and order violations', () => {
    const report = buildReport({
      committed,
      subscribers,
      effects: [
        effect('billing', 'e2', 1150),
        effect('billing', 'e1', 1160), // sequence 1 applied after 2: violation
        effect('billing', 'e3', 1300),
        effect('notify', 'e1', 1010),
        effect('notify', 'e1', 1020), // duplicate effect; e3 lost for notify
      ],
    });
    expect(report.lost).toBe(1);
    expect(report.duplicateEffects).toBe(1);
    expect(report.orderViolations).toBe(1);
    expect(isClean(report)).toBe(false);
  });

  it('leaves excluded (poison) events out of the expectations', () => {
    const report = buildReport({
      committed,
      subscribers: [{ name: 'notify', types: ['Placed'], ordered: false }],
      effects: [effect('notify', 'e1', 1010)],
      excluded: new Set(['e3']),
    });
    expect(report.committed).toBe(2);
    expect(report.lost).toBe(0);
  });

  it('renders each injected fault on its own line, verbatim', () => {
    const faults = [
      'tracked subscription with a source filter: refused at synth: Invalid subscription "audit": - a; b',
      'producer call o00006.pay: the producer failed with OutboxOutcomeUnknownError',
    ];
    const lines = renderReport(buildReport({ committed, subscribers, effects: [], faults })).split('\n');
    const at = lines.indexOf('faults injected:');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 3)).toEqual(faults.map((f) => `  - ${f}`));
    expect(renderReport(buildReport({ committed, subscribers, effects: [] }))).not.toContain(
      'faults injected',
    );
  });
});
