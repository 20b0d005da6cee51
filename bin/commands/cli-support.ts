/**
 * Shared plumbing of the operator commands: typed errors with exit codes, output sinks, option parsing,
 * the deployment/client lifecycle of one command run, and plain-text formatting.
 */
import { isatty } from 'node:tty';
import { parseArgs } from 'node:util';
import type { OutboxClients } from './clients.ts';
import type { Deployment, DeploymentOptions } from './deployment.ts';

/** Exit codes every operator command returns. */
export const ExitCode = {
  ok: 0,
  /** Something failed while talking to AWS / the offline runtime, or the command found failures. */
  failure: 1,
  /** The command line was wrong; usage was printed. */
  usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of the CLI's errors: `message` says what to do; `exitCode` is what the command returns. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** Bad arguments: the command prints its usage and returns 2. */
export class CliUsageError extends CliError {
  override name = 'CliUsageError';
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

/**
 * A command that changes things needs a confirmation, `--yes` is missing and there is no terminal to ask on
 * (stdin is not a TTY). Returns 2 before anything is read or changed: a script never hangs on a prompt.
 */
export class ConfirmationRequiredError extends CliUsageError {
  override name = 'ConfirmationRequiredError';
  /** What would have been done, e.g. `dlq redrive billing`. */
  readonly action: string;
  constructor(action: string) {
    super(
      `${action} changes things and asks for a confirmation first, but stdin is not a terminal: ` +
        'pass --yes to confirm without a prompt (in scripts and CI)',
    );
    this.action = action;
  }
}

/** The operator answered no to the confirmation. Returns 1; nothing was sent, moved or changed. */
export class NotConfirmedError extends CliError {
  override name = 'NotConfirmedError';
  readonly action: string;
  constructor(action: string) {
    super(
      `not confirmed: ${action} did nothing. Run it again and answer "y", or pass --yes`,
      ExitCode.failure,
    );
    this.action = action;
  }
}

/** The deployment could not be found or read (stack, outputs, deployment file). Returns 1. */
export class DeploymentNotFoundError extends CliError {
  override name = 'DeploymentNotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.failure, options);
  }
}

/** Where a command writes. The dispatcher passes process.stdout/stderr; tests capture the text. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Clock, for tests. @default Date.now */
  now?(): number;
  /**
   * Asks a yes/no question and resolves true only for "y"/"yes". Absent when there is no terminal to ask on:
   * a command that needs a confirmation then refuses (exit 2) unless `--yes` is given.
   */
  confirm?(question: string): Promise<boolean>;
  /** Waits between batches to keep to `--rate`; tests count the waits. @default setTimeout */
  sleep?(ms: number): Promise<void>;
}

/** Asks on the terminal (prompt on stderr, so stdout stays clean for --json); end of input counts as no. */
export function askOnTerminal(question: string): Promise<boolean> {
  return import('node:readline').then(
    ({ createInterface }) =>
      new Promise<boolean>((resolve) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        let answered = false;
        // Ctrl-C (or Ctrl-D) answers no; without a SIGINT listener readline would only pause.
        rl.on('SIGINT', () => rl.close());
        rl.on('close', () => {
          if (!answered) {
            process.stderr.write('\n');
            resolve(false);
          }
        });
        rl.question(`${question} [y/N] `, (answer) => {
          answered = true;
          rl.close();
          resolve(/^y(es)?$/i.test(answer.trim()));
        });
      }),
  );
}

export const processIo: CliIo = {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  // Only a terminal can answer; a pipe or /dev/null gets no prompt (and the command refuses without --yes).
  ...(isatty(0) ? { confirm: askOnTerminal } : {}),
};

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/** Options every command that reaches a deployment accepts. */
export const DEPLOYMENT_OPTIONS = {
  stack: { type: 'string', multiple: true },
  outbox: { type: 'string' },
  region: { type: 'string' },
  local: { type: 'boolean' },
  deployment: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, OptionSpec>;

export const DEPLOYMENT_OPTIONS_USAGE = `deployment options:
  --stack <name>[,...]  CloudFormation stack(s) to read outputs from (default ServerlessOutbox); several with
                        --stack A,B or a repeated --stack: one holds the outbox, subscriptions come from all
  --outbox <prefix>     find the outbox by the SSM parameters it publishes (the Outbox's parameterPrefix);
                        its subscriptions then come from the --stack stacks, if any
  --region <region>     AWS region (default: the SDK's default chain, e.g. AWS_REGION / profile)
  --local               use the offline runtime (reads .local-runs/deployment.json; start it with \`npm start -- --serve\`)
  --deployment <file>   read the deployment from a JSON file instead (same shape as .local-runs/deployment.json)
  --json                print JSON instead of a table
  -h, --help            show this help`;

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[] | undefined>;
  readonly positionals: string[];
}

/** node:util parseArgs in strict mode, with its errors turned into CliUsageError. */
export function parseCommandArgs(argv: readonly string[], options: Record<string, OptionSpec>): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    throw new CliUsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Refuses extra positional arguments beyond the first `count`. */
export function expectPositionals(args: ParsedArgs, count: number): void {
  const extra = args.positionals[count];
  if (extra !== undefined) throw new CliUsageError(`unexpected argument "${extra}"`);
}

/** The deployment-selection part of parsed options. */
export function deploymentOptionsOf(values: ParsedArgs['values']): DeploymentOptions {
  const stack = stackOption(values);
  const outbox = stringOption(values, 'outbox');
  const region = stringOption(values, 'region');
  const deploymentFile = stringOption(values, 'deployment');
  const local = values.local === true;
  if (local && deploymentFile !== undefined) {
    throw new CliUsageError('use either --local or --deployment <file>, not both');
  }
  if ((local || deploymentFile !== undefined) && stack !== undefined) {
    throw new CliUsageError(
      '--stack reads a deployed CloudFormation stack; it cannot be combined with --local or --deployment',
    );
  }
  if ((local || deploymentFile !== undefined) && outbox !== undefined) {
    throw new CliUsageError(
      '--outbox reads the SSM parameters of a deployed Outbox; it cannot be combined with --local or --deployment',
    );
  }
  return {
    ...(stack === undefined ? {} : { stack }),
    ...(outbox === undefined ? {} : { outbox }),
    ...(region === undefined ? {} : { region }),
    ...(local ? { local } : {}),
    ...(deploymentFile === undefined ? {} : { deploymentFile }),
  };
}

/** `--stack A,B --stack C` → `['A,B', 'C']` (resolveDeployment splits at the commas); undefined when absent. */
function stackOption(values: ParsedArgs['values']): string[] | undefined {
  const value = values.stack;
  if (value === undefined || typeof value === 'boolean') return undefined;
  return Array.isArray(value) ? value : [value];
}

export function stringOption(values: ParsedArgs['values'], name: string): string | undefined {
  const value = values[name];
  if (value === undefined || typeof value === 'boolean') return undefined;
  if (Array.isArray(value)) throw new CliUsageError(`--${name} takes one value`);
  if (value.trim() === '') throw new CliUsageError(`--${name} needs a value`);
  return value;
}

/** A positive integer option (`--max 20`). */
export function integerOption(
  values: ParsedArgs['values'],
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = stringOption(values, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CliUsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** Options of the commands that send, move or change many items. */
export const GUARD_OPTIONS = {
  yes: { type: 'boolean', short: 'y' },
  max: { type: 'string' },
  rate: { type: 'string' },
} as const satisfies Record<string, OptionSpec>;

/** Items per second when `--rate` is not given. */
export const DEFAULT_RATE = 50;
/** The highest `--rate` accepted. */
export const MAX_RATE = 1000;

export const GUARD_OPTIONS_USAGE = `  --max <n>             act on at most n items (default: all)
  --rate <n>            at most n items per second (default ${DEFAULT_RATE}, at most ${MAX_RATE})
  -y, --yes             do not ask for a confirmation (required when stdin is not a terminal)`;

export interface Guard {
  /** Skip the confirmation. */
  readonly yes: boolean;
  /** Most items acted on; undefined = no cap. */
  readonly max: number | undefined;
  /** Items per second. */
  readonly rate: number;
}

/**
 * Reads `--yes`, `--max` and `--rate`, and refuses (exit 2, before anything is read) when a confirmation
 * would be needed but cannot be asked: `--yes` missing and no terminal.
 */
export function guardOf(args: ParsedArgs, setup: PrepareSetup, action: string): Guard {
  const yes = args.values.yes === true;
  const max =
    stringOption(args.values, 'max') === undefined
      ? undefined
      : integerOption(args.values, 'max', 0, 1, Number.MAX_SAFE_INTEGER);
  const rate = integerOption(args.values, 'rate', DEFAULT_RATE, 1, MAX_RATE);
  if (!yes && !setup.interactive) throw new ConfirmationRequiredError(action);
  return { yes, max, rate };
}

/**
 * Prints the summary (stderr) and, without `--yes`, asks. Throws NotConfirmedError on "no" and
 * ConfirmationRequiredError when there is no terminal to ask on.
 */
export async function confirmAction(
  io: CliIo,
  guard: Pick<Guard, 'yes'>,
  action: string,
  summary: string,
): Promise<void> {
  io.stderr(summary.endsWith('\n') ? summary : `${summary}\n`);
  if (guard.yes) return;
  if (!io.confirm) throw new ConfirmationRequiredError(action);
  if (!(await io.confirm(`Proceed with ${action}?`))) throw new NotConfirmedError(action);
}

/**
 * Keeps to a rate: `take(n)` waits until n more items may start, so item k starts no earlier than k / rate
 * seconds after the first. Calls are served one at a time (parallel Scan segments share one pacer).
 */
export class Pacer {
  readonly rate: number;
  /** Items per call: a batch API takes 10, and one batch never exceeds a second's worth. */
  readonly chunk: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private started: number | undefined;
  private count = 0;
  private turn: Promise<void> = Promise.resolve();

  constructor(rate: number, now: () => number, sleep: (ms: number) => Promise<void>) {
    this.rate = rate;
    this.chunk = Math.max(1, Math.min(10, rate));
    this.now = now;
    this.sleep = sleep;
  }

  take(n: number): Promise<void> {
    const next = this.turn.then(async () => {
      const at = this.now();
      if (this.started === undefined) this.started = at;
      const due = this.started + Math.ceil((this.count * 1000) / this.rate);
      if (due > at) await this.sleep(due - at);
      this.count += n;
    });
    this.turn = next.catch(() => undefined);
    return next;
  }
}

export const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An ISO-8601 time option; returns epoch milliseconds. */
export function timeOption(values: ParsedArgs['values'], name: string): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  // Date.parse accepts many shapes; require at least a calendar date so "5" or "yesterday" are refused.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new CliUsageError(`--${name} must be an ISO-8601 time such as 2026-11-22T16:00:00Z, got "${raw}"`);
  }
  return ms;
}

/** `--from` and `--to`, both required, as the half-open window [from, to) in epoch ms. */
export function windowOption(values: ParsedArgs['values']): { from: number; to: number } {
  const from = timeOption(values, 'from');
  const to = timeOption(values, 'to');
  if (from === undefined || to === undefined) throw new CliUsageError('--from and --to are required');
  if (from >= to) {
    throw new CliUsageError(
      `--from (${new Date(from).toISOString()}) must be earlier than --to (${new Date(to).toISOString()}): the window is [from, to)`,
    );
  }
  return { from, to };
}

/** What a command body gets: the resolved deployment, clients for it, the output sinks and the clock. */
export interface CommandContext {
  readonly deployment: Deployment;
  readonly clients: OutboxClients;
  readonly io: CliIo;
  readonly now: () => number;
  /** Waits (the --rate pacing). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly json: boolean;
}

/** What `prepare` may look at besides the arguments, before any deployment is touched. */
export interface PrepareSetup {
  readonly now: () => number;
  /** A confirmation can be asked (CliIo.confirm exists, i.e. stdin is a terminal). */
  readonly interactive: boolean;
}

export interface CommandDefinition {
  /** e.g. `outbox dlq list <subscription> [--max N]` */
  readonly usage: string;
  readonly options: Record<string, OptionSpec>;
  /** The command's own options, one per line, shown above the deployment options. */
  readonly optionsUsage?: string;
  /** Validates arguments (throw CliUsageError) and returns the work to do against the deployment. */
  readonly prepare: (args: ParsedArgs, setup: PrepareSetup) => (context: CommandContext) => Promise<ExitCode>;
}

/**
 * Runs one command: parses arguments, resolves the deployment, creates clients, runs the body, maps errors to
 * exit codes (usage → 2 with the usage text, anything else → 1 with the message) and closes the clients.
 */
export async function runCommand(
  definition: CommandDefinition,
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  const usage = `usage: ${definition.usage}\n\n${definition.optionsUsage ? `options:\n${definition.optionsUsage}\n\n` : ''}${DEPLOYMENT_OPTIONS_USAGE}\n`;
  let clients: OutboxClients | undefined;
  try {
    const args = parseCommandArgs(argv, { ...DEPLOYMENT_OPTIONS, ...definition.options });
    if (args.values.help === true) {
      io.stdout(usage);
      return ExitCode.ok;
    }
    const now = io.now ? () => (io.now as () => number)() : Date.now;
    const body = definition.prepare(args, { now, interactive: io.confirm !== undefined });
    const deploymentOptions = deploymentOptionsOf(args.values);
    const { resolveDeployment } = await import('./deployment.ts');
    const { createClients } = await import('./clients.ts');
    const deployment = await resolveDeployment(deploymentOptions);
    clients = createClients(deployment, deploymentOptions);
    const sleep = io.sleep ? (ms: number) => (io.sleep as (ms: number) => Promise<void>)(ms) : defaultSleep;
    return await body({ deployment, clients, io, now, sleep, json: args.values.json === true });
  } catch (error) {
    if (error instanceof CliUsageError) {
      io.stderr(`error: ${error.message}\n\n${usage}`);
      return ExitCode.usage;
    }
    io.stderr(`error: ${describeError(error)}`);
    return ExitCode.failure;
  } finally {
    clients?.destroy();
  }
}

/** A one-line explanation of an error, with a hint for the usual AWS SDK failures. */
export function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const e = error as { name?: string; message?: string; Code?: string } | undefined;
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(error);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return `no AWS credentials found (${message}). Configure the default credential chain (AWS_PROFILE, \`aws sso login\`, environment variables) or use --local for the offline runtime.`;
  }
  if (/Region is missing/i.test(message)) {
    return 'no AWS region configured: pass --region <region> or set AWS_REGION.';
  }
  if (name === 'AccessDeniedException' || name === 'AccessDenied' || /not authorized/i.test(message)) {
    return `access denied: ${message}. The operator role needs the permissions listed in docs/operations-cli.md.`;
  }
  if (name === 'QueueDoesNotExist' || name === 'AWS.SimpleQueueService.NonExistentQueue') {
    return `a queue of the deployment does not exist (${message}); the deployment description is stale: redeploy or restart the offline runtime.`;
  }
  if (name === 'ResourceNotFoundException') {
    return `${message}; the deployment description is stale: redeploy or restart the offline runtime.`;
  }
  if (/ECONNREFUSED|fetch failed|connect ECONN/i.test(message)) {
    return `cannot reach the endpoint (${message}). Is the offline runtime still running (\`npm start -- --serve\`)?`;
  }
  return `${name}: ${message}`;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

/** `1h 02m`, `3m 07s`, `12s`, `850ms`; `-` for undefined. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 0) return `in ${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const totalSeconds = Math.floor(ms / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${pad(hours)}h`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}

/** Shortens text to `max` characters with an ellipsis; newlines become spaces. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A plain-text table. Columns whose every cell is a number (or `-`) are right-aligned.
 * Returns the text with a trailing newline.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = rows.map((row) => headers.map((_, i) => String(row[i] ?? '')));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || row[i] === '-'),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')}\n`;
}

/** Pretty JSON with a trailing newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Runs `work` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  });
  await Promise.all(workers);
  return results;
}
