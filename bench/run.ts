/**
 * `npm run bench`: runs every `bench/*.bench.ts` (or those named on the command line), prints each one's
 * figures and writes them all to bench/results/latest.json.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

type BenchModule = { run: () => Promise<Record<string, number | string>> };

const dir = import.meta.dirname;
const only = process.argv.slice(2);
const files = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((name) => f.startsWith(name)))
  .sort();
const results: Record<string, Record<string, number | string>> = {};
let failed = false;
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, '');
  console.log(`\n## ${name}`);
  try {
    const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as BenchModule;
    results[name] = await mod.run();
    console.table(results[name]);
  } catch (error) {
    failed = true;
    console.error(`bench ${name} failed:`, error);
  }
}
await mkdir(path.join(dir, 'results'), { recursive: true });
const out = path.join(dir, 'results', 'latest.json');
await writeFile(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`,
);
console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
process.exit(failed ? 1 : 0);
