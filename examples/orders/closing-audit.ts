/**
 * The demo's closing delivery audit: the run's window audited by the stack's own scheduled audit function
 * (invoked once with that window), so the same code and configuration as in production say, per subscription,
 * how many events its filter selects and how many its consumer applied; its `MissingEffects` metric is read back
 * from the offline runtime's metric store. Any missing effect fails the run.
 */
import type { DemoStack } from './synth.ts';

export interface SubscriptionAuditFigures {
  readonly subscription: string;
  readonly selected: number;
  readonly applied: number;
  readonly missing: number;
  readonly quarantined: number;
  readonly pending: number;
  /** The MissingEffects datum the function published (undefined when none reached the metric store). */
  readonly missingEffectsMetric?: number;
  readonly missingEventIds: readonly string[];
}

export interface ClosingAudit {
  readonly window: { readonly from: string; readonly to: string };
  readonly itemsRead: number;
  readonly readUnits: number;
  readonly subscriptions: readonly SubscriptionAuditFigures[];
}

/** What the audit function returns (functions/audit/handler.ts), as far as the demo reads it. */
interface AuditSummary {
  readonly result?: {
    readonly window: { readonly from: string; readonly to: string };
    readonly scannedCount: number;
    readonly readUnits: { readonly scan: number; readonly dedup: number };
    readonly subscriptions: readonly {
      readonly subscription: string;
      readonly expected: number;
      readonly applied: number;
      readonly missing: number;
      readonly deadLettered: number;
      readonly quarantined: number;
      readonly pending?: number;
      readonly missingEvents: readonly { readonly id: string }[];
    }[];
  };
}

export async function runClosingAudit(
  stack: DemoStack,
  window: { readonly from: number; readonly to: number },
): Promise<ClosingAudit> {
  const startedAt = Date.now();
  const outcome = await stack.runtime.invoke(stack.resources.audit, { auditWindow: window });
  if (outcome.error) {
    throw new Error(
      `the closing audit failed: ${outcome.error.errorType}: ${outcome.error.errorMessage} (see the functions log)`,
    );
  }
  const result = (outcome.result as AuditSummary | null)?.result;
  if (!result)
    throw new Error('the closing audit audited no subscription: the stack has no audited consumer');
  const published = (subscription: string) =>
    stack.runtime.metrics
      .all()
      .filter(
        (d) =>
          d.metricName === 'MissingEffects' &&
          d.dimensions.subscription === subscription &&
          d.timestamp >= startedAt,
      )
      .at(-1)?.value;
  return {
    window: result.window,
    itemsRead: result.scannedCount,
    readUnits: result.readUnits.scan + result.readUnits.dedup,
    subscriptions: result.subscriptions.map((s) => {
      const metric = published(s.subscription);
      return {
        subscription: s.subscription,
        selected: s.expected,
        applied: s.applied,
        missing: s.missing + s.deadLettered,
        quarantined: s.quarantined,
        pending: s.pending ?? 0,
        ...(metric === undefined ? {} : { missingEffectsMetric: metric }),
        missingEventIds: s.missingEvents.map((m) => m.id),
      };
    }),
  };
}

export function renderClosingAudit(audit: ClosingAudit): string {
  return audit.subscriptions
    .map(
      (s) =>
        `audit ${s.subscription}: selected=${s.selected} applied=${s.applied} missing=${s.missing} quarantined=${s.quarantined} pending=${s.pending} MissingEffects=${s.missingEffectsMetric ?? '-'}` +
        (s.missing > 0 ? `  missing: ${s.missingEventIds.slice(0, 10).join(', ')}` : ''),
    )
    .join('\n');
}

/** The run fails on any missing effect, or when the metric the alarm watches did not say the same. */
export function closingAuditProblems(audit: ClosingAudit): string[] {
  return audit.subscriptions.flatMap((s) => [
    ...(s.missing > 0
      ? [`audit ${s.subscription}: ${s.missing} selected event(s) without the consumer's effect`]
      : []),
    ...(s.missingEffectsMetric !== s.missing
      ? [
          `audit ${s.subscription}: MissingEffects metric ${s.missingEffectsMetric ?? 'absent'} ≠ ${s.missing}`,
        ]
      : []),
  ]);
}
