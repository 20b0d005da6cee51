/**
 * `npm run build` (and `prepack`): compiles the public entry points to ESM JavaScript with declarations in `dist/`,
 * then bundles the library's own Lambda handlers into `dist/handlers/`. What the package ships is only this output.
 */
import { spawnSync } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

const root = path.join(import.meta.dirname, '..');
// Not dist/handlers: build-handlers replaces those only when they change (tests may be reading them).
for (const folder of ['lib', 'functions', 'local', 'bin']) {
  await rm(path.join(root, 'dist', folder), { recursive: true, force: true });
}

function run(args: string[]): void {
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

run([
  path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
  '-p',
  path.join(root, 'tsconfig.build.json'),
]);
// tsc rewrites `./x.ts` to `./x.js` in JavaScript but not in declarations; a user's tsc would refuse `.ts` there.
for (const entry of await readdir(path.join(root, 'dist'), { recursive: true })) {
  if (!entry.endsWith('.d.ts')) continue;
  const file = path.join(root, 'dist', entry);
  const text = await readFile(file, 'utf8');
  const rewritten = text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2');
  if (rewritten !== text) await writeFile(file, rewritten);
}
run([path.join(root, 'scripts', 'build-handlers.ts')]);
