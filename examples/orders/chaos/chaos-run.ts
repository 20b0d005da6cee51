/**
 * `npm start -- --chaos --seed N [--runs K] [--minutes M]`: K runs of the demo, seeds N..N+K-1. Each run draws its
 * workload (rate, producers, delayed steps) and its fault schedule from its seed (one PRNG, no Math.random), runs
 * the offline stack until the workload settled and checks every invariant. A failing run prints the command that
 * replays it.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { seededRandom } from 'serverless-outbox/local';
import { runDemo } from '../demo-run.ts';
import { createChaosPlan } from './chaos-plan.ts';

export interface ChaosOptions {
  readonly seed: number;
  readonly runs: number;
  /** Workload length per run, in minutes (the orders are sized from it and the run's rate). */
  readonly minutes: number;
  readonly workDir: string;
  readonly settleTimeoutMs: number;
}

/** What one run left in its report.json that the summary line shows. */
interface RunSummary {
  readonly committed: number;
  readonly lost: number;
  readonly duplicateEffects: number;
  readonly orderViolations: number;
  readonly faultRunProblems: readonly string[];
  readonly workload?: { readonly commandsFailed: number; readonly commandsAbandoned?: number };
}

export function replayCommand(seed: number, minutes: number): string {
  return `npm start -- --chaos --seed ${seed} --minutes ${minutes}`;
}

/** Sends the demo's console output to the run's log file, so the campaign prints one line per run. */
async function captured<T>(file: WriteStream, run: () => Promise<T>): Promise<T> {
  const original = {
    log: console.log,
    error: console.error,
    write: process.stdout.write.bind(process.stdout),
  };
  const toFile = (...args: unknown[]) => {
    file.write(`${args.map(String).join(' ')}\n`);
  };
  console.log = toFile;
  console.error = toFile;
  process.stdout.write = ((chunk: string | Uint8Array) => file.write(chunk)) as typeof process.stdout.write;
  try {
    return await run();
  } finally {
    console.log = original.log;
    console.error = original.error;
    process.stdout.write = original.write;
  }
}

export async function runChaos(options: ChaosOptions): Promise<number> {
  let passed = 0;
  let failed = 0;
  const campaignStart = Date.now();
  for (let i = 0; i < options.runs; i++) {
    const seed = options.seed + i;
    const random = seededRandom(seed);
    const workload = random.fork('workload');
    const ratePerSecond = workload.int(6, 16);
    // The offline runtime allows 4 concurrent environments per function (like a small reserved concurrency).
    const concurrency = workload.int(2, 4);
    const orders = Math.max(12, Math.ceil((options.minutes * 60 * ratePerSecond) / 3));
    const plan = createChaosPlan(random.fork('faults'), orders);
    const runDir = path.join(options.workDir, `chaos-${seed}`);
    await mkdir(runDir, { recursive: true });
    const output = createWriteStream(path.join(runDir, 'output.log'));
    const started = Date.now();
    let code: number;
    let crashed: string | undefined;
    try {
      code = await captured(output, () =>
        runDemo({
          workDir: runDir,
          orders,
          ratePerSecond,
          concurrency,
          faults: true,
          faultPlan: plan,
          settleTimeoutMs: options.settleTimeoutMs,
          processStart: started,
        }),
      );
    } catch (error) {
      code = 1;
      crashed = error instanceof Error ? (error.stack ?? error.message) : String(error);
      output.write(`chaos run threw: ${crashed}\n`);
    }
    await new Promise<void>((resolve) => output.end(resolve));
    const seconds = Math.round((Date.now() - started) / 1000);
    const report = await readFile(path.join(runDir, 'report.json'), 'utf8')
      .then((text) => JSON.parse(text) as RunSummary)
      .catch(() => undefined);
    const fired = Object.entries(plan.counts())
      .map(([kind, n]) => `${kind}=${n}`)
      .join(' ');
    const verdict = code === 0 ? 'PASS' : 'FAIL';
    // Orders that ended at a prepared pay left to check-back (or rolled back by it): fewer events, on purpose.
    const endedEarly = report?.workload?.commandsAbandoned ?? 0;
    if (code === 0) passed++;
    else failed++;
    console.log(
      `chaos seed=${seed} ${verdict} ${seconds}s orders=${orders} rate=${ratePerSecond}/s producers=${concurrency} ` +
        (report
          ? `events=${report.committed}${endedEarly > 0 ? ` orders_ended_at_pay=${endedEarly}` : ''} lost=${report.lost} duplicate_effects=${report.duplicateEffects} order_violations=${report.orderViolations} `
          : '') +
        `faults: ${fired || 'none'}`,
    );
    if (code !== 0) {
      for (const problem of report?.faultRunProblems ?? []) console.log(`  problem: ${problem}`);
      if ((report?.workload?.commandsFailed ?? 0) > 0)
        console.log(`  problem: ${report?.workload?.commandsFailed} producer commands failed`);
      if (crashed) console.log(`  problem: the run threw: ${crashed.split('\n')[0]}`);
      console.log(
        `  log: ${path.join(runDir, 'output.log')}, functions: ${path.join(runDir, 'functions.log')}`,
      );
      console.log(`  replay: ${replayCommand(seed, options.minutes)}`);
    }
  }
  console.log(`campaign wall time ${Math.round((Date.now() - campaignStart) / 1000)} s`);
  console.log(`CHAOS seeds=${options.runs} passed=${passed} failed=${failed}`);
  return failed === 0 ? 0 : 1;
}
