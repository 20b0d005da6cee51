import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectStacks } from '../../local/app/synthesize-app.ts';
import {
  NoSuchStackError,
  SynthesisFailedError,
  type SynthesizedApp,
  synthesizeApp,
} from '../../local/index.ts';

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
  const appOutdir = () => app.outdir;

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

  it("runs cdk.json's build first, as the CLI does, and stops at a failing build", async () => {
    const project = path.join(work, 'with-build');
    await mkdir(project);
    // The "app" copies the assembly made above into CDK_OUTDIR: any command that writes one will do.
    const app = `cp -r '${appOutdir()}/.' "$CDK_OUTDIR"`;
    await writeFile(
      path.join(project, 'cdk.json'),
      JSON.stringify({ build: `node -e "require('fs').writeFileSync('built.txt', 'yes')"`, app }),
    );
    const built = await synthesizeApp({ cwd: project, outdir: path.join(work, 'built-out') });
    expect(existsSync(path.join(project, 'built.txt'))).toBe(true);
    expect(built.stacks.map((s) => s.stackName)).toEqual(['Platform', 'Shop']);

    await writeFile(
      path.join(project, 'cdk.json'),
      JSON.stringify({ build: 'node -e "process.exit(4)"', app }),
    );
    const failed = await synthesizeApp({ cwd: project, outdir: path.join(work, 'unbuilt') }).catch(
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(SynthesisFailedError);
    expect(failed).toMatchObject({ command: 'node -e "process.exit(4)"', exitCode: 4 });
    expect(existsSync(path.join(work, 'unbuilt', 'manifest.json'))).toBe(false);
  });

  it('selects stacks with the stacks they depend on, and names the known ones for an unknown stack', () => {
    expect(selectStacks(app.stacks, ['Shop']).map((s) => s.id)).toEqual(['Platform', 'Shop']);
    expect(selectStacks(app.stacks, ['Platform']).map((s) => s.id)).toEqual(['Platform']);
    expect(() => selectStacks(app.stacks, ['Nope'])).toThrow(NoSuchStackError);
  });
});
