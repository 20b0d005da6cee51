/**
 * `outbox local`: runs a CDK app offline (every stack, or `--stacks`), then serves it until Ctrl-C (`--serve`) or
 * checks the deliveries after a settle time (`--check`, exit 1 when an expected event is missing).
 */
import { parseArgs } from 'node:util';
import { formatDeliveryCheck } from './app/check.ts';
import { LocalAppError } from './app/errors.ts';
import { type LocalApp, type StartLocalOptions, startLocal } from './app/start-local.ts';

export interface LocalCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface LocalCommandDeps {
  /** Resolves when `--serve` should stop. @default the first SIGINT or SIGTERM */
  readonly untilStopped?: (local: LocalApp) => Promise<void>;
  readonly start?: (opts: StartLocalOptions) => Promise<LocalApp>;
}

export const LOCAL_COMMAND_USAGE = `usage: outbox local [--app '<command>'] [--cwd <dir>] [--stacks A,B] [--serve] [--check]
                    [--settle-seconds N] [--no-iam] [--no-synth-cache] [--verbose]

Runs your CDK app offline: every stack (or --stacks and what they depend on) in one runtime on DynamoDB Local,
fauxqs, the local EventBridge bus and the local Lambda endpoint.

  --app '<command>'     the command that synthesizes the app (default: "app" of cdk.json in --cwd)
  --cwd <dir>           the app's folder (default: the current folder)
  --stacks A,B          only these stacks (and the stacks they depend on)
  --serve               keep running and print the endpoints as shell exports; Ctrl-C stops
  --check               print, per subscription, the events expected / applied / missing / dead-lettered
                        (after --settle-seconds; with --serve, when stopped); exit 1 when any is missing
  --settle-seconds N    how long --check waits first (default 10)
  --no-iam              do not enforce IAM and resource policies offline (enforced by default)
  --no-synth-cache      synthesize the app even when none of its files changed since the last start
  --verbose             print function output and the app's synth output
`;

const defaultIo: LocalCommandIo = {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
};

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.removeListener('SIGINT', done);
      process.removeListener('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

/** `outbox local ...`; returns the exit code. */
export async function runLocalAppCommand(
  argv: readonly string[],
  io: LocalCommandIo = defaultIo,
  deps: LocalCommandDeps = {},
): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (error) {
    io.stderr(`${error instanceof Error ? error.message : String(error)}\n\n${LOCAL_COMMAND_USAGE}`);
    return 2;
  }
  const { values } = args;
  if (values.help) {
    io.stdout(LOCAL_COMMAND_USAGE);
    return 0;
  }
  const settleSeconds = Number(values['settle-seconds'] ?? 10);
  if (!Number.isFinite(settleSeconds) || settleSeconds < 0) {
    io.stderr(`--settle-seconds must be a number of seconds, but "${values['settle-seconds']}" was given`);
    return 2;
  }
  if (!values.serve && !values.check) {
    io.stderr(`outbox local needs --serve or --check (or both)\n\n${LOCAL_COMMAND_USAGE}`);
    return 2;
  }
  const verbose = values.verbose === true;
  const stacks = values.stacks
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const serving = values.serve === true;
  let local: LocalApp;
  try {
    local = await (deps.start ?? startLocal)({
      ...(values.app ? { app: values.app } : {}),
      ...(values.cwd ? { cwd: values.cwd } : {}),
      ...(stacks && stacks.length > 0 ? { stacks } : {}),
      ...(values['no-iam'] ? { iam: false } : {}),
      ...(values['no-synth-cache'] ? { synthCacheDir: false as const } : {}),
      // --serve handles Ctrl-C itself (stop, then the check); otherwise startLocal() does.
      handleSignals: !serving,
      log: (line) => {
        if (verbose || /\[runtime (warn|error)\]|\[eventbridge\]|\[lambda endpoint\]|\[iam\]/.test(line))
          io.stderr(line);
      },
    });
  } catch (error) {
    io.stderr(
      error instanceof LocalAppError ? error.message : String(error instanceof Error ? error.stack : error),
    );
    return 1;
  }
  let code = 0;
  try {
    io.stdout(
      `${local.stacks.map((s) => s.stackName).join(', ')} running offline (ready in ${local.timings.readyMs} ms)`,
    );
    io.stdout(local.startupReport);
    if (serving) {
      io.stdout('\n# endpoints: paste into a shell to point the AWS CLI / SDKs at them');
      for (const [key, value] of Object.entries(local.env)) io.stdout(`export ${key}=${value}`);
      io.stdout('\n# outputs');
      for (const [stack, outputs] of Object.entries(local.outputs))
        for (const [key, value] of Object.entries(outputs)) io.stdout(`${stack}.${key} = ${value}`);
      io.stdout('\nCtrl-C stops.');
      await (deps.untilStopped ?? untilSignal)(local);
    } else {
      await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1000));
    }
    if (values.check) {
      const check = await local.check();
      io.stdout(formatDeliveryCheck(check));
      if (!check.ok) code = 1;
    }
  } finally {
    await local.stop();
  }
  return code;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    options: {
      app: { type: 'string' },
      cwd: { type: 'string' },
      stacks: { type: 'string' },
      serve: { type: 'boolean' },
      check: { type: 'boolean' },
      'settle-seconds': { type: 'string' },
      verbose: { type: 'boolean' },
      'no-iam': { type: 'boolean' },
      'no-synth-cache': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
