import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readmeImports } from '../package/readme-snippets.ts';

/**
 * The README's snippets use the package only through its public entry points, and only names those export. The
 * titled snippets of "Use it in your project" are type-checked and synthesized for real by test/package.
 */
const PUBLIC_ENTRY_POINTS = [
  'serverless-outbox',
  'serverless-outbox/writer',
  'serverless-outbox/consumer',
  'serverless-outbox/local',
];

describe('README snippets', async () => {
  const readme = await readFile(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const imports = readmeImports(readme);

  it('import the package only through its public entry points', () => {
    const ours = imports.filter((i) => i.specifier.startsWith('serverless-outbox'));
    expect(ours.length).toBeGreaterThan(3);
    expect(ours.map((i) => i.specifier).filter((s) => !PUBLIC_ENTRY_POINTS.includes(s))).toEqual([]);
  });

  it('import nothing from inside this repository (only the project files of "Use it in your project")', () => {
    expect(imports.filter((i) => i.specifier.startsWith('.') && !i.titled)).toEqual([]);
  });

  it.each(PUBLIC_ENTRY_POINTS)('import only names that %s exports', async (entry) => {
    const module = (await import(entry)) as Record<string, unknown>;
    const wanted = imports.filter((i) => i.specifier === entry).flatMap((i) => i.values);
    expect(wanted.filter((name) => !(name in module))).toEqual([]);
  });
});
