/**
 * Lambda environment churn (issue 17, the soak's Node RSS): starts and recycles execution environments many times —
 * `CHURN_ROUNDS` rounds (default 150) of `CHURN_PARALLEL` concurrent invocations (default 8), each round's
 * environments recycled after 300 ms idle — and reports this process's RSS (after a GC) as the starts add up, and
 * after the runtime stops. A leak per started worker shows as RSS growing with the starts at a constant number of
 * live environments.
 *
 * `npm run bench -- worker-churn`.
 */
import * as path from 'node:path';
import { LambdaRuntime } from '../local/runtime/lambda.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { exposeGc } from './soak-memory.ts';
import { mib, positiveFromEnv, round } from './stats.ts';

const IDLE_TIMEOUT_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(): Promise<Record<string, number | string>> {
  const rounds = positiveFromEnv('CHURN_ROUNDS', 150);
  const parallel = positiveFromEnv('CHURN_PARALLEL', 8);
  const gc = exposeGc();
  const dynamodb = await startDynamoDbLocal();
  const runtime = new LambdaRuntime({
    log: () => {},
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    maxConcurrencyPerFunction: parallel,
    endpoints: { dynamodb: dynamodb.endpoint },
  });
  runtime.register({
    functionName: 'churn',
    codeDir: path.join(import.meta.dirname, 'worker-churn'),
    handler: 'handler.handler',
    timeoutSeconds: 10,
    memorySizeMb: 256,
  });
  const rssAfterGc = () => {
    gc();
    return process.memoryUsage.rss();
  };
  const checkpoints: { started: number; rss: number }[] = [];
  let failed = 0;
  try {
    for (let r = 1; r <= rounds; r++) {
      const outcomes = await Promise.all(Array.from({ length: parallel }, () => runtime.invoke('churn', {})));
      failed += outcomes.filter((outcome) => outcome.error).length;
      if (r === 1 || r % 25 === 0 || r === rounds) {
        const { environmentsStarted } = await runtime.environmentMemory();
        checkpoints.push({ started: environmentsStarted, rss: rssAfterGc() });
      }
      await sleep(IDLE_TIMEOUT_MS * 2);
    }
  } finally {
    await runtime.stop();
    await dynamodb.stop();
  }
  const first = checkpoints[0] ?? { started: 0, rss: 0 };
  const last = checkpoints.at(-1) ?? first;
  return {
    rounds,
    live_environments_per_round: parallel,
    environments_started: last.started,
    failed_invocations: failed,
    rss_mib_by_environments_started: checkpoints.map((c) => `${c.started}:${mib(c.rss)}`).join(' '),
    rss_growth_kib_per_environment_started: round(
      (last.rss - first.rss) / 1024 / Math.max(1, last.started - first.started),
      1,
    ),
    rss_mib_after_stop: mib(rssAfterGc()),
  };
}
