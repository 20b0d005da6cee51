import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeAppCached } from '../../local/app/cached-app-synth.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');

/**
 * A small CDK app (cdk.json `app: node app.mjs`): its stack's queue name comes from a module it imports, a file
 * asset folder is fingerprinted, and every real synth appends a line to runs.log; cdk.json's `build` appends to
 * builds.log.
 */
const APP = `
import { appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { queueName } from './names.mjs';
const here = import.meta.dirname;
const app = new App();
const stack = new Stack(app, 'Cached');
new sqs.Queue(stack, 'Jobs', { queueName });
new s3assets.Asset(stack, 'Handler', { path: path.join(here, 'asset') });
app.synth();
appendFileSync(path.join(here, 'runs.log'), 'synth\\n');
`;

describe('synthesizeAppCached(): any CDK app, synthesized again only when a file it used changed', () => {
  let project: string;
  let cacheDir: string;
  const lines = async (file: string) =>
    (await readFile(path.join(project, file), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  const synth = () =>
    synthesizeAppCached({ cwd: project, outdir: path.join(project, 'unused-outdir'), cacheDir });
  const queueNameOf = (app: Awaited<ReturnType<typeof synth>>) =>
    Object.values(app.stacks[0]?.template.Resources ?? {}).find((r) => r.Type === 'AWS::SQS::Queue')
      ?.Properties?.QueueName;

  beforeAll(async () => {
    // Inside the repository, so that the app resolves aws-cdk-lib from its node_modules.
    await mkdir(path.join(ROOT, '.local-runs'), { recursive: true });
    project = await mkdtemp(path.join(ROOT, '.local-runs', 'app-synth-cache-'));
    cacheDir = path.join(project, '.cache');
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'app', type: 'module' }));
    await writeFile(
      path.join(project, 'cdk.json'),
      JSON.stringify({
        app: 'node app.mjs',
        build: "node -e \"require('fs').appendFileSync('builds.log', 'b\\\\n')\"",
      }),
    );
    await writeFile(path.join(project, 'app.mjs'), APP);
    await writeFile(path.join(project, 'names.mjs'), "export const queueName = 'jobs-one';\n");
    await mkdir(path.join(project, 'asset'));
    await writeFile(path.join(project, 'asset', 'index.js'), 'v1');
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('synthesizes the first time, then reuses the cloud assembly while nothing changed', async () => {
    const first = await synth();
    expect(first.cached).toBe(false);
    expect(queueNameOf(first)).toBe('jobs-one');
    const second = await synth();
    expect(second.cached).toBe(true);
    expect(second.outdir).toBe(first.outdir);
    expect(second.outdir.startsWith(cacheDir)).toBe(true);
    expect(queueNameOf(second)).toBe('jobs-one');
    expect(await lines('runs.log')).toBe(1);
    // cdk.json's build runs every time: the app reads what it produces.
    expect(await lines('builds.log')).toBe(2);
  });

  it('synthesizes again when a module the app imports changed', async () => {
    await writeFile(path.join(project, 'names.mjs'), "export const queueName = 'jobs-two';\n");
    const changed = await synth();
    expect(changed.cached).toBe(false);
    expect(queueNameOf(changed)).toBe('jobs-two');
    expect(await lines('runs.log')).toBe(2);
  });

  it('synthesizes again when a file of an asset folder changed, and with other context', async () => {
    await appendFile(path.join(project, 'asset', 'index.js'), ' v2');
    expect((await synth()).cached).toBe(false);
    expect((await synth()).cached).toBe(true);
    const otherContext = await synthesizeAppCached({
      cwd: project,
      outdir: path.join(project, 'unused-outdir'),
      cacheDir,
      context: { stage: 'other' },
    });
    expect(otherContext.cached).toBe(false);
    expect(await lines('runs.log')).toBe(4);
  });
});
