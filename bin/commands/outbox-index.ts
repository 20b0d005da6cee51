/**
 * Reading the outbox's sparse `pending-by-due-time` index: `P#<digit>` shards hold records that still need
 * work (READY, PREPARED, SCHEDULED), `Q#<digit>` shards hold QUARANTINED records. Every read here is a Query
 * on those 16 shards, never a Scan, so its cost follows the backlog, not the number of published records.
 */
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { isOutboxEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import {
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_INDEX_NAME,
  PENDING_SHARD,
  RecordAttribute,
  SORT_KEY,
} from '../../functions/runtime/record-format.ts';
import { mapConcurrent } from './cli-support.ts';

/** One index entry: the table keys plus the attributes the index projects. */
export interface IndexEntry {
  readonly pk: string;
  readonly sk: string;
  readonly pendingShard: string;
  readonly pendingDueAt: number;
  readonly id?: string;
  readonly status?: string;
  readonly attempts?: number;
  readonly sequence?: number;
  readonly createdAt?: number;
}

export interface ShardReadOptions {
  /** Stop each shard after this many entries (oldest due first). @default no limit */
  readonly limitPerShard?: number;
  /** Only entries with this event id (a FilterExpression: it saves no read units). */
  readonly id?: string;
  /** Only entries with this status (a FilterExpression: it saves no read units). */
  readonly status?: string;
}

export interface ShardRead {
  readonly entries: IndexEntry[];
  /** Read capacity consumed (as reported by DynamoDB with ReturnConsumedCapacity). */
  readonly readUnits: number;
}

/** Queries the given shards (in parallel), each oldest `pendingDueAt` first; entries come back sorted by due time. */
export async function readShards(
  client: DynamoDBDocumentClient,
  tableName: string,
  shards: readonly string[],
  options: ShardReadOptions = {},
): Promise<ShardRead> {
  let readUnits = 0;
  const filter = filterOf(options);
  const perShard = await mapConcurrent(shards, 16, async (shard) => {
    const entries: IndexEntry[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const remaining =
        options.limitPerShard === undefined ? undefined : options.limitPerShard - entries.length;
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: PENDING_INDEX_NAME,
          KeyConditionExpression: '#shard = :shard',
          ...(filter ? { FilterExpression: filter.expression } : {}),
          ExpressionAttributeNames: { '#shard': PENDING_SHARD, ...filter?.names },
          ExpressionAttributeValues: { ':shard': shard, ...filter?.values },
          ScanIndexForward: true,
          ReturnConsumedCapacity: 'TOTAL',
          // With a filter, Limit counts items read before filtering, so it only applies without one.
          ...(remaining === undefined || filter ? {} : { Limit: remaining }),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      for (const item of page.Items ?? []) entries.push(toEntry(item));
      startKey = page.LastEvaluatedKey;
      if (options.limitPerShard !== undefined && entries.length >= options.limitPerShard) break;
    } while (startKey);
    return entries;
  });
  const entries = perShard.flat().sort((a, b) => a.pendingDueAt - b.pendingDueAt);
  return { entries, readUnits };
}

/** One page of a shard Query. */
export interface ShardPage {
  readonly shard: string;
  readonly entries: IndexEntry[];
  readonly readUnits: number;
}

/** One page's Query of an index shard, with the optional status/id filter. */
function shardQuery(
  tableName: string,
  shard: string,
  filter: ReturnType<typeof filterOf>,
  startKey: Record<string, unknown> | undefined,
) {
  return {
    TableName: tableName,
    IndexName: PENDING_INDEX_NAME,
    KeyConditionExpression: '#shard = :shard',
    ...(filter ? { FilterExpression: filter.expression } : {}),
    ExpressionAttributeNames: { '#shard': PENDING_SHARD, ...filter?.names },
    ExpressionAttributeValues: { ':shard': shard, ...filter?.values },
    ReturnConsumedCapacity: 'TOTAL' as const,
    ...(startKey ? { ExclusiveStartKey: startKey } : {}),
  };
}

/**
 * The shards' entries page by page (one shard after the other, each oldest due first), as they arrive: the next
 * page is read only when the caller asks for it, so memory holds one page. `pageSize` is the Query `Limit`
 * (counted before the filter).
 */
export async function* shardPages(
  client: DynamoDBDocumentClient,
  tableName: string,
  shards: readonly string[],
  options: Pick<ShardReadOptions, 'id' | 'status'> & { readonly pageSize?: number } = {},
): AsyncGenerator<ShardPage> {
  const filter = filterOf(options);
  for (const shard of shards) {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          ...shardQuery(tableName, shard, filter, startKey),
          ScanIndexForward: true,
          ...(options.pageSize === undefined ? {} : { Limit: options.pageSize }),
        }),
      );
      startKey = page.LastEvaluatedKey;
      yield {
        shard,
        entries: (page.Items ?? []).map(toEntry),
        readUnits: page.ConsumedCapacity?.CapacityUnits ?? 0,
      };
    } while (startKey);
  }
}

/** Counts the shards' entries (Query with Select COUNT, in parallel): no item is held. */
export async function countShards(
  client: DynamoDBDocumentClient,
  tableName: string,
  shards: readonly string[],
  options: Pick<ShardReadOptions, 'status'> = {},
): Promise<{ count: number; readUnits: number }> {
  const filter = filterOf(options);
  let readUnits = 0;
  const counts = await mapConcurrent(shards, 16, async (shard) => {
    let count = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({ ...shardQuery(tableName, shard, filter, startKey), Select: 'COUNT' }),
      );
      count += page.Count ?? 0;
      readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return count;
  });
  return { count: counts.reduce((a, b) => a + b, 0), readUnits };
}

function filterOf(
  options: ShardReadOptions,
): { expression: string; names: Record<string, string>; values: Record<string, unknown> } | undefined {
  const terms: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  if (options.id !== undefined) {
    terms.push('#id = :id');
    names['#id'] = RecordAttribute.id;
    values[':id'] = options.id;
  }
  if (options.status !== undefined) {
    terms.push('#status = :status');
    names['#status'] = RecordAttribute.status;
    values[':status'] = options.status;
  }
  return terms.length === 0 ? undefined : { expression: terms.join(' AND '), names, values };
}

function toEntry(item: Record<string, unknown>): IndexEntry {
  const num = (value: unknown) => (typeof value === 'number' ? value : undefined);
  const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const optional = {
    id: str(item[RecordAttribute.id]),
    status: str(item[RecordAttribute.status]),
    attempts: num(item[RecordAttribute.attempts]),
    sequence: num(item[RecordAttribute.sequence]),
    createdAt: num(item[RecordAttribute.createdAt]),
  };
  return {
    pk: String(item[PARTITION_KEY]),
    sk: String(item[SORT_KEY]),
    pendingShard: String(item[PENDING_SHARD]),
    pendingDueAt: num(item[PENDING_DUE_AT]) ?? 0,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
  };
}

/**
 * Reads full items by key (BatchGetItem, 100 keys per call, unprocessed keys retried), for attributes the
 * index does not project (`type`, `lastError`, the envelope). Returns them keyed by `pk` + `\u0000` + `sk`.
 */
export async function readItems(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly { pk: string; sk: string }[],
  projection?: readonly string[],
): Promise<{ items: Map<string, Record<string, unknown>>; readUnits: number }> {
  const items = new Map<string, Record<string, unknown>>();
  let readUnits = 0;
  const names = projection?.map((_, i) => `#p${i}`);
  for (let i = 0; i < keys.length; i += 100) {
    let pending: Record<string, unknown>[] | undefined = keys
      .slice(i, i + 100)
      .map((k) => ({ [PARTITION_KEY]: k.pk, [SORT_KEY]: k.sk }));
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2000)));
      const page: BatchGetCommandOutput = await client.send(
        new BatchGetCommand({
          RequestItems: {
            [tableName]: {
              Keys: pending,
              ...(projection && names
                ? {
                    ProjectionExpression: names.join(', '),
                    ExpressionAttributeNames: Object.fromEntries(
                      names.map((n, j) => [n, projection[j] as string]),
                    ),
                  }
                : {}),
            },
          },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      for (const c of page.ConsumedCapacity ?? []) readUnits += c.CapacityUnits ?? 0;
      for (const item of page.Responses?.[tableName] ?? []) {
        items.set(itemKey(String(item[PARTITION_KEY]), String(item[SORT_KEY])), item);
      }
      pending = page.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return { items, readUnits };
}

export function itemKey(pk: string, sk: string): string {
  return `${pk}\u0000${sk}`;
}

export { envelopeJsonOf } from '../../functions/runtime/record-envelope.ts';

/** Parses an envelope JSON; undefined when it is not a valid outbox envelope. */
export function parseEnvelope(json: string): OutboxEnvelope | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return isOutboxEnvelope(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
