/**
 * `synthesizeApp` through the synth cache (local/synth-cache.ts), for `startLocal()` and `outbox local`: any CDK app
 * is synthesized again only when one of the files it used changed. The app's command runs with the synth recorder
 * preloaded (`NODE_OPTIONS=--import`), so every Node.js process it starts lists the files it imported and read.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  findCachedSynth,
  readRecordedFiles,
  type SynthCacheInput,
  stagingDir,
  storeSynth,
} from '../synth-cache.ts';
import {
  appCommand,
  appContext,
  readAssembly,
  resolveApp,
  runBuild,
  type SynthesizeAppOptions,
  type SynthesizedApp,
  synthesizeApp,
} from './synthesize-app.ts';

export interface CachedSynthesizedApp extends SynthesizedApp {
  /** True when the cloud assembly was reused from the cache. */
  readonly cached: boolean;
}

const RECORDER = new URL(`../synth-recorder${path.extname(import.meta.filename)}`, import.meta.url);

/**
 * Where `startLocal()` caches an app's synth by default: `node_modules/.cache/outbox-local-synth` of the app's
 * folder (ignored by git with node_modules), else a folder of the OS temp dir named after the app's folder.
 */
export function defaultSynthCacheDir(cwd: string): string {
  if (existsSync(path.join(cwd, 'node_modules')))
    return path.join(cwd, 'node_modules', '.cache', 'outbox-local-synth');
  const digest = createHash('sha256').update(path.resolve(cwd)).digest('hex').slice(0, 16);
  return path.join(tmpdir(), `outbox-synth-cache-${digest}`);
}

/**
 * Whether the recorder can run in the app's processes: it needs module.registerHooks (Node.js 22.15+) and, from
 * the sources, type stripping; without either every start synthesizes.
 */
function canRecord(): boolean {
  const hooks = typeof (nodeModule as { registerHooks?: unknown }).registerHooks === 'function';
  const typescript = (process.features as { typescript?: unknown }).typescript;
  return hooks && (RECORDER.pathname.endsWith('.js') || Boolean(typescript));
}

/** The project whose files the cache watches: the nearest folder with a package.json, from the app's folder up. */
function projectRootOf(cwd: string): string {
  let dir = cwd;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return cwd;
    dir = parent;
  }
  return dir;
}

/**
 * Synthesizes the app (as `synthesizeApp`) unless the cache holds a synth of the same command and context whose
 * files are unchanged. cdk.json's `build` still runs every time (its output is what the app then reads).
 */
export async function synthesizeAppCached(
  opts: SynthesizeAppOptions & { readonly cacheDir: string },
): Promise<CachedSynthesizedApp> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const { app, cdkJson } = await resolveApp(cwd, opts.app);
  const asFolder = path.resolve(cwd, app);
  if ((existsSync(asFolder) && statSync(asFolder).isDirectory()) || !canRecord()) {
    return { ...(await synthesizeApp(opts)), cached: false };
  }
  await runBuild(cwd, cdkJson, opts);
  const input: SynthCacheInput = {
    identity: JSON.stringify([
      cwd,
      appCommand(app),
      await appContext(cwd, cdkJson, opts.context),
      process.env.CDK_DEFAULT_ACCOUNT ?? '',
      process.env.CDK_DEFAULT_REGION ?? '',
    ]),
    projectRoot: projectRootOf(cwd),
  };
  const hit = await findCachedSynth(opts.cacheDir, input);
  if (hit) {
    opts.log?.(`sources unchanged: reusing the synth in ${hit}`);
    const outdir = path.join(hit, 'cdk.out');
    return { outdir, stacks: await readAssembly(outdir), command: appCommand(app), cached: true };
  }
  const staging = stagingDir(opts.cacheDir);
  const recordFile = `${staging}.files.json`;
  try {
    await synthesizeApp({
      ...opts,
      build: false,
      outdir: path.join(staging, 'cdk.out'),
      env: {
        ...opts.env,
        NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${RECORDER.href}`].filter(Boolean).join(' '),
        OUTBOX_SYNTH_RECORD: recordFile,
      },
    });
    const entry = await storeSynth(opts.cacheDir, staging, input, await readRecordedFiles(recordFile));
    const outdir = path.join(entry, 'cdk.out');
    return { outdir, stacks: await readAssembly(outdir), command: appCommand(app), cached: false };
  } finally {
    await rm(recordFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
