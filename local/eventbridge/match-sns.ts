/**
 * `outbox match --sns --policy <file> --message <file> [--scope MessageAttributes|MessageBody]`: tests an SNS
 * subscription filter policy against one message or a recorded list of messages, offline, with the engine of
 * functions/patterns/sns-filter-policy.ts.
 */
import {
  compileFilterPolicy,
  FILTER_POLICY_SCOPES,
  type FilterPolicyScope,
  InvalidFilterPolicyError,
  type SnsMessageAttribute,
  type SnsMessageForFilter,
} from '../../functions/patterns/sns-filter-policy.ts';
import { describe, fail, MATCH_EXIT, type MatchCommandIo, readJsonFile } from './match-io.ts';

export const SNS_USAGE = `Usage: outbox match --sns --policy <file> --message <file> [--scope MessageAttributes|MessageBody]

Tests an SNS subscription filter policy (JSON) against a message, offline. The message file holds
{"Message": "<body>", "MessageAttributes": {"<name>": {"DataType": "String", "StringValue": "<value>"}}}
(Publish's shape; a notification's {"Type", "Value"} attributes work too), or any other JSON object, taken
as the message body. A JSON array of messages (e.g. recorded ones) is tested message by message.
--scope is the subscription's FilterPolicyScope (default MessageAttributes).
Exit code: 0 = every message matches, 1 = one does not, 2 = invalid policy, bad usage or unreadable file.
`;

export async function runSnsMatch(args: string[], io: MatchCommandIo): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed.kind === 'help') {
    io.stdout(SNS_USAGE);
    return MATCH_EXIT.match;
  }
  if (parsed.kind === 'error') {
    io.stderr(`outbox match --sns: ${parsed.message}\n\n${SNS_USAGE}`);
    return MATCH_EXIT.error;
  }

  let policyText: string;
  try {
    policyText = await io.readFile(parsed.policy);
  } catch (error) {
    return fail(io, `cannot read policy file ${parsed.policy}: ${describe(error)}`);
  }
  const messages = await readJsonFile(io, parsed.message, 'message');
  if (messages.kind === 'error') return fail(io, messages.message);

  let policy: ReturnType<typeof compileFilterPolicy>;
  try {
    policy = compileFilterPolicy(policyText, parsed.scope);
  } catch (error) {
    if (error instanceof InvalidFilterPolicyError) {
      return fail(io, `InvalidParameter: ${error.message} [policy file ${parsed.policy}]`);
    }
    throw error;
  }

  if (!Array.isArray(messages.value)) {
    const matched = policy.matches(toMessage(messages.value));
    io.stdout(matched ? 'match\n' : 'no match\n');
    return matched ? MATCH_EXIT.match : MATCH_EXIT.noMatch;
  }
  const verdicts = messages.value.map((m) => policy.matches(toMessage(m)));
  verdicts.forEach((matched, i) => {
    io.stdout(`message ${i + 1}: ${matched ? 'match' : 'no match'}\n`);
  });
  const count = verdicts.filter(Boolean).length;
  io.stdout(`${count} of ${verdicts.length} messages match (${parsed.scope})\n`);
  return count === verdicts.length ? MATCH_EXIT.match : MATCH_EXIT.noMatch;
}

/** Publish's input / a notification (`Message`, `MessageAttributes`), or a bare JSON body. */
function toMessage(value: unknown): SnsMessageForFilter {
  if (isRecord(value) && ('Message' in value || 'MessageAttributes' in value)) {
    const attributes = isRecord(value.MessageAttributes)
      ? (value.MessageAttributes as Record<string, SnsMessageAttribute>)
      : undefined;
    return {
      ...(typeof value.Message === 'string' ? { message: value.Message } : {}),
      ...(attributes ? { attributes } : {}),
    };
  }
  return { message: JSON.stringify(value) };
}

type ParsedArgs =
  | { kind: 'run'; policy: string; message: string; scope: FilterPolicyScope }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

function parseArgs(args: string[]): ParsedArgs {
  const values: { policy?: string; message?: string; scope?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    const match = /^--(policy|message|event|scope)(?:=(.*))?$/.exec(arg);
    if (!match) return { kind: 'error', message: `unknown argument "${arg}"` };
    const name = match[1] === 'event' ? 'message' : (match[1] as 'policy' | 'message' | 'scope');
    let value = match[2];
    if (value === undefined) {
      value = args[i + 1];
      i++;
    }
    if (value === undefined || value === '' || (value.startsWith('--') && match[2] === undefined)) {
      return { kind: 'error', message: `--${match[1]} needs a ${name === 'scope' ? 'value' : 'file path'}` };
    }
    if (values[name] !== undefined) return { kind: 'error', message: `--${name} given twice` };
    values[name] = value;
  }
  if (values.policy === undefined) return { kind: 'error', message: 'missing --policy <file>' };
  if (values.message === undefined) return { kind: 'error', message: 'missing --message <file>' };
  const scope = values.scope ?? 'MessageAttributes';
  if (!FILTER_POLICY_SCOPES.includes(scope as FilterPolicyScope)) {
    return { kind: 'error', message: `--scope must be MessageAttributes or MessageBody, not "${scope}"` };
  }
  return { kind: 'run', policy: values.policy, message: values.message, scope: scope as FilterPolicyScope };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
