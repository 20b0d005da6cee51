import { OutboxConfigurationError } from '../runtime/errors.ts';
import { DEFAULT_RETENTION_DAYS } from '../runtime/record-format.ts';

/** Environment variables the relay (and the recovery sweeper, which publishes the same way) reads. */
export const RelayEnv = {
  tableName: 'OUTBOX_TABLE_NAME',
  /** Days a finished record is kept before TTL deletes it. */
  retentionDays: 'OUTBOX_RETENTION_DAYS',
  /** ARN of the SNS FIFO topic (ordered fan-out). */
  snsTopicArn: 'OUTBOX_SNS_TOPIC_ARN',
  /** Name or ARN of the EventBridge bus (rule-based fan-out). */
  eventBusName: 'OUTBOX_EVENT_BUS_NAME',
  /** Comma-separated URLs of direct SQS FIFO queues (point-to-point). */
  sqsQueueUrls: 'OUTBOX_SQS_QUEUE_URLS',
  snsMaxMessageBytes: 'OUTBOX_SNS_MAX_MESSAGE_BYTES',
  sqsMaxMessageBytes: 'OUTBOX_SQS_MAX_MESSAGE_BYTES',
  eventBridgeMaxEntryBytes: 'OUTBOX_EVENTBRIDGE_MAX_ENTRY_BYTES',
  /**
   * Tracked mode: JSON `{ "<event type>": [{ "name", "queueUrl", "fifo" }] }`, the subscribers that must acknowledge
   * each tracked type (same name as `TRACKING_ENV` in functions/runtime/acks.ts).
   */
  trackedSubscribers: 'OUTBOX_TRACKED_SUBSCRIBERS',
  /** Tracked mode: seconds a subscriber has to acknowledge before the sweeper redelivers (`ACK_TIMEOUT_ENV`). */
  ackTimeoutSeconds: 'OUTBOX_ACK_TIMEOUT_SECONDS',
} as const;

/** SNS: 256 KiB per message and per PublishBatch unless the topic's MaximumMessageSize is raised. */
export const DEFAULT_SNS_MAX_MESSAGE_BYTES = 262_144;
/** SQS: 1 MiB per message and per SendMessageBatch (the queues OutboxRelay creates allow 1 MiB). */
export const DEFAULT_SQS_MAX_MESSAGE_BYTES = 1_048_576;
/** EventBridge: 1 MB per PutEvents entry since 2026-01-29 (was 256 KB). */
export const DEFAULT_EVENTBRIDGE_MAX_ENTRY_BYTES = 1_048_576;
const MIN_MESSAGE_BYTES = 1024;
const MAX_MESSAGE_BYTES = 1_048_576;

export interface RelayConfig {
  readonly tableName: string;
  readonly retentionDays: number;
  readonly snsTopicArn?: string;
  readonly eventBusName?: string;
  readonly sqsQueueUrls: readonly string[];
  readonly snsMaxMessageBytes: number;
  readonly sqsMaxMessageBytes: number;
  readonly eventBridgeMaxEntryBytes: number;
}

type Env = Readonly<Record<string, string | undefined>>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutboxConfigurationError(
      `${name} must be an integer from ${min} to ${max}, but "${raw}" was provided; fix the function's environment.`,
    );
  }
  return value;
}

/**
 * Reads and validates the relay configuration. Throws OutboxConfigurationError naming the variable and the
 * fix; a misconfigured relay must fail loudly (Errors alarm) rather than publish to the wrong place.
 */
export function readRelayConfig(env: Env = process.env): RelayConfig {
  const tableName = optional(env, RelayEnv.tableName);
  if (!tableName) {
    throw new OutboxConfigurationError(
      `${RelayEnv.tableName} is not set: the relay records what it published in the outbox table. Deploy it with OutboxRelay, or set the variable.`,
    );
  }
  const snsTopicArn = optional(env, RelayEnv.snsTopicArn);
  if (snsTopicArn !== undefined && !/^arn:[\w-]+:sns:[\w-]+:\d{12}:[\w-]{1,251}\.fifo$/.test(snsTopicArn)) {
    throw new OutboxConfigurationError(
      `${RelayEnv.snsTopicArn} must be the ARN of an SNS FIFO topic (name ending in .fifo), but "${snsTopicArn}" was provided; ordered delivery needs a FIFO topic.`,
    );
  }
  const eventBusName = optional(env, RelayEnv.eventBusName);
  if (eventBusName !== undefined && !/^[\w.\-/:]{1,1600}$/.test(eventBusName)) {
    throw new OutboxConfigurationError(
      `${RelayEnv.eventBusName} must be an event bus name or ARN, but "${eventBusName}" was provided.`,
    );
  }
  if (eventBusName === 'default') {
    throw new OutboxConfigurationError(
      `${RelayEnv.eventBusName} is "default": publish outbox events to a custom bus so their rules and permissions stay separate.`,
    );
  }
  const sqsQueueUrls = (optional(env, RelayEnv.sqsQueueUrls) ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  for (const url of sqsQueueUrls) {
    if (!/^https?:\/\/\S+\/[\w-]{1,75}\.fifo$/.test(url)) {
      throw new OutboxConfigurationError(
        `${RelayEnv.sqsQueueUrls} must list SQS FIFO queue URLs (ending in .fifo), but "${url}" was provided.`,
      );
    }
  }
  if (!snsTopicArn && !eventBusName && sqsQueueUrls.length === 0) {
    throw new OutboxConfigurationError(
      `The relay has no target: set ${RelayEnv.snsTopicArn}, ${RelayEnv.eventBusName} or ${RelayEnv.sqsQueueUrls} (OutboxRelay sets them).`,
    );
  }
  return {
    tableName,
    retentionDays: integer(env, RelayEnv.retentionDays, DEFAULT_RETENTION_DAYS, 1, 3650),
    ...(snsTopicArn === undefined ? {} : { snsTopicArn }),
    ...(eventBusName === undefined ? {} : { eventBusName }),
    sqsQueueUrls,
    snsMaxMessageBytes: integer(
      env,
      RelayEnv.snsMaxMessageBytes,
      DEFAULT_SNS_MAX_MESSAGE_BYTES,
      MIN_MESSAGE_BYTES,
      MAX_MESSAGE_BYTES,
    ),
    sqsMaxMessageBytes: integer(
      env,
      RelayEnv.sqsMaxMessageBytes,
      DEFAULT_SQS_MAX_MESSAGE_BYTES,
      MIN_MESSAGE_BYTES,
      MAX_MESSAGE_BYTES,
    ),
    eventBridgeMaxEntryBytes: integer(
      env,
      RelayEnv.eventBridgeMaxEntryBytes,
      DEFAULT_EVENTBRIDGE_MAX_ENTRY_BYTES,
      MIN_MESSAGE_BYTES,
      MAX_MESSAGE_BYTES,
    ),
  };
}
