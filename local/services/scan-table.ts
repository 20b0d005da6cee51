/**
 * Reads a whole table from DynamoDB Local without exhausting its heap or its time.
 *
 * DynamoDB Local answers a Scan without `Limit` by reading every item of the table (or segment) into its JVM heap
 * before cutting the 1 MB page: a table larger than the heap (-Xmx256m by default) fails with `InternalFailure`
 * (an `OutOfMemoryError` inside the JVM). With `Limit` it reads one page, but it finds each page's start by walking
 * from the segment's beginning, so a long paged Scan costs the square of the table's size. A page limit plus one
 * segment per `itemsPerSegment` items keeps both bounded: 300,000 items of 2.5 KB (760 MB) read in 16 s where one
 * paged segment took 265 s.
 */
import {
  type AttributeValue,
  DescribeTableCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/** Twice the 1 MB page cap: pages of average items end at the cap, not at the limit. */
const PAGE_BYTES = 2 * 2 ** 20;

export interface ScanTableOptions {
  /**
   * Items per Scan page: what DynamoDB Local holds in its heap per request (each page still stops at 1 MB).
   * @default as many average-sized items (the table's `TableSizeBytes / ItemCount`) as make 2 MB, from 1 to 1,000
   */
  readonly pageSize?: number;
  /**
   * Items per parallel-scan segment, from the table's `ItemCount`: bounds the cost of finding each page's start.
   * @default 2000
   */
  readonly itemsPerSegment?: number;
  /** @default true */
  readonly consistentRead?: boolean;
}

/** Every item of `tableName`, unmarshalled. For offline reports and tests; production code never scans a table. */
export async function scanTable(
  client: Pick<DynamoDBClient, 'send'>,
  tableName: string,
  options: ScanTableOptions = {},
): Promise<Record<string, unknown>[]> {
  const itemsPerSegment = options.itemsPerSegment ?? 2000;
  const described = await client.send(new DescribeTableCommand({ TableName: tableName }));
  // Both are live on DynamoDB Local.
  const itemCount = described.Table?.ItemCount ?? 0;
  const averageItemBytes = itemCount > 0 ? (described.Table?.TableSizeBytes ?? 0) / itemCount : 0;
  const pageSize =
    options.pageSize ?? Math.min(1000, Math.max(1, Math.floor(PAGE_BYTES / Math.max(1, averageItemBytes))));
  // DynamoDB allows up to 1,000,000 segments.
  const segments = Math.min(1_000_000, Math.max(1, Math.ceil(itemCount / itemsPerSegment)));
  const items: Record<string, unknown>[] = [];
  for (let segment = 0; segment < segments; segment++) {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: tableName,
          ConsistentRead: options.consistentRead ?? true,
          Limit: pageSize,
          ...(segments > 1 ? { Segment: segment, TotalSegments: segments } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of page.Items ?? []) items.push(unmarshall(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }
  return items;
}
