/**
 * The one Scan the operator commands and the scheduled audit make of the outbox table: event records (`EVT#`) of
 * some statuses committed in a window (`from <= createdAt < to`), in segments, streamed page by page. Each segment
 * reads its next page only after `onPage` resolved, so memory holds one page per segment; `onPage` returning false
 * stops every segment. Within a segment a partition's items come in sort-key order (an aggregate's events in
 * sequence order).
 *
 * A Scan pays for every item it reads, in the window or not (the filter applies after the read): `maxItemsRead`
 * bounds that cost, and `onlySegments` scans a subset of the segments one after another (the scheduled audit's
 * rotating sample of a table larger than its budget).
 */
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { EVENT_SORT_KEY_PREFIX, RecordAttribute, SORT_KEY } from '../runtime/record-format.ts';

export interface WindowScanPage {
  readonly segment: number;
  /** 1-based count of pages read so far, over all segments. */
  readonly page: number;
  readonly items: readonly Record<string, unknown>[];
  readonly scannedCount: number;
  readonly readUnits: number;
  /** True when this page ended its segment (no LastEvaluatedKey). */
  readonly segmentDone: boolean;
}

export interface WindowScanOptions {
  /** TotalSegments of the Scan. */
  readonly segments: number;
  readonly pageSize?: number;
  /** Record statuses to keep. */
  readonly statuses: readonly string[];
  /** Attributes to read. @default every attribute */
  readonly projection?: readonly string[];
  /**
   * Scan only these segments, one after another, in this order.
   * @default every segment, in parallel
   */
  readonly onlySegments?: readonly number[];
  /**
   * Items read (ScannedCount, what the Scan is billed for) after which no further page is requested; pages are
   * sized so the total never exceeds it.
   * @default unbounded
   */
  readonly maxItemsRead?: number;
}

export interface WindowScanClients {
  readonly dynamodb: DynamoDBDocumentClient;
}

export async function scanEventWindow(
  clients: WindowScanClients,
  tableName: string,
  window: { readonly from: number; readonly to: number },
  options: WindowScanOptions,
  onPage: (page: WindowScanPage) => Promise<boolean> | boolean,
): Promise<void> {
  const statusValues = Object.fromEntries(options.statuses.map((status, i) => [`:s${i}`, status]));
  const projected = Object.fromEntries((options.projection ?? []).map((name, i) => [`#p${i}`, name]));
  const sequential = options.onlySegments !== undefined;
  let pages = 0;
  let stop = false;
  // Items read plus items requested by pages still in flight: what the budget must cover.
  let committed = 0;
  const budget = options.maxItemsRead ?? Number.POSITIVE_INFINITY;
  const scanSegment = async (segment: number, parallel: number) => {
    let startKey: Record<string, unknown> | undefined;
    do {
      const left = budget - committed;
      // Parallel segments share what is left, so their pages in flight never overshoot it together.
      const limit = Math.min(options.pageSize ?? Number.POSITIVE_INFINITY, Math.floor(left / parallel));
      if (limit < 1) {
        stop = stop || left < 1;
        return;
      }
      const reserved = Number.isFinite(limit) ? limit : 0;
      committed += reserved;
      const page = await clients.dynamodb.send(
        new ScanCommand({
          TableName: tableName,
          Segment: segment,
          TotalSegments: options.segments,
          FilterExpression: `begins_with(#sk, :evt) AND #status IN (${Object.keys(statusValues).join(', ')}) AND #createdAt >= :from AND #createdAt < :to`,
          ...(options.projection ? { ProjectionExpression: Object.keys(projected).join(', ') } : {}),
          ExpressionAttributeNames: {
            '#sk': SORT_KEY,
            '#status': RecordAttribute.status,
            '#createdAt': RecordAttribute.createdAt,
            ...projected,
          },
          ExpressionAttributeValues: {
            ':evt': EVENT_SORT_KEY_PREFIX,
            ':from': window.from,
            ':to': window.to,
            ...statusValues,
          },
          ReturnConsumedCapacity: 'TOTAL',
          ...(Number.isFinite(limit) ? { Limit: limit } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      committed += (page.ScannedCount ?? 0) - reserved;
      if (stop) return;
      startKey = page.LastEvaluatedKey;
      const more = await onPage({
        segment,
        page: ++pages,
        items: page.Items ?? [],
        scannedCount: page.ScannedCount ?? 0,
        readUnits: page.ConsumedCapacity?.CapacityUnits ?? 0,
        segmentDone: startKey === undefined,
      });
      if (!more) stop = true;
    } while (startKey && !stop);
  };
  if (sequential) {
    for (const segment of options.onlySegments ?? []) {
      if (stop) break;
      await scanSegment(segment, 1);
    }
    return;
  }
  await Promise.all(
    Array.from({ length: options.segments }, (_, segment) => scanSegment(segment, options.segments)),
  );
}
