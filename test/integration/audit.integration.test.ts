/**
 * The shared audit core and the scheduled audit handler on DynamoDB Local: an outbox table with published events,
 * a dedup table where each consumer applied them. missing=0; one dedup record deleted → that event is missing,
 * and the handler's MissingEffects (read back through the offline runtime's EMF parser) says 1. Events still in
 * delivery are pending, not missing; the Scan stops at its item budget.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AuditClients, auditWindow } from '../../functions/audit/audit-core.ts';
import { createAuditHandler, type ScheduledAuditSummary } from '../../functions/audit/handler.ts';
import { type MetricDatum, parseEmf } from '../../local/runtime/metrics.ts';
import { auditedRecord, createLocalDedupTable } from '../support/audit-records.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();

const WINDOW_MS = 5 * 60_000;
const LAG_MS = 10 * 60_000;
// A run at NOW audits [FROM, TO): the 5-minute window that ended at least 10 minutes before.
const NOW = Date.parse('2026-11-22T16:17:30Z');
const FROM = Date.parse('2026-11-22T16:00:00Z');
const TO = FROM + WINDOW_MS;
const EVENTS = 12;

const billing = {
  name: 'billing',
  filter: { kind: 'event-types', types: [], prefixes: ['orders.'] },
} as const;
const shipping = {
  name: 'shipping',
  filter: { kind: 'event-pattern', pattern: { 'detail-type': ['orders.OrderPaid'] } },
} as const;

let outbox: LocalOutbox;
let dedupTable: string;
const ids: string[] = [];

async function put(Item: Record<string, unknown>, TableName = outbox.tableName) {
  await outbox.doc.send(new PutCommand({ TableName, Item }));
}

beforeAll(async () => {
  outbox = await createLocalOutboxTable(endpoint(), 'audit-core');
  dedupTable = await createLocalDedupTable(outbox.client, `audit-core-dedup-${process.pid}`);
  for (let i = 0; i < EVENTS; i++) {
    const id = `evt-${i}`;
    const type = i % 2 === 0 ? 'orders.OrderPlaced' : 'orders.OrderPaid';
    const pk = `order#${Math.floor(i / 2)}`;
    const sequence = (i % 2) + 1;
    const createdAt = FROM + i * 1000;
    ids.push(id);
    await put(
      auditedRecord(
        { id, type, pk, sequence },
        { status: 'PUBLISHED', createdAt, publishedAt: createdAt + 200 },
        { time: new Date(FROM).toISOString(), data: {} },
      ),
    );
    await put({ pk: `E#billing#${id}`, status: 'COMPLETED' }, dedupTable);
    // shipping is ordered: its cursor per aggregate says what it applied.
    if (type === 'orders.OrderPaid')
      await put({ pk: `S#shipping#${pk}`, lastSequence: sequence }, dedupTable);
  }
  // Outside the window, and one the recovery sweeper published late (still in delivery at NOW).
  await put({
    pk: 'order#old',
    sk: 'EVT#000000000001',
    id: 'old',
    type: 'orders.OrderPlaced',
    sequence: 1,
    status: 'PUBLISHED',
    createdAt: FROM - 1,
  });
  await put({
    pk: 'order#late',
    sk: 'EVT#000000000001',
    id: 'late',
    type: 'orders.OrderPlaced',
    sequence: 1,
    status: 'PUBLISHED',
    createdAt: FROM + 30_000,
    publishedAt: NOW - 60_000,
  });
  await put({
    pk: 'order#ready',
    sk: 'EVT#000000000001',
    id: 'ready',
    type: 'orders.OrderPlaced',
    sequence: 1,
    status: 'READY',
    createdAt: FROM + 40_000,
  });
});

const clients = (): AuditClients => ({ dynamodb: outbox.doc });
const input = {
  window: { from: FROM, to: TO },
  subscriptions: [billing, shipping],
  scan: { segments: 1, onlySegments: [0] },
  settledBefore: NOW - LAG_MS / 2,
};

describe('the audit core on DynamoDB Local', () => {
  it('finds nothing missing when every consumer applied its events; in-delivery events are pending', async () => {
    const result = await auditWindow(clients(), {
      ...input,
      outboxTableName: outbox.tableName,
      dedupTableName: dedupTable,
    });
    expect(result.subscriptions).toMatchObject([
      { subscription: 'billing', expected: EVENTS, applied: EVENTS, missing: 0, pending: 2 },
      { subscription: 'shipping', expected: EVENTS / 2, applied: EVENTS / 2, missing: 0, pending: 0 },
    ]);
    expect(result.scannedCount).toBe(EVENTS + 3);
    expect(result.requests).toBeGreaterThanOrEqual(2);
  });

  it('finds the one missing effect when a dedup record is deleted', async () => {
    await outbox.doc.send(new DeleteCommand({ TableName: dedupTable, Key: { pk: 'E#billing#evt-4' } }));
    try {
      const result = await auditWindow(clients(), {
        ...input,
        outboxTableName: outbox.tableName,
        dedupTableName: dedupTable,
      });
      const [b, s] = result.subscriptions;
      expect(b).toMatchObject({ expected: EVENTS, applied: EVENTS - 1, missing: 1 });
      expect(b?.missingEvents.map((m) => m.id)).toEqual(['evt-4']);
      expect(s).toMatchObject({ missing: 0 });
    } finally {
      await put({ pk: 'E#billing#evt-4', status: 'COMPLETED' }, dedupTable);
    }
  });

  it('stops at its item budget and says so', async () => {
    const result = await auditWindow(clients(), {
      ...input,
      outboxTableName: outbox.tableName,
      dedupTableName: dedupTable,
      scan: { segments: 1, onlySegments: [0], maxItemsRead: 5 },
    });
    expect(result.scannedCount).toBe(5);
    expect(result.stoppedAtItemBudget).toBe(5);
  });
});

describe('the scheduled audit handler on DynamoDB Local', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function run(): Promise<{ summary: ScheduledAuditSummary; datums: MetricDatum[] }> {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n'));
      return true;
    });
    const handler = createAuditHandler({
      dynamodb: new DynamoDBClient(localAwsConfig(endpoint())),
      now: () => NOW,
      metrics: new Metrics({ namespace: 'ServerlessOutbox', serviceName: 'Test/Outbox/Audit' }),
      logger: new Logger({ logLevel: 'ERROR' }),
      config: {
        outboxTableName: outbox.tableName,
        dedupTableName: dedupTable,
        subscriptions: [billing, shipping],
        lagMs: LAG_MS,
        windowMs: WINDOW_MS,
        maxItemsPerRun: 1000,
      },
    });
    const summary = await handler({}, { getRemainingTimeInMillis: () => 60_000 } as Context);
    vi.restoreAllMocks();
    return { summary, datums: lines.flatMap((line) => parseEmf(line, NOW)) };
  }

  const missingEffects = (datums: MetricDatum[], subscription: string) =>
    datums.filter((d) => d.metricName === 'MissingEffects' && d.dimensions.subscription === subscription);

  it('audits the closed window that ended 10 minutes ago and publishes MissingEffects=0 per subscription', async () => {
    const { summary, datums } = await run();
    expect(summary.plan.window).toEqual({ from: FROM, to: TO });
    expect(summary.missing).toEqual({ billing: 0, shipping: 0 });
    expect(missingEffects(datums, 'billing').map((d) => d.value)).toEqual([0]);
    expect(missingEffects(datums, 'shipping').map((d) => d.value)).toEqual([0]);
    const audited = datums.find(
      (d) => d.metricName === 'AuditedEvents' && d.dimensions.subscription === 'billing',
    );
    expect(audited).toMatchObject({ value: EVENTS, namespace: 'ServerlessOutbox' });
    expect(audited?.dimensions).toEqual({ service: 'Test/Outbox/Audit', subscription: 'billing' });
  });

  it('publishes MissingEffects=1 for the subscription whose dedup record is gone', async () => {
    await outbox.doc.send(new DeleteCommand({ TableName: dedupTable, Key: { pk: 'S#shipping#order#2' } }));
    try {
      const { summary, datums } = await run();
      expect(summary.missing).toEqual({ billing: 0, shipping: 1 });
      expect(missingEffects(datums, 'shipping').map((d) => d.value)).toEqual([1]);
      expect(summary.result?.subscriptions[1]?.missingEvents.map((m) => m.id)).toEqual(['evt-5']);
    } finally {
      await put({ pk: 'S#shipping#order#2', lastSequence: 2 }, dedupTable);
    }
  });
});
