import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSuccess, packAndInstall, projectEnv, REPO, run } from './adopter.ts';
import { readmeProjectFiles } from './readme-snippets.ts';

/**
 * The package as a team installs it: `npm pack`, install the tarball into a fresh project outside the repository,
 * write there the README's "Use it in your project" files (one Outbox, a producer on `serverless-outbox/writer`, an
 * ordered subscription whose consumer file lives in that project, a Subscription in a second stack), type-check it
 * and synthesize it with `cdk synth` and no credentials.
 */
describe('the packed package in a fresh CDK project', () => {
  let work: string;
  let project: string;
  let tarball: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'outbox-package-'));
    project = path.join(work, 'adopter');
    await mkdir(project);
    env = projectEnv(project);
    tarball = await packAndInstall({
      work,
      project,
      env,
      files: {
        ...readmeProjectFiles(await readFile(path.join(REPO, 'README.md'), 'utf8')),
        'package.json': JSON.stringify({ name: 'outbox-adopter', private: true, type: 'module' }, null, 2),
        'cdk.json': JSON.stringify({ app: 'node bin/app.ts' }),
        'tsconfig.json': JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            verbatimModuleSyntax: true,
            types: ['node'],
            skipLibCheck: true,
          },
          include: ['bin', 'lib', 'src'],
        }),
      },
      dependencies: ['aws-cdk-lib', 'constructs', 'aws-cdk', 'esbuild', 'typescript', '@types/node'],
    });
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships compiled JavaScript, declarations and the prebuilt handlers, and no tests, benches or examples', async () => {
    const listing = run('tar', ['-tzf', tarball], work, env);
    expectSuccess(listing, 'tar -tzf');
    const files = listing.output.split('\n').filter(Boolean);
    const bytes = (await stat(tarball)).size;
    process.stdout.write(`PACKAGE_FIGURES tarball ${bytes} bytes, ${files.length} entries\n`);
    expect(files).toContain('package/dist/lib/index.js');
    expect(files).toContain('package/dist/lib/index.d.ts');
    expect(files).toContain('package/dist/functions/writer/index.js');
    expect(files).toContain('package/dist/functions/consumer/index.js');
    expect(files).toContain('package/dist/local/index.js');
    expect(files).toContain('package/dist/bin/outbox.js');
    expect(files).toContain('package/dist/handlers/relay/index.mjs');
    expect(files).toContain('package/dist/handlers/recovery/index.mjs');
    expect(files).toContain('package/dist/handlers/audit/index.mjs');
    expect(files.filter((f) => /^package\/(test|bench|examples|docs|scripts)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).not.toContain('package/package-lock.json');
  });

  it('the runtime entry points load no aws-cdk-lib, and the constructs load no AWS SDK', async () => {
    const bundle = (entry: string, externals: readonly string[]) => {
      const meta = path.join(work, `${entry.replace(/\W/g, '_')}.meta.json`);
      const result = run(
        'esbuild',
        [
          `--bundle`,
          `--platform=node`,
          `--format=esm`,
          `--metafile=${meta}`,
          `--outfile=${meta}.js`,
          ...externals.map((e) => `--external:${e}`),
          `--log-level=error`,
          path.join(project, 'entry.mjs'),
        ],
        project,
        env,
      );
      return { result, meta };
    };
    const inputsOf = async (entry: string, externals: readonly string[]) => {
      await writeFile(path.join(project, 'entry.mjs'), `export * from '${entry}';\n`);
      const { result, meta } = bundle(entry, externals);
      expectSuccess(result, `bundling ${entry}`);
      return Object.keys((JSON.parse(await readFile(meta, 'utf8')) as { inputs: object }).inputs);
    };
    for (const entry of ['serverless-outbox/writer', 'serverless-outbox/consumer']) {
      const inputs = await inputsOf(entry, []);
      expect(inputs.some((i) => i.includes('node_modules/serverless-outbox/dist/functions/'))).toBe(true);
      expect(inputs.filter((i) => /node_modules\/(aws-cdk-lib|constructs)\//.test(i))).toEqual([]);
    }
    const constructInputs = await inputsOf('serverless-outbox', ['aws-cdk-lib', 'constructs', 'cdk-nag']);
    expect(constructInputs.some((i) => i.includes('node_modules/serverless-outbox/dist/lib/'))).toBe(true);
    expect(constructInputs.filter((i) => /node_modules\/@aws-sdk\//.test(i))).toEqual([]);
  });

  it('type-checks the README project against the public entry points', () => {
    expectSuccess(run('tsc', ['-p', 'tsconfig.json'], project, env), 'tsc');
  });

  it('synthesizes both stacks with `cdk synth`, no credentials, bundling only the project’s own code', async () => {
    const synthStart = performance.now();
    const synth = run('cdk', ['synth', '--all', '--quiet'], project, env);
    // Reported for the issue notes (a figure, not a goal: performance goals live in `npm run bench`).
    process.stdout.write(
      `PACKAGE_FIGURES cdk synth --all of the README project: ${Math.round(performance.now() - synthStart)} ms\n`,
    );
    expectSuccess(synth, 'cdk synth');
    const cdkOut = path.join(project, 'cdk.out');
    const orders = JSON.parse(await readFile(path.join(cdkOut, 'Orders.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const analytics = JSON.parse(await readFile(path.join(cdkOut, 'Analytics.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
      Outputs?: Record<string, unknown>;
    };
    const functions = Object.values(orders.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    const descriptions = functions.map((f) => String(f.Properties.Description ?? ''));
    expect(descriptions.some((d) => d.startsWith('Outbox relay'))).toBe(true);
    expect(descriptions.some((d) => d.startsWith('billing consumer'))).toBe(true);
    // The team's rule is in its own stack, on the outbox's bus (imported from the Orders stack).
    const rule = Object.values(analytics.Resources).find((r) => r.Type === 'AWS::Events::Rule');
    expect(JSON.stringify(rule?.Properties.EventBusName)).toContain('Fn::ImportValue');
    expect(Object.keys(analytics.Outputs ?? {})).toEqual(
      expect.arrayContaining(['SubAnalyticsQueueUrl', 'SubAnalyticsDlqUrl']),
    );
    // The library's handlers are the package's prebuilt bundles, staged byte for byte, not bundled by this synth.
    const staged = (await readdir(cdkOut)).filter((name) => name.startsWith('asset.'));
    for (const handler of ['relay', 'recovery']) {
      const shipped = await readFile(
        path.join(project, 'node_modules', 'serverless-outbox', 'dist', 'handlers', handler, 'index.mjs'),
      );
      const copies = await Promise.all(
        staged.map(async (dir) => {
          const file = path.join(cdkOut, dir, 'index.mjs');
          return existsSync(file) && (await readFile(file)).equals(shipped);
        }),
      );
      expect(copies.filter(Boolean), `${handler} asset`).toHaveLength(1);
    }
  });

  it('installs the `outbox` command, compiled, runnable from node_modules/.bin', () => {
    const help = run('outbox', ['--help'], project, env);
    expect(help.status).toBe(0);
    expect(help.output).toMatch(/usage: outbox <command>/);
  });
});
