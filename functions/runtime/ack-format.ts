/**
 * Facts about acknowledgement items that the CDK constructs share with the runtime. Dependency-free, so lib/ can
 * import it without the AWS SDK.
 */
import { EXPIRES_AT, PENDING_DUE_AT, PENDING_SHARD } from './record-format.ts';

/** Comma-separated names of every tracked subscriber (set on producers by `Outbox.producerEnvironment`). */
export const TRACKED_SUBSCRIBER_NAMES_ENV = 'OUTBOX_TRACKED_SUBSCRIBER_NAMES';

/** The attributes `acknowledge()` writes: the IAM `dynamodb:Attributes` a consumer's ack grant allows. */
export const ACK_WRITTEN_ATTRIBUTES = [
  'pk',
  'sk',
  'status',
  'ackedAt',
  PENDING_SHARD,
  PENDING_DUE_AT,
  EXPIRES_AT,
  'retainFor',
] as const;
