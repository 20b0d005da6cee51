import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectStacks } from '../../local/app/synthesize-app.ts';
import { NoSuchStackError, type SynthesizedApp, synthesizeApp } from '../../local/index.ts';

const APP_DIR = path.join(import.meta.dirname, 'fixtures', 'two-stack-app');

const envOf = (app: SynthesizedApp, stack: string, functionPrefix: string): Record<string, unknown> => {
  const template = app.stacks.find((s) => s.stackName === stack)?.template;
  const fn = Object.entries(template?.Resources ?? {}).find(
    ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(functionPrefix),
  )?.[1];
  const environment = fn?.Properties?.Environment as { Variables: Record<string, unknown> } | undefined;
  return environment?.Variables ?? {};
};

describe('synthesizeApp() (the CDK CLI --app semantics, read with cx-api)', () => {
  let work: string;
  let app: SynthesizedApp;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'outbox-synth-'));
    app = await synthesizeApp({ cwd: APP_DIR, outdir: path.join(work, 'default') });
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("runs cdk.json's app into CDK_OUTDIR, stacks in dependency order, with asset and path metadata", () => {
    expect(app.command).toBe('node app.ts');
    expect(app.outdir).toBe(path.join(work, 'default'));
    expect(app.stacks.map((s) => [s.id, s.stackName, s.path])).toEqual([
      ['Platform', 'Platform', 'Platform'],
      ['Shop', 'Shop', 'Shop'],
    ]);
    expect(app.stacks[1]?.dependencies).toEqual(['Platform']);
    const shop = app.stacks[1];
    const greeter = Object.values(shop?.template.Resources ?? {}).find(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    expect(greeter?.Metadata?.['aws:asset:path']).toMatch(/^asset\./);
    expect(greeter?.Metadata?.['aws:cdk:path']).toMatch(/^Shop\/(Greeter|Worker)\/Resource$/);
    expect(shop?.assetRoot).toBe(app.outdir);
  });

  it("passes cdk.json's context (CDK_CONTEXT_JSON), under the caller's context", async () => {
    expect(envOf(app, 'Shop', 'Greeter').GREETING_PINNED).toBe('{{resolve:ssm:/shop/greeting:1}}');
    const overridden = await synthesizeApp({
      cwd: APP_DIR,
      outdir: path.join(work, 'override'),
      context: { 'fixture:greeting-version': '7' },
    });
    expect(envOf(overridden, 'Shop', 'Greeter').GREETING_PINNED).toBe('{{resolve:ssm:/shop/greeting:7}}');
  });

  it('reads a cloud assembly folder given as the app without running anything', async () => {
    const read = await synthesizeApp({ app: app.outdir, outdir: path.join(work, 'unused') });
    expect(read.command).toBeUndefined();
    expect(read.stacks.map((s) => s.stackName)).toEqual(['Platform', 'Shop']);
  });

  it('selects stacks with the stacks they depend on, and names the known ones for an unknown stack', () => {
    expect(selectStacks(app.stacks, ['Shop']).map((s) => s.id)).toEqual(['Platform', 'Shop']);
    expect(selectStacks(app.stacks, ['Platform']).map((s) => s.id)).toEqual(['Platform']);
    expect(() => selectStacks(app.stacks, ['Nope'])).toThrow(NoSuchStackError);
  });
});
