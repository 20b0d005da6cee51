/**
 * `outbox audit` end to end on DynamoDB Local + fauxqs: an outbox table with records in and out of the window,
 * a dedup table with applied records and an ordered cursor, a DLQ holding one event; the per-subscription
 * counts, the missing ids and the exit code.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { runAuditCommand } from '../../bin/commands/audit.ts';
import type { CliIo } from '../../bin/commands/cli-support.ts';
import { auditedEnvelope, auditedRecord, createLocalDedupTable } from '../support/audit-records.ts';
import { createLocalOutboxTable } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

const ddbEndpoint = useDynamoDbLocal();
const sqsEndpoint = useFauxqs();

const FROM = Date.parse('2026-11-22T16:00:00Z');
const TO = Date.parse('2026-11-22T17:00:00Z');

const ENVELOPE_TIME = '2026-11-22T16:30:00.000Z';

describe('outbox audit (DynamoDB Local + fauxqs)', () => {
  it('counts applied, dead-lettered, quarantined and missing per subscription, and exits 1 on missing', async () => {
    const outbox = await createLocalOutboxTable(ddbEndpoint(), 'audit');
    const dedupTable = await createLocalDedupTable(outbox.client, `audit-dedup-${process.pid}`);
    const put = (Item: Record<string, unknown>, TableName = outbox.tableName) =>
      outbox.doc.send(new PutCommand({ TableName, Item }));
    const records: [string, string, string, number, string, number][] = [
      // id, type, aggregate, sequence, status, createdAt
      ['before', 'orders.OrderPlaced', 'order#9', 1, 'PUBLISHED', FROM - 1],
      ['p1', 'orders.OrderPlaced', 'order#1', 1, 'PUBLISHED', FROM],
      ['p2', 'orders.OrderPlaced', 'order#1', 2, 'PUBLISHED', FROM + 1000],
      ['s1', 'orders.OrderShipped', 'order#2', 1, 'READY', FROM + 2000],
      ['q1', 'orders.OrderPlaced', 'order#3', 1, 'QUARANTINED', FROM + 3000],
      ['p3', 'orders.OrderPlaced', 'order#4', 1, 'PUBLISHED', FROM + 4000],
      ['pre', 'orders.OrderPlaced', 'order#5', 1, 'CANCELLED', FROM + 5000],
      ['after', 'orders.OrderPlaced', 'order#6', 1, 'PUBLISHED', TO],
    ];
    for (const [id, type, pk, sequence, status, createdAt] of records) {
      await put(
        auditedRecord(
          { id, type, pk, sequence },
          { status, createdAt },
          { time: ENVELOPE_TIME, data: { n: sequence } },
        ),
      );
    }
    // billing (transactional dedup): p1 applied, p2 still in progress. ledger (ordered): cursor of order#1 at 2.
    await put({ pk: 'E#billing#p1', status: 'COMPLETED' }, dedupTable);
    await put({ pk: 'E#billing#p2', status: 'IN_PROGRESS' }, dedupTable);
    await put({ pk: 'S#ledger#order#1', lastSequence: 2 }, dedupTable);

    const sqs = new SQSClient(localAwsConfig(sqsEndpoint()));
    const queue = async (name: string) =>
      (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${process.pid}` }))).QueueUrl as string;
    const billingDlq = await queue('audit-billing-dlq');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: billingDlq,
        MessageBody: JSON.stringify(
          auditedEnvelope(
            { id: 'p2', type: 'orders.OrderPlaced', pk: 'order#1', sequence: 2 },
            ENVELOPE_TIME,
            {
              n: 2,
            },
          ),
        ),
      }),
    );
    const deploymentFile = join(mkdtempSync(join(tmpdir(), 'outbox-audit-')), 'deployment.json');
    writeFileSync(
      deploymentFile,
      JSON.stringify({
        outboxTableName: outbox.tableName,
        dedupTableName: dedupTable,
        subscriptions: [
          {
            name: 'billing',
            queueUrl: await queue('audit-billing'),
            deadLetterQueueUrl: billingDlq,
            filter: { kind: 'event-types', types: [], prefixes: ['orders.OrderPlaced'] },
          },
          {
            name: 'ledger',
            queueUrl: await queue('audit-ledger'),
            deadLetterQueueUrl: await queue('audit-ledger-dlq'),
          },
        ],
        endpoints: { dynamodb: ddbEndpoint(), sqs: sqsEndpoint() },
      }),
    );

    let out = '';
    let err = '';
    const io: CliIo = {
      stdout: (s) => {
        out += s;
      },
      stderr: (s) => {
        err += s;
      },
    };
    const argv = [
      '--deployment',
      deploymentFile,
      '--from',
      new Date(FROM).toISOString(),
      '--to',
      new Date(TO).toISOString(),
      '--json',
    ];
    const code = await runAuditCommand(argv, io);
    expect(err).toBe('');
    const result = JSON.parse(out);
    expect(result.events).toBe(5);
    expect(result.readUnits.scan).toBeGreaterThan(0);
    const by = Object.fromEntries(
      result.subscriptions.map((s: { subscription: string }) => [s.subscription, s]),
    );
    expect(by.billing).toMatchObject({
      expected: 4,
      applied: 1,
      deadLettered: 1,
      quarantined: 1,
      missing: 1,
    });
    expect(by.billing.missingEvents.map((m: { id: string }) => m.id)).toEqual(['p3']);
    expect(by.ledger).toMatchObject({
      expected: 5,
      applied: 2,
      deadLettered: 0,
      quarantined: 1,
      missing: 2,
      filterKnown: false,
    });
    expect(by.ledger.missingEvents.map((m: { id: string }) => m.id).sort()).toEqual(['p3', 's1']);
    expect(code).toBe(1);

    // The DLQ was peeked, not consumed; a narrower audit with nothing missing exits 0.
    out = '';
    const narrow = await runAuditCommand(
      [...argv.slice(0, -1), '--subscription', 'billing', '--types', 'orders.OrderPlaced'],
      io,
    );
    expect(out).toMatch(/billing\s+4\s+1\s+1\s+1\s+1/);
    expect(narrow).toBe(1);
    out = '';
    const none = await runAuditCommand(
      [...argv.slice(0, -1), '--subscription', 'ledger', '--types', 'orders.None'],
      io,
    );
    expect(out).toMatch(/ledger\s+0\s+0\s+0\s+0\s+0/);
    expect(none).toBe(0);
    sqs.destroy();
  });
});
