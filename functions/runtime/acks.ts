/**
 * Delivery acknowledgements (tracked mode, opt-in per event type). When the relay publishes a tracked
 * event it writes one ack item per expected subscriber into the outbox table:
 *   pk = `ACK#<event id>#<subscriber>`, sk = `<subscriber>`, status PENDING, in the pending index with
 *   pendingDueAt = publish time + ack timeout, and no expiry (TTL must not remove it before it can be FAILED).
 * The subscriber's consumer marks it DONE (leaving the index, expiring `retainFor` seconds later); the sweeper
 * redelivers an overdue one to that subscriber's queue only, and marks it FAILED after the retry limit. The
 * subscriber's name in the partition key lets IAM confine each consumer to its own acks
 * (`dynamodb:LeadingKeys` `ACK#*#<subscriber>`).
 */
import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ACK_WRITTEN_ATTRIBUTES, TRACKED_SUBSCRIBER_NAMES_ENV } from './ack-format.ts';
import { OutboxConfigurationError } from './errors.ts';
import {
  ACK_PARTITION_PREFIX,
  EXPIRES_AT,
  PENDING_DUE_AT,
  PENDING_SHARD,
  pendingShardOf,
} from './record-format.ts';

export { ACK_PARTITION_PREFIX };
export const AckStatus = { Pending: 'PENDING', Done: 'DONE', Failed: 'FAILED' } as const;
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus];

/** A subscriber that must acknowledge events of some types. */
export interface TrackedSubscriber {
  readonly name: string;
  /** Queue the sweeper redelivers to when the ack is overdue. */
  readonly queueUrl: string;
  readonly fifo: boolean;
}

/** Event type → subscribers that must acknowledge it. Passed to the relay as JSON (OUTBOX_TRACKED_SUBSCRIBERS). */
export type TrackingConfig = Readonly<Record<string, readonly TrackedSubscriber[]>>;

export const TRACKING_ENV = 'OUTBOX_TRACKED_SUBSCRIBERS';
export { ACK_WRITTEN_ATTRIBUTES, TRACKED_SUBSCRIBER_NAMES_ENV };
export const ACK_TIMEOUT_ENV = 'OUTBOX_ACK_TIMEOUT_SECONDS';
export const DEFAULT_ACK_TIMEOUT_SECONDS = 300;

export function parseTrackingConfig(raw: string | undefined): TrackingConfig {
  if (!raw?.trim()) return {};
  try {
    const parsed = JSON.parse(raw) as TrackingConfig;
    for (const [type, subscribers] of Object.entries(parsed)) {
      if (!Array.isArray(subscribers) || subscribers.some((s) => !s?.name || !s?.queueUrl)) {
        throw new Error(`type ${type} must map to [{ name, queueUrl, fifo }]`);
      }
    }
    return parsed;
  } catch (error) {
    throw new OutboxConfigurationError(
      `${TRACKING_ENV} is not valid JSON of { "<event type>": [{ "name", "queueUrl", "fifo" }] }: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export function ackKey(eventId: string, subscriber: string): { pk: string; sk: string } {
  return { pk: `${ACK_PARTITION_PREFIX}${eventId}#${subscriber}`, sk: subscriber };
}

/** The pending ack items for one published event (PutRequests for BatchWrite). */
export function pendingAckItems(
  event: { id: string; type: string; pk: string; sk: string },
  tracking: TrackingConfig,
  publishedAt: number,
  ackTimeoutSeconds: number,
  retentionSeconds: number,
): Record<string, unknown>[] {
  return (tracking[event.type] ?? []).map((subscriber) => ({
    ...ackKey(event.id, subscriber.name),
    id: event.id,
    status: AckStatus.Pending,
    subscriber: subscriber.name,
    queueUrl: subscriber.queueUrl,
    fifo: subscriber.fifo,
    eventPk: event.pk,
    eventSk: event.sk,
    attempts: 0,
    createdAt: publishedAt,
    [PENDING_SHARD]: pendingShardOf(event.id),
    [PENDING_DUE_AT]: publishedAt + ackTimeoutSeconds * 1000,
    // Applied when the ack is DONE; a pending ack never expires.
    retainFor: retentionSeconds,
  }));
}

/**
 * Records a subscriber's completion. Idempotent; a no-op (false) when the event is not tracked for it.
 */
export async function acknowledge(
  client: DynamoDBDocumentClient,
  tableName: string,
  eventId: string,
  subscriber: string,
  now = Date.now(),
): Promise<boolean> {
  try {
    await client.send(
      new UpdateCommand({
        TableName: tableName,
        Key: ackKey(eventId, subscriber),
        UpdateExpression: `SET #status = :done, ackedAt = :now, ${EXPIRES_AT} = retainFor + :nowSeconds REMOVE ${PENDING_SHARD}, ${PENDING_DUE_AT}`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':done': AckStatus.Done,
          ':now': now,
          ':nowSeconds': Math.floor(now / 1000),
        },
      }),
    );
    return true;
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}

export interface DeliveryStatus {
  readonly eventId: string;
  /** Subscriber → pending / done / failed. Empty when the event is not tracked (or not yet published). */
  readonly subscribers: Readonly<Record<string, { status: 'pending' | 'done' | 'failed'; attempts: number }>>;
}

/**
 * The producer's view of an event's delivery: one strongly consistent BatchGetItem of its acks for the tracked
 * subscribers (default: `OUTBOX_TRACKED_SUBSCRIBER_NAMES`, which `Outbox.producerEnvironment` sets).
 */
export async function getStatus(
  client: DynamoDBDocumentClient,
  tableName: string,
  eventId: string,
  subscriberNames: readonly string[] = trackedSubscriberNames(),
): Promise<DeliveryStatus> {
  const items: Record<string, unknown>[] = [];
  // BatchGetItem takes 100 keys; a tracked event has a handful of subscribers.
  for (let start = 0; start < subscriberNames.length; start += 100) {
    let keys: Record<string, unknown>[] | undefined = subscriberNames
      .slice(start, start + 100)
      .map((name) => ackKey(eventId, name));
    while (keys && keys.length > 0) {
      const page = await client.send(
        new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: true } } }),
      );
      items.push(...(page.Responses?.[tableName] ?? []));
      keys = page.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined;
    }
  }
  const subscribers: Record<string, { status: 'pending' | 'done' | 'failed'; attempts: number }> = {};
  for (const item of items) {
    subscribers[String(item.sk)] = {
      status: String(item.status).toLowerCase() as 'pending' | 'done' | 'failed',
      attempts: Number(item.attempts ?? 0),
    };
  }
  return { eventId, subscribers };
}

function trackedSubscriberNames(): string[] {
  const raw = process.env[TRACKED_SUBSCRIBER_NAMES_ENV];
  if (raw === undefined) {
    throw new OutboxConfigurationError(
      `getStatus needs the tracked subscribers' names: pass them, or set ${TRACKED_SUBSCRIBER_NAMES_ENV} (in CDK: environment: outbox.producerEnvironment).`,
    );
  }
  return raw
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
}
