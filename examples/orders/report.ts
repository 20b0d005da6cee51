/**
 * The offline run's verdict: compares what was committed with what each subscriber applied.
 * Pure functions, so the invariants are unit-tested without starting anything.
 */

export interface CommittedEvent {
  readonly id: string;
  readonly aggregateKey: string;
  readonly sequence: number;
  readonly type: string;
  /** Epoch ms when the producer's transaction returned. */
  readonly committedAt: number;
}

/** One application of an event's effect by a subscriber (a duplicate effect shows up as two of these). */
export interface AppliedEffect {
  readonly subscriber: string;
  readonly eventId: string;
  readonly aggregateKey: string;
  readonly sequence: number;
  /** Epoch ms when the effect was applied. */
  readonly appliedAt: number;
}

export interface SubscriberSpec {
  readonly name: string;
  /** Event types the subscriber receives. */
  readonly types: readonly string[];
  /** Ordered subscribers must apply each aggregate's events in sequence order. */
  readonly ordered: boolean;
}

export interface SubscriberReport {
  readonly name: string;
  readonly ordered: boolean;
  readonly expected: number;
  readonly applied: number;
  readonly lost: number;
  readonly duplicateEffects: number;
  readonly orderViolations: number;
  readonly duplicatesSuppressed: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
}

export interface RunReport {
  readonly committed: number;
  readonly lost: number;
  readonly duplicateEffects: number;
  readonly orderViolations: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  readonly subscribers: readonly SubscriberReport[];
  readonly alarmsFired: readonly { readonly alarm: string; readonly at: string; readonly reason: string }[];
  readonly quarantined: number;
  readonly deadLettered: Readonly<Record<string, number>>;
  readonly faults: readonly string[];
  readonly durationMs: number;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

function latency(values: readonly number[]) {
  return { p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99) };
}

export interface ReportInput {
  readonly committed: readonly CommittedEvent[];
  readonly effects: readonly AppliedEffect[];
  readonly subscribers: readonly SubscriberSpec[];
  readonly duplicatesSuppressed?: Readonly<Record<string, number>>;
  /** Event ids that are meant not to be applied (the injected poison event). */
  readonly excluded?: ReadonlySet<string>;
  readonly alarmsFired?: RunReport['alarmsFired'];
  readonly quarantined?: number;
  readonly deadLettered?: Readonly<Record<string, number>>;
  readonly faults?: readonly string[];
  readonly durationMs?: number;
}

export function buildReport(input: ReportInput): RunReport {
  const excluded = input.excluded ?? new Set<string>();
  const committed = input.committed.filter((e) => !excluded.has(e.id));
  const subscribers = input.subscribers.map((spec): SubscriberReport & { latencies: number[] } => {
    const expected = committed.filter((e) => spec.types.includes(e.type));
    const effects = input.effects.filter((f) => f.subscriber === spec.name && !excluded.has(f.eventId));
    const byEvent = new Map<string, AppliedEffect[]>();
    for (const effect of effects)
      byEvent.set(effect.eventId, [...(byEvent.get(effect.eventId) ?? []), effect]);
    const lost = expected.filter((e) => !byEvent.has(e.id)).length;
    let duplicateEffects = 0;
    for (const list of byEvent.values()) duplicateEffects += list.length - 1;
    let orderViolations = 0;
    if (spec.ordered) {
      // Per aggregate, effects (first application of each event) must be applied in increasing sequence.
      const firsts = [...byEvent.values()].map((list) =>
        list.reduce((a, b) => (a.appliedAt <= b.appliedAt ? a : b)),
      );
      const byAggregate = new Map<string, AppliedEffect[]>();
      for (const f of firsts)
        byAggregate.set(f.aggregateKey, [...(byAggregate.get(f.aggregateKey) ?? []), f]);
      for (const list of byAggregate.values()) {
        list.sort((a, b) => a.appliedAt - b.appliedAt || a.sequence - b.sequence);
        for (let i = 1; i < list.length; i++) {
          if ((list[i]?.sequence ?? 0) < (list[i - 1]?.sequence ?? 0)) orderViolations++;
        }
      }
    }
    const committedAt = new Map(committed.map((e) => [e.id, e.committedAt]));
    const latencies = [...byEvent.values()]
      .map(
        (list) =>
          Math.min(...list.map((f) => f.appliedAt)) - (committedAt.get(list[0]?.eventId ?? '') ?? Number.NaN),
      )
      .filter((v) => Number.isFinite(v))
      .map((v) => Math.max(0, v));
    return {
      name: spec.name,
      ordered: spec.ordered,
      expected: expected.length,
      applied: byEvent.size,
      lost,
      duplicateEffects,
      orderViolations,
      duplicatesSuppressed: input.duplicatesSuppressed?.[spec.name] ?? 0,
      latencyMs: latency(latencies),
      latencies,
    };
  });
  const all = subscribers.flatMap((s) => s.latencies);
  return {
    committed: committed.length,
    lost: subscribers.reduce((n, s) => n + s.lost, 0),
    duplicateEffects: subscribers.reduce((n, s) => n + s.duplicateEffects, 0),
    orderViolations: subscribers.reduce((n, s) => n + s.orderViolations, 0),
    latencyMs: latency(all),
    subscribers: subscribers.map(({ latencies: _l, ...rest }) => rest),
    alarmsFired: input.alarmsFired ?? [],
    quarantined: input.quarantined ?? 0,
    deadLettered: input.deadLettered ?? {},
    faults: input.faults ?? [],
    durationMs: input.durationMs ?? 0,
  };
}

export function isClean(report: RunReport): boolean {
  return report.lost === 0 && report.duplicateEffects === 0 && report.orderViolations === 0;
}

/** The one machine-readable last line of `npm start`. */
export function resultLine(report: RunReport): string {
  return `RESULT committed=${report.committed} lost=${report.lost} duplicate_effects=${report.duplicateEffects} order_violations=${report.orderViolations} p50_ms=${Math.round(report.latencyMs.p50)} p99_ms=${Math.round(report.latencyMs.p99)}`;
}

/** A plain-text table for the terminal. */
export function renderReport(report: RunReport): string {
  const rows = [
    [
      'subscriber',
      'ordered',
      'expected',
      'applied',
      'lost',
      'dup effects',
      'dups suppressed',
      'order viol.',
      'p50 ms',
      'p95 ms',
      'p99 ms',
    ],
    ...report.subscribers.map((s) => [
      s.name,
      s.ordered ? 'yes' : 'no',
      s.expected,
      s.applied,
      s.lost,
      s.duplicateEffects,
      s.duplicatesSuppressed,
      s.orderViolations,
      Math.round(s.latencyMs.p50),
      Math.round(s.latencyMs.p95),
      Math.round(s.latencyMs.p99),
    ]),
  ].map((row) => row.map(String));
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const out = [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  out.push('');
  out.push(
    `events committed: ${report.committed}   quarantined: ${report.quarantined}   run: ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  const dlq = Object.entries(report.deadLettered).filter(([, n]) => n > 0);
  out.push(`dead-lettered: ${dlq.length ? dlq.map(([q, n]) => `${q}=${n}`).join(', ') : 'none'}`);
  // One fault a line: a fault's own text may contain `;` (e.g. a refusal message quoted verbatim).
  if (report.faults.length) out.push('faults injected:', ...report.faults.map((f) => `  - ${f}`));
  out.push(
    `alarms fired: ${report.alarmsFired.length ? report.alarmsFired.map((a) => a.alarm).join(', ') : 'none'}`,
  );
  return out.join('\n');
}

/** What the outbox table holds for the sample event: its envelope's trace context and the record's status. */
export interface TracedEvent {
  readonly id: string;
  /** The envelope's `traceparent`, as the producer committed it (undefined when it has none). */
  readonly traceparent?: string;
  /** The outbox record's status (`PUBLISHED` once the relay has published it). */
  readonly status: string;
}

export interface TraceHop {
  /** `producer`, `relay` or a consumer's name. */
  readonly hop: string;
  readonly seen: boolean;
  readonly detail: string;
}

export interface TraceSummary {
  readonly eventId: string;
  /** The W3C trace id (32 hex digits) of the producer's traceparent. */
  readonly traceId?: string;
  readonly hops: readonly TraceHop[];
  /** Consumers without a log line carrying the event's id and trace id. */
  readonly missing: readonly string[];
}

/** The trace id (32 hex) of a version-00 W3C traceparent; undefined for anything else. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent ?? '')?.[1];
}

/**
 * The JSON object of a functions-log line (`<ISO time> [<function name>] {…}`), with the function name; undefined
 * when the line carries no JSON object.
 */
export function parseFunctionLogLine(
  line: string,
): { readonly functionName?: string; readonly entry: Record<string, unknown> } | undefined {
  const start = line.indexOf('{');
  if (start < 0) return undefined;
  try {
    const entry: unknown = JSON.parse(line.slice(start));
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
    const functionName = /\[([^\]]+)\]/.exec(line.slice(0, start))?.[1];
    return {
      ...(functionName === undefined ? {} : { functionName }),
      entry: entry as Record<string, unknown>,
    };
  } catch {
    return undefined;
  }
}

/**
 * The log lines a consumer wrote for `eventId` with the producer's `traceId`: its Powertools `service` is the
 * consumer's name (or, failing that, its function name contains it).
 */
export function consumerTraceLines(
  lines: readonly string[],
  consumer: string,
  eventId: string,
  traceId: string,
): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  for (const line of lines) {
    if (!line.includes(eventId)) continue;
    const parsed = parseFunctionLogLine(line);
    if (!parsed || parsed.entry.eventId !== eventId || parsed.entry.traceId !== traceId) continue;
    const service = parsed.entry.service;
    const mine =
      typeof service === 'string'
        ? service === consumer
        : (parsed.functionName ?? '').toLowerCase().includes(consumer.toLowerCase());
    if (mine) found.push(parsed.entry);
  }
  return found;
}

/**
 * The trace of one event through the outbox, from what happened: the producer committed an envelope with a
 * traceparent; the relay published the record (status PUBLISHED: the relay sends the envelope's traceparent with
 * every message, see docs/tracing.md); each consumer wrote a log line with the event's id and the trace id.
 */
export function buildTraceSummary(input: {
  readonly event: TracedEvent;
  readonly consumers: readonly string[];
  readonly logLines: readonly string[];
}): TraceSummary {
  const { event } = input;
  const traceId = traceIdOf(event.traceparent);
  const hops: TraceHop[] = [
    traceId
      ? { hop: 'producer', seen: true, detail: 'committed' }
      : { hop: 'producer', seen: false, detail: 'no traceparent in the envelope' },
    event.status === 'PUBLISHED'
      ? traceId
        ? { hop: 'relay', seen: true, detail: 'published with traceparent' }
        : { hop: 'relay', seen: false, detail: 'published without traceparent' }
      : { hop: 'relay', seen: false, detail: `not published (status ${event.status})` },
  ];
  const missing: string[] = [];
  for (const consumer of input.consumers) {
    const lines = traceId ? consumerTraceLines(input.logLines, consumer, event.id, traceId) : [];
    if (lines.length > 0) {
      hops.push({
        hop: consumer,
        seen: true,
        detail: lines.length === 1 ? 'log line' : `${lines.length} log lines`,
      });
    } else {
      missing.push(consumer);
      hops.push({ hop: consumer, seen: false, detail: 'no log line with this event id and trace id' });
    }
  }
  return { eventId: event.id, ...(traceId ? { traceId } : {}), hops, missing };
}

/** `trace <id> of event <id>: producer ✓ (committed), relay ✓ (…), billing ✓ (log line), …` */
export function renderTraceLine(summary: TraceSummary): string {
  const hops = summary.hops.map((h) => `${h.hop} ${h.seen ? '✓' : '✗'} (${h.detail})`).join(', ');
  return `trace ${summary.traceId ?? '(none)'} of event ${summary.eventId}: ${hops}`;
}

/** The warning printed under the trace line when a consumer's log line is missing (not a RESULT failure). */
export function traceWarning(summary: TraceSummary): string | undefined {
  if (summary.missing.length === 0) return undefined;
  return (
    `warning: no log line of ${summary.missing.join(', ')} carries event ${summary.eventId} with trace ` +
    `${summary.traceId ?? '(none)'} in the functions log (the consumer library logs an event only when it ` +
    'warns or fails; a cleanly applied event writes no line)'
  );
}

/**
 * The sample event for the trace line: among events with a traceparent, the one whose trace the most consumers
 * logged, then a published one, then the earliest committed.
 */
export function pickTraceSample(
  candidates: readonly (TracedEvent & { readonly committedAt: number })[],
  consumers: readonly string[],
  logLines: readonly string[],
): TraceSummary | undefined {
  let best: { summary: TraceSummary; score: number; committedAt: number } | undefined;
  for (const event of candidates) {
    if (!traceIdOf(event.traceparent)) continue;
    const summary = buildTraceSummary({ event, consumers, logLines });
    const score = summary.hops.filter((h) => h.seen).length;
    if (!best || score > best.score || (score === best.score && event.committedAt < best.committedAt))
      best = { summary, score, committedAt: event.committedAt };
  }
  return best?.summary;
}
