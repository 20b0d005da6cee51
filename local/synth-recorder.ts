/**
 * Loaded with `--import` into the synth child process by the synth cache (local/synth-cache.ts): records every
 * file the app imports (module load hook) or reads while synthesizing (asset fingerprints and copies), and appends
 * the list, as one JSON line, to the file named by OUTBOX_SYNTH_RECORD when the process exits (an app command may
 * run several Node.js processes, e.g. `npx tsx app.ts`, each appends its own line).
 */
import fs from 'node:fs';
import * as nodeModule from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const out = process.env.OUTBOX_SYNTH_RECORD;
if (out) {
  const seen = new Set<string>();
  const note = (file: unknown): void => {
    if (typeof file === 'string') seen.add(path.resolve(file));
    else if (file instanceof URL && file.protocol === 'file:') seen.add(fileURLToPath(file));
  };
  nodeModule.registerHooks({
    load(url, context, nextLoad) {
      if (url.startsWith('file:')) seen.add(fileURLToPath(url));
      return nextLoad(url, context);
    },
  });
  // CommonJS code (aws-cdk-lib) shares this module object, so these wrappers see its asset reads too.
  const mutableFs = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ['openSync', 'readFileSync', 'copyFileSync', 'readdirSync'] as const) {
    const original = mutableFs[name] as (...args: unknown[]) => unknown;
    mutableFs[name] = function recorded(this: unknown, ...args: unknown[]) {
      note(args[0]);
      return original.apply(this, args);
    };
  }
  // ESM named imports of node:fs (`import { readFileSync }`) see the wrappers too.
  nodeModule.syncBuiltinESMExports();
  const appendFileSync = fs.appendFileSync;
  process.once('exit', () => appendFileSync(out, `${JSON.stringify([...seen])}\n`));
}
