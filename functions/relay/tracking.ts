/**
 * Tracked mode (delivery acknowledgements), the relay's half: before an event of a tracked type is sent, one
 * `ACK#<event id>` item per expected subscriber is written to the outbox table
 * (functions/runtime/acks.ts `pendingAckItems`). The subscriber's consumer marks its item DONE; the recovery
 * sweeper redelivers an overdue one to that subscriber's queue only.
 *
 * Before, not after: a consumer may apply and acknowledge the event before the relay has finished its batch; its
 * acknowledgement needs the item to exist (it is a conditional update), or it is lost and the sweeper redelivers.
 * The sweeper does not redeliver for an event that is not PUBLISHED yet (it waits another ack timeout).
 *
 * Each ack item is created with a conditional UpdateItem (`attribute_not_exists(pk)`), not a BatchWrite:
 * - a republish (stream redelivery, sweeper, an operator's retry of a quarantined record) never resets an ack
 *   that is already DONE or FAILED back to PENDING, and never resets its redelivery count;
 * - the relay already holds `dynamodb:UpdateItem` on the table, so tracked mode adds no permission.
 * A failed condition still costs ⌈item / 1 KB⌉ write units (1 for an ack item).
 */
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import {
  DEFAULT_ACK_TIMEOUT_SECONDS,
  parseTrackingConfig,
  pendingAckItems,
  type TrackingConfig,
} from '../runtime/acks.ts';
import { OutboxConfigurationError } from '../runtime/errors.ts';
import { PARTITION_KEY, SORT_KEY } from '../runtime/record-format.ts';
import { RelayEnv } from './config.ts';
import type { OutboxRecord } from './decode.ts';
import type { AckRecorder } from './relay.ts';

export interface TrackingSettings {
  /** Event type → the subscribers that must acknowledge it. Empty: tracked mode is off. */
  readonly config: TrackingConfig;
  /** How long a subscriber has to acknowledge before the sweeper redelivers to it. */
  readonly ackTimeoutSeconds: number;
}

const MIN_ACK_TIMEOUT_SECONDS = 10;
const MAX_ACK_TIMEOUT_SECONDS = 7 * 86_400;

/** Reads OUTBOX_TRACKED_SUBSCRIBERS and OUTBOX_ACK_TIMEOUT_SECONDS; throws OutboxConfigurationError naming the variable. */
export function readTrackingSettings(
  env: Readonly<Record<string, string | undefined>> = process.env,
): TrackingSettings {
  const config = parseTrackingConfig(env[RelayEnv.trackedSubscribers]);
  const raw = env[RelayEnv.ackTimeoutSeconds]?.trim();
  const ackTimeoutSeconds = raw ? Number(raw) : DEFAULT_ACK_TIMEOUT_SECONDS;
  if (
    !Number.isInteger(ackTimeoutSeconds) ||
    ackTimeoutSeconds < MIN_ACK_TIMEOUT_SECONDS ||
    ackTimeoutSeconds > MAX_ACK_TIMEOUT_SECONDS
  ) {
    throw new OutboxConfigurationError(
      `${RelayEnv.ackTimeoutSeconds} must be an integer from ${MIN_ACK_TIMEOUT_SECONDS} to ${MAX_ACK_TIMEOUT_SECONDS}, but "${raw}" was provided; fix the function's environment.`,
    );
  }
  return { config, ackTimeoutSeconds };
}

export interface AckRecorderOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tracking: TrackingSettings;
  /** Days an ack item is kept (the same retention as the published record). */
  readonly retentionDays: number;
}

/** The ack writer for the relay core, or undefined when no event type is tracked. */
export function createAckRecorder(options: AckRecorderOptions): AckRecorder | undefined {
  const { config, ackTimeoutSeconds } = options.tracking;
  if (Object.keys(config).length === 0) return undefined;
  const retentionSeconds = options.retentionDays * 86_400;
  return {
    async recordExpected(record: OutboxRecord, at: number): Promise<number> {
      const items = pendingAckItems(
        { id: record.id, type: record.type, pk: record.pk, sk: record.sk },
        config,
        at,
        ackTimeoutSeconds,
        retentionSeconds,
      );
      let created = 0;
      await Promise.all(
        items.map(async (item) => {
          if (await createIfAbsent(options.client, options.tableName, item)) created++;
        }),
      );
      return created;
    },
  };
}

/** Creates the item unless one with its key exists; true when this call created it. */
async function createIfAbsent(
  client: DynamoDBClient,
  tableName: string,
  item: Record<string, unknown>,
): Promise<boolean> {
  const { [PARTITION_KEY]: pk, [SORT_KEY]: sk, ...attributes } = item;
  const names: Record<string, string> = { '#pk': PARTITION_KEY };
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  Object.entries(attributes).forEach(([name, value], i) => {
    names[`#a${i}`] = name;
    values[`:v${i}`] = value;
    sets.push(`#a${i} = :v${i}`);
  });
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: marshall({ [PARTITION_KEY]: pk, [SORT_KEY]: sk }),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: marshall(values, { removeUndefinedValues: true }),
      }),
    );
    return true;
  } catch (error) {
    if ((error as { name?: string })?.name === 'ConditionalCheckFailedException') return false;
    throw error;
  }
}
