/**
 * The recovery sweeper's cost (issue 6), against DynamoDB Local: the read units one `sweep()` costs when
 * nothing is stuck, after 0, 1,000 and 10,000 published records and with 10,000 records scheduled a day
 * ahead (target: a constant; the index Query's key condition is `pendingDueAt <= now`), and the read units
 * each stuck record adds (with 10 and 100 stuck records).
 *
 * Records are written by the real OutboxWriter (~1 KB events) and marked published by the relay's own
 * bookkeeper (status PUBLISHED, REMOVE pendingShard/pendingDueAt), so they leave the sparse
 * `pending-by-due-time` index exactly as in production. Stuck records are READY records committed 10 minutes
 * ago (past the 2-minute threshold) that nobody published.
 *
 * `republish` is a stub that reports every record as published without touching it: what is measured is the
 * sweeper's own reads (the index Queries and the BatchGetItem of the stuck records' full items), not the
 * publishing path. Two figures per case:
 * - `reported`: the ConsumedCapacity DynamoDB Local returns (the Query asks for it; the bench adds
 *   ReturnConsumedCapacity=TOTAL to the BatchGetItem, which the sweeper does not request);
 * - `model`: DynamoDB's published rules applied to the bytes actually returned: Query (a GSI read is always
 *   eventually consistent) 0.5 RCU per started 4 KB of the page, at least 0.5 per call; BatchGetItem
 *   (strongly consistent) 1 RCU per started 4 KB of each item.
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { DEFAULT_SWEEPER_OPTIONS, type SweeperDependencies, sweep } from '../functions/recovery/sweeper.ts';
import { createBookkeeper } from '../functions/relay/bookkeeping.ts';
import { DEFAULT_RETENTION_DAYS, eventSortKey } from '../functions/runtime/record-format.ts';
import { OutboxWriter } from '../functions/runtime/writer.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { createLocalOutboxTable } from '../test/support/outbox-table.ts';
import { round } from './stats.ts';

const EVENTS_PER_TRANSACTION = 10;
const WRITERS = 4;
const STUCK_AGE_MS = 10 * 60_000;
const FUTURE_RECORDS = 10_000;

interface Reads {
  queryCalls: number;
  queryReported: number;
  queryModel: number;
  queryItems: number;
  queryBytes: number;
  batchGetCalls: number;
  batchGetItems: number;
  batchGetReported: number;
  batchGetModel: number;
  batchGetBytes: number;
}

const emptyReads = (): Reads => ({
  queryCalls: 0,
  queryReported: 0,
  queryModel: 0,
  queryItems: 0,
  queryBytes: 0,
  batchGetCalls: 0,
  batchGetItems: 0,
  batchGetReported: 0,
  batchGetModel: 0,
  batchGetBytes: 0,
});

type ConsumedCapacity = { CapacityUnits?: number };

/** DynamoDB's item size: attribute names + values (strings/binary by bytes, numbers ~ digits / 2 + 1). */
function itemSizeBytes(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(marshall(item, { removeUndefinedValues: true }))) {
    size += Buffer.byteLength(name);
    if (value.S !== undefined) size += Buffer.byteLength(value.S);
    else if (value.N !== undefined) size += Math.ceil(value.N.replace(/^-|\./g, '').length / 2) + 1;
    else if (value.B !== undefined) size += value.B.length;
    else size += Buffer.byteLength(JSON.stringify(value));
  }
  return size;
}

/** ~1 KB of order data, like the other benchmarks' events. */
function orderData(i: number) {
  return {
    orderId: `order-${i}`,
    customerId: `customer-${i % 97}`,
    amountCents: 1999 + i,
    currency: 'EUR',
    lines: Array.from({ length: 8 }, (_, j) => ({ sku: `SKU-${j}-${i % 13}`, quantity: 1 + (j % 3) })),
    notes: 'x'.repeat(400),
  };
}

async function inParallel<T>(items: readonly T[], workers: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        await fn(items[i] as T);
      }
    }),
  );
}

export async function run(): Promise<Record<string, number | string>> {
  const dynamodb = await startDynamoDbLocal();
  try {
    const outbox = await createLocalOutboxTable(dynamodb.endpoint, 'sweeper-bench');
    // The sweeper's own client, with a middleware that meters every read it makes.
    const client = DynamoDBDocumentClient.from(outbox.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    let reads = emptyReads();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        const isBatchGet = context.commandName === 'BatchGetItemCommand';
        const result = await next(
          isBatchGet ? { ...args, input: { ...input, ReturnConsumedCapacity: 'TOTAL' } } : args,
        );
        const output = result.output as {
          ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[];
          Items?: Record<string, unknown>[];
          Responses?: Record<string, Record<string, unknown>[]>;
        };
        const capacity = [output.ConsumedCapacity ?? []]
          .flat()
          .reduce((n, c) => n + (c.CapacityUnits ?? 0), 0);
        if (context.commandName === 'QueryCommand') {
          const bytes = (output.Items ?? []).reduce((n, item) => n + itemSizeBytes(item), 0);
          reads.queryCalls++;
          reads.queryReported += capacity;
          reads.queryModel += 0.5 * Math.max(1, Math.ceil(bytes / 4096));
          reads.queryItems += output.Items?.length ?? 0;
          reads.queryBytes += bytes;
        } else if (isBatchGet) {
          const items = Object.values(output.Responses ?? {}).flat();
          reads.batchGetCalls++;
          reads.batchGetItems += items.length;
          reads.batchGetReported += capacity;
          const sizes = items.map(itemSizeBytes);
          reads.batchGetModel += sizes.reduce((n, size) => n + Math.ceil(size / 4096), 0);
          reads.batchGetBytes += sizes.reduce((n, size) => n + size, 0);
        }
        return result;
      },
      { step: 'initialize', name: 'benchReadMeter' },
    );

    let republished = 0;
    const deps: SweeperDependencies = {
      client,
      tableName: outbox.tableName,
      now: Date.now,
      // Stub: reports success without publishing (the bench measures the sweeper's reads only).
      republish: async (items) => {
        republished += items.length;
        return { published: items.map((item) => String(item.id)), failed: new Map() };
      },
      checkback: async () => 'unknown',
      confirm: async () => undefined,
      cancel: async () => undefined,
    };
    async function measure(): Promise<Reads & { unpublished: number; republished: number }> {
      reads = emptyReads();
      republished = 0;
      const result = await sweep(deps, DEFAULT_SWEEPER_OPTIONS);
      if (result.indexReadUnits !== reads.queryReported)
        throw new Error(
          `sweep() reported ${result.indexReadUnits} index units, metered ${reads.queryReported}`,
        );
      return { ...reads, unpublished: result.unpublishedCount, republished };
    }

    const writer = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/bench/orders',
      client: outbox.doc,
    });
    const bookkeeper = createBookkeeper({
      client: outbox.client,
      tableName: outbox.tableName,
      retentionDays: DEFAULT_RETENTION_DAYS,
    });
    let written = 0;
    /** Commits `count` events (10 per transaction, one aggregate each) and marks every one published. */
    async function publish(count: number): Promise<void> {
      const batches = Array.from({ length: Math.ceil(count / EVENTS_PER_TRANSACTION) }, (_, i) => i);
      const keys: { pk: string; sk: string }[] = [];
      await inParallel(batches, WRITERS, async (b) => {
        const key = `order#published-${written + b}`;
        const result = await writer.transact({
          aggregate: { key, expectedVersion: 0 },
          events: Array.from({ length: EVENTS_PER_TRANSACTION }, (_, j) => ({
            type: 'com.example.orders.OrderPlaced',
            data: orderData(b * EVENTS_PER_TRANSACTION + j),
          })),
        });
        for (const event of result.events) keys.push({ pk: key, sk: eventSortKey(event.sequence) });
      });
      written += batches.length;
      const publishedAt = Date.now();
      await inParallel(keys, 8, async (key) => {
        if ((await bookkeeper.markPublished(key, publishedAt)) !== 'updated')
          throw new Error(`could not mark ${key.pk}/${key.sk} published`);
      });
    }

    const figures: Record<string, number | string> = {};
    const quiet: Record<number, Reads> = {};
    let total = 0;
    for (const target of [0, 1_000, 10_000]) {
      const writeStart = performance.now();
      await publish(target - total);
      total = target;
      const r = await measure();
      if (r.unpublished !== 0) throw new Error(`${r.unpublished} records still pending after publishing`);
      quiet[target] = r;
      figures[`quiet_after_${target}_published_rcu_reported`] = r.queryReported + r.batchGetReported;
      figures[`quiet_after_${target}_published_rcu_model`] = r.queryModel + r.batchGetModel;
      figures[`quiet_after_${target}_published_queries`] = r.queryCalls;
      if (target > 0)
        figures[`write_and_publish_${target}_s`] = round((performance.now() - writeStart) / 1000, 1);
    }
    const baseline = quiet[10_000] ?? emptyReads();

    // Future-dated: 10,000 SCHEDULED events (deliverAt a day ahead) must not add a read to a quiet run (#10.9).
    const futureStart = performance.now();
    const deliverAt = Date.now() + 86_400_000;
    const futureBatches = Array.from({ length: FUTURE_RECORDS / EVENTS_PER_TRANSACTION }, (_, i) => i);
    await inParallel(futureBatches, WRITERS, async (b) => {
      await writer.transact({
        aggregate: { key: `order#future-${b}`, expectedVersion: 0 },
        events: Array.from({ length: EVENTS_PER_TRANSACTION }, (_, j) => ({
          type: 'com.example.orders.ReminderDue',
          data: orderData(b * EVENTS_PER_TRANSACTION + j),
          deliverAt,
        })),
      });
    });
    figures[`write_${FUTURE_RECORDS}_future_s`] = round((performance.now() - futureStart) / 1000, 1);
    const future = await measure();
    if (future.unpublished !== 0) throw new Error(`${future.unpublished} future records counted as due`);
    figures[`quiet_with_${FUTURE_RECORDS}_future_rcu_reported`] =
      future.queryReported + future.batchGetReported;
    figures[`quiet_with_${FUTURE_RECORDS}_future_rcu_model`] = future.queryModel + future.batchGetModel;
    figures[`quiet_with_${FUTURE_RECORDS}_future_queries`] = future.queryCalls;
    figures[`quiet_with_${FUTURE_RECORDS}_future_index_items_read`] = future.queryItems;

    // Stuck: READY records committed 10 minutes ago, spread over the 16 index shards by their ids.
    const stuckWriter = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/bench/orders',
      client: outbox.doc,
      now: () => Date.now() - STUCK_AGE_MS,
    });
    let stuck = 0;
    let stuckReads = emptyReads();
    for (const target of [10, 100]) {
      const more = Array.from({ length: target - stuck }, (_, i) => stuck + i);
      await inParallel(more, WRITERS, async (i) => {
        await stuckWriter.transact({
          aggregate: { key: `order#stuck-${i}`, expectedVersion: 0 },
          events: [{ type: 'com.example.orders.OrderPlaced', data: orderData(i) }],
        });
      });
      stuck = target;
      const r = await measure();
      stuckReads = r;
      if (r.republished !== target) throw new Error(`sweep republished ${r.republished}, expected ${target}`);
      const reported = r.queryReported + r.batchGetReported;
      const model = r.queryModel + r.batchGetModel;
      figures[`stuck_${target}_rcu_reported`] = reported;
      figures[`stuck_${target}_rcu_model`] = model;
      figures[`stuck_${target}_query_rcu_reported`] = r.queryReported;
      figures[`stuck_${target}_batchget_rcu_reported`] = r.batchGetReported;
      figures[`stuck_${target}_batchget_calls`] = r.batchGetCalls;
      figures[`per_stuck_record_rcu_reported_n${target}`] = round(
        (reported - baseline.queryReported - baseline.batchGetReported) / target,
        3,
      );
      figures[`per_stuck_record_rcu_model_n${target}`] = round(
        (model - baseline.queryModel - baseline.batchGetModel) / target,
        3,
      );
    }
    figures.stuck_item_bytes_avg = round(stuckReads.batchGetBytes / Math.max(1, stuckReads.batchGetItems), 0);
    figures.index_entry_bytes_avg = round(stuckReads.queryBytes / Math.max(1, stuckReads.queryItems), 0);
    return figures;
  } finally {
    await dynamodb.stop();
  }
}
