/**
 * `serverless-outbox`: the CDK constructs. Most teams need `Outbox` and `Subscription`; the lower-level constructs
 * compose them. Nothing here loads the AWS SDK: handlers ship prebuilt in the package.
 */
export { AlarmTopic, type AlarmTopicProps } from './alarm-topic.ts';
export { DedupTable, type DedupTableProps, type IDedupTable } from './dedup-table.ts';
export type { DurableTableProps } from './durable-table.ts';
export type { ImportedOutboxOptions, OutboxAttributes, OutboxParameter } from './imported-outbox.ts';
export {
  type ILargeEventStore,
  LargeEventGrants,
  LargeEventStore,
  type LargeEventStoreProps,
  type LargeEventsProps,
} from './large-event-store.ts';
export {
  type IOutbox,
  Outbox,
  type OutboxProps,
  type OutboxRecoveryTuning,
  type OutboxRelayTuning,
} from './outbox.ts';
export { OutboxDashboard, type OutboxDashboardProps } from './outbox-dashboard.ts';
export { type ConsumerBundleOptions, OUTBOX_RUNTIME } from './outbox-function.ts';
export {
  OutboxRecovery,
  type OutboxRecoveryAlarms,
  OutboxRecoveryMetrics,
  type OutboxRecoveryProps,
} from './outbox-recovery.ts';
export {
  OutboxRelay,
  type OutboxRelayBusOptions,
  OutboxRelayMetrics,
  type OutboxRelayProps,
  type OutboxRelayQueueOptions,
  type OutboxRelayTopicOptions,
  type TrackedDelivery,
} from './outbox-relay.ts';
export { OutboxTable, type OutboxTableProps } from './outbox-table.ts';
export {
  OutboxReliabilityChecks,
  OutboxReliabilityRule,
  type OutboxReliabilityRuleId,
  type OutboxReliabilitySuppression,
} from './reliability/checks.ts';
export {
  CONSUMER_METRICS_NAMESPACE,
  type OrderedSubscriptionProps,
  type RuleSubscriptionProps,
  Subscription,
  type SubscriptionAlarmProps,
  type SubscriptionAlarms,
  type SubscriptionConstructProps,
  type SubscriptionConsumerEntryProps,
  type SubscriptionConsumerFunctionProps,
  type SubscriptionConsumerMappingProps,
  type SubscriptionConsumerProps,
  type SubscriptionProps,
  type SubscriptionWiring,
} from './subscription.ts';
