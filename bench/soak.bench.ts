/**
 * Soak (issue 17): the offline demo stack under a steady workload with chaos faults on, for a long time
 * (`SOAK_MINUTES`, default 30, at `SOAK_RATE` events/s, default 50). Samples memory every 10 s (this Node process:
 * heap and RSS, with its Lambda worker threads and fauxqs; the DynamoDB Local JVM: RSS from /proc), checks the
 * invariants once the workload settled, reports commit→applied p99 per window (`SOAK_WINDOW_MINUTES`, default 5)
 * and whether memory grew after the warm-up (the first window).
 *
 * `npm run bench -- soak`; shorter: `SOAK_MINUTES=5 SOAK_WINDOW_MINUTES=1 npm run bench -- soak`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { seededRandom, startOfflineStack } from 'serverless-outbox/local';
import { createChaosPlan } from '../examples/orders/chaos/chaos-plan.ts';
import {
  NOTIFIED_EVENT_TYPES,
  ORDER_PAID,
  ORDER_PLACED,
  ORDER_SHIPPED,
} from '../examples/orders/contract.ts';
import {
  documentClient,
  readBillingEffects,
  readNotificationEffects,
  readOutbox,
} from '../examples/orders/observe.ts';
import { PAYMENT_ROLLED_BACK } from '../examples/orders/prepared-payment.ts';
import { buildReport, type SubscriberSpec } from '../examples/orders/report.ts';
import { DEMO_SYNTH_SCRIPT, type DemoResources } from '../examples/orders/synth.ts';
import { type OrderCommand, runWorkload } from '../examples/orders/workload.ts';
import { percentile, round } from './stats.ts';

const ROOT = path.join(import.meta.dirname, '..');
const WORK_DIR = path.join(ROOT, '.local-runs', 'bench', 'soak');
const SAMPLE_EVERY_MS = 10_000;
const SETTLE_TIMEOUT_MS = 300_000;
/** Memory counts as grown when the last window's median is this much above the first window after warm-up's. */
const GROWTH_TOLERANCE = 0.2;
const SUBSCRIBERS: SubscriberSpec[] = [
  { name: 'billing', types: [ORDER_PLACED, ORDER_PAID, ORDER_SHIPPED], ordered: true },
  { name: 'notifications', types: [...NOTIFIED_EVENT_TYPES], ordered: false },
];

interface Sample {
  readonly at: number;
  readonly nodeRss: number;
  readonly nodeHeap: number;
  readonly jvmRss: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number) => round(bytes / 2 ** 20, 0);

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0)) throw new Error(`${name} must be a positive number, but "${raw}" was given`);
  return value;
}

async function residentBytes(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

function medianOf(values: readonly number[]): number {
  return percentile(values, 50);
}

export async function run(): Promise<Record<string, number | string>> {
  const minutes = positive('SOAK_MINUTES', 30);
  const rate = positive('SOAK_RATE', 50);
  const windowMs = positive('SOAK_WINDOW_MINUTES', 5) * 60_000;
  const seed = positive('SOAK_SEED', 1);
  const orders = Math.ceil((minutes * 60 * rate) / 3);
  await rm(WORK_DIR, { recursive: true, force: true });
  await mkdir(WORK_DIR, { recursive: true });
  const log = createWriteStream(path.join(WORK_DIR, 'functions.log'));
  const faults = createChaosPlan(seededRandom(seed).fork('faults'), orders);
  await faults.prepare();
  const stack = await startOfflineStack<DemoResources>({
    workDir: WORK_DIR,
    synthScript: DEMO_SYNTH_SCRIPT,
    log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
    context: faults.context,
    endpointsFor: faults.endpointsFor,
    dropStreamRecord: faults.dropStreamRecord,
    duplicateStreamRecord: faults.duplicateStreamRecord,
    clockSkewMs: faults.clockSkewMs,
  });
  const samples: Sample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push({
        at: Date.now(),
        nodeRss: process.memoryUsage().rss,
        nodeHeap: process.memoryUsage().heapUsed,
        jvmRss: await residentBytes(stack.dynamodb.pid),
      });
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  try {
    const { runtime, resources } = stack;
    const doc = documentClient(stack.dynamodb.endpoint);
    const outboxTable = stack.ref(resources.outboxTable);
    await faults.attach(stack, doc);
    const start = Date.now();
    const workload = await runWorkload({
      orders,
      ratePerSecond: rate,
      concurrency: 4,
      delaySecondsFor: faults.delaySecondsFor,
      preparedPay: faults.preparedPay,
      invoke: async (command: OrderCommand) => {
        const outcome = await runtime.invoke(resources.producer, command);
        const answer = outcome.result as { ok?: boolean; error?: { name?: string } } | undefined;
        faults.producerCalled(command, {
          ok: answer?.ok === true,
          ...(outcome.error ? { errorType: outcome.error.errorType } : {}),
          durationMs: outcome.durationMs,
        });
        if (answer?.ok) return true;
        if (answer?.error?.name === PAYMENT_ROLLED_BACK || faults.abandons(command)) return 'abandoned';
        return command.action === 'place' && answer?.error?.name === 'OutboxConflictError';
      },
    });
    const workloadEnd = Date.now();
    await faults.afterWorkload(stack, doc);
    const settleDeadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (Date.now() < settleDeadline && !(await faults.settled(stack, doc))) await sleep(2000);
    await runtime.alarms.evaluate();
    const problems = await faults.verdict(stack, doc);

    const snapshot = await readOutbox(doc, outboxTable);
    const committedById = new Map(snapshot.committed.map((e) => [e.id, e]));
    const effects = [
      ...(await readBillingEffects(doc, stack.ref(resources.chargesTable))),
      ...(await readNotificationEffects(doc, stack.ref(resources.sinkTable), committedById)).effects,
    ];
    const excluded = new Set([...snapshot.quarantinedIds, ...faults.excludedEventIds]);
    const report = buildReport({
      committed: snapshot.committed,
      effects,
      subscribers: SUBSCRIBERS,
      excluded,
    });

    // Commit→applied latency per window of commit time (first application of each event per subscriber).
    const firstApplied = new Map<string, number>();
    for (const f of effects) {
      const key = `${f.subscriber}/${f.eventId}`;
      firstApplied.set(key, Math.min(firstApplied.get(key) ?? Number.POSITIVE_INFINITY, f.appliedAt));
    }
    const windows: number[][] = [];
    for (const [key, appliedAt] of firstApplied) {
      const event = committedById.get(key.split('/')[1] ?? '');
      if (!event || event.committedAt < start) continue;
      const index = Math.floor((event.committedAt - start) / windowMs);
      const bucket = windows[index] ?? [];
      bucket.push(Math.max(0, appliedAt - event.committedAt));
      windows[index] = bucket;
    }
    const windowed = (pick: (s: Sample) => number) =>
      Array.from({ length: Math.max(1, Math.ceil((workloadEnd - start) / windowMs)) }, (_, w) =>
        medianOf(
          samples.filter((s) => s.at >= start + w * windowMs && s.at < start + (w + 1) * windowMs).map(pick),
        ),
      );
    const memory = {
      nodeRss: windowed((s) => s.nodeRss),
      nodeHeap: windowed((s) => s.nodeHeap),
      jvmRss: windowed((s) => s.jvmRss),
    };
    // The first window is the warm-up; growth compares the second window with the last.
    const grew = (series: number[]) => {
      if (series.length < 3) return 'n/a (needs 3 windows)';
      const base = series[1] ?? 0;
      const last = series.at(-1) ?? 0;
      return base > 0 && last > base * (1 + GROWTH_TOLERANCE)
        ? `yes (+${round(((last - base) / base) * 100, 0)}%)`
        : `no (${round(((last - base) / Math.max(1, base)) * 100, 0)}%)`;
    };

    const result: Record<string, number | string> = {
      minutes,
      target_events_per_second: rate,
      achieved_events_per_second: round(workload.commandsCommitted / ((workloadEnd - start) / 1000), 1),
      events_committed: report.committed,
      commands_failed: workload.commandsFailed,
      lost: report.lost,
      duplicate_effects: report.duplicateEffects,
      order_violations: report.orderViolations,
      fault_problems: problems.join('; ') || 'none',
      faults_fired: Object.entries(faults.counts())
        .map(([k, n]) => `${k}=${n}`)
        .join(' '),
      window_minutes: windowMs / 60_000,
      p99_ms_per_window: Array.from(windows, (w) => percentile(w ?? [], 99)).join(' '),
      node_rss_mib_per_window: memory.nodeRss.map(mib).join(' '),
      node_heap_mib_per_window: memory.nodeHeap.map(mib).join(' '),
      jvm_rss_mib_per_window: memory.jvmRss.map(mib).join(' '),
      node_rss_grew_after_warmup: grew(memory.nodeRss),
      node_heap_grew_after_warmup: grew(memory.nodeHeap),
      jvm_rss_grew_after_warmup: grew(memory.jvmRss),
      // Bounded by design, but growing until their cap: they explain part of a short soak's growth.
      offline_metric_datapoints: runtime.metrics.all().length,
      outbox_items: snapshot.committed.length,
    };
    return result;
  } finally {
    sampling = false;
    await sampler;
    await stack.stop();
    await faults.stop();
    await new Promise<void>((resolve) => log.end(resolve));
  }
}
