import { describe, expect, it } from 'vitest';
import { MATCH_EXIT } from '../../local/eventbridge/match-command.ts';
import { runMatch, useMatchFiles } from '../support/match-command-run.ts';

const { file, path } = useMatchFiles('outbox-match-sns-');
const run = runMatch;

/** What the relay publishes for an outbox event: the envelope as body, type/source/... as attributes. */
const published = {
  Message: JSON.stringify({ type: 'OrderPlaced', data: { total: 250, region: 'eu' } }),
  MessageAttributes: {
    type: { DataType: 'String', StringValue: 'OrderPlaced' },
    sequence: { DataType: 'Number', StringValue: '42' },
  },
};

describe('outbox match --sns', () => {
  it('exits 0 and prints "match" for a matching attribute policy', async () => {
    const policy = await file({ type: [{ prefix: 'Order' }], sequence: [{ numeric: ['>', 10] }] });
    const result = await run(['match', '--sns', '--policy', policy, '--message', await file(published)]);
    expect(result).toEqual({ code: MATCH_EXIT.match, stdout: 'match\n', stderr: '' });
  });

  it('exits 1 and prints "no match" when the policy excludes the message', async () => {
    const policy = await file({ type: [{ 'anything-but': 'OrderPlaced' }] });
    const result = await run(['--sns', `--policy=${policy}`, `--message=${await file(published)}`]);
    expect(result).toEqual({ code: 1, stdout: 'no match\n', stderr: '' });
  });

  it('--scope MessageBody reads the body, with nested keys', async () => {
    const policy = await file({ data: { region: ['eu'], total: [{ numeric: ['>=', 100] }] } });
    const message = await file(published);
    expect(
      (await run(['--sns', '--policy', policy, '--message', message, '--scope', 'MessageBody'])).code,
    ).toBe(0);
    // The same nested policy is invalid on attributes.
    const onAttributes = await run(['--sns', '--policy', policy, '--message', message]);
    expect(onAttributes.code).toBe(2);
    expect(onAttributes.stderr).toContain(
      'InvalidParameter: Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy',
    );
  });

  it('takes any other JSON object as the message body', async () => {
    const policy = await file({ status: ['shipped'] });
    const body = await file({ status: 'shipped' });
    expect((await run(['--sns', '--policy', policy, '--message', body, '--scope=MessageBody'])).stdout).toBe(
      'match\n',
    );
  });

  it('tests a recorded list message by message; exit 0 only when all match', async () => {
    const policy = await file({ type: ['OrderPlaced'] });
    const other = { ...published, MessageAttributes: { type: { Type: 'String', Value: 'OrderCancelled' } } };
    const result = await run(['--sns', '--policy', policy, '--event', await file([published, other])]);
    expect(result.code).toBe(MATCH_EXIT.noMatch);
    expect(result.stdout).toBe(
      'message 1: match\nmessage 2: no match\n1 of 2 messages match (MessageAttributes)\n',
    );
  });

  it("exits 2 with SNS's reason for an invalid policy", async () => {
    const policy = await file({ type: [{ wildcard: 'Order*' }] });
    const result = await run(['--sns', '--policy', policy, '--message', await file(published)]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'InvalidParameter: Invalid parameter: FilterPolicy: Unrecognized match type wildcard',
    );
    expect(result.stderr).toContain(policy);
  });

  it('exits 2 for a policy that is not JSON', async () => {
    const policy = await file('{"type": [');
    const result = await run(['--sns', '--policy', policy, '--message', await file(published)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Invalid parameter: FilterPolicy: failed to parse JSON.');
  });

  it.each([
    ['no arguments', [], 'missing --policy <file>'],
    ['missing --message', ['--policy', 'p.json'], 'missing --message <file>'],
    [
      'bad scope',
      ['--policy', 'p', '--message', 'm', '--scope', 'Body'],
      '--scope must be MessageAttributes or MessageBody',
    ],
    ['EventBridge flag', ['--pattern', 'p', '--message', 'm'], 'unknown argument "--pattern"'],
    ['repeated flag', ['--policy', 'a', '--policy', 'b', '--message', 'm'], '--policy given twice'],
  ])('exits 2 on bad usage: %s', async (_name, argv, message) => {
    const result = await run(['--sns', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: outbox match --sns');
  });

  it('exits 2 when a file cannot be read', async () => {
    const missing = path('nope.json');
    const result = await run(['--sns', '--policy', missing, '--message', await file(published)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read policy file ${missing}`);
  });

  it('prints its usage on --sns --help, and the EventBridge usage mentions --sns', async () => {
    expect((await run(['--sns', '--help'])).stdout).toContain('Usage: outbox match --sns --policy <file>');
    expect((await run(['--help'])).stdout).toContain('outbox match --sns --policy <file> --message <file>');
  });
});
