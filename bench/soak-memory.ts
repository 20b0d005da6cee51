/**
 * The soak's memory series (bench/soak.bench.ts): what each one holds, how it is sampled and when it counts as
 * grown. docs/benchmarks.md ("Soak: what each memory series contains") explains them for readers.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { EnvironmentMemory } from 'serverless-outbox/local';
import { percentile, round } from './stats.ts';

/** Memory counts as grown when the last window's median is this much above the second window's. */
export const GROWTH_TOLERANCE = 0.2;

export interface MemorySample {
  readonly at: number;
  /** This process: RSS (its heap, fauxqs, the Lambda worker threads' heaps, native buffers, code). */
  readonly nodeRss: number;
  /** This process's V8 heap in use right after a full GC: what the main thread keeps alive. */
  readonly nodeHeapAfterGc: number;
  /** This process's V8 heap reserved (used or not) and its memory outside V8 (Buffers, ArrayBuffers): where RSS
   * grows when the heap after GC does not. */
  readonly nodeHeapTotal: number;
  readonly nodeExternal: number;
  /** The Lambda worker threads' V8 heaps in use, summed (no forced GC: V8 collects them on its own). */
  readonly workersHeap: number;
  /** The same heaps reserved (in use or not), and what their isolates allocated with malloc: where a worker's
   * share of the process's RSS can grow while its heap in use does not. */
  readonly workersHeapTotal: number;
  readonly workersMalloced: number;
  readonly workers: number;
  /** Execution environments started so far (new, after a crash, after recycling): the worker churn. */
  readonly workersStarted: number;
  /** The DynamoDB Local JVM's RSS (/proc): its heap, native memory and, with `-inMemory`, every item. */
  readonly jvmRss: number;
  /** Datapoints in the offline metric store (bounded; part of the Node heap until it plateaus). */
  readonly metricDatapoints: number;
}

export type Series = keyof Omit<MemorySample, 'at'>;
export const MEMORY_SERIES = ['nodeRss', 'nodeHeapAfterGc', 'workersHeap', 'jvmRss'] as const;

/**
 * A function that runs a full, synchronous GC. `--expose-gc` is set at run time so `npm run bench` needs no
 * extra flag; the flag only takes effect for contexts created afterwards, hence the fresh context.
 */
export function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export async function residentBytes(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

export interface MemorySources {
  readonly jvmPid: number | undefined;
  environmentMemory(): Promise<EnvironmentMemory>;
  metricDatapoints(): number;
}

export async function sampleMemory(sources: MemorySources, gc: () => void): Promise<MemorySample> {
  gc();
  const usage = process.memoryUsage();
  const nodeHeapAfterGc = usage.heapUsed;
  const workers = await sources.environmentMemory();
  return {
    at: Date.now(),
    nodeRss: process.memoryUsage.rss(),
    nodeHeapAfterGc,
    nodeHeapTotal: usage.heapTotal,
    nodeExternal: usage.external,
    workersHeap: workers.heapUsedBytes,
    workersHeapTotal: workers.heapTotalBytes,
    workersMalloced: workers.mallocedBytes,
    workers: workers.environments,
    workersStarted: workers.environmentsStarted,
    jvmRss: await residentBytes(sources.jvmPid),
    metricDatapoints: sources.metricDatapoints(),
  };
}

/** The median of each window of `windowMs` from `start` to `end` (0 for a window without samples). */
export function perWindow(
  samples: readonly MemorySample[],
  series: Series,
  start: number,
  end: number,
  windowMs: number,
): number[] {
  const count = Math.max(1, Math.ceil((end - start) / windowMs));
  return Array.from({ length: count }, (_, w) =>
    percentile(
      samples
        .filter((s) => s.at >= start + w * windowMs && s.at < start + (w + 1) * windowMs)
        .map((s) => s[series]),
      50,
    ),
  );
}

/** The first window is the warm-up: growth compares the second window's median with the last one's. */
export function grewAfterWarmup(series: readonly number[]): string {
  if (series.length < 3) return 'n/a (needs 3 windows)';
  const base = series[1] ?? 0;
  const last = series.at(-1) ?? 0;
  const change = `${last >= base ? '+' : ''}${round(((last - base) / Math.max(1, base)) * 100, 0)}%`;
  return base > 0 && last > base * (1 + GROWTH_TOLERANCE) ? `yes (${change})` : `no (${change})`;
}

/** Writes a heap snapshot of this process (after a GC) for a later compare in Chrome DevTools' Memory tab. */
export function snapshotHeap(dir: string, label: string, gc: () => void): string {
  gc();
  return writeHeapSnapshot(path.join(dir, `soak-${label}.heapsnapshot`));
}

/** The offline metric store's cap (local/runtime/metrics.ts, `maxDatapoints` default). */
export const METRIC_STORE_CAP = 200_000;

/**
 * Whether the bounded stores were still filling after the warm-up: then part of the heap's growth between the
 * second and the last window is theirs, not a leak (docs/benchmarks.md, "Soak").
 */
export function boundedStoresNote(metricDatapointsPerWindow: readonly number[]): string {
  const second = metricDatapointsPerWindow[1] ?? 0;
  const last = metricDatapointsPerWindow.at(-1) ?? 0;
  if (second >= METRIC_STORE_CAP * 0.95)
    return 'metric store full from the second window: not part of the growth';
  return (
    `metric store still filling after the warm-up (${second} -> ${last} of ${METRIC_STORE_CAP} datapoints, ` +
    '~180 B each; fauxqs FIFO dedup ids fill up to 10,000 per queue too): part of the heap growth is theirs'
  );
}
