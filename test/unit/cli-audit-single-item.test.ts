/**
 * `outbox audit` leaves out a subscription whose consumer runs mode 'single-item' (it keeps its cursor on its own
 * effect item, not in the dedup table): every one of its events would otherwise be reported missing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { auditExtrasFromJson, auditExtrasFromOutputs, runAuditCommand } from '../../bin/commands/audit.ts';
import { captureIo as capture } from '../support/cli-io.ts';

process.env.AWS_REGION ??= 'us-east-1';
const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
beforeEach(() => {
  ddb.reset();
  sqs.reset();
  ddb.on(ScanCommand).resolves({ Items: [], ScannedCount: 0 });
  ddb.on(BatchGetCommand).resolves({ Responses: {} });
  sqs.on(GetQueueAttributesCommand).resolves({ Attributes: {} });
  sqs.on(ReceiveMessageCommand).resolves({ Messages: [] });
});

const FROM = '2026-11-22T16:00:00Z';
const TO = '2026-11-22T17:00:00Z';

function deploymentFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'audit-single-')), 'deployment.json');
  writeFileSync(
    path,
    JSON.stringify({
      outboxTableName: 'Outbox',
      dedupTableName: 'Dedup',
      subscriptions: [
        { name: 'billing', queueUrl: 'https://sqs/billing', deadLetterQueueUrl: 'https://sqs/billing-dlq' },
        {
          name: 'read-model',
          queueUrl: 'https://sqs/read-model',
          deadLetterQueueUrl: 'https://sqs/read-model-dlq',
          consumerMode: 'single-item',
        },
      ],
    }),
  );
  return path;
}

describe('outbox audit and single-item consumers', () => {
  it('reads the Sub<Name>ConsumerMode output and the deployment file consumerMode', () => {
    const fromOutputs = auditExtrasFromOutputs([
      { OutputKey: 'SubReadModelConsumerMode', OutputValue: 'single-item' },
      { OutputKey: 'SubBillingQueueUrl', OutputValue: 'https://sqs/billing' },
    ]);
    expect([...(fromOutputs.unaudited ?? [])]).toEqual(['readmodel']);
    const fromJson = auditExtrasFromJson(
      { subscriptions: [{ name: 'read-model', consumerMode: 'single-item' }, { name: 'billing' }] },
      'deployment.json',
    );
    expect([...(fromJson.unaudited ?? [])]).toEqual(['readmodel']);
  });

  it('audits every other subscription and leaves the single-item one out', async () => {
    const c = capture();
    const code = await runAuditCommand(
      ['--deployment', deploymentFile(), '--from', FROM, '--to', TO, '--json'],
      c.io,
    );
    expect(c.err()).toBe('');
    const result = JSON.parse(c.out()) as { subscriptions: { subscription: string }[] };
    expect(result.subscriptions.map((s) => s.subscription)).toEqual(['billing']);
    expect(code).toBe(0);
  });

  it('refuses to audit a single-item subscription by name (usage error, exit 2)', async () => {
    const c = capture();
    const code = await runAuditCommand(
      ['--deployment', deploymentFile(), '--from', FROM, '--to', TO, '--subscription', 'read-model'],
      c.io,
    );
    expect(code).toBe(2);
    expect(c.err()).toMatch(/read-model has a 'single-item' consumer/);
  });
});
