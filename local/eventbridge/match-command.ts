/**
 * `outbox match --pattern <file> --event <file>`: tests an EventBridge event pattern against an
 * event offline, like `aws events test-event-pattern`. `outbox match --sns ...` tests an SNS filter
 * policy instead (match-sns.ts). Exit code 0 = match, 1 = no match, 2 = invalid pattern, bad usage,
 * or a file that cannot be read or parsed.
 */
import { compilePattern, InvalidEventPatternError } from '../../functions/patterns/event-pattern.ts';
import { fail, MATCH_EXIT, type MatchCommandIo, readJsonFile } from './match-io.ts';
import { runSnsMatch, SNS_USAGE } from './match-sns.ts';

export { MATCH_EXIT, type MatchCommandIo } from './match-io.ts';

const USAGE = `Usage: outbox match --pattern <file> --event <file>
       ${SNS_USAGE.split('\n')[0]?.replace('Usage: ', '')}

Tests an EventBridge event pattern (JSON) against an event (JSON), offline; with --sns, an SNS
subscription filter policy against a message (see outbox match --sns --help).
Exit code: 0 = the event matches, 1 = it does not, 2 = invalid pattern, bad usage or unreadable file.
`;

/**
 * Runs the command. `argv` holds the arguments after `match` (a leading `match` is skipped too).
 * Never throws for user errors: they are reported on stderr with exit code 2.
 */
export async function runMatchCommand(argv: string[], io: MatchCommandIo): Promise<number> {
  const args = argv[0] === 'match' ? argv.slice(1) : argv;
  if (args.includes('--sns'))
    return runSnsMatch(
      args.filter((a) => a !== '--sns'),
      io,
    );
  const parsed = parseArgs(args);
  if (parsed.kind === 'help') {
    io.stdout(USAGE);
    return MATCH_EXIT.match;
  }
  if (parsed.kind === 'error') {
    io.stderr(`outbox match: ${parsed.message}\n\n${USAGE}`);
    return MATCH_EXIT.error;
  }

  const patternText = await readJsonFile(io, parsed.pattern, 'pattern');
  if (patternText.kind === 'error') return fail(io, patternText.message);
  const eventText = await readJsonFile(io, parsed.event, 'event');
  if (eventText.kind === 'error') return fail(io, eventText.message);

  let pattern: ReturnType<typeof compilePattern>;
  try {
    // The text, not the parsed value: a JSON string literal must not be parsed a second time.
    pattern = compilePattern(patternText.text);
  } catch (error) {
    if (error instanceof InvalidEventPatternError) {
      return fail(io, `InvalidEventPatternException: ${error.message} [pattern file ${parsed.pattern}]`);
    }
    throw error;
  }

  if (pattern.matches(eventText.value)) {
    io.stdout('match\n');
    return MATCH_EXIT.match;
  }
  io.stdout('no match\n');
  return MATCH_EXIT.noMatch;
}

type ParsedArgs =
  | { kind: 'run'; pattern: string; event: string }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

function parseArgs(args: string[]): ParsedArgs {
  const values: { pattern?: string; event?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    const match = /^--(pattern|event)(?:=(.*))?$/.exec(arg);
    if (!match) return { kind: 'error', message: `unknown argument "${arg}"` };
    const name = match[1] as 'pattern' | 'event';
    let value = match[2];
    if (value === undefined) {
      value = args[i + 1];
      i++;
    }
    if (value === undefined || value === '' || (value.startsWith('--') && match[2] === undefined)) {
      return { kind: 'error', message: `--${name} needs a file path` };
    }
    if (values[name] !== undefined) return { kind: 'error', message: `--${name} given twice` };
    values[name] = value;
  }
  if (values.pattern === undefined) return { kind: 'error', message: 'missing --pattern <file>' };
  if (values.event === undefined) return { kind: 'error', message: 'missing --event <file>' };
  return { kind: 'run', pattern: values.pattern, event: values.event };
}
