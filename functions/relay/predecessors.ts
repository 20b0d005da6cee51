/**
 * Unpublished predecessors: the relay's guard for per-aggregate order after a lost stream delivery.
 *
 * When Lambda gives up on a stream batch (retries or record age exhausted: only its position goes to the failure
 * queue) or a record's change is otherwise never seen, its records stay READY in the table and the relay later
 * receives their successors. Publishing a successor first would put a sequence gap in front of an ordered
 * consumer that a FIFO queue can never close (the recovery sweeper's republish lands BEHIND the successor in the
 * same message group). So before publishing an aggregate whose lowest sequence in the call is L > 1 (and L - 1 is
 * not in the call), the relay core reads the records before L, newest first, and publishes the READY ones first.
 *
 * The walk stops at the first record that is not READY:
 * - PUBLISHED: everything before it was handled in order;
 * - QUARANTINED: unpublishable until an operator fixes it; waiting for it would stall the aggregate;
 * - SCHEDULED: delayed (`deliverAt`) or itself held back: it is returned as `scheduled`, and the relay holds the
 *   records after it back (SCHEDULED, due when it is) so they are published after it, in order (#10.1);
 * - CANCELLED or anything else: never published.
 *
 * Cost: one strongly consistent Query per such aggregate and call. Its first page has `Limit: 1`, because a
 * Query is billed on the items it reads (rounded up to 4 KB per call, 1 read unit per 4 KB when strongly
 * consistent): the usual answer, one PUBLISHED item of a few KB, costs 1 read unit. Only when that item is
 * still READY (a lost delivery) does the walk page on, 10 then 100 items per page.
 */
import { type AttributeValue, type DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  EVENT_SORT_KEY_PREFIX,
  eventSortKey,
  OutboxStatus,
  PARTITION_KEY,
  PENDING_DUE_AT,
  RecordAttribute,
  SORT_KEY,
} from '../runtime/record-format.ts';
import { type Decoded, decodeImage, type Image } from './decode.ts';
import type { PredecessorFinder, PredecessorWalk } from './relay.ts';

export interface PredecessorFinderOptions {
  /** The low-level client: a Query answers with attribute-value images, decoded like stream images. */
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /**
   * Most READY predecessors one lookup returns. Past it the lookup fails (`TooManyUnpublishedPredecessors`): the
   * aggregate is retried later and the recovery sweeper, which picks the oldest READY records first, catches up.
   * @default 1000
   */
  readonly maxPredecessors?: number;
}

/** Thrown when an aggregate has more READY predecessors than a lookup may return. */
export class TooManyUnpublishedPredecessorsError extends Error {
  override name = 'TooManyUnpublishedPredecessors';
}

const FIRST_PAGE = 1;

function walked(newestFirst: Decoded[]): PredecessorWalk {
  return { unpublished: newestFirst.reverse() };
}

/** A SCHEDULED record as a blocker: its sequence and the time the sweeper releases it. */
function blocker(item: Record<string, AttributeValue>): NonNullable<PredecessorWalk['scheduled']> {
  const sk = item[SORT_KEY]?.S ?? '';
  const due = Number(item[PENDING_DUE_AT]?.N);
  return {
    sequence: Number(sk.slice(EVENT_SORT_KEY_PREFIX.length)),
    id: item[RecordAttribute.id]?.S ?? sk,
    // No due time (a foreign writer's record outside the index): the sweeper cannot release it; hold the
    // successors for the shortest time, so they come back to this check and never jump it.
    dueAt: Number.isFinite(due) ? due : 0,
  };
}
const LARGEST_PAGE = 100;

export function createPredecessorFinder(options: PredecessorFinderOptions): PredecessorFinder {
  const maxPredecessors = Math.max(1, options.maxPredecessors ?? 1000);
  return {
    async findUnpublishedPredecessors(aggregate, beforeSequence, afterSequence = 0) {
      const from = Math.max(1, afterSequence + 1);
      const to = beforeSequence - 1;
      if (to < from) return { unpublished: [] };
      const newestFirst: Decoded[] = [];
      let startKey: Record<string, AttributeValue> | undefined;
      let limit = FIRST_PAGE;
      for (;;) {
        const page = await options.client.send(
          new QueryCommand({
            TableName: options.tableName,
            // BETWEEN fixed-width event sort keys: never the HEAD, PRE# or any other item of the partition.
            KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
            ExpressionAttributeNames: { '#pk': PARTITION_KEY, '#sk': SORT_KEY },
            ExpressionAttributeValues: {
              ':pk': { S: aggregate },
              ':from': { S: eventSortKey(from) },
              ':to': { S: eventSortKey(to) },
            },
            // A record committed (or marked) a moment ago must be seen as it is now.
            ConsistentRead: true,
            ScanIndexForward: false,
            Limit: limit,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        for (const item of page?.Items ?? []) {
          const status = item[RecordAttribute.status]?.S;
          if (status === OutboxStatus.Scheduled) return { ...walked(newestFirst), scheduled: blocker(item) };
          if (status !== OutboxStatus.Ready) return walked(newestFirst);
          const decoded = decodeImage(item as Image);
          if (decoded.kind === 'ignore') continue;
          newestFirst.push(decoded);
          if (newestFirst.length > maxPredecessors) {
            throw new TooManyUnpublishedPredecessorsError(
              `${aggregate} has more than ${maxPredecessors} unpublished (READY) events before sequence ${beforeSequence}; the recovery sweeper publishes them first`,
            );
          }
        }
        startKey = page?.LastEvaluatedKey;
        if (!startKey) return walked(newestFirst);
        limit = Math.min(LARGEST_PAGE, limit * 10);
      }
    },
  };
}
