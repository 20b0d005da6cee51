import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { auditWindow } from '../functions/audit/audit-core.ts';
import { planRun } from '../functions/audit/run-plan.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { auditedRecord, createLocalDedupTable } from '../test/support/audit-records.ts';
import { createLocalOutboxTable } from '../test/support/outbox-table.ts';
import { round } from './stats.ts';

const TABLE_EVENTS = 5000;
const SPREAD_MS = 50 * 60_000;
const WINDOW_MS = 5 * 60_000;
const LAG_MS = 10 * 60_000;
const SAMPLE_BUDGET = 2000;
const PAGE_BYTES_PER_RCU = 4096;

/** ~1 KB of order data, like the other benchmarks' events. */
function orderData(orderId: string) {
  return {
    orderId,
    lines: Array.from({ length: 8 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, note: 'x'.repeat(80) })),
  };
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
    const dedupTable = await createLocalDedupTable(outbox.client, `audit-bench-dedup-${process.pid}`);
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
      records.push(
        auditedRecord(
          { id, type, pk, sequence },
          { status: 'PUBLISHED', createdAt, publishedAt: createdAt + 150 },
          { time: new Date(createdAt).toISOString(), data: orderData(pk) },
        ),
      );
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
