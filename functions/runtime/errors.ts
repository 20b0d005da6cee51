/** Base of every error the outbox runtime throws; `retryable` tells callers whether to try again. */
export class OutboxError extends Error {
  override name = 'OutboxError';
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? false;
  }
}

/** The outbox is not configured (e.g. no table name). Fix the deployment; retrying will not help. */
export class OutboxConfigurationError extends OutboxError {
  override name = 'OutboxConfigurationError';
}

/** An event or transaction is invalid. Nothing was written. */
export class OutboxValidationError extends OutboxError {
  override name = 'OutboxValidationError';
  /** Which input was wrong, e.g. `events[1].type`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/**
 * The event is well-formed, but a publish target the writer checks against would refuse it (SNS message size
 * with attributes, EventBridge DetailType / Source rules, ...). Nothing was written. `limit` names the limit.
 */
export class OutboxLimitError extends OutboxValidationError {
  override name = 'OutboxLimitError';
  /** The target that would refuse the event: `sns`, `sqs` or `eventbridge`. */
  readonly target: string;
  /** The limit, e.g. `SNS message incl. attributes (262144 bytes)`. */
  readonly limit: string;
  /** `advice` replaces the default "what to do" (which names the targets option). */
  constructor(field: string, target: string, limit: string, reason: string, advice?: string) {
    super(
      field,
      `${reason} (${limit}); ${advice ?? `the relay could never deliver it to ${target}. If ${target} is not one of your targets, set the writer's \`targets\` option or OUTBOX_PUBLISH_TARGETS.`}`,
    );
    this.target = target;
    this.limit = limit;
  }
}

/** `request`: the transaction's `REQ#<requestId>` record already exists (an earlier call with that id committed). */
export type ConflictKind = 'business-write' | 'aggregate-version' | 'request' | 'outbox-record';

export interface ConflictReason {
  /** Index into the committed TransactItems. */
  readonly transactIndex: number;
  /** For business writes: the index into the caller's `writes`; for events: the index into `events`. */
  readonly inputIndex: number;
  readonly kind: ConflictKind;
  readonly code: string;
  readonly message?: string;
}

/**
 * A condition failed, so DynamoDB cancelled the whole transaction: nothing was written.
 * `reasons` names which entries failed. Reload the aggregate and decide; blind retries repeat the conflict.
 */
export class OutboxConflictError extends OutboxError {
  override name = 'OutboxConflictError';
  readonly reasons: readonly ConflictReason[];
  readonly aggregateKey: string;
  constructor(aggregateKey: string, reasons: ConflictReason[], cause: unknown) {
    const summary = reasons.map((r) => `${r.kind}[${r.inputIndex}] ${r.code}`).join(', ');
    super(
      `Transaction for aggregate "${aggregateKey}" was cancelled by a failed condition (${summary}); nothing was written. Reload the aggregate and retry the command.`,
      { cause, retryable: false },
    );
    this.reasons = reasons;
    this.aggregateKey = aggregateKey;
  }
  /** True when another writer committed this aggregate's version first. */
  get isVersionConflict(): boolean {
    return this.reasons.some((r) => r.kind === 'aggregate-version');
  }
}

/**
 * DynamoDB refused the request (throttling, a transaction conflict, a request limit): nothing was written and the
 * same call may succeed later.
 */
export class OutboxRetryableError extends OutboxError {
  override name = 'OutboxRetryableError';
  constructor(message: string, cause: unknown) {
    super(`${message}; nothing was written, retry the call (with backoff).`, { cause, retryable: true });
  }
}

/**
 * The commit's response was lost (timeout, network error, 5xx) and neither re-sending it with the same
 * ClientRequestToken nor reading the outbox settled whether it committed: the events may or may not be stored.
 * With a `requestId`, retrying the same call is safe (`retryable`): it returns the first commit if there was one.
 * Without one, a blind retry can commit the events twice under new ids: check `eventIds` first.
 */
export class OutboxOutcomeUnknownError extends OutboxError {
  override name = 'OutboxOutcomeUnknownError';
  readonly aggregateKey: string;
  /** The ids the events got in this attempt: stored under these ids if the commit happened. */
  readonly eventIds: readonly string[];
  /** The caller's requestId, when it gave one. */
  readonly requestId: string | undefined;
  constructor(
    aggregateKey: string,
    eventIds: readonly string[],
    cause: unknown,
    retry: { readonly requestId?: string; readonly safeRetry?: string } = {},
  ) {
    const { requestId } = retry;
    const safeRetry =
      retry.safeRetry ??
      (requestId === undefined
        ? undefined
        : `Retry the same call with requestId "${requestId}": it returns the first commit if there was one and commits once otherwise.`);
    const advice =
      safeRetry ??
      `Do not retry blindly: that can commit the events twice under new ids. Check whether event ${eventIds[0]} is stored first, and pass a requestId so that retries are safe.`;
    super(
      `The commit for aggregate "${aggregateKey}" may have been committed or not: its response was lost (${(cause as Error)?.name ?? 'Error'}) and could not be settled. ${advice}`,
      { cause, retryable: safeRetry !== undefined },
    );
    this.aggregateKey = aggregateKey;
    this.eventIds = eventIds;
    this.requestId = requestId;
  }
}
