/**
 * `npm start`: runs the demo app offline with a workload and reports lost events, duplicate effects and order
 * violations. `--faults` injects failures; `--serve` keeps it running.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

export const LOCAL_WORK_DIR = '.local-runs';

const USAGE = `usage: npm start -- [--orders N] [--rate N] [--concurrency N] [--faults] [--serve]

  --orders N        orders in the demo workload (3 events each)          default 40
  --rate N          producer commands per second                          default 20
  --concurrency N   concurrent producers                                  default 4
  --faults          inject failures during the workload (see README)
  --no-iam          do not enforce IAM and resource policies offline (enforced by default)
  --serve           keep the stack running and print its endpoints (Ctrl-C stops)
  --settle-seconds  most time to wait for the last effects                default 60 (chaos: 180)
  --chaos           seeded chaos runs: workload and faults drawn from the seed (see README)
  --seed N          first seed of --chaos                                 default 1
  --runs K          chaos runs, seeds N..N+K-1                            default 1
  --minutes M       workload minutes per chaos run (decimals allowed)     default 2
`;

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, but "${value}" was given`);
  return n;
}

export async function runLocalCommand(argv: string[]): Promise<number> {
  const processStart = Date.now() - Math.round(process.uptime() * 1000);
  const { values } = parseArgs({
    args: argv,
    options: {
      orders: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      faults: { type: 'boolean', default: false },
      'no-iam': { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      'settle-seconds': { type: 'string' },
      chaos: { type: 'boolean', default: false },
      seed: { type: 'string' },
      runs: { type: 'string' },
      minutes: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const workDir = path.resolve(LOCAL_WORK_DIR);
  if (values.chaos) {
    const { runChaos } = await import('./chaos/chaos-run.ts');
    const seed = Number(values.seed ?? 1);
    const minutes = Number(values.minutes ?? 2);
    if (!Number.isSafeInteger(seed))
      throw new Error(`--seed must be an integer, but "${values.seed}" was given`);
    if (!(minutes > 0))
      throw new Error(`--minutes must be a positive number, but "${values.minutes}" was given`);
    return runChaos({
      workDir,
      seed,
      runs: positiveInt(values.runs, 'runs', 1),
      minutes,
      settleTimeoutMs: positiveInt(values['settle-seconds'], 'settle-seconds', 180) * 1000,
    });
  }
  if (values.serve) {
    const { serve } = await import('./serve.ts');
    return serve({ workDir });
  }
  // DynamoDB Local's JVM (the slowest part of a warm start) boots while the demo's modules load.
  const { startDynamoDbLocal, startFauxqs } = await import('serverless-outbox/local/services');
  const dynamodb = startDynamoDbLocal();
  const fauxqs = startFauxqs();
  // A failure surfaces where the stack awaits them; until then it must not count as unhandled.
  dynamodb.catch(() => undefined);
  fauxqs.catch(() => undefined);
  const { runDemo } = await import('./demo-run.ts');
  try {
    return await runDemo({
      workDir,
      dynamodb,
      fauxqs,
      orders: positiveInt(values.orders, 'orders', 40),
      ratePerSecond: positiveInt(values.rate, 'rate', 20),
      concurrency: positiveInt(values.concurrency, 'concurrency', 4),
      faults: values.faults === true,
      iam: values['no-iam'] !== true,
      settleTimeoutMs: positiveInt(values['settle-seconds'], 'settle-seconds', 60) * 1000,
      processStart,
    });
  } finally {
    // The stack stops them; this covers a run that failed before it took them over (stop is idempotent).
    await Promise.allSettled([dynamodb.then((d) => d.stop()), fauxqs.then((f) => f.stop())]);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  try {
    process.exitCode = await runLocalCommand(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`npm start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  }
}
