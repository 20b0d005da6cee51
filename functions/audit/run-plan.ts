/**
 * What one scheduled audit run reads: a closed window, aligned to its length so consecutive runs audit
 * consecutive windows whatever their invocation jitter, and the part of the table its item budget covers.
 */

export interface RunPlanInput {
  readonly now: number;
  readonly lagMs: number;
  readonly windowMs: number;
  /** The table's approximate item count (DescribeTable, refreshed about every 6 hours). */
  readonly itemCount: number;
  readonly maxItemsPerRun: number;
}

export interface RunPlan {
  /** [from, to) by commit time; `to` is at least `lag` before now. */
  readonly window: { readonly from: number; readonly to: number };
  /**
   * Events published at or after this time are still in delivery and not audited: publishing gets the first half
   * of the lag, the consumer's retries at least the second half.
   */
  readonly settledBefore: number;
  /** Scan segments of the table, and the one this run reads (a rotating sample when the table outgrows the budget). */
  readonly totalSegments: number;
  readonly segment: number;
}

/** Headroom for a stale item count and uneven segments. */
const SEGMENT_HEADROOM = 1.25;
const MAX_SEGMENTS = 1_000_000;

export function planRun(input: RunPlanInput): RunPlan {
  const to = Math.floor((input.now - input.lagMs) / input.windowMs) * input.windowMs;
  const totalSegments = Math.min(
    MAX_SEGMENTS,
    Math.max(1, Math.ceil((input.itemCount * SEGMENT_HEADROOM) / input.maxItemsPerRun)),
  );
  const windowIndex = Math.floor(to / input.windowMs);
  return {
    window: { from: to - input.windowMs, to },
    settledBefore: input.now - Math.floor(input.lagMs / 2),
    totalSegments,
    segment: windowIndex % totalSegments,
  };
}
