/**
 * Synthesizes an app for the offline runtime with its synth script (see `OfflineStackOptions.synthScript`), in a
 * child process, optionally through the synth cache (local/synth-cache.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import * as path from 'node:path';
import type { CfnTemplate } from './runtime/template.ts';
import {
  findCachedSynth,
  readRecordedFiles,
  type SynthCacheInput,
  stagingDir,
  storeSynth,
} from './synth-cache.ts';
import { SYNTH_RESULT_FILE, type SynthResult } from './synth-result.ts';

export type Synthesized<Resources> = {
  template: CfnTemplate;
  assetRoot: string;
  stackName: string;
  resources: Resources;
  /** True when the synth was reused from the cache. */
  cached: boolean;
};

/** Runs the synth script in a child process; `recordFile` makes it record the files it used (synth cache). */
async function runSynthScript(
  workDir: string,
  synthScript: string,
  context: Readonly<Record<string, string>>,
  log: (line: string) => void,
  recordFile?: string,
): Promise<void> {
  await mkdir(workDir, { recursive: true });
  const recorder = new URL(`./synth-recorder${path.extname(import.meta.filename)}`, import.meta.url);
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      '--disable-warning=ExperimentalWarning',
      ...(recordFile ? ['--import', recorder.href] : []),
      synthScript,
      workDir,
      JSON.stringify(context),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: recordFile ? { ...process.env, OUTBOX_SYNTH_RECORD: recordFile } : process.env,
    },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log(`[synth] ${line}`);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`synthesizing the CDK app failed (exit ${code}):\n${output.slice(-4000)}`);
}

/** Reads `<dir>/synth.json`; relative paths in it are relative to `dir` (a cached entry moves). */
async function readSynthDir<Resources extends Record<string, string>>(
  dir: string,
  cached: boolean,
): Promise<Synthesized<Resources>> {
  const result = JSON.parse(
    await readFile(path.join(dir, SYNTH_RESULT_FILE), 'utf8'),
  ) as SynthResult<Resources>;
  const templateFile = path.resolve(dir, result.templateFile);
  const template = JSON.parse(await readFile(templateFile, 'utf8')) as CfnTemplate;
  return {
    template,
    assetRoot: path.resolve(dir, result.assetRoot),
    stackName: result.stackName,
    resources: result.resources,
    cached,
  };
}

/** The folder of the nearest package.json above `file` (the project whose sources the cache watches). */
function projectRootOf(file: string): string {
  let dir = path.dirname(path.resolve(file));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.dirname(path.resolve(file));
    dir = parent;
  }
  return dir;
}

/**
 * Synthesizes the CDK app in a child process (the same app `cdk deploy` deploys), so aws-cdk-lib's memory is
 * returned before the stack starts. The child inherits this process's Node flags (e.g. `--conditions`), so it
 * resolves modules the same way. With `cacheDir`, a synth whose sources did not change is reused
 * (local/synth-cache.ts); without it, the app is synthesized into `<workDir>/cdk.out`.
 */
export async function synthesize<Resources extends Record<string, string> = Record<string, string>>(
  workDir: string,
  synthScript: string,
  context: Readonly<Record<string, string>> = {},
  log: (line: string) => void = () => {},
  cacheDir?: string,
): Promise<Synthesized<Resources>> {
  // Recording what the app imports needs module.registerHooks (Node.js 22.15+); without it, no cache.
  if (!cacheDir || typeof (nodeModule as { registerHooks?: unknown }).registerHooks !== 'function') {
    await runSynthScript(workDir, synthScript, context, log);
    return readSynthDir<Resources>(workDir, false);
  }
  const input: SynthCacheInput = {
    identity: JSON.stringify([path.resolve(synthScript), context]),
    projectRoot: projectRootOf(synthScript),
  };
  const hit = await findCachedSynth(cacheDir, input);
  if (hit) {
    log(`[synth] sources unchanged: reusing ${path.relative(process.cwd(), hit)}`);
    return readSynthDir<Resources>(hit, true);
  }
  const staging = stagingDir(cacheDir);
  const recordFile = `${staging}.files.json`;
  try {
    await runSynthScript(staging, synthScript, context, log, recordFile);
    // Paths relative to the entry, which is moved into place under its key.
    const resultFile = path.join(staging, SYNTH_RESULT_FILE);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as SynthResult<Resources>;
    await writeFile(
      resultFile,
      JSON.stringify({
        ...result,
        templateFile: path.relative(staging, result.templateFile),
        assetRoot: path.relative(staging, result.assetRoot),
      }),
    );
    const recorded = await readRecordedFiles(recordFile);
    const entry = await storeSynth(cacheDir, staging, input, recorded);
    return readSynthDir<Resources>(entry, false);
  } finally {
    await rm(recordFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
