/**
 * Soak (issue 17): the offline demo stack under a steady workload with chaos faults on, for a long time
 * (`SOAK_MINUTES`, default 30, at `SOAK_RATE` events/s, default 50). Samples memory every 10 s (bench/soak-memory.ts:
 * this process's RSS and its heap after a forced GC, the Lambda worker threads' heaps, the DynamoDB Local JVM's
 * RSS), checks the invariants once the workload settled, reports commit→applied p99 per window
 * (`SOAK_WINDOW_MINUTES`, default 5) and whether each memory series grew after the warm-up (the first window).
 * DynamoDB Local keeps its tables on disk (`SOAK_DYNAMODB=memory` keeps them in the JVM, as the demo does), so its
 * RSS measures the JVM, not the data. `SOAK_HEAP_SNAPSHOTS=1` writes a heap snapshot at every window's end.
 *
 * `npm run bench -- soak`; shorter: `SOAK_MINUTES=8 SOAK_WINDOW_MINUTES=2 npm run bench -- soak`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { seededRandom, startOfflineStack } from 'serverless-outbox/local';
import { startDynamoDbLocal } from 'serverless-outbox/local/services';
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
import {
  boundedStoresNote,
  exposeGc,
  GROWTH_TOLERANCE,
  grewAfterWarmup,
  type MEMORY_SERIES,
  type MemorySample,
  perWindow,
  type Series,
  sampleMemory,
  snapshotHeap,
} from './soak-memory.ts';
import { mib, percentile, positiveFromEnv, round } from './stats.ts';

const ROOT = path.join(import.meta.dirname, '..');
const WORK_DIR = path.join(ROOT, '.local-runs', 'bench', 'soak');
const SAMPLE_EVERY_MS = 10_000;
const SETTLE_TIMEOUT_MS = 300_000;
/**
 * DynamoDB Local's default flags, plus the whole heap committed and touched at start (-Xms = -Xmx, AlwaysPreTouch):
 * otherwise the JVM's RSS climbs for many minutes as the serial GC grows its heap toward -Xmx, which looks like a
 * leak. With it, the series moves only with non-heap memory (metaspace, code cache, SQLite, native buffers).
 */
const SOAK_JVM_OPTIONS = [
  '-XX:+UseSerialGC',
  '-Xms256m',
  '-Xmx256m',
  '-XX:+AlwaysPreTouch',
  '-XX:ReservedCodeCacheSize=64m',
  '-XX:MaxMetaspaceSize=128m',
];
const SUBSCRIBERS: SubscriberSpec[] = [
  { name: 'billing', types: [ORDER_PLACED, ORDER_PAID, ORDER_SHIPPED], ordered: true },
  { name: 'notifications', types: [...NOTIFIED_EVENT_TYPES], ordered: false },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(): Promise<Record<string, number | string>> {
  const minutes = positiveFromEnv('SOAK_MINUTES', 30);
  const rate = positiveFromEnv('SOAK_RATE', 50);
  const windowMs = positiveFromEnv('SOAK_WINDOW_MINUTES', 5) * 60_000;
  const seed = positiveFromEnv('SOAK_SEED', 1);
  const dynamodbOnDisk = process.env.SOAK_DYNAMODB !== 'memory';
  const heapSnapshots = process.env.SOAK_HEAP_SNAPSHOTS === '1';
  const gc = exposeGc();
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
    dynamodb: startDynamoDbLocal({
      ...(dynamodbOnDisk ? { dbPath: path.join(WORK_DIR, 'dynamodb') } : {}),
      jvmOptions: SOAK_JVM_OPTIONS,
    }),
  });
  const samples: MemorySample[] = [];
  // Each sample also goes to a file as it is taken: a run that fails at its end (settling, reading the tables)
  // keeps its memory series.
  const sampleFile = createWriteStream(path.join(WORK_DIR, 'memory.jsonl'));
  const snapshots: string[] = [];
  let sampling = true;
  // Set when the workload starts: no window (nor heap snapshot) before.
  let start = Number.POSITIVE_INFINITY;
  const sampler = (async () => {
    const sources = {
      jvmPid: stack.dynamodb.pid,
      environmentMemory: () => stack.runtime.lambda.environmentMemory(),
      metricDatapoints: () => stack.runtime.metrics.all().length,
    };
    while (sampling) {
      const sample = await sampleMemory(sources, gc);
      samples.push(sample);
      sampleFile.write(`${JSON.stringify({ ...sample, sinceWorkloadStartMs: sample.at - start })}\n`);
      const windowsDone = Math.floor((Date.now() - start) / windowMs);
      if (heapSnapshots && windowsDone > snapshots.length && sampling)
        snapshots.push(snapshotHeap(WORK_DIR, `window-${windowsDone}`, gc));
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  try {
    const { runtime, resources } = stack;
    const doc = documentClient(stack.dynamodb.endpoint);
    const outboxTable = stack.ref(resources.outboxTable);
    await faults.attach(stack, doc);
    start = Date.now();
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
    const memoryWindows = (series: Series) => perWindow(samples, series, start, workloadEnd, windowMs);
    const mibPerWindow = (series: Series) => memoryWindows(series).map(mib).join(' ');
    const grew = (series: (typeof MEMORY_SERIES)[number]) => grewAfterWarmup(memoryWindows(series));

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
      dynamodb_data: dynamodbOnDisk ? 'on disk (-dbPath)' : 'in the JVM (-inMemory)',
      node_rss_mib_per_window: mibPerWindow('nodeRss'),
      node_heap_after_gc_mib_per_window: mibPerWindow('nodeHeapAfterGc'),
      workers_heap_mib_per_window: mibPerWindow('workersHeap'),
      workers_heap_reserved_mib_per_window: mibPerWindow('workersHeapTotal'),
      workers_malloced_mib_per_window: mibPerWindow('workersMalloced'),
      node_heap_total_mib_per_window: mibPerWindow('nodeHeapTotal'),
      node_external_mib_per_window: mibPerWindow('nodeExternal'),
      jvm_rss_mib_per_window: mibPerWindow('jvmRss'),
      growth_tolerance: `${GROWTH_TOLERANCE * 100}% (second window vs last)`,
      memory_grew_node_rss: grew('nodeRss'),
      memory_grew_node_heap_after_gc: grew('nodeHeapAfterGc'),
      memory_grew_workers_heap: grew('workersHeap'),
      memory_grew_jvm_rss: grew('jvmRss'),
      // Bounded by design (200,000), growing until the cap: part of the Node heap until then.
      metric_datapoints_per_window: memoryWindows('metricDatapoints').join(' '),
      bounded_stores: boundedStoresNote(memoryWindows('metricDatapoints')),
      lambda_environments_per_window: memoryWindows('workers').join(' '),
      lambda_environments_started_per_window: memoryWindows('workersStarted').join(' '),
      outbox_items: snapshot.committed.length,
      ...(snapshots.length > 0 ? { heap_snapshots: snapshots.join(' ') } : {}),
    };
    return result;
  } finally {
    sampling = false;
    await sampler;
    await stack.stop();
    await faults.stop();
    await new Promise<void>((resolve) => log.end(resolve));
    await new Promise<void>((resolve) => sampleFile.end(resolve));
  }
}
