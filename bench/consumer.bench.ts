/**
 * Idempotent consumer cost, side by side with Powertools idempotency, on one DynamoDB Local:
 * DynamoDB write requests and write units per processed event and per duplicate, and the median handler
 * overhead (wall time per event minus a bare business write).
 *
 * Every case applies the same business effect per event: one ~200-byte PutItem into a ledger table.
 * - ours/transactional: the handler returns the Put; the consumer commits it with the dedup record in one
 *   TransactWriteItems.
 * - ours/ordered: the Put is committed with the per-aggregate cursor (one event per aggregate here).
 * - ours/lease: claim, the handler performs the Put itself (like an external effect), complete.
 * - powertools: makeIdempotent around a function that performs the Put (DynamoDBPersistenceLayer, event
 *   key = the envelope id, Lambda context registered so in-progress records expire), as its docs advise.
 *
 * Write units are MODELED from DynamoDB's pricing rules, because DynamoDB Local neither doubles transactional
 * writes nor reports capacity for refused writes (its own figures are shown too, as `local_reported`):
 * - standard PutItem/UpdateItem/DeleteItem: 1 WCU per started KB of the item (every item here is < 1 KB,
 *   checked at the end by scanning the tables);
 * - a refused conditional write still consumes 1 WCU (per KB of the existing item);
 * - TransactWriteItems: 2 WCU per item per started KB;
 * - a transaction cancelled by a condition: AWS returns no capacity figure; counted here as if every item
 *   were written (2 WCU per item), an upper bound.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { CountingMetrics, createConsumer, type IdempotentConsumer } from '../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../functions/runtime/envelope.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { median, round } from './stats.ts';
import { itemSizeBytes } from './writer.bench.ts';

const EVENTS = 200;
const WARMUP = 50;
const silent = { info: () => {}, warn: () => {}, error: () => {} };

interface Call {
  readonly command: string;
  readonly items: number;
  readonly outcome: 'ok' | 'condition-failed' | 'cancelled' | 'error';
  readonly reported: number;
}

/** Records every DynamoDB call of a client (command, item count, outcome, consumed capacity reported). */
class Meter {
  calls: Call[] = [];
  attach(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = context.commandName ?? 'unknown';
        const input = args.input as { TransactItems?: unknown[]; ReturnConsumedCapacity?: string };
        const isWrite = /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems)Command$/.test(command);
        if (isWrite) input.ReturnConsumedCapacity = 'TOTAL';
        const items = input.TransactItems?.length ?? 1;
        try {
          const result = await next(args);
          const output = result.output as {
            ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
          };
          const consumed = output.ConsumedCapacity;
          const reported = Array.isArray(consumed)
            ? consumed.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0)
            : (consumed?.CapacityUnits ?? 0);
          this.calls.push({ command, items, outcome: 'ok', reported });
          return result;
        } catch (error) {
          const name = (error as Error).name;
          const outcome =
            name === 'ConditionalCheckFailedException'
              ? 'condition-failed'
              : name === 'TransactionCanceledException'
                ? 'cancelled'
                : 'error';
          this.calls.push({ command, items, outcome, reported: 0 });
          throw error;
        }
      },
      { step: 'initialize', name: 'benchMeter' },
    );
  }
  take(): Call[] {
    const taken = this.calls;
    this.calls = [];
    return taken;
  }
}

function modeledWcu(call: Call): number {
  if (!/^(PutItem|UpdateItem|DeleteItem|TransactWriteItems)Command$/.test(call.command)) return 0;
  if (call.command === 'TransactWriteItemsCommand') return 2 * call.items;
  return 1;
}

function summarize(calls: readonly Call[], events: number) {
  const writes = calls.filter((c) => modeledWcu(c) > 0);
  const reads = calls.filter((c) =>
    /^(GetItem|Query|Scan|BatchGetItem|TransactGetItems)Command$/.test(c.command),
  );
  return {
    writeRequests: round(writes.length / events),
    readRequests: round(reads.length / events),
    wcu: round(writes.reduce((s, c) => s + modeledWcu(c), 0) / events),
    reported: round(calls.reduce((s, c) => s + c.reported, 0) / events),
  };
}

function lambdaContext(): Context {
  return {
    functionName: 'bench',
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => 30_000,
  } as unknown as Context;
}

interface Case {
  readonly name: string;
  /** Which bare business write this case is compared with. */
  readonly effect: Effect;
  /** Processes one delivery of `event`. */
  deliver(event: OutboxEnvelope): Promise<unknown>;
}

/** The business effect per event: none (dedup only), one Put, or a two-item change (needs a transaction). */
type Effect = 'none' | 'one-write' | 'two-writes';

interface CaseResult {
  readonly name: string;
  readonly effect: Effect;
  readonly processed: ReturnType<typeof summarize>;
  readonly duplicate: ReturnType<typeof summarize>;
  readonly medianProcessedMs: number;
  readonly medianDuplicateMs: number;
}

function events(count: number, prefix: string): OutboxEnvelope[] {
  return Array.from(
    { length: count },
    (_, i) =>
      buildEnvelope(
        {
          type: 'com.example.orders.OrderPlaced',
          source: '/demo/orders',
          data: { orderId: `${prefix}-${i}`, customerId: `c-${i % 50}`, amountCents: 1000 + i },
        },
        { partitionKey: `order#${prefix}-${i}`, sequence: 1 },
      ).envelope,
  );
}

/**
 * Runs every case on its own events, interleaved (event i of every case, then event i + 1...), so DynamoDB
 * Local's JIT warm-up and any drift hit all cases alike. Each call's DynamoDB requests are attributed to its case.
 */
async function measureAll(meter: Meter, cases: readonly Case[]): Promise<CaseResult[]> {
  const warm = cases.map((_, i) => events(WARMUP, `warm-${i}`));
  for (let n = 0; n < WARMUP; n++)
    for (const [i, c] of cases.entries()) await c.deliver(warm[i]?.[n] as OutboxEnvelope);
  const lists = cases.map((_, i) => events(EVENTS, `case-${i}`));
  const phase = async () => {
    const calls = cases.map(() => [] as Call[]);
    const times = cases.map(() => [] as number[]);
    for (let n = 0; n < EVENTS; n++) {
      for (const [i, c] of cases.entries()) {
        meter.take();
        const start = performance.now();
        await c.deliver(lists[i]?.[n] as OutboxEnvelope);
        times[i]?.push(performance.now() - start);
        calls[i]?.push(...meter.take());
      }
    }
    return { calls, times };
  };
  const processed = await phase();
  const duplicate = await phase(); // the same events again: every delivery is a duplicate
  return cases.map((c, i) => ({
    name: c.name,
    effect: c.effect,
    processed: summarize(processed.calls[i] ?? [], EVENTS),
    duplicate: summarize(duplicate.calls[i] ?? [], EVENTS),
    medianProcessedMs: median(processed.times[i] ?? []),
    medianDuplicateMs: median(duplicate.times[i] ?? []),
  }));
}

export async function run(): Promise<Record<string, number | string>> {
  const dynamo = await startDynamoDbLocal();
  const previousFunctionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
  process.env.AWS_LAMBDA_FUNCTION_NAME = 'bench';
  try {
    const raw = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    const meter = new Meter();
    meter.attach(raw);
    const doc = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
    const createTable = (name: string, key: string) =>
      raw.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
          KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
        }),
      );
    await createTable('dedup', 'pk');
    await createTable('ledger', 'id');
    await createTable('powertools-idempotency', 'id');

    const ledgerItem = (e: OutboxEnvelope) => {
      const data = e.data as { orderId: string; customerId: string; amountCents: number };
      return {
        id: `${e.id}`,
        orderId: data.orderId,
        customerId: data.customerId,
        amountCents: data.amountCents,
        kind: 'charge',
        at: e.time,
      };
    };
    const common = { tableName: 'dedup', client: doc, metrics: new CountingMetrics(), logger: silent };
    const oneWrite = (e: OutboxEnvelope) => [{ Put: { TableName: 'ledger', Item: ledgerItem(e) } }];
    const twoWrites = (e: OutboxEnvelope) => [
      { Put: { TableName: 'ledger', Item: ledgerItem(e) } },
      { Put: { TableName: 'ledger', Item: { ...ledgerItem(e), id: `${e.id}#line`, kind: 'line' } } },
    ];
    const consumers = {
      transactional: createConsumer({ ...common, name: 'bench-tx', mode: 'transactional', handle: oneWrite }),
      transactionalTwo: createConsumer({
        ...common,
        name: 'bench-tx2',
        mode: 'transactional',
        handle: twoWrites,
      }),
      transactionalNone: createConsumer({
        ...common,
        name: 'bench-tx0',
        mode: 'transactional',
        handle: () => [],
      }),
      ordered: createConsumer({ ...common, name: 'bench-ordered', mode: 'ordered', handle: oneWrite }),
      lease: createConsumer({
        ...common,
        name: 'bench-lease',
        mode: 'lease',
        handle: async (e) => {
          await doc.send(new PutCommand({ TableName: 'ledger', Item: ledgerItem(e) }));
        },
      }),
    } satisfies Record<string, IdempotentConsumer>;

    const { IdempotencyConfig, makeIdempotent } = await import('@aws-lambda-powertools/idempotency');
    const { DynamoDBPersistenceLayer } = await import('@aws-lambda-powertools/idempotency/dynamodb');
    const persistenceStore = new DynamoDBPersistenceLayer({
      tableName: 'powertools-idempotency',
      awsSdkV3Client: raw,
    });
    const config = new IdempotencyConfig({ eventKeyJmesPath: 'id' });
    const idempotent = <T>(fn: (e: OutboxEnvelope) => Promise<T>) => {
      const wrapped = makeIdempotent(fn, { persistenceStore, config });
      return (e: OutboxEnvelope) => {
        config.registerLambdaContext(lambdaContext());
        return wrapped(e);
      };
    };
    const putOne = (e: OutboxEnvelope) =>
      doc.send(new PutCommand({ TableName: 'ledger', Item: ledgerItem(e) }));
    // Two items must change together, so without our consumer the function needs its own transaction.
    const putTwo = (e: OutboxEnvelope) => doc.send(new TransactWriteCommand({ TransactItems: twoWrites(e) }));
    const powertools = {
      one: idempotent(async (e) => {
        await putOne(e);
        return { ok: true };
      }),
      two: idempotent(async (e) => {
        await putTwo(e);
        return { ok: true };
      }),
      none: idempotent(async () => ({ ok: true })),
    };
    const fresh = (e: OutboxEnvelope) => ({ ...e, id: randomUUID() });

    const cases: Case[] = [
      { name: 'baseline: one Put, no dedup', effect: 'one-write', deliver: (e) => putOne(fresh(e)) },
      {
        name: 'ours: transactional',
        effect: 'one-write',
        deliver: (e) => consumers.transactional.process(e),
      },
      { name: 'ours: ordered', effect: 'one-write', deliver: (e) => consumers.ordered.process(e) },
      {
        name: 'ours: lease',
        effect: 'one-write',
        deliver: (e) => consumers.lease.process(e, { lambdaContext: lambdaContext() }),
      },
      { name: 'powertools', effect: 'one-write', deliver: powertools.one },
      {
        name: 'baseline: two-item transaction, no dedup',
        effect: 'two-writes',
        deliver: (e) => putTwo(fresh(e)),
      },
      {
        name: 'ours: transactional, 2 writes',
        effect: 'two-writes',
        deliver: (e) => consumers.transactionalTwo.process(e),
      },
      { name: 'powertools, 2 writes', effect: 'two-writes', deliver: powertools.two },
      {
        name: 'ours: transactional, no writes',
        effect: 'none',
        deliver: (e) => consumers.transactionalNone.process(e),
      },
      { name: 'powertools, no writes', effect: 'none', deliver: powertools.none },
    ];
    const results = await measureAll(meter, cases);

    let maxItemBytes = 0;
    for (const table of ['dedup', 'ledger', 'powertools-idempotency']) {
      const page = await doc.send(new ScanCommand({ TableName: table, Limit: 500 }));
      for (const item of page.Items ?? []) maxItemBytes = Math.max(maxItemBytes, itemSizeBytes(item));
    }
    if (maxItemBytes >= 1024)
      throw new Error(`an item is ${maxItemBytes} bytes: the 1-WCU-per-item model does not hold`);

    const baselineOf = (effect: Effect) =>
      results.find((r) => r.effect === effect && r.name.startsWith('baseline')) ??
      ({ processed: { wcu: 0, writeRequests: 0 }, medianProcessedMs: 0 } as const);
    const rows = results.map((r) => ({
      case: r.name,
      'write req/event': r.processed.writeRequests,
      'WCU/event': r.processed.wcu,
      'dedup WCU/event': round(r.processed.wcu - baselineOf(r.effect).processed.wcu),
      'Local-reported CU/event': r.processed.reported,
      'write req/dup': r.duplicate.writeRequests,
      'read req/dup': r.duplicate.readRequests,
      'WCU/dup': r.duplicate.wcu,
      'median ms/event': round(r.medianProcessedMs),
      'overhead ms/event': round(r.medianProcessedMs - baselineOf(r.effect).medianProcessedMs),
      'median ms/dup': round(r.medianDuplicateMs),
    }));
    console.table(rows);

    const out: Record<string, number | string> = {
      events_per_case: EVENTS,
      max_item_bytes: maxItemBytes,
      wcu_model:
        'standard write 1 WCU/KB; refused conditional write 1 WCU; transactional 2 WCU/item/KB; cancelled transaction counted as 2 WCU/item (upper bound)',
    };
    const keyOf = (name: string) =>
      name
        .replace(/^ours: /, 'ours_')
        .replace(/[^a-z0-9_]+/gi, '_')
        .replace(/_+$/, '')
        .toLowerCase();
    for (const r of results) {
      const k = keyOf(r.name);
      const base = baselineOf(r.effect);
      out[`${k}_wcu_per_event`] = r.processed.wcu;
      if (r.name.startsWith('baseline')) {
        out[`${k}_median_ms`] = round(r.medianProcessedMs);
        continue;
      }
      out[`${k}_dedup_wcu_per_event`] = round(r.processed.wcu - base.processed.wcu);
      out[`${k}_write_requests_per_event`] = r.processed.writeRequests;
      out[`${k}_wcu_per_duplicate`] = r.duplicate.wcu;
      out[`${k}_requests_per_duplicate`] = r.duplicate.writeRequests + r.duplicate.readRequests;
      out[`${k}_median_overhead_ms`] = round(r.medianProcessedMs - base.medianProcessedMs);
      out[`${k}_median_duplicate_ms`] = round(r.medianDuplicateMs);
    }
    raw.destroy();
    return out;
  } finally {
    if (previousFunctionName === undefined) delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    else process.env.AWS_LAMBDA_FUNCTION_NAME = previousFunctionName;
    await dynamo.stop();
  }
}
