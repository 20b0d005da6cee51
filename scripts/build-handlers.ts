/**
 * Bundles the library's own Lambda handlers into `dist/handlers/<name>/index.mjs`, the assets the constructs
 * deploy (`lambda.Code.fromAsset`). Runs in `npm run build` (and so in `prepack`), and before tests and synth.
 */
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { build } from 'esbuild';

const root = path.join(import.meta.dirname, '..');
const handlers = { relay: 'functions/relay/handler.ts', recovery: 'functions/recovery/handler.ts' } as const;

await Promise.all(
  Object.entries(handlers).map(async ([name, entry]) => {
    const outdir = path.join(root, 'dist', 'handlers', name);
    await rm(outdir, { recursive: true, force: true });
    await build({
      entryPoints: [path.join(root, entry)],
      outfile: path.join(outdir, 'index.mjs'),
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
  }),
);
