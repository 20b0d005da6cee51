/**
 * Counts what AWS would bill for the calls a pipeline makes, per part of the pipeline (a label such as
 * "producer" or "relay"): DynamoDB read/write request units from the engine's own ConsumedCapacity (every call
 * asks for it: ReturnConsumedCapacity=INDEXES is added to the request, which gives the total per table), requests to SNS, SQS and EventBridge in
 * billed 64 KB chunks, Lambda invocations and GB-seconds.
 *
 * The meter is SDK middleware on the clients the functions are given, so it sees exactly the calls they make.
 * Two things DynamoDB Local does not report are modeled from DynamoDB's pricing rules:
 * - a refused conditional write returns no capacity: counted as 1 write unit (every item here is < 1 KB);
 * - a cancelled transaction returns none: counted as 2 units per item (an upper bound);
 * - a read that finds nothing reports 0: AWS bills at least 0.5 (eventually consistent) or 1 (consistent).
 * And one it reports differently: inside TransactWriteItems DynamoDB Local doubles the index arms as well as the
 * table arm. DynamoDB doubles only the table arm; an index write inside a transaction costs what it costs outside
 * one (measured against DynamoDB by the dynoxide project, nubo-db/dynoxide#176 and #188, 2026-08). The meter
 * halves those index arms (`billedCapacity`).
 */
import { PRICES } from '../prices.ts';

const CHUNK_BYTES = 64 * 1024;

export interface Usage {
  dynamodbRequests: number;
  dynamodbWriteUnits: number;
  dynamodbReadUnits: number;
  /** DynamoDB requests that were Query calls (the relay's predecessor lookups, among others). */
  dynamodbQueries: number;
  /** Of the units above, those spent on business tables (the order item, the subscribers' effects). */
  dynamodbBusinessWriteUnits: number;
  dynamodbBusinessReadUnits: number;
  snsRequests: number;
  sqsFifoRequests: number;
  sqsStandardRequests: number;
  eventBridgeEvents: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
}

export const emptyUsage = (): Usage => ({
  dynamodbRequests: 0,
  dynamodbWriteUnits: 0,
  dynamodbReadUnits: 0,
  dynamodbQueries: 0,
  dynamodbBusinessWriteUnits: 0,
  dynamodbBusinessReadUnits: 0,
  snsRequests: 0,
  sqsFifoRequests: 0,
  sqsStandardRequests: 0,
  eventBridgeEvents: 0,
  lambdaInvocations: 0,
  lambdaGbSeconds: 0,
});

export function addUsage(a: Usage, b: Usage): Usage {
  const sum = emptyUsage();
  for (const key of Object.keys(sum) as (keyof Usage)[]) sum[key] = a[key] + b[key];
  return sum;
}

/** Dollars per service for a usage. */
export function priceUsage(u: Usage): Record<'dynamodb' | 'sns' | 'sqs' | 'eventbridge' | 'lambda', number> {
  return {
    dynamodb:
      u.dynamodbWriteUnits * PRICES.dynamodbWriteRequestUnit.usd +
      u.dynamodbReadUnits * PRICES.dynamodbReadRequestUnit.usd,
    sns: u.snsRequests * PRICES.snsFifoPublishRequest.usd,
    sqs:
      u.sqsFifoRequests * PRICES.sqsFifoRequest.usd + u.sqsStandardRequests * PRICES.sqsStandardRequest.usd,
    eventbridge: u.eventBridgeEvents * PRICES.eventBridgeCustomEvent.usd,
    lambda: u.lambdaInvocations * PRICES.lambdaRequest.usd + u.lambdaGbSeconds * PRICES.lambdaArmGbSecond.usd,
  };
}

/** DocumentClient command names → DynamoDB operations. */
const DOCUMENT_OPERATIONS: Readonly<Record<string, string>> = {
  Put: 'PutItem',
  Get: 'GetItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  TransactWrite: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
  BatchWrite: 'BatchWriteItem',
  BatchGet: 'BatchGetItem',
};
const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

type Middleware = (
  next: (args: { input: unknown }) => Promise<{ output: unknown }>,
  context: { commandName?: string },
) => (args: { input: unknown }) => Promise<{ output: unknown }>;

/** Any AWS SDK v3 client (only its middleware stack is used). */
export interface MeteredClient {
  middlewareStack: { add(middleware: never, options: { step: 'initialize'; name: string }): void };
}

export type TableCapacity = {
  TableName?: string;
  CapacityUnits?: number;
  Table?: { CapacityUnits?: number };
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
};
export type Capacity = TableCapacity | TableCapacity[] | undefined;

/** The units one table entry reports for the table itself (its total minus its indexes when `Table` is absent). */
function tableUnitsOf(c: TableCapacity): number {
  const indexUnits = Object.values(c.GlobalSecondaryIndexes ?? {}).reduce(
    (n, i) => n + (i.CapacityUnits ?? 0),
    0,
  );
  return c.Table?.CapacityUnits ?? (c.CapacityUnits ?? 0) - indexUnits;
}

/**
 * The capacity as DynamoDB bills it: for TransactWriteItems, each index arm at half what DynamoDB Local reports
 * (`PutItem` of a < 1 KB item into a table with a keys-only index reports table 1 + index 1; the same `Put` in a
 * transaction reports table 2 + index 2 on DynamoDB Local, table 2 + index 1 on DynamoDB).
 */
export function billedCapacity(operation: string, consumed: Capacity): Capacity {
  if (operation !== 'TransactWriteItems' || consumed === undefined) return consumed;
  const entries = Array.isArray(consumed) ? consumed : [consumed];
  return entries.map((c) => {
    if (!c.GlobalSecondaryIndexes) return c;
    const tableUnits = tableUnitsOf(c);
    const indexes = Object.fromEntries(
      Object.entries(c.GlobalSecondaryIndexes).map(([name, i]) => [
        name,
        { CapacityUnits: (i.CapacityUnits ?? 0) / 2 },
      ]),
    );
    const indexUnits = Object.values(indexes).reduce((n, i) => n + i.CapacityUnits, 0);
    return {
      ...c,
      CapacityUnits: tableUnits + indexUnits,
      Table: { CapacityUnits: tableUnits },
      GlobalSecondaryIndexes: indexes,
    };
  });
}

/** Units in total and on business tables (ReturnConsumedCapacity=INDEXES gives one entry per table). */
function unitsOf(
  consumed: Capacity,
  isBusiness: (table: string) => boolean,
): { all: number; business: number } {
  const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  let all = 0;
  let business = 0;
  for (const c of entries) {
    all += c.CapacityUnits ?? 0;
    if (isBusiness(c.TableName ?? '')) business += c.CapacityUnits ?? 0;
  }
  return { all, business };
}

/** A bench table's name without its run suffix (`cost-outbox-123-4` → `cost-outbox`). */
const tableKind = (table: string) => table.replace(/-\d+-\d+$/, '');

/** Write units and requests of one kind of call: part · operation · table or index. */
export interface CallUsage {
  requests: number;
  writeUnits: number;
}

const chunks = (bytes: number) => Math.max(1, Math.ceil(bytes / CHUNK_BYTES));

export class BillingMeter {
  private readonly usage = new Map<string, Usage>();
  private readonly calls = new Map<string, CallUsage>();

  /** `isBusinessTable` says which tables hold business state (their units are reported apart). */
  private readonly isBusinessTable: (table: string) => boolean;

  constructor(isBusinessTable: (table: string) => boolean) {
    this.isBusinessTable = isBusinessTable;
  }

  of(label: string): Usage {
    let u = this.usage.get(label);
    if (!u) {
      u = emptyUsage();
      this.usage.set(label, u);
    }
    return u;
  }

  labels(): string[] {
    return [...this.usage.keys()];
  }

  total(labels: readonly string[] = this.labels()): Usage {
    return labels.reduce((sum, label) => addUsage(sum, this.of(label)), emptyUsage());
  }

  reset(): void {
    this.usage.clear();
    this.calls.clear();
  }

  /** Write units per `label · operation · table[/index]` (from ConsumedCapacity's per-table and per-index figures). */
  writesByCall(): ReadonlyMap<string, CallUsage> {
    return this.calls;
  }

  #countCall(key: string, requests: number, units: number): void {
    const call = this.calls.get(key) ?? { requests: 0, writeUnits: 0 };
    call.requests += requests;
    call.writeUnits += units;
    this.calls.set(key, call);
  }

  #countWriteCalls(label: string, operation: string, consumed: Capacity, failed: string | undefined): void {
    const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
    const base = `${label} · ${operation}${failed ? ` (${failed})` : ''}`;
    this.#countCall(base, 1, 0);
    for (const c of entries) {
      const table = tableKind(c.TableName ?? '');
      this.#countCall(`${base} · ${table}`, 0, tableUnitsOf(c));
      for (const [index, i] of Object.entries(c.GlobalSecondaryIndexes ?? {}))
        this.#countCall(`${base} · ${table}/${index}`, 0, i.CapacityUnits ?? 0);
    }
  }

  /** Counts every DynamoDB call the client makes under `label`. */
  meterDynamoDb<C extends MeteredClient>(client: C, label: string): C {
    const middleware: Middleware = (next, context) => async (args) => {
      const name = (context.commandName ?? '').replace(/Command$/, '');
      const operation = DOCUMENT_OPERATIONS[name] ?? name;
      const input = args.input as {
        TableName?: string;
        ReturnConsumedCapacity?: string;
        ConsistentRead?: boolean;
        TransactItems?: unknown[];
      };
      // INDEXES: the total per table (table + its indexes), so business tables can be told apart.
      input.ReturnConsumedCapacity ??= 'INDEXES';
      const u = this.of(label);
      u.dynamodbRequests++;
      if (operation === 'Query') u.dynamodbQueries++;
      try {
        const result = await next(args);
        const consumed = billedCapacity(
          operation,
          (result.output as { ConsumedCapacity?: Capacity }).ConsumedCapacity,
        );
        const units = unitsOf(consumed, this.isBusinessTable);
        if (READS.has(operation)) {
          const minimum = input.ConsistentRead ? 1 : 0.5;
          u.dynamodbReadUnits += units.all > 0 ? units.all : minimum;
          if (this.isBusinessTable(input.TableName ?? ''))
            u.dynamodbBusinessReadUnits += units.business > 0 ? units.business : minimum;
        } else if (WRITES.has(operation)) {
          u.dynamodbWriteUnits += units.all;
          u.dynamodbBusinessWriteUnits += units.business;
          this.#countWriteCalls(label, operation, consumed, undefined);
        }
        return result;
      } catch (error) {
        const errorName = (error as Error).name;
        const table = tableKind(input.TableName ?? 'transaction');
        if (errorName === 'ConditionalCheckFailedException') {
          u.dynamodbWriteUnits += 1;
          this.#countWriteCalls(label, operation, { TableName: table, CapacityUnits: 1 }, 'refused');
        } else if (errorName === 'TransactionCanceledException') {
          u.dynamodbWriteUnits += 2 * (input.TransactItems?.length ?? 1);
          this.#countWriteCalls(
            label,
            operation,
            { TableName: table, CapacityUnits: 2 * (input.TransactItems?.length ?? 1) },
            'cancelled',
          );
        }
        throw error;
      }
    };
    client.middlewareStack.add(middleware as never, { step: 'initialize', name: `billingMeter-${label}` });
    return client;
  }

  /** Counts SNS and SQS requests (in 64 KB chunks) the client makes under `label`. */
  meterMessaging<C extends MeteredClient>(client: C, label: string): C {
    const middleware: Middleware = (next, context) => async (args) => {
      const name = (context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as {
        QueueUrl?: string;
        Message?: string;
        MessageBody?: string;
        PublishBatchRequestEntries?: { Message?: string }[];
        Entries?: { MessageBody?: string }[];
      };
      const result = await next(args);
      const u = this.of(label);
      if (name === 'Publish' || name === 'PublishBatch') {
        const bytes =
          input.PublishBatchRequestEntries?.reduce((n, e) => n + Buffer.byteLength(e.Message ?? ''), 0) ??
          Buffer.byteLength(input.Message ?? '');
        u.snsRequests += chunks(bytes);
      } else if (input.QueueUrl !== undefined) {
        let bytes = 0;
        if (name === 'SendMessage') bytes = Buffer.byteLength(input.MessageBody ?? '');
        if (name === 'SendMessageBatch')
          bytes = input.Entries?.reduce((n, e) => n + Buffer.byteLength(e.MessageBody ?? ''), 0) ?? 0;
        if (name === 'ReceiveMessage') {
          const messages = (result.output as { Messages?: { Body?: string }[] }).Messages ?? [];
          bytes = messages.reduce((n, m) => n + Buffer.byteLength(m.Body ?? ''), 0);
        }
        const requests = chunks(bytes);
        if (input.QueueUrl.endsWith('.fifo')) u.sqsFifoRequests += requests;
        else u.sqsStandardRequests += requests;
      }
      return result;
    };
    client.middlewareStack.add(middleware as never, { step: 'initialize', name: `billingMeter-${label}` });
    return client;
  }

  /** One SQS request carrying `bytes` of messages (billed per started 64 KB). */
  billSqs(label: string, queueUrl: string, bytes: number): void {
    const u = this.of(label);
    if (queueUrl.endsWith('.fifo')) u.sqsFifoRequests += chunks(bytes);
    else u.sqsStandardRequests += chunks(bytes);
  }

  /** Counts `entries` PutEvents entries (each ≤ 64 KB here) under `label`. */
  countEventBridgeEvents(label: string, entryBytes: readonly number[]): void {
    this.of(label).eventBridgeEvents += entryBytes.reduce((n, bytes) => n + chunks(bytes), 0);
  }

  /** Runs one Lambda invocation's handler, billing 1 request and its duration (rounded up to 1 ms) × memory. */
  async invoke<T>(label: string, memoryMb: number, handler: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await handler();
    } finally {
      const ms = Math.ceil(performance.now() - start);
      const u = this.of(label);
      u.lambdaInvocations++;
      u.lambdaGbSeconds += (ms / 1000) * (memoryMb / 1024);
    }
  }
}
