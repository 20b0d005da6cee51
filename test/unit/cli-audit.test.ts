/**
 * `outbox audit` with mocked DynamoDB and SQS: classification (applied by dedup record or ordered cursor,
 * dead-lettered, quarantined, missing), filter selection (types, prefixes, pattern, unknown) and exit codes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { BatchGetCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  auditExtrasFromOutputs,
  classify,
  runAuditCommand,
  selector,
} from '../../bin/commands/audit.ts';
import { captureIo as capture } from '../support/cli-io.ts';

process.env.AWS_REGION ??= 'us-east-1';
const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
const cfn = mockClient(CloudFormationClient);
const ssm = mockClient(SSMClient);
beforeEach(() => {
  ssm.reset();
  ddb.reset();
  sqs.reset();
  cfn.reset();
});

const FROM = '2026-11-22T16:00:00Z';
const TO = '2026-11-22T17:00:00Z';
const T = Date.parse('2026-11-22T16:30:00Z');

function record(id: string, type: string, pk: string, sequence: number, status = 'PUBLISHED') {
  const envelope = {
    specversion: '1.0',
    id,
    source: '/orders',
    type,
    time: new Date(T).toISOString(),
    datacontenttype: 'application/json',
    partitionkey: pk,
    sequence,
    data: {},
  };
  return {
    pk,
    sk: `EVT#${String(sequence).padStart(12, '0')}`,
    id,
    type,
    sequence,
    status,
    createdAt: T,
    envelope: JSON.stringify(envelope),
  };
}

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  id: 'e1',
  type: 'orders.OrderPlaced',
  source: '/orders',
  aggregateKey: 'order#1',
  sequence: 5,
  status: 'PUBLISHED',
  createdAt: T,
  ...over,
});

describe('classify', () => {
  const none = { dedup: new Map(), deadLettered: new Set<string>() };
  it('applied by a COMPLETED dedup record, not by an IN_PROGRESS one', () => {
    const dedup = new Map([['E#billing#e1', { pk: 'E#billing#e1', status: 'COMPLETED' }]]);
    expect(classify('billing', event(), { ...none, dedup })).toBe('applied');
    const inProgress = new Map([['E#billing#e1', { pk: 'E#billing#e1', status: 'IN_PROGRESS' }]]);
    expect(classify('billing', event(), { ...none, dedup: inProgress })).toBe('missing');
  });
  it('applied by an ordered cursor at or past the sequence', () => {
    const at = new Map([['S#ledger#order#1', { pk: 'S#ledger#order#1', lastSequence: 5 }]]);
    expect(classify('ledger', event(), { ...none, dedup: at })).toBe('applied');
    const behind = new Map([['S#ledger#order#1', { pk: 'S#ledger#order#1', lastSequence: 4 }]]);
    expect(classify('ledger', event(), { ...none, dedup: behind })).toBe('missing');
    // Another consumer's cursor says nothing about this one.
    expect(classify('billing', event(), { ...none, dedup: at })).toBe('missing');
  });
  it('dead-lettered, quarantined, missing', () => {
    expect(classify('billing', event(), { ...none, deadLettered: new Set(['e1']) })).toBe('dead-lettered');
    expect(classify('billing', event({ status: 'QUARANTINED' }), none)).toBe('quarantined');
    expect(classify('billing', event(), none)).toBe('missing');
  });
});

describe('filter selection', () => {
  it('by types and prefixes', () => {
    const s = selector({ kind: 'event-types', types: ['orders.OrderPlaced'], prefixes: ['billing.'] });
    expect(s(event())).toBe(true);
    expect(s(event({ type: 'billing.Invoiced' }))).toBe(true);
    expect(s(event({ type: 'orders.OrderShipped' }))).toBe(false);
  });
  it('by an EventBridge pattern on detail-type and the envelope in detail', () => {
    const s = selector({
      kind: 'event-pattern',
      pattern: { 'detail-type': [{ prefix: 'orders.' }], detail: { partitionkey: ['order#1'] } },
    });
    expect(s(event())).toBe(true);
    expect(s(event({ aggregateKey: 'order#2' }))).toBe(false);
    expect(s(event({ type: 'billing.Invoiced' }))).toBe(false);
  });
  it('no filter selects every event', () => {
    expect(selector(undefined)(event({ type: 'anything' }))).toBe(true);
  });
  it('reads OutboxDedupTableName and Sub<Name>Filter stack outputs', () => {
    const extras = auditExtrasFromOutputs([
      { OutputKey: 'OutboxDedupTableName', OutputValue: 'Dedup' },
      {
        OutputKey: 'SubOrderHistoryFilter',
        OutputValue: JSON.stringify({ kind: 'event-types', types: ['a'] }),
      },
    ]);
    expect(extras.dedupTableName).toBe('Dedup');
    expect(extras.filters.get('orderhistory')).toEqual({ kind: 'event-types', types: ['a'], prefixes: [] });
  });
});

function deploymentFile(extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'audit-'));
  const path = join(dir, 'deployment.json');
  writeFileSync(
    path,
    JSON.stringify({
      outboxTableName: 'Outbox',
      dedupTableName: 'Dedup',
      subscriptions: [
        {
          name: 'billing',
          queueUrl: 'https://sqs/billing',
          deadLetterQueueUrl: 'https://sqs/billing-dlq',
          filter: { kind: 'event-types', types: ['orders.OrderPlaced'] },
        },
        { name: 'ledger', queueUrl: 'https://sqs/ledger', deadLetterQueueUrl: 'https://sqs/ledger-dlq' },
      ],
      ...extra,
    }),
  );
  return path;
}

function mockWorld(): void {
  ddb.on(ScanCommand).resolves({ Items: [], ScannedCount: 0 });
  // Segment 0 holds everything; the other segments are empty.
  ddb.on(ScanCommand, { Segment: 0 }).resolves({
    Items: [
      record('a1', 'orders.OrderPlaced', 'order#1', 1),
      record('a2', 'orders.OrderPlaced', 'order#1', 2),
      record('a3', 'orders.OrderShipped', 'order#2', 1, 'READY'),
      record('a4', 'orders.OrderPlaced', 'order#3', 1, 'QUARANTINED'),
      record('a5', 'orders.OrderPlaced', 'order#4', 1),
    ],
    ScannedCount: 9,
    ConsumedCapacity: { CapacityUnits: 2.5 },
  });
  ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: { pk: string }[] }> }) => {
    const have: Record<string, Record<string, unknown>> = {
      'E#billing#a1': { pk: 'E#billing#a1', status: 'COMPLETED' },
      'S#ledger#order#1': { pk: 'S#ledger#order#1', lastSequence: 2 },
      'S#ledger#order#2': { pk: 'S#ledger#order#2', lastSequence: 1 },
    };
    const keys = input.RequestItems.Dedup?.Keys ?? [];
    return {
      Responses: { Dedup: keys.flatMap((k) => (have[k.pk] ? [have[k.pk]] : [])) },
      ConsumedCapacity: [{ TableName: 'Dedup', CapacityUnits: 1 }],
    };
  });
  sqs.on(GetQueueAttributesCommand).resolves({ Attributes: {} });
  sqs
    .on(ReceiveMessageCommand, { QueueUrl: 'https://sqs/billing-dlq' })
    .resolvesOnce({
      Messages: [
        {
          MessageId: 'm1',
          ReceiptHandle: 'r1',
          Body: record('a2', 'orders.OrderPlaced', 'order#1', 2).envelope,
        },
      ],
    })
    .resolves({ Messages: [] });
  sqs.on(ReceiveMessageCommand, { QueueUrl: 'https://sqs/ledger-dlq' }).resolves({ Messages: [] });
  sqs.on(ChangeMessageVisibilityBatchCommand).resolves({});
}

describe('outbox audit command', () => {
  it('counts per subscription, lists the missing ids and exits 1', async () => {
    mockWorld();
    const c = capture();
    const code = await runAuditCommand(
      ['--deployment', deploymentFile(), '--from', FROM, '--to', TO, '--json'],
      c.io,
    );
    expect(c.err()).toBe('');
    const result = JSON.parse(c.out());
    const billing = result.subscriptions.find((s: { subscription: string }) => s.subscription === 'billing');
    const ledger = result.subscriptions.find((s: { subscription: string }) => s.subscription === 'ledger');
    // billing selects OrderPlaced: a1 applied, a2 dead-lettered, a4 quarantined, a5 missing.
    expect(billing).toMatchObject({ expected: 4, applied: 1, deadLettered: 1, quarantined: 1, missing: 1 });
    expect(billing.missingEvents.map((m: { id: string }) => m.id)).toEqual(['a5']);
    // ledger has no filter: all 5; cursors apply a1, a2 (order#1 at 2) and a3 (order#2 at 1).
    expect(ledger).toMatchObject({ expected: 5, applied: 3, quarantined: 1, missing: 1, filterKnown: false });
    expect(result.readUnits).toEqual({ scan: 2.5, dedup: 2 });
    // No message was deleted: the DLQ was only peeked.
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand).length).toBe(1);
    expect(code).toBe(1);
    const consistent = ddb
      .commandCalls(BatchGetCommand)
      .map((call) => call.args[0].input.RequestItems?.Dedup?.ConsistentRead);
    expect(consistent.every((v) => v === true)).toBe(true);
  });

  it('prints the table, "filter unknown: every event counted" and the read units', async () => {
    mockWorld();
    const c = capture();
    await runAuditCommand(['--deployment', deploymentFile(), '--from', FROM, '--to', TO], c.io);
    expect(c.out()).toContain('filter unknown: every event counted');
    expect(c.out()).toContain('2.5 read units');
    expect(c.out()).toMatch(/missing in billing:\n {2}a5/);
  });

  it('exits 0 when nothing is missing (--types narrows every subscription)', async () => {
    mockWorld();
    const c = capture();
    const code = await runAuditCommand(
      [
        '--deployment',
        deploymentFile(),
        '--from',
        FROM,
        '--to',
        TO,
        '--subscription',
        'ledger',
        '--types',
        'orders.OrderShipped',
      ],
      c.io,
    );
    expect(c.out()).toMatch(/ledger\s+1\s+1\s+0\s+0\s+0/);
    expect(code).toBe(0);
  });

  it('--max bounds the events audited', async () => {
    mockWorld();
    const c = capture();
    await runAuditCommand(
      ['--deployment', deploymentFile(), '--from', FROM, '--to', TO, '--max', '2', '--json'],
      c.io,
    );
    const result = JSON.parse(c.out());
    expect(result.events).toBe(2);
    expect(result.stoppedAtMax).toBe(2);
  });

  it('usage errors exit 2: no window, reversed window, no dedup table', async () => {
    const c1 = capture();
    expect(await runAuditCommand(['--deployment', deploymentFile()], c1.io)).toBe(2);
    expect(c1.err()).toContain('--from and --to are required');
    const c2 = capture();
    expect(await runAuditCommand(['--deployment', deploymentFile(), '--from', TO, '--to', FROM], c2.io)).toBe(
      2,
    );
    const c3 = capture();
    const noDedup = deploymentFile({ dedupTableName: undefined });
    expect(await runAuditCommand(['--deployment', noDedup, '--from', FROM, '--to', TO], c3.io)).toBe(2);
    expect(c3.err()).toContain('--dedup-table');
  });

  it('on AWS reads OutboxDedupTableName and Sub<Name>Filter from the stack outputs', async () => {
    mockWorld();
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Shop',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: 'OutboxTableName', OutputValue: 'Outbox' },
            { OutputKey: 'OutboxDedupTableName', OutputValue: 'Dedup' },
            { OutputKey: 'SubBillingQueueUrl', OutputValue: 'https://sqs/billing' },
            { OutputKey: 'SubBillingDlqUrl', OutputValue: 'https://sqs/billing-dlq' },
            {
              OutputKey: 'SubBillingFilter',
              OutputValue: JSON.stringify({ kind: 'event-types', types: ['orders.OrderPlaced'] }),
            },
          ],
        },
      ],
    });
    const c = capture();
    const code = await runAuditCommand(['--stack', 'Shop', '--from', FROM, '--to', TO, '--json'], c.io);
    expect(c.err()).toBe('');
    const [billing] = JSON.parse(c.out()).subscriptions;
    expect(billing).toMatchObject({ subscription: 'billing', filterKnown: true, expected: 4, missing: 1 });
    expect(code).toBe(1);
  });

  it('an invalid pattern fails (exit 1) before the Scan', async () => {
    mockWorld();
    const file = deploymentFile({
      subscriptions: [
        {
          name: 'billing',
          queueUrl: 'https://sqs/billing',
          deadLetterQueueUrl: 'https://sqs/billing-dlq',
          filter: { kind: 'event-pattern', pattern: { source: 'not-an-array' } },
        },
      ],
    });
    const c = capture();
    expect(await runAuditCommand(['--deployment', file, '--from', FROM, '--to', TO], c.io)).toBe(1);
    expect(c.err()).toContain('not a valid EventBridge pattern');
    expect(ddb.commandCalls(ScanCommand).length).toBe(0);
  });

  it('with --outbox reads the dedup table from <prefix>/dedup-table-arn', async () => {
    mockWorld();
    const arn = (name: string) => `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`;
    ssm.on(GetParametersCommand).callsFake((input: { Names: string[] }) => ({
      Parameters: input.Names.flatMap((n) =>
        n === '/shop/outbox/table-arn'
          ? [{ Name: n, Value: arn('Outbox') }]
          : n === '/shop/outbox/dedup-table-arn'
            ? [{ Name: n, Value: arn('Dedup') }]
            : [],
      ),
    }));
    const c = capture();
    const code = await runAuditCommand(
      ['--outbox', '/shop/outbox', '--from', FROM, '--to', TO, '--json'],
      c.io,
    );
    expect(c.err()).toBe('');
    const result = JSON.parse(c.out());
    expect(result.dedupTableName).toBe('Dedup');
    expect(result.subscriptions).toEqual([]);
    expect(code).toBe(0);
  });
});
