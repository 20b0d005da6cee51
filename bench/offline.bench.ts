/**
 * The offline stack's figures (issue 5): time to the first effect applied, peak memory of the whole stack
 * (this Node process with its Lambda worker threads and fauxqs, plus the DynamoDB Local JVM), sustained
 * end-to-end throughput at 1, 4 and 16 concurrent producers, and commit→applied latency at a steady
 * 50 events/s (and at 25 events/s, below saturation).
 *
 * One offline stack is started for the whole bench (the real synthesized CDK app, as `npm start` runs it).
 * Every phase drives the real demo producer with its own order-id prefix, so aggregates never collide, and
 * waits until every effect of the phase is applied before the next phase starts. A warm-up phase (whose
 * first effect gives the start-up figure) fills the functions' execution environments and is excluded from
 * the throughput and latency figures.
 *
 * Each producer command commits exactly one event (place, pay, ship: 3 events per order); billing applies
 * all 3, notifications 2 (placed, shipped), so an order makes 5 effects.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import * as path from 'node:path';
import { CreateTableCommand, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AppliedEffect, CommittedEvent, SubscriberSpec } from '../examples/orders/report.ts';
import type { DemoResources, DemoStack } from '../examples/orders/synth.ts';
import type { OrderCommand } from '../examples/orders/workload.ts';
import { mib, percentile, round } from './stats.ts';

const ROOT = path.join(import.meta.dirname, '..');
const WORK_DIR = path.join(ROOT, '.local-runs', 'bench', 'offline');
/** The synth cache of the start-up runs (outside WORK_DIR, which every run empties). */
const SYNTH_CACHE_DIR = path.join(ROOT, '.local-runs', 'bench', 'synth-cache');
const NAMESPACE = 'ServerlessOutbox';
/** As fast as the producers go: the workload's pacing never waits. */
const UNPACED = 100_000;
/** Linux clock ticks per second (`getconf CLK_TCK`), for /proc/<pid>/stat. */
const CLOCK_TICKS = 100;
/** Longest wait for a phase's last effects. */
const DRAIN_TIMEOUT_MS = 120_000;

interface Phase {
  readonly name: string;
  readonly prefix: string;
  readonly orders: number;
  /** Producer commands per second; each command commits exactly one event. */
  readonly ratePerSecond: number;
  readonly concurrency: number;
}

interface PhaseResult {
  readonly events: number;
  readonly effects: number;
  readonly lost: number;
  readonly duplicateEffects: number;
  readonly orderViolations: number;
  readonly commandsFailed: number;
  /** First commit → last commit of the phase (producer side). */
  readonly commitSeconds: number;
  /** First commit → last effect applied (end to end). */
  readonly endToEndSeconds: number;
  readonly firstAppliedAt: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** Commit → marked PUBLISHED by the relay. */
  readonly publishMs: { readonly p50: number; readonly p99: number };
  /** Average cores used during the phase. */
  readonly nodeCores: number;
  readonly javaCores: number;
  /** A GetItem from this process every 100 ms during the phase: DynamoDB Local's response time under load. */
  readonly probeGetItemP50Ms: number;
  readonly probeGetItemP95Ms: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds (user + system, all threads) a process has used; 0 when unknown. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/**
 * DynamoDB Local's own ceiling for this pipeline: the DynamoDB requests the demo's functions make per order
 * (3 events), replayed from 8 concurrent callers for 5 s against a table of its own (with a stream, like the
 * outbox), while the pipeline is idle. Returns events/s worth of requests. The mix, 7 requests per event, was
 * counted on the offline stack with a counting proxy (local/fault-proxy.ts) in front of every function:
 * producer 1 TransactWriteItems (3 items) + 0.67 GetItem; relay 1.33 UpdateItem + 0.67 Query (predecessor
 * check); billing 1 TransactWriteItems + 0.33 UpdateItem; notifications 0.67 PutItem + 1.33 UpdateItem.
 * The runtime's stream reads (GetRecords) come on top.
 *
 * The table is created when the stack starts: DynamoDB Local writes slowly to a stream-enabled table created
 * after many stream records exist (tens of times slower once ~25,000 exist), which would fake a low ceiling.
 */
async function createCeilingTable(doc: DynamoDBDocumentClient): Promise<string> {
  const table = `bench-ceiling-${process.pid}`;
  await doc.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  return table;
}

async function dynamoDbLocalCeiling(doc: DynamoDBDocumentClient, table: string): Promise<number> {
  const payload = 'x'.repeat(900);
  const update = (pk: string, sk: string) =>
    doc.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk, sk },
        UpdateExpression: 'ADD n :one',
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  let next = 0;
  async function order(): Promise<void> {
    const pk = `order#${next++}`;
    for (let sequence = 1; sequence <= 3; sequence++) {
      const sk = `EVT#${sequence}`;
      // producer
      if (sequence > 1)
        await doc.send(new GetCommand({ TableName: table, Key: { pk, sk: 'ORDER' }, ConsistentRead: true }));
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: table, Item: { pk, sk: 'ORDER', sequence } } },
            { Put: { TableName: table, Item: { pk, sk, payload, status: 'READY' } } },
            { Put: { TableName: table, Item: { pk, sk: 'HEAD', lastSequence: sequence } } },
          ],
        }),
      );
      // relay
      if (sequence > 1)
        await doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :evt)',
            ExpressionAttributeValues: { ':pk': pk, ':evt': 'EVT#' },
          }),
        );
      await update(pk, sk);
      if (sequence === 1) await update(pk, `TRACK#${sequence}`);
      // billing
      await doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: table, Item: { pk: `dedup#billing#${pk}`, sk } } },
            { Put: { TableName: table, Item: { pk: `charge#${pk}`, sk: 'CHARGE', sequence } } },
          ],
        }),
      );
      if (sequence === 1) await update(`charge#${pk}`, 'ACK');
      // notifications (placed and shipped)
      if (sequence !== 2) {
        await doc.send(new PutCommand({ TableName: table, Item: { pk: `dedup#notifications#${pk}`, sk } }));
        await update(`sink#${pk}`, sk);
        await update(`dedup#notifications#${pk}`, sk);
      }
    }
  }
  const loop = async (ms: number): Promise<number> => {
    let orders = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) {
          await order();
          orders++;
        }
      }),
    );
    return orders;
  };
  await loop(1000);
  const orders = await loop(5000);
  await doc.send(new DeleteTableCommand({ TableName: table }));
  return round((orders * 3) / 5, 0);
}

/**
 * One start of the demo stack in a fresh process (bench/offline-startup.ts): ms from that process's start to the
 * first effect applied, and its parts. Cold: the synth cache is emptied first; warm: it is reused.
 */
/** `imports 410, synth 730, ...`: when each start-up phase ended, from offline-startup.ts's output. */
function phaseLine(phases: unknown): string {
  return Object.entries((phases ?? {}) as Record<string, number>)
    .map(([name, ms]) => `${name} ${ms}`)
    .join(', ');
}

async function startInFreshProcess(kind: 'cold' | 'warm'): Promise<Record<string, number>> {
  if (kind === 'cold') await rm(SYNTH_CACHE_DIR, { recursive: true, force: true });
  const output = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [
        ...process.execArgv,
        '--disable-warning=ExperimentalWarning',
        path.join(import.meta.dirname, 'offline-startup.ts'),
        path.join(ROOT, '.local-runs', 'bench', `startup-${kind}`),
        SYNTH_CACHE_DIR,
      ],
      { timeout: 180_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
}

export async function run(): Promise<Record<string, number | string>> {
  // Start-up from a fresh process, before this process starts its own stack (they would compete for the cores).
  const cold = await startInFreshProcess('cold');
  const warmStart = await startInFreshProcess('warm');
  const benchStart = Date.now();
  // Other work on the machine skews every figure here: the load average says how busy it was.
  const loadAtStart = loadavg()[0] ?? 0;
  // Imported here, not at the top, so loading aws-cdk-lib and the runtime counts in "time to first effect".
  const { startOfflineStack } = await import('../local/offline.ts');
  const { scanTable } = await import('../local/services/scan-table.ts');
  const { documentClient, metricSum, peakRss, readBillingEffects, readNotificationEffects } = await import(
    '../examples/orders/observe.ts'
  );
  const { buildReport } = await import('../examples/orders/report.ts');
  const { runWorkload } = await import('../examples/orders/workload.ts');
  const contract = await import('../examples/orders/contract.ts');
  const { DEMO_SYNTH_SCRIPT } = await import('../examples/orders/synth.ts');
  const subscribers: SubscriberSpec[] = [
    {
      name: 'billing',
      types: [contract.ORDER_PLACED, contract.ORDER_PAID, contract.ORDER_SHIPPED],
      ordered: true,
    },
    { name: 'notifications', types: [...contract.NOTIFIED_EVENT_TYPES], ordered: false },
  ];
  const effectsPerOrder = subscribers.reduce((n, s) => n + s.types.length, 0);

  await rm(WORK_DIR, { recursive: true, force: true });
  await mkdir(WORK_DIR, { recursive: true });
  const logFile = path.join(WORK_DIR, 'functions.log');
  const log = createWriteStream(logFile);
  let stack: DemoStack | undefined;
  try {
    stack = await startOfflineStack<DemoResources>({
      workDir: WORK_DIR,
      synthScript: DEMO_SYNTH_SCRIPT,
      synthCacheDir: SYNTH_CACHE_DIR,
      log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
    });
    const started = stack;
    const readyAt = Date.now();
    const memoryAtReady = await peakRss(process.pid);
    const { runtime, resources } = started;
    const javaPid = started.dynamodb.pid;
    const doc: DynamoDBDocumentClient = documentClient(started.dynamodb.endpoint);
    const outboxTable = started.ref(resources.outboxTable);
    const chargesTable = started.ref(resources.chargesTable);
    const sinkTable = started.ref(resources.sinkTable);

    const processed = () =>
      subscribers.reduce(
        (n, s) => n + metricSum(runtime.metrics, NAMESPACE, 'EventsProcessed', { consumer: s.name }),
        0,
      );
    let expectedProcessed = 0;

    /** GetItem round trips (a missing key of the outbox table) every 100 ms until `until` resolves. */
    async function probe(until: () => boolean): Promise<number[]> {
      const latencies: number[] = [];
      while (!until()) {
        const t = performance.now();
        await doc.send(new GetCommand({ TableName: outboxTable, Key: { pk: 'bench#probe', sk: 'none' } }));
        latencies.push(performance.now() - t);
        await sleep(100);
      }
      return latencies;
    }

    async function runPhase(phase: Phase): Promise<PhaseResult> {
      const cpuStart = process.cpuUsage();
      const javaStart = await cpuSeconds(javaPid);
      const wallStart = performance.now();
      let drained = false;
      const probing = probe(() => drained);
      const workload = await runWorkload({
        orders: phase.orders,
        ratePerSecond: phase.ratePerSecond,
        concurrency: phase.concurrency,
        orderIdPrefix: phase.prefix,
        // More producers than the producer function's environments (4, the runtime's cap per function)
        // queue for a free one, as a client retrying its throttles would.
        invoke: async (command: OrderCommand) => {
          const outcome = await runtime.invoke(resources.producer, command, { onThrottle: 'queue' });
          const answer = outcome.result as { ok?: boolean; error?: { name?: string } } | undefined;
          if (answer?.ok) return true;
          // A retried `place` whose first attempt committed: the order exists, so the command is done.
          return command.action === 'place' && answer?.error?.name === 'OutboxConflictError';
        },
      });
      expectedProcessed += phase.orders * effectsPerOrder;
      // Cheap wait on the consumers' in-process metric (EventsProcessed), then one check against the tables.
      const deadline = Date.now() + DRAIN_TIMEOUT_MS;
      while (processed() < expectedProcessed && Date.now() < deadline) await sleep(100);
      const wallSeconds = (performance.now() - wallStart) / 1000;
      const cpu = process.cpuUsage(cpuStart);
      const javaSeconds = (await cpuSeconds(javaPid)) - javaStart;
      drained = true;
      const probes = await probing;

      const aggregatePrefix = `order#${phase.prefix}`;
      let committed: CommittedEvent[] = [];
      let effects: AppliedEffect[] = [];
      let publishDelays: number[] = [];
      for (;;) {
        const items = (await scanTable(doc, outboxTable)).filter(
          (item) => String(item.pk).startsWith(aggregatePrefix) && String(item.sk).startsWith('EVT#'),
        );
        committed = items.map((item) => ({
          id: String(item.id),
          aggregateKey: String(item.pk),
          sequence: Number(item.sequence),
          type: String(item.type),
          committedAt: Number(item.createdAt),
        }));
        publishDelays = items
          .filter((item) => typeof item.publishedAt === 'number')
          .map((item) => Number(item.publishedAt) - Number(item.createdAt));
        const byId = new Map(committed.map((e) => [e.id, e]));
        const billing = (await readBillingEffects(doc, chargesTable)).filter((e) =>
          e.aggregateKey.startsWith(aggregatePrefix),
        );
        const notified = (await readNotificationEffects(doc, sinkTable, byId)).effects.filter((e) =>
          byId.has(e.eventId),
        );
        effects = [...billing, ...notified];
        const expected = subscribers.reduce(
          (n, s) => n + committed.filter((e) => s.types.includes(e.type)).length,
          0,
        );
        if (effects.length >= expected || Date.now() > deadline) break;
        await sleep(1000);
      }
      const report = buildReport({ committed, effects, subscribers });
      const commits = committed.map((e) => e.committedAt);
      const applied = effects.map((e) => e.appliedAt);
      const firstCommit = Math.min(...commits);
      return {
        events: committed.length,
        effects: effects.length,
        lost: report.lost,
        duplicateEffects: report.duplicateEffects,
        orderViolations: report.orderViolations,
        commandsFailed: workload.commandsFailed,
        commitSeconds: (Math.max(...commits) - firstCommit) / 1000,
        endToEndSeconds: (Math.max(...applied) - firstCommit) / 1000,
        firstAppliedAt: Math.min(...applied),
        latencyMs: report.latencyMs,
        publishMs: { p50: percentile(publishDelays, 50), p99: percentile(publishDelays, 99) },
        nodeCores: round((cpu.user + cpu.system) / 1e6 / wallSeconds),
        javaCores: round(javaSeconds / wallSeconds),
        probeGetItemP50Ms: round(percentile(probes, 50), 1),
        probeGetItemP95Ms: round(percentile(probes, 95), 1),
      };
    }

    const ceilingTable = createCeilingTable(doc);
    ceilingTable.catch(() => undefined);
    // Warm-up: starts the moment the stack is ready, so its first effect is the start-up figure.
    const warm = await runPhase({
      name: 'warm-up',
      prefix: 'w-',
      orders: 60,
      ratePerSecond: UNPACED,
      concurrency: 4,
    });
    const memoryAfterWarmUp = await peakRss(process.pid);
    const idleUntil = performance.now() + 2000;
    const idle = await probe(() => performance.now() > idleUntil);
    const figures: Record<string, number | string> = {
      machine: `${availableParallelism()} cores, ${round(totalmem() / 2 ** 30, 0)} GiB`,
      load_average_1m_at_start: round(loadAtStart),
      first_effect_ms_from_process_start_cold: cold.first_effect_ms_from_process_start ?? 0,
      first_effect_ms_from_process_start_warm: warmStart.first_effect_ms_from_process_start ?? 0,
      first_effect_warm_target_ms: 6000,
      startup_cold_parts_ms: `imports ${cold.imports_ms_from_process_start}, synth ${cold.synth_ms}, services ${cold.services_ms}, runtime ready ${cold.runtime_ready_ms}`,
      startup_warm_phases_ms_from_process_start: phaseLine(warmStart.phases_ms_from_process_start),
      startup_warm_parts_ms: `imports ${warmStart.imports_ms_from_process_start}, synth ${warmStart.synth_ms} (cache hit ${warmStart.synth_cache_hit}), services ${warmStart.services_ms}, runtime ready ${warmStart.runtime_ready_ms}`,
      first_effect_ms_from_bench_start: warm.firstAppliedAt - benchStart,
      stack_ready_ms_from_bench_start: readyAt - benchStart,
      synth_ms: started.timings.synthMs ?? 0,
      services_ms: started.timings.servicesMs ?? 0,
      warmup_events_excluded: warm.events,
      idle_probe_getitem_p50_ms: round(percentile(idle, 50), 1),
    };

    figures.dynamodb_local_alone_ceiling_events_per_s = await dynamoDbLocalCeiling(doc, await ceilingTable);

    const phases: Phase[] = [
      { name: 'c1', prefix: 'c1-', orders: 300, ratePerSecond: UNPACED, concurrency: 1 },
      { name: 'c4', prefix: 'c4-', orders: 450, ratePerSecond: UNPACED, concurrency: 4 },
      { name: 'c16', prefix: 'c16-', orders: 450, ratePerSecond: UNPACED, concurrency: 16 },
      // Paced phases: 16 producers so the pacing, not the number of producers, sets the rate.
      { name: 'rate50', prefix: 's50-', orders: 400, ratePerSecond: 50, concurrency: 16 },
      { name: 'rate25', prefix: 's25-', orders: 200, ratePerSecond: 25, concurrency: 16 },
    ];
    for (const phase of phases) {
      const r = await runPhase(phase);
      const p = phase.name;
      figures[`${p}_events`] = r.events;
      figures[`${p}_effects`] = r.effects;
      figures[`${p}_committed_events_per_s`] = round(r.events / r.commitSeconds, 1);
      figures[`${p}_e2e_events_per_s`] = round(r.events / r.endToEndSeconds, 1);
      figures[`${p}_e2e_effects_per_s`] = round(r.effects / r.endToEndSeconds, 1);
      figures[`${p}_seconds`] = round(r.endToEndSeconds, 1);
      figures[`${p}_latency_p50_ms`] = r.latencyMs.p50;
      figures[`${p}_latency_p95_ms`] = r.latencyMs.p95;
      figures[`${p}_latency_p99_ms`] = r.latencyMs.p99;
      figures[`${p}_commit_to_published_p50_ms`] = r.publishMs.p50;
      figures[`${p}_commit_to_published_p99_ms`] = r.publishMs.p99;
      figures[`${p}_cpu_cores_node`] = r.nodeCores;
      figures[`${p}_cpu_cores_dynamodb_local`] = r.javaCores;
      figures[`${p}_probe_getitem_p50_ms`] = r.probeGetItemP50Ms;
      figures[`${p}_probe_getitem_p95_ms`] = r.probeGetItemP95Ms;
      figures[`${p}_lost_duplicate_order`] = `${r.lost}/${r.duplicateEffects}/${r.orderViolations}`;
      if (r.commandsFailed > 0) figures[`${p}_commands_failed`] = r.commandsFailed;
    }
    figures.throughput_target_events_per_s = 200;
    figures.rate50_p99_target_ms = 1000;

    const nodeRss = await peakRss(process.pid);
    const javaRss = await peakRss(javaPid);
    figures.peak_memory_mib = mib(nodeRss + javaRss);
    figures.peak_memory_node_mib = mib(nodeRss);
    figures.peak_memory_node_at_ready_mib = mib(memoryAtReady);
    figures.peak_memory_node_after_warmup_mib = mib(memoryAfterWarmUp);
    figures.peak_memory_dynamodb_local_mib = mib(javaRss);
    figures.peak_memory_target_mib = 1536;
    figures.load_average_1m_at_end = round(loadavg()[0] ?? 0);
    figures.log = path.relative(ROOT, logFile);
    doc.destroy();
    return figures;
  } finally {
    await stack?.stop();
    log.end();
  }
}
