/**
 * What the package tests share: running commands in a fresh project outside the repository, and packing this
 * package and installing it there as a team would (`npm pack`, then `npm install <tarball> ...`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { inject } from 'vitest';

export const REPO = path.join(import.meta.dirname, '..', '..');
const NODE_BIN = path.dirname(process.execPath);

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly output: string;
}

export function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return {
    status: result.status,
    stdout: result.stdout ?? '',
    output: `${result.stdout ?? ''}${result.stderr ?? ''}`,
  };
}

/** Like `run`, without blocking the event loop (for commands that run for a minute). */
export function runAsync(
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

export function expectSuccess(result: Run, what: string): void {
  if (result.status !== 0)
    throw new Error(`${what} failed (exit ${result.status}):\n${result.output.slice(-8000)}`);
}

/**
 * The environment of the fresh project: its own `node_modules/.bin` and this repository's Node 22 first, no AWS
 * credentials or region (nothing may need an account), no CDK version check or telemetry, and none of the
 * vitest worker's settings (they would leak into a vitest run inside the project), nor the suite's CDK_VALIDATION.
 */
export function projectEnv(project: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !key.startsWith('AWS_') && !key.startsWith('VITEST') && key !== 'TEST' && key !== 'CDK_VALIDATION',
    ),
  );
  env.PATH = [path.join(project, 'node_modules', '.bin'), NODE_BIN, process.env.PATH].join(path.delimiter);
  env.CDK_DISABLE_VERSION_CHECK = 'true';
  env.CDK_DISABLE_CLI_TELEMETRY = 'true';
  return env;
}

const PACK_LOCK = path.join(REPO, 'node_modules', '.outbox-pack.lock');
/** A pack takes well under a minute; a lock this old was left by a killed run. */
const STALE_LOCK_MS = 5 * 60_000;

/** Runs `fn` while holding a lock folder (mkdir is atomic), so only one test process packs at a time. */
async function withPackLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await mkdir(PACK_LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than any pack (a run killed mid-pack) is stale: take it over.
      const held = await stat(PACK_LOCK).catch(() => undefined);
      if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
        await rm(PACK_LOCK, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${PACK_LOCK} is still held after 10 minutes: remove it`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(PACK_LOCK, { recursive: true, force: true });
  }
}

/**
 * `npm pack` of this repository, once per vitest run: the files of one run share the tarball in the run's pack
 * folder (test/support/global-pack.ts); outside such a run each call packs into `work`.
 */
async function packOncePerRun(work: string, env: NodeJS.ProcessEnv): Promise<string> {
  const runPackDir = inject('runPackDir');
  const destination = runPackDir ?? work;
  // `npm pack` rebuilds dist/ (prepack): two test files packing at once would delete each other's output.
  // Written once the pack succeeded: a pack killed half-way is never reused.
  const record = runPackDir && path.join(runPackDir, 'packed.json');
  return withPackLock(async () => {
    if (record && existsSync(record))
      return (JSON.parse(await readFile(record, 'utf8')) as { tarball: string }).tarball;
    await mkdir(destination, { recursive: true });
    const pack = run('npm', ['pack', '--pack-destination', destination, '--json'], REPO, env);
    expectSuccess(pack, 'npm pack');
    const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string }[];
    const tarball = path.join(destination, packed?.filename ?? '');
    if (record) await writeFile(record, JSON.stringify({ tarball }));
    return tarball;
  });
}

/** `name@<version this repository tested with>`, so the install comes from npm's cache. */
async function pinned(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8'));
  return `${name}@${(manifest as { version: string }).version}`;
}

/**
 * Packs this package (once per run, see `packOncePerRun`), writes `files` into `project`, and installs the tarball
 * with `dependencies` there. Returns the tarball's path.
 */
export async function packAndInstall(options: {
  readonly work: string;
  readonly project: string;
  readonly files: Readonly<Record<string, string>>;
  readonly dependencies: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}): Promise<string> {
  const { work, project, env } = options;
  const tarball = await packOncePerRun(work, env);
  for (const [file, text] of Object.entries(options.files)) {
    await mkdir(path.dirname(path.join(project, file)), { recursive: true });
    await writeFile(path.join(project, file), text);
  }
  const dependencies = await Promise.all(options.dependencies.map(pinned));
  const install = run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...dependencies],
    project,
    env,
  );
  expectSuccess(install, 'npm install of the tarball');
  return tarball;
}
