import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesize } from '../../local/synthesize.ts';

/**
 * A tiny "app" project: its synth script imports a module (the app's source), reads an asset file with fs (as CDK
 * fingerprints a file asset), writes a template naming both, and appends one line to runs.log per real synth.
 */
const SYNTH_SCRIPT = `
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { label } from './source.mjs';
const [workDir] = process.argv.slice(2);
const here = import.meta.dirname;
const asset = readFileSync(path.join(here, 'asset', 'handler.js'), 'utf8');
const outdir = path.join(workDir, 'cdk.out');
mkdirSync(outdir, { recursive: true });
const templateFile = path.join(outdir, 'App.template.json');
writeFileSync(templateFile, JSON.stringify({ Resources: { Thing: { Type: 'Test::Thing', Properties: { label, asset } } } }));
writeFileSync(path.join(workDir, 'synth.json'), JSON.stringify({ templateFile, assetRoot: outdir, stackName: 'App', resources: {} }));
appendFileSync(path.join(here, 'runs.log'), 'synth\\n');
`;

describe('synthesize() with a cache folder: reuses an unchanged app, synthesizes again when a source changed', () => {
  let project: string;
  let cacheDir: string;
  const script = () => path.join(project, 'synth.mjs');
  const runs = async () => (await readFile(path.join(project, 'runs.log'), 'utf8')).trim().split('\n').length;
  const synth = () => synthesize(path.join(project, 'work'), script(), {}, () => {}, cacheDir);
  const thing = (template: { Resources?: Record<string, { Properties?: Record<string, unknown> }> }) =>
    template.Resources?.Thing?.Properties;

  beforeAll(async () => {
    project = await mkdtemp(path.join(tmpdir(), 'outbox-synth-cache-'));
    cacheDir = path.join(project, '.local-runs', 'synth-cache');
    await mkdir(path.join(project, 'asset'));
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0' }));
    await writeFile(path.join(project, 'synth.mjs'), SYNTH_SCRIPT);
    await writeFile(path.join(project, 'source.mjs'), "export const label = 'one';\n");
    await writeFile(path.join(project, 'asset', 'handler.js'), 'v1');
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('synthesizes the first time and reuses the result while nothing changed', async () => {
    const first = await synth();
    expect(first.cached).toBe(false);
    expect(thing(first.template)).toEqual({ label: 'one', asset: 'v1' });
    const second = await synth();
    expect(second.cached).toBe(true);
    expect(thing(second.template)).toEqual({ label: 'one', asset: 'v1' });
    expect(second.assetRoot).toBe(first.assetRoot);
    expect(await runs()).toBe(1);
  });

  it('synthesizes again when a module the app imports changed', async () => {
    await writeFile(path.join(project, 'source.mjs'), "export const label = 'two';\n");
    const changed = await synth();
    expect(changed.cached).toBe(false);
    expect(thing(changed.template)).toEqual({ label: 'two', asset: 'v1' });
    expect(await runs()).toBe(2);
    expect((await synth()).cached).toBe(true);
  });

  it('synthesizes again when a file the synth read (an asset) changed', async () => {
    await writeFile(path.join(project, 'asset', 'handler.js'), 'v2');
    const changed = await synth();
    expect(changed.cached).toBe(false);
    expect(thing(changed.template)).toEqual({ label: 'two', asset: 'v2' });
    expect(await runs()).toBe(3);
  });

  it('synthesizes again when package.json (package versions) changed', async () => {
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.1' }));
    expect((await synth()).cached).toBe(false);
    expect(await runs()).toBe(4);
  });

  it('an unrelated file changing (a log) does not invalidate it', async () => {
    await appendFile(path.join(project, 'notes.txt'), 'unrelated');
    expect((await synth()).cached).toBe(true);
    expect(await runs()).toBe(4);
  });

  it('without a cache folder, synthesizes every time', async () => {
    const plain = await synthesize(path.join(project, 'work'), script(), {}, () => {});
    expect(plain.cached).toBe(false);
    expect(await runs()).toBe(5);
  });
});
