/**
 * The offline runtime's synth cache: a synthesized app is reused until one of its sources changes, so a warm
 * `npm start` skips the synth (the slowest step of start-up).
 *
 * Cache key (sha256) over:
 * - the synth script, its CDK context, the Node.js version;
 * - `cdk.json`, `cdk.context.json`, `package.json` and `package-lock.json` of the project (package versions: files
 *   under node_modules are covered by the lock file, not hashed one by one);
 * - the content of every project file the synth used, recorded during the synth (local/synth-recorder.ts): the
 *   modules the app imports, the files CDK read for file assets (e.g. prebuilt handler folders), and the inputs
 *   esbuild lists in the metafile of each bundled function (`bundling.metafile: true` on NodejsFunction; a bundle
 *   without a metafile is watched only through the files above).
 *
 * Layout under the cache folder: `<key>/` holds one synthesized app (its `cdk.out` and `synth.json`), and
 * `latest.json` names the newest key and the files it was computed from. A changed file gives a new key, so the
 * next start synthesizes into a new folder; older folders are pruned.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

export const SYNTH_CACHE_MANIFEST = 'latest.json';
const PROJECT_FILES = ['cdk.json', 'cdk.context.json', 'package.json', 'package-lock.json'];
const KEPT_ENTRIES = 2;

export interface SynthCacheManifest {
  readonly key: string;
  /** Project files the key was computed from (absolute paths). */
  readonly files: readonly string[];
}

export interface SynthCacheInput {
  /** Synth script and context: a different one is a different app. */
  readonly identity: string;
  /** The project root: only files under it (outside node_modules and the cache) are watched. */
  readonly projectRoot: string;
}

/** A file's content hash; a folder's is its sorted listing (a file added to an asset folder counts). */
async function fileDigest(file: string): Promise<string> {
  try {
    const hash = createHash('sha256');
    if ((await stat(file)).isDirectory()) hash.update((await readdir(file)).sort().join('\0'));
    else hash.update(await readFile(file));
    return hash.digest('hex');
  } catch {
    return 'missing';
  }
}

/** The cache key of `files` as they are now (plus the identity, Node version and project files). */
export async function synthCacheKey(input: SynthCacheInput, files: readonly string[]): Promise<string> {
  const hash = createHash('sha256').update(input.identity).update('\0').update(process.version);
  const all = [...new Set([...files, ...PROJECT_FILES.map((f) => path.join(input.projectRoot, f))])].sort();
  const digests = await Promise.all(all.map(fileDigest));
  all.forEach((file, i) => {
    hash
      .update('\0')
      .update(path.relative(input.projectRoot, file))
      .update('\0')
      .update(digests[i] ?? '');
  });
  return hash.digest('hex').slice(0, 32);
}

/** The recorded files worth watching: project files outside node_modules and the cache folder. */
export function watchedFiles(recorded: readonly string[], projectRoot: string, cacheDir: string): string[] {
  const inside = (file: string, dir: string) => {
    const relative = path.relative(dir, file);
    return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
  };
  return [
    ...new Set(
      recorded.filter(
        (file) =>
          inside(file, projectRoot) &&
          !inside(file, cacheDir) &&
          !file.split(path.sep).includes('node_modules') &&
          existsSync(file),
      ),
    ),
  ].sort();
}

/** esbuild metafile inputs of every bundled asset in a cloud assembly (`asset.*\/*.meta.json`). */
export async function bundleInputs(cdkOut: string, projectRoot: string): Promise<string[]> {
  const inputs: string[] = [];
  if (!existsSync(cdkOut)) return inputs;
  for (const entry of await readdir(cdkOut, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('asset.')) continue;
    const dir = path.join(cdkOut, entry.name);
    for (const file of await readdir(dir)) {
      if (!file.endsWith('.meta.json')) continue;
      const meta = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as {
        inputs?: Record<string, unknown>;
      };
      for (const input of Object.keys(meta.inputs ?? {})) inputs.push(path.resolve(projectRoot, input));
    }
  }
  return inputs;
}

/** The files the synth recorder (local/synth-recorder.ts) listed in `recordFile`: one JSON array per process. */
export async function readRecordedFiles(recordFile: string): Promise<string[]> {
  if (!existsSync(recordFile)) return [];
  return (await readFile(recordFile, 'utf8'))
    .split('\n')
    .filter((line) => line.trim())
    .flatMap((line) => JSON.parse(line) as string[]);
}

/** The cached entry folder whose key still matches the files as they are now, if any. */
export async function findCachedSynth(cacheDir: string, input: SynthCacheInput): Promise<string | undefined> {
  const manifestFile = path.join(cacheDir, SYNTH_CACHE_MANIFEST);
  if (!existsSync(manifestFile)) return undefined;
  let manifest: SynthCacheManifest;
  try {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as SynthCacheManifest;
  } catch {
    return undefined;
  }
  const entry = path.join(cacheDir, manifest.key);
  if (!existsSync(entry)) return undefined;
  return (await synthCacheKey(input, manifest.files)) === manifest.key ? entry : undefined;
}

/** A fresh folder to synthesize into (moved into place by `storeSynth`). */
export function stagingDir(cacheDir: string): string {
  return path.join(cacheDir, `.staging-${process.pid}-${randomUUID()}`);
}

/**
 * Files the finished synth in `staging` depended on (recorded list + bundle inputs); moves it to its key's folder,
 * points `latest.json` at it and prunes older entries. Returns the entry folder.
 */
export async function storeSynth(
  cacheDir: string,
  staging: string,
  input: SynthCacheInput,
  recorded: readonly string[],
): Promise<string> {
  const files = watchedFiles(
    [...recorded, ...(await bundleInputs(path.join(staging, 'cdk.out'), input.projectRoot))],
    input.projectRoot,
    cacheDir,
  );
  const key = await synthCacheKey(input, files);
  const entry = path.join(cacheDir, key);
  try {
    if (existsSync(entry)) await rm(staging, { recursive: true, force: true });
    else await rename(staging, entry);
  } catch (error) {
    // Another process stored the same key a moment ago: its entry is as good as ours.
    if (!existsSync(entry)) throw error;
    await rm(staging, { recursive: true, force: true });
  }
  const manifest: SynthCacheManifest = { key, files };
  const temporary = path.join(cacheDir, `.${SYNTH_CACHE_MANIFEST}.${process.pid}`);
  await writeFile(temporary, JSON.stringify(manifest, null, 1));
  await rename(temporary, path.join(cacheDir, SYNTH_CACHE_MANIFEST));
  await pruneEntries(cacheDir, key);
  return entry;
}

/** Keeps the newest entries (a running stack may still use the previous one). */
async function pruneEntries(cacheDir: string, current: string): Promise<void> {
  const entries = (await readdir(cacheDir, { withFileTypes: true })).filter(
    (e) => e.isDirectory() && /^[0-9a-f]{32}$/.test(e.name) && e.name !== current,
  );
  const dated = await Promise.all(
    entries.map(async (e) => ({ name: e.name, mtime: (await stat(path.join(cacheDir, e.name))).mtimeMs })),
  );
  dated.sort((a, b) => b.mtime - a.mtime);
  for (const old of dated.slice(KEPT_ENTRIES - 1)) {
    await rm(path.join(cacheDir, old.name), { recursive: true, force: true });
  }
}
