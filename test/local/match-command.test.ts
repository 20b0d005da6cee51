import { describe, expect, it } from 'vitest';
import { MATCH_EXIT } from '../../local/eventbridge/match-command.ts';
import { runMatch, useMatchFiles } from '../support/match-command-run.ts';

const files = useMatchFiles('outbox-match-');
const file = (name: string, content: unknown) => files.file(content, name);
const run = runMatch;

const orderPlaced = {
  version: '0',
  id: 'a1b2',
  'detail-type': 'OrderPlaced',
  source: 'com.example.orders',
  account: '123456789012',
  time: '2026-01-01T00:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail: { orderId: 'o-1', total: 250 },
};

describe('outbox match', () => {
  it('exits 0 and prints "match" when the event matches', async () => {
    const pattern = await file('p-match.json', {
      source: ['com.example.orders'],
      detail: { total: [{ numeric: ['>', 100] }] },
    });
    const event = await file('e.json', orderPlaced);
    const result = await run(['--pattern', pattern, '--event', event]);
    expect(result).toEqual({ code: MATCH_EXIT.match, stdout: 'match\n', stderr: '' });
    expect(MATCH_EXIT.match).toBe(0);
  });

  it('exits 1 and prints "no match" when it does not', async () => {
    const pattern = await file('p-nomatch.json', { detail: { total: [{ numeric: ['>', 1000] }] } });
    const event = await file('e2.json', orderPlaced);
    const result = await run([`--pattern=${pattern}`, `--event=${event}`]);
    expect(result).toEqual({ code: 1, stdout: 'no match\n', stderr: '' });
  });

  it('accepts a leading "match" word', async () => {
    const pattern = await file('p-lead.json', { source: ['com.example.orders'] });
    const event = await file('e3.json', orderPlaced);
    expect((await run(['match', '--event', event, '--pattern', pattern])).code).toBe(0);
  });

  it('exits 2 with the AWS-style reason for an invalid pattern', async () => {
    const pattern = await file('p-bad.json', { source: 'com.example.orders' });
    const event = await file('e4.json', orderPlaced);
    const result = await run(['--pattern', pattern, '--event', event]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      'InvalidEventPatternException: Event pattern is not valid. Reason: "source" must be an object or an array',
    );
    expect(result.stderr).toContain(pattern);
  });

  it('exits 2 when the pattern file is a JSON string rather than an object', async () => {
    const pattern = await file('p-string.json', JSON.stringify(JSON.stringify({ source: ['x'] })));
    const event = await file('e5.json', orderPlaced);
    const result = await run(['--pattern', pattern, '--event', event]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Filter is not an object');
  });

  it.each([
    ['no arguments', [], 'missing --pattern <file>'],
    ['missing --event', ['--pattern', 'p.json'], 'missing --event <file>'],
    ['flag without a value', ['--pattern'], '--pattern needs a file path'],
    ['flag followed by a flag', ['--pattern', '--event', 'e.json'], '--pattern needs a file path'],
    [
      'unknown argument',
      ['--pattern', 'p.json', '--event', 'e.json', '--verbose'],
      'unknown argument "--verbose"',
    ],
    ['repeated flag', ['--pattern', 'a', '--pattern', 'b', '--event', 'e'], '--pattern given twice'],
  ])('exits 2 on bad usage: %s', async (_name, argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: outbox match');
  });

  it('exits 2 when a file cannot be read', async () => {
    const event = await file('e6.json', orderPlaced);
    const missing = files.path('nope.json');
    const result = await run(['--pattern', missing, '--event', event]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read pattern file ${missing}`);
    expect(result.stderr).toContain('ENOENT');
  });

  it('exits 2 when the event file is not JSON', async () => {
    const pattern = await file('p-ok.json', { source: ['x'] });
    const event = await file('e-bad.json', '{"source": ');
    const result = await run(['--pattern', pattern, '--event', event]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`event file ${event} is not valid JSON`);
  });

  it('prints usage on --help', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: outbox match --pattern <file> --event <file>');
  });
});
