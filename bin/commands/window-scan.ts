/**
 * The one Scan the operator commands make of the outbox table: event records (`EVT#`) of some statuses committed
 * in a window (`from <= createdAt < to`), in parallel segments, streamed page by page. Each segment reads its next
 * page only after `onPage` resolved, so memory holds one page per segment; `onPage` returning false stops every
 * segment. Within a segment a partition's items come in sort-key order (an aggregate's events in sequence order).
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { EVENT_SORT_KEY_PREFIX, RecordAttribute, SORT_KEY } from '../../functions/runtime/record-format.ts';
import type { OutboxClients } from './clients.ts';

export interface WindowScanPage {
  readonly segment: number;
  /** 1-based count of pages read so far, over all segments. */
  readonly page: number;
  readonly items: readonly Record<string, unknown>[];
  readonly scannedCount: number;
  readonly readUnits: number;
}

export interface WindowScanOptions {
  readonly segments: number;
  readonly pageSize?: number;
  /** Record statuses to keep. */
  readonly statuses: readonly string[];
  /** Attributes to read. @default every attribute */
  readonly projection?: readonly string[];
}

export async function scanEventWindow(
  clients: OutboxClients,
  tableName: string,
  window: { readonly from: number; readonly to: number },
  options: WindowScanOptions,
  onPage: (page: WindowScanPage) => Promise<boolean> | boolean,
): Promise<void> {
  const statusValues = Object.fromEntries(options.statuses.map((status, i) => [`:s${i}`, status]));
  const projected = Object.fromEntries((options.projection ?? []).map((name, i) => [`#p${i}`, name]));
  let pages = 0;
  let stop = false;
  await Promise.all(
    Array.from({ length: options.segments }, async (_, segment) => {
      let startKey: Record<string, unknown> | undefined;
      do {
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
            ...(options.pageSize === undefined ? {} : { Limit: options.pageSize }),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        if (stop) return;
        startKey = page.LastEvaluatedKey;
        const more = await onPage({
          segment,
          page: ++pages,
          items: page.Items ?? [],
          scannedCount: page.ScannedCount ?? 0,
          readUnits: page.ConsumedCapacity?.CapacityUnits ?? 0,
        });
        if (!more) stop = true;
      } while (startKey && !stop);
    }),
  );
}
