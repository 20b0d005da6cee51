/**
 * Bundles the library's own Lambda handlers into `dist/handlers/<name>/index.mjs`, the assets the constructs
 * deploy (`lambda.Code.fromAsset`). Runs in `npm run build` (and so in `prepack`), and before tests and synth.
 * A folder is replaced only when its bundle changed, so a build never pulls an asset from under a running synth.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { build } from 'esbuild';

const root = path.join(import.meta.dirname, '..');
const handlers = {
  relay: 'functions/relay/handler.ts',
  recovery: 'functions/recovery/handler.ts',
  audit: 'functions/audit/handler.ts',
} as const;

async function sameContent(a: string, b: string): Promise<boolean> {
  const [left, right] = await Promise.all([readdir(a).catch(() => null), readdir(b).catch(() => null)]);
  if (!left || !right || left.sort().join() !== right.sort().join()) return false;
  for (const file of left) {
    const [x, y] = await Promise.all([readFile(path.join(a, file)), readFile(path.join(b, file))]);
    if (!x.equals(y)) return false;
  }
  return true;
}

await Promise.all(
  Object.entries(handlers).map(async ([name, entry]) => {
    const outdir = path.join(root, 'dist', 'handlers', name);
    const staging = path.join(root, 'dist', 'handlers', `.${name}-${process.pid}`);
    await mkdir(staging, { recursive: true });
    await build({
      entryPoints: [path.join(root, entry)],
      outfile: path.join(staging, 'index.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      minify: true,
      sourcemap: true,
      sourcesContent: false,
      mainFields: ['module', 'main'],
      // Some CommonJS dependencies call require(); give the ESM bundle one.
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
      logLevel: 'warning',
    });
    if (await sameContent(staging, outdir)) {
      await rm(staging, { recursive: true, force: true });
      return;
    }
    await rm(outdir, { recursive: true, force: true });
    await rename(staging, outdir);
  }),
);
