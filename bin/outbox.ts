#!/usr/bin/env node
/**
 * The `outbox` CLI. Each command is imported on demand so `outbox match` starts fast and never loads
 * the AWS SDK.
 */
import { readFile } from 'node:fs/promises';

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const commands: Record<string, Command> = {
  local: {
    summary: "run your CDK app offline: outbox local [--app '<command>'] [--stacks A,B] [--serve] [--check]",
    run: async (argv) => (await import('../local/cli.ts')).runLocalAppCommand(argv),
  },
  match: {
    summary:
      'test an EventBridge event pattern: outbox match --pattern <file> --event <file>; an SNS filter policy: outbox match --sns --policy <file> --message <file> [--scope MessageBody]',
    run: async (argv) =>
      (await import('../local/eventbridge/match-command.ts')).runMatchCommand(argv, {
        stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
        stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
        readFile: (p) => readFile(p, 'utf8'),
      }),
  },
  status: {
    summary:
      'backlog, in flight, oldest age and DLQ depth per subscription; unpublished and quarantined records',
    run: async (argv) => {
      const [{ runStatusCommand }, { processIo }] = await Promise.all([
        import('./commands/status.ts'),
        import('./commands/cli-support.ts'),
      ]);
      return runStatusCommand(argv, processIo);
    },
  },
  dlq: {
    summary:
      'dlq list <subscription> [--max N] | dlq redrive <subscription> [--max N] [--rate N] [--yes]: inspect or move back DLQ messages',
    run: async (argv) => {
      const [{ runDlqCommand }, { processIo }] = await Promise.all([
        import('./commands/dlq.ts'),
        import('./commands/cli-support.ts'),
      ]);
      return runDlqCommand(argv, processIo);
    },
  },
  quarantine: {
    summary:
      'quarantine list | quarantine retry <id> | --all [--max N] [--rate N] [--yes]: records the relay or sweeper gave up on',
    run: async (argv) => {
      const [{ runQuarantineCommand }, { processIo }] = await Promise.all([
        import('./commands/quarantine.ts'),
        import('./commands/cli-support.ts'),
      ]);
      return runQuarantineCommand(argv, processIo);
    },
  },
  replay: {
    summary:
      'replay --from <time> --to <time> (--subscription <name> | --all-subscribers) [--max N] [--rate N] [--yes] [--dry-run]: re-send retained events',
    run: async (argv) => {
      const [{ runReplayCommand }, { processIo }] = await Promise.all([
        import('./commands/replay.ts'),
        import('./commands/cli-support.ts'),
      ]);
      return runReplayCommand(argv, processIo);
    },
  },
  audit: {
    summary:
      'audit --from <time> --to <time> [--subscription <name>] [--dedup-table <name>] [--types a,b] [--json]: which committed events each consumer applied',
    run: async (argv) => {
      const [{ runAuditCommand }, { processIo }] = await Promise.all([
        import('./commands/audit.ts'),
        import('./commands/cli-support.ts'),
      ]);
      return runAuditCommand(argv, processIo);
    },
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return (
    `usage: outbox <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n` +
    'status, dlq, quarantine, replay and audit find the outbox by --stack <name>[,<name>...] (default ServerlessOutbox),\n' +
    '--outbox <parameterPrefix> (its SSM parameters) or --local; see `outbox <command> --help`.\n'
  );
}

const [name, ...rest] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  process.stdout.write(usage());
  process.exit(name ? 0 : 2);
}
const command = commands[name];
if (!command) {
  process.stderr.write(`outbox: unknown command "${name}"\n\n${usage()}`);
  process.exit(2);
}
try {
  process.exitCode = await command.run(rest);
} catch (error) {
  process.stderr.write(`outbox ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
