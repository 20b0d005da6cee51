import { describe, expect, it } from 'vitest';
import type { LocalApp, StartLocalOptions } from '../../local/app/start-local.ts';
import { LOCAL_COMMAND_USAGE, runLocalAppCommand } from '../../local/cli.ts';

/** Runs `outbox local --check` with a recorded start: what it asks of startLocal(). */
async function startOptions(argv: string[]): Promise<StartLocalOptions> {
  let seen: StartLocalOptions | undefined;
  const started = {
    stacks: [{ stackName: 'S' }],
    timings: { readyMs: 1 },
    startupReport: 'IAM: enforced',
    check: async () => ({ ok: true, events: 0, outboxTables: [], subscriptions: [] }),
    stop: async () => {},
  } as unknown as LocalApp;
  const code = await runLocalAppCommand(
    ['--check', '--settle-seconds', '0', ...argv],
    { stdout: () => {}, stderr: () => {} },
    {
      start: async (opts) => {
        seen = opts;
        return started;
      },
    },
  );
  expect(code).toBe(0);
  return seen as StartLocalOptions;
}

describe('outbox local --no-iam', () => {
  it('enforces IAM by default and turns it off with --no-iam', async () => {
    expect((await startOptions([])).iam).toBeUndefined();
    expect((await startOptions(['--no-iam'])).iam).toBe(false);
    expect(LOCAL_COMMAND_USAGE).toMatch(/--no-iam\s+do not enforce IAM/);
  });
});

describe('outbox local --no-synth-cache', () => {
  it("uses startLocal()'s synth cache by default and synthesizes every time with --no-synth-cache", async () => {
    expect((await startOptions([])).synthCacheDir).toBeUndefined();
    expect((await startOptions(['--no-synth-cache'])).synthCacheDir).toBe(false);
    expect(LOCAL_COMMAND_USAGE).toMatch(/--no-synth-cache\s+synthesize the app/);
  });
});
