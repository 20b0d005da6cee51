export { acknowledge } from '../runtime/acks.ts';
export type { OutboxEnvelope } from '../runtime/envelope.ts';
export {
  type BatchResult,
  createConsumer,
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE_MARGIN_MS,
  DEFAULT_LEASE_MS,
  IdempotentConsumer,
  POISON_CONSUMER_ATTRIBUTE,
  POISON_REASON_ATTRIBUTE,
  POISON_SOURCE_MESSAGE_ATTRIBUTE,
  parseEnvelope,
  type RecordResult,
} from './consumer.ts';
export * from './dedup-format.ts';
export { DedupStore, MAX_HANDLER_WRITES } from './dedup-store.ts';
export * from './errors.ts';
export { outboxConsumer } from './middleware.ts';
export { CountingMetrics, DEFAULT_METRICS_NAMESPACE } from './observability.ts';
export {
  type PollOptions,
  type PollResult,
  pollOnce,
  syntheticLambdaContext,
  toLambdaRecord,
} from './sqs-poller.ts';
export * from './types.ts';
