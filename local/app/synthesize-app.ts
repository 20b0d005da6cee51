/**
 * Runs any CDK app the way the CDK CLI's `--app` does (the command from `cdk.json`, with `CDK_OUTDIR` and
 * `CDK_CONTEXT_JSON`) and reads the cloud assembly it writes with the CDK's own library.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { CfnTemplate } from '../runtime/template.ts';
import { NoCdkAppError, NoSuchStackError, SynthesisFailedError } from './errors.ts';

export interface SynthesizeAppOptions {
  /**
   * The app, with the CDK CLI's `--app` semantics: a shell command that synthesizes the app (e.g.
   * `node bin/app.ts`), a `.js` file (run with node), or a cloud assembly folder (read as is).
   * @default the `app` of `cdk.json` in `cwd`
   */
  readonly app?: string;
  /** Where the command runs and `cdk.json` is read. @default process.cwd() */
  readonly cwd?: string;
  /** Where the app writes its cloud assembly (`CDK_OUTDIR`). */
  readonly outdir: string;
  /** More context, over `cdk.json`'s `context` and `cdk.context.json`. */
  readonly context?: Readonly<Record<string, unknown>>;
  /** The app's output lines. @default - discarded (shown in the error when the app fails) */
  readonly log?: (line: string) => void;
  /** Kills the app's process (and its children) when aborted. */
  readonly signal?: AbortSignal;
  /** @default 300_000 */
  readonly timeoutMs?: number;
  /** Run cdk.json's `build` before the app. @default true */
  readonly build?: boolean;
  /** More environment for the app's command (not for `build`). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A stack of the synthesized app. */
export interface AppStack {
  /** The artifact id (`cdk deploy <id>`). */
  readonly id: string;
  /** CloudFormation stack name. */
  readonly stackName: string;
  /** The construct path of the stack (`aws:cdk:path` metadata starts with it). */
  readonly path: string;
  readonly templateFile: string;
  readonly template: CfnTemplate;
  /** The folder `aws:asset:path` metadata is relative to. */
  readonly assetRoot: string;
  /** Artifact ids of the stacks it depends on. */
  readonly dependencies: readonly string[];
}

export interface SynthesizedApp {
  readonly outdir: string;
  /** Every stack (nested stages included), each after the stacks it depends on. */
  readonly stacks: readonly AppStack[];
  /** The command that ran (undefined when `app` was a cloud assembly folder). */
  readonly command?: string;
}

export interface CdkJson {
  readonly app?: string;
  /** Run before the app, as the CDK CLI does (e.g. `npx tsc`). */
  readonly build?: string;
  readonly context?: Record<string, unknown>;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** Context the CDK CLI passes by default, plus what the local runtime needs (asset and path metadata). */
export const LOCAL_SYNTH_CONTEXT: Readonly<Record<string, unknown>> = {
  'aws:cdk:enable-path-metadata': true,
  'aws:cdk:enable-asset-metadata': true,
  'aws:cdk:version-reporting': false,
};

/** The app to run: `app`, else the `app` of `cdk.json` in `cwd`; throws NoCdkAppError when there is none. */
export async function resolveApp(
  cwd: string,
  app: string | undefined,
): Promise<{ app: string; cdkJson: CdkJson | undefined }> {
  const cdkJson = await readJson<CdkJson>(path.join(cwd, 'cdk.json'));
  const resolved = app ?? cdkJson?.app;
  if (!resolved) throw new NoCdkAppError(cwd, cdkJson !== undefined);
  return { app: resolved, cdkJson };
}

export async function synthesizeApp(opts: SynthesizeAppOptions): Promise<SynthesizedApp> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const { app, cdkJson } = await resolveApp(cwd, opts.app);

  const asFolder = path.resolve(cwd, app);
  if (existsSync(asFolder) && statSync(asFolder).isDirectory()) {
    return { outdir: asFolder, stacks: await readAssembly(asFolder) };
  }
  const command = appCommand(app);
  const context = await appContext(cwd, cdkJson, opts.context);
  const outdir = path.resolve(opts.outdir);
  await mkdir(outdir, { recursive: true });
  // The CDK CLI runs cdk.json's `build` before the app.
  if (opts.build !== false) await runBuild(cwd, cdkJson, opts);
  await runCommand(
    command,
    cwd,
    { ...opts.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
    opts,
  );
  return { outdir, stacks: await readAssembly(outdir), command };
}

/** The shell command of an app (`--app` semantics: a `.js` file runs with this process's node). */
export function appCommand(app: string): string {
  return /^\S+\.js$/.test(app) ? `"${process.execPath}" ${app}` : app;
}

/** The context the app gets: cdk.json's, cdk.context.json's, the local runtime's, then the caller's. */
export async function appContext(
  cwd: string,
  cdkJson: CdkJson | undefined,
  extra: Readonly<Record<string, unknown>> | undefined,
): Promise<Record<string, unknown>> {
  return {
    ...(cdkJson?.context ?? {}),
    ...((await readJson<Record<string, unknown>>(path.join(cwd, 'cdk.context.json'))) ?? {}),
    ...LOCAL_SYNTH_CONTEXT,
    ...(extra ?? {}),
  };
}

/** Runs cdk.json's `build` (e.g. `npx tsc`), if any, as the CDK CLI does before the app. */
export async function runBuild(
  cwd: string,
  cdkJson: CdkJson | undefined,
  opts: Pick<SynthesizeAppOptions, 'log' | 'signal' | 'timeoutMs'>,
): Promise<void> {
  if (cdkJson?.build) await runCommand(cdkJson.build, cwd, {}, opts);
}

async function runCommand(
  command: string,
  cwd: string,
  extraEnv: Readonly<Record<string, string>>,
  opts: Pick<SynthesizeAppOptions, 'log' | 'signal' | 'timeoutMs'>,
): Promise<void> {
  opts.signal?.throwIfAborted();
  const child = spawn(command, {
    cwd,
    shell: true,
    // Its own process group, so that stopping it also stops what it started (esbuild, a ts-node...).
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // The same Node.js as this process first (the CDK CLI runs the app with whatever `node` is on PATH).
      PATH: [path.dirname(process.execPath), process.env.PATH].filter(Boolean).join(path.delimiter),
      ...extraEnv,
      CDK_DEFAULT_REGION: process.env.CDK_DEFAULT_REGION ?? 'us-east-1',
      CDK_DEFAULT_ACCOUNT: process.env.CDK_DEFAULT_ACCOUNT ?? '000000000000',
    },
  });
  const kill = (): void => killGroup(child);
  process.once('exit', kill);
  const onAbort = (): void => kill();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(kill, opts.timeoutMs ?? 300_000);
  let output = '';
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-8000);
    for (const line of text.split('\n')) if (line.trim()) opts.log?.(line);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode, signal) => resolve(signal ? null : exitCode));
    });
    opts.signal?.throwIfAborted();
    if (code !== 0) throw new SynthesisFailedError(command, cwd, code, output);
  } finally {
    clearTimeout(timer);
    process.removeListener('exit', kill);
    opts.signal?.removeEventListener('abort', onAbort);
    kill();
  }
}

/** SIGKILLs a detached child's whole process group (no-op when it is gone). */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Stacks of a cloud assembly, read with aws-cdk-lib's cx-api (loaded only here: a peer dependency). */
export async function readAssembly(directory: string): Promise<AppStack[]> {
  const cxapi = (await import('aws-cdk-lib/cx-api')) as typeof import('aws-cdk-lib/cx-api') & {
    default?: typeof import('aws-cdk-lib/cx-api');
  };
  const CloudAssembly = cxapi.CloudAssembly ?? cxapi.default?.CloudAssembly;
  const assembly = new CloudAssembly(directory);
  const artifacts = assembly.stacksRecursively;
  const stackIds = new Set(artifacts.map((a) => a.id));
  const stacks = artifacts.map(
    (artifact): AppStack => ({
      id: artifact.id,
      stackName: artifact.stackName,
      path: artifact.hierarchicalId,
      templateFile: artifact.templateFullPath,
      template: artifact.template as CfnTemplate,
      assetRoot: artifact.assembly.directory,
      dependencies: artifact.dependencies.map((d) => d.id).filter((id) => stackIds.has(id)),
    }),
  );
  return dependencyOrdered(stacks);
}

function dependencyOrdered(stacks: readonly AppStack[]): AppStack[] {
  const byId = new Map(stacks.map((s) => [s.id, s]));
  const order: AppStack[] = [];
  const seen = new Set<string>();
  const visit = (stack: AppStack): void => {
    if (seen.has(stack.id)) return;
    seen.add(stack.id);
    for (const dep of stack.dependencies) {
      const found = byId.get(dep);
      if (found) visit(found);
    }
    order.push(stack);
  };
  for (const stack of stacks) visit(stack);
  return order;
}

/**
 * The stacks named in `names` (artifact id, stack name or construct path) and, before them, the stacks they depend
 * on (their imports must resolve). @default every stack
 */
export function selectStacks(all: readonly AppStack[], names: readonly string[] | undefined): AppStack[] {
  if (!names || names.length === 0) return [...all];
  const wanted = new Set<string>();
  const byId = new Map(all.map((s) => [s.id, s]));
  const add = (stack: AppStack): void => {
    if (wanted.has(stack.id)) return;
    wanted.add(stack.id);
    for (const dep of stack.dependencies) {
      const found = byId.get(dep);
      if (found) add(found);
    }
  };
  for (const name of names) {
    const stack = all.find((s) => s.id === name || s.stackName === name || s.path === name);
    if (!stack)
      throw new NoSuchStackError(
        name,
        all.map((s) => s.id),
      );
    add(stack);
  }
  return all.filter((s) => wanted.has(s.id));
}
