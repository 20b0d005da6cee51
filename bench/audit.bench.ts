/**
 * The scheduled delivery audit's read cost per run (issue 15), against DynamoDB Local: an outbox table holding
 * TABLE_EVENTS published ~1 KB events spread over 50 minutes (WINDOW_EVENTS of them in the audited 5-minute
 * window), every one applied by two consumers (billing: dedup records of every event; shipping, ordered: one
 * cursor per aggregate, half the types). One run as the scheduled handler plans it (planRun + auditWindow):
 * - `full`: maxItemsPerRun above the table size: one Scan segment, the whole table read;
 * - `sampled`: maxItemsPerRun = SAMPLE_BUDGET: the table split into segments of about that size, one read per run.
 *
 * Figures: items read by the Scan, its read units (`reported`: DynamoDB Local's ConsumedCapacity; `model`:
 * DynamoDB's rule for an eventually consistent Scan, 0.5 RCU per started 4 KB read per page, from the items' size),
 * dedup read units (consistent BatchGetItem, reported), DynamoDB requests, events audited and wall time.
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { auditWindow } from '../functions/audit/audit-core.ts';
import { planRun } from '../functions/audit/run-plan.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { createLocalOutboxTable } from '../test/support/outbox-table.ts';
import { round } from './stats.ts';

const TABLE_EVENTS = 5000;
const SPREAD_MS = 50 * 60_000;
const WINDOW_MS = 5 * 60_000;
const LAG_MS = 10 * 60_000;
const SAMPLE_BUDGET = 2000;
const PAGE_BYTES_PER_RCU = 4096;

function envelope(id: string, type: string, pk: string, sequence: number, createdAt: number) {
  return JSON.stringify({
    specversion: '1.0',
    id,
    source: '/orders',
    type,
    time: new Date(createdAt).toISOString(),
    datacontenttype: 'application/json',
    partitionkey: pk,
    sequence,
    // ~1 KB of order data, like the other benchmarks' events.
    data: {
      orderId: pk,
      lines: Array.from({ length: 8 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, note: 'x'.repeat(80) })),
    },
  });
}

function itemBytes(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(marshall(item))) {
    size += Buffer.byteLength(name);
    if (value.S !== undefined) size += Buffer.byteLength(value.S);
    else if (value.N !== undefined) size += Math.ceil(value.N.length / 2) + 1;
  }
  return size;
}

async function writeAll(
  put: (items: Record<string, unknown>[]) => Promise<void>,
  items: Record<string, unknown>[],
): Promise<void> {
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  const workers = Array.from({ length: 8 }, async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) await put(batch);
  });
  await Promise.all(workers);
}

export async function run(): Promise<Record<string, number | string>> {
  const dynamodb = await startDynamoDbLocal();
  try {
    const outbox = await createLocalOutboxTable(dynamodb.endpoint, 'audit-bench');
    const dedupTable = `audit-bench-dedup-${process.pid}`;
    await outbox.client.send(
      new CreateTableCommand({
        TableName: dedupTable,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
    const now = Date.parse('2026-11-22T17:00:00Z');
    const start = now - LAG_MS - SPREAD_MS;
    const records: Record<string, unknown>[] = [];
    const dedup: Record<string, unknown>[] = [];
    for (let i = 0; i < TABLE_EVENTS; i++) {
      const pk = `order#${Math.floor(i / 2)}`;
      const sequence = (i % 2) + 1;
      const type = sequence === 1 ? 'orders.OrderPlaced' : 'orders.OrderPaid';
      const id = `evt-${i}`;
      const createdAt = start + Math.floor((i * SPREAD_MS) / TABLE_EVENTS);
      records.push({
        pk,
        sk: `EVT#${String(sequence).padStart(12, '0')}`,
        id,
        type,
        source: '/orders',
        sequence,
        status: 'PUBLISHED',
        createdAt,
        publishedAt: createdAt + 150,
        envelope: envelope(id, type, pk, sequence, createdAt),
      });
      dedup.push({ pk: `E#billing#${id}`, status: 'COMPLETED' });
      if (sequence === 2) dedup.push({ pk: `S#shipping#${pk}`, lastSequence: 2 });
    }
    const batchWrite = (TableName: string) => async (items: Record<string, unknown>[]) => {
      await outbox.doc.send(
        new BatchWriteCommand({
          RequestItems: { [TableName]: items.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
    };
    await writeAll(batchWrite(outbox.tableName), records);
    await writeAll(batchWrite(dedupTable), dedup);
    const avgItemBytes = records.reduce((n, r) => n + itemBytes(r), 0) / records.length;

    const subscriptions = [
      { name: 'billing', filter: { kind: 'event-types', types: [], prefixes: ['orders.'] } },
      {
        name: 'shipping',
        filter: { kind: 'event-pattern', pattern: { 'detail-type': ['orders.OrderPaid'] } },
      },
    ] as const;
    const figures: Record<string, number | string> = {
      tableEvents: TABLE_EVENTS,
      avgItemBytes: round(avgItemBytes, 0),
    };
    for (const [name, budget] of [
      ['full', 50_000],
      ['sampled', SAMPLE_BUDGET],
    ] as const) {
      const plan = planRun({
        now,
        lagMs: LAG_MS,
        windowMs: WINDOW_MS,
        itemCount: TABLE_EVENTS,
        maxItemsPerRun: budget,
      });
      const started = performance.now();
      const result = await auditWindow(
        { dynamodb: outbox.doc },
        {
          outboxTableName: outbox.tableName,
          dedupTableName: dedupTable,
          window: plan.window,
          subscriptions,
          settledBefore: plan.settledBefore,
          scan: { segments: plan.totalSegments, onlySegments: [plan.segment], maxItemsRead: budget },
        },
      );
      const ms = performance.now() - started;
      const missing = result.subscriptions.reduce((n, s) => n + s.missing, 0);
      if (missing > 0)
        throw new Error(`the bench's audit found ${missing} missing effects: the fixture is wrong`);
      // 1 MB pages: an eventually consistent Scan is billed 0.5 RCU per started 4 KB of each page.
      const pageBytes = 1024 * 1024;
      const bytes = result.scannedCount * avgItemBytes;
      const modelScanRcu =
        Math.floor(bytes / pageBytes) * (pageBytes / PAGE_BYTES_PER_RCU) * 0.5 +
        Math.ceil((bytes % pageBytes) / PAGE_BYTES_PER_RCU) * 0.5;
      Object.assign(figures, {
        [`${name}.maxItemsPerRun`]: budget,
        [`${name}.segments`]: plan.totalSegments,
        [`${name}.itemsRead`]: result.scannedCount,
        [`${name}.scanReadUnitsReported`]: round(result.readUnits.scan, 1),
        [`${name}.scanReadUnitsModel`]: round(modelScanRcu, 1),
        [`${name}.dedupReadUnits`]: round(result.readUnits.dedup, 1),
        [`${name}.requests`]: result.requests,
        [`${name}.eventsAudited`]: result.subscriptions.reduce((n, s) => n + s.expected, 0),
        [`${name}.ms`]: round(ms, 0),
      });
    }
    return figures;
  } finally {
    await dynamodb.stop();
  }
}
