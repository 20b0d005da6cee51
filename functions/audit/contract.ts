/**
 * The scheduled audit function's configuration and metric names, shared by its handler and the CDK construct
 * (lib/outbox-audit.ts). Dependency-free so `lib/` can import it without pulling in the AWS SDK.
 */
export const AuditEnv = {
  /** The outbox table (the same variable the writer and relay read). */
  outboxTable: 'OUTBOX_TABLE_NAME',
  /** The consumers' dedup table. */
  dedupTable: 'OUTBOX_AUDIT_DEDUP_TABLE',
  /** JSON `[{ "name": "<subscription>", "filter": <SubscriptionFilter> }]`: the subscriptions audited. */
  subscriptions: 'OUTBOX_AUDIT_SUBSCRIPTIONS',
  /** Seconds between the end of the audited window and the run: time for publishing and delivery retries. */
  lagSeconds: 'OUTBOX_AUDIT_LAG_SECONDS',
  /** Length of the audited window in seconds (the schedule's period: each event is audited once). */
  windowSeconds: 'OUTBOX_AUDIT_WINDOW_SECONDS',
  /** Most outbox items one run's Scan reads (its read cost bound). */
  maxItemsPerRun: 'OUTBOX_AUDIT_MAX_ITEMS_PER_RUN',
} as const;

export const AuditDefaults = {
  scheduleMinutes: 5,
  windowSeconds: 300,
  lagSeconds: 600,
  maxItemsPerRun: 50_000,
} as const;

/** Metric names (namespace from POWERTOOLS_METRICS_NAMESPACE; dimensions `service` and, per subscription, `subscription`). */
export const AuditMetric = {
  /** Per subscription: selected, settled events of the window without the consumer's effect (nor quarantined). */
  missingEffects: 'MissingEffects',
  /** Per subscription: selected, settled events the run checked. */
  auditedEvents: 'AuditedEvents',
  /** Per subscription: selected events skipped as still in delivery (READY, SCHEDULED or published late). */
  pendingEvents: 'AuditPendingEvents',
  /** Per run: outbox items the Scan read, and read units of the Scan and the dedup reads. */
  itemsRead: 'AuditItemsRead',
  readUnits: 'AuditReadUnits',
  /** Per run: 1 when the Scan stopped at maxItemsPerRun before the end of its segment. */
  truncated: 'AuditTruncated',
} as const;

/** The dimension naming the subscription of a per-subscription audit metric. */
export const AUDIT_SUBSCRIPTION_DIMENSION = 'subscription';
