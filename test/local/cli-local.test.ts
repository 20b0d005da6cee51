import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocalAppCommand } from '../../local/cli.ts';

const APP_DIR = path.join(import.meta.dirname, 'fixtures', 'two-stack-app');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) },
    stdout: () => out.join('\n'),
    stderr: () => err.join('\n'),
  };
}

describe('outbox local (runLocalAppCommand)', () => {
  it('rejects unknown flags and a missing mode with the usage (exit 2)', async () => {
    const bad = capture();
    expect(await runLocalAppCommand(['--nope'], bad.io)).toBe(2);
    expect(bad.stderr()).toMatch(/usage: outbox local/);
    const noMode = capture();
    expect(await runLocalAppCommand(['--cwd', APP_DIR], noMode.io)).toBe(2);
    expect(noMode.stderr()).toMatch(/needs --serve or --check/);
  });

  it('says how to name the app when there is no cdk.json (exit 1)', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'outbox-cli-empty-'));
    try {
      const run = capture();
      expect(await runLocalAppCommand(['--check', '--cwd', empty], run.io)).toBe(1);
      expect(run.stderr()).toMatch(/No CDK app to run[\s\S]*--app 'node bin\/app\.ts'/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('--serve prints the stacks, the endpoints as shell exports and the outputs, and stops when told', async () => {
    const run = capture();
    let served: Record<string, string> | undefined;
    const code = await runLocalAppCommand(['--serve', '--cwd', APP_DIR, '--stacks', 'Shop'], run.io, {
      untilStopped: async (local) => {
        served = { ...local.env };
      },
    });
    expect(code).toBe(0);
    expect(run.stdout()).toMatch(/Platform, Shop running offline/); // Shop imports from Platform
    expect(run.stdout()).toContain(`export AWS_ENDPOINT_URL_LAMBDA=${served?.AWS_ENDPOINT_URL_LAMBDA}`);
    expect(run.stdout()).toMatch(/Platform\.ItemsTableName = Platform-Items/);
    expect(run.stdout()).toMatch(/UNSUPPORTED[\s\S]*AWS::AppSync::GraphQLApi/);
    // Stopped: the endpoint no longer answers.
    await expect(fetch(`${served?.AWS_ENDPOINT_URL_LAMBDA}/`)).rejects.toThrow();
  });

  it('--check prints the delivery table after the settle time (exit 0: nothing expected, nothing missing)', async () => {
    const run = capture();
    const code = await runLocalAppCommand(['--check', '--settle-seconds', '0', '--cwd', APP_DIR], run.io);
    expect(code).toBe(0);
    expect(run.stdout()).toMatch(/0 event\(s\) in 0 outbox table\(s\)/);
    expect(run.stdout()).toMatch(/OK: nothing missing/);
  });
});
