/**
 * The recovery function's configuration and metric names, shared by its handler and the CDK construct that
 * deploys it. Dependency-free so `lib/` can import it without pulling in the AWS SDK.
 *
 * The recovery function also reads every variable of the relay (`RelayEnv` in functions/relay/config.ts: table,
 * retention, targets, tracked subscribers, ack timeout), because it publishes through the relay's own code.
 */
export const RecoveryEnv = {
  /** A READY record older than this (seconds since commit) was missed by the stream path and is republished. */
  stuckAfterSeconds: 'OUTBOX_RECOVERY_STUCK_AFTER_SECONDS',
  /** A PREPARED message older than this (seconds) is resolved by the producer's check-back function. */
  checkbackAfterSeconds: 'OUTBOX_RECOVERY_CHECKBACK_AFTER_SECONDS',
  /** Republish / check-back attempts before a record is quarantined. */
  maxAttempts: 'OUTBOX_RECOVERY_MAX_ATTEMPTS',
  /** Base of the exponential backoff between attempts, in seconds (doubles per attempt, at most 1 hour). */
  backoffBaseSeconds: 'OUTBOX_RECOVERY_BACKOFF_BASE_SECONDS',
  /** Most index entries handled per run; the rest wait for the next run. */
  maxEntriesPerRun: 'OUTBOX_RECOVERY_MAX_ENTRIES_PER_RUN',
  /** Tracked mode: redeliveries to one subscriber before its acknowledgement is marked FAILED. */
  maxRedeliveries: 'OUTBOX_ACK_MAX_REDELIVERIES',
  /** JSON `{ "<event source>": "<function name or ARN>" }`: the producer's check-back function per source. */
  checkbackFunctions: 'OUTBOX_CHECKBACK_FUNCTIONS',
  /** Longest wait for one check-back answer, in seconds. */
  checkbackTimeoutSeconds: 'OUTBOX_CHECKBACK_TIMEOUT_SECONDS',
  /**
   * Largest envelope (bytes) the recovery's writer accepts when confirming a prepared message: the producers'
   * `maxEventBytes`. Default 1048576, the most a producer may allow, so whatever a producer prepared confirms.
   */
  maxEventBytes: 'OUTBOX_RECOVERY_MAX_EVENT_BYTES',
} as const;

/** Defaults, the same as the sweeper core's DEFAULT_SWEEPER_OPTIONS (in seconds where the variable is). */
export const RecoveryDefaults = {
  stuckAfterSeconds: 120,
  checkbackAfterSeconds: 300,
  maxAttempts: 5,
  backoffBaseSeconds: 60,
  maxEntriesPerRun: 500,
  maxRedeliveries: 3,
  checkbackTimeoutSeconds: 10,
  /** MAX_EVENT_BYTES_LIMIT of functions/runtime/envelope.ts (contract.ts stays dependency-free). */
  maxEventBytes: 1_048_576,
} as const;

/** What a check-back function receives. */
export interface CheckbackRequest {
  readonly eventId: string;
  readonly aggregateKey: string;
  readonly source: string;
}

/** What a check-back function answers. Anything else (or an error, or a timeout) counts as `unknown`. */
export interface CheckbackResponse {
  readonly status: 'committed' | 'rolled-back' | 'unknown';
}

/** Metrics of one recovery run (namespace from POWERTOOLS_METRICS_NAMESPACE, dimension `service`). */
export const RecoveryMetric = {
  /** Seconds since the oldest record that still needs work became due (0 when none). */
  oldestUnpublishedAge: 'OldestUnpublishedAgeSeconds',
  /** Records that still need work and are due by now (READY, PREPARED, SCHEDULED); later ones are not read. */
  unpublishedCount: 'UnpublishedCount',
  /** Stuck READY records the run published to every target. */
  republished: 'Republished',
  /** Delayed (SCHEDULED) records made READY because their deliverAt came. */
  released: 'Released',
  /** Prepared messages confirmed / cancelled because check-back said committed / rolled back. */
  confirmed: 'Confirmed',
  cancelled: 'Cancelled',
  /** Records quarantined by the run: attempts exhausted, or unpublishable when republished. */
  quarantined: 'Quarantined',
  /** Check-back answers that were `unknown` (including no function configured, errors, invalid answers). */
  checkbackUnknown: 'CheckbackUnknown',
  /** Tracked mode: overdue events sent again to the subscriber that did not acknowledge. */
  redelivered: 'Redelivered',
  /** Tracked mode: acknowledgements marked FAILED after the redelivery limit. */
  acksFailed: 'AcksFailed',
  /** Tracked mode: redeliveries whose SendMessage failed (the attempt still counts). */
  redeliveryErrors: 'RedeliveryErrors',
  /** Read capacity the run's index Queries consumed (a constant when nothing is due, however much is scheduled later). */
  indexReadUnits: 'IndexReadUnits',
  /** Due records in the reserved key space (`ACK#` non-acks, `PRE#`, `P#`, `Q#`, `HEAD` partition keys), left alone. */
  reservedKeyIgnored: 'ReservedKeyIgnored',
} as const;

/** Partition key prefix of ack items (`ACK#<event id>`), as in functions/runtime/acks.ts (which needs the SDK). */
export const ACK_PARTITION_PREFIX = 'ACK#';
