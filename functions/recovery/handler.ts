/**
 * The scheduled recovery function: one sweep of the outbox per invocation (EventBridge rule, every minute by
 * default). Wires the sweeper core (sweeper.ts) to
 * - the relay's own publishing code for stuck READY records (decode → `relay()` with the relay's publishers,
 *   bookkeeper and tracked-mode ack writer, bounded by the invocation's deadline);
 * - the producers' check-back functions (one per event source) for stale PREPARED messages;
 * - the writer's confirm / cancel;
 * - SQS redelivery for overdue delivery acknowledgements (tracked mode).
 * Emits one set of metrics per run; logs carry ids, keys and reasons, never payloads.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createBookkeeper } from '../relay/bookkeeping.ts';
import { type RelayConfig, readRelayConfig } from '../relay/config.ts';
import { decodeItem } from '../relay/decode.ts';
import { createPredecessorFinder } from '../relay/predecessors.ts';
import type { RetryPolicy } from '../relay/publish.ts';
import { type RelayDependencies, relay } from '../relay/relay.ts';
import { createPublishers } from '../relay/targets.ts';
import { createAckRecorder, readTrackingSettings, type TrackingSettings } from '../relay/tracking.ts';
import { OutboxError } from '../runtime/errors.ts';
import { OutboxWriter } from '../runtime/writer.ts';
import { type RecoveryConfig, readRecoveryConfig } from './config.ts';
import { RecoveryMetric } from './contract.ts';
import { sqsRedeliverer } from './redeliver.ts';
import { type CheckbackAnswer, type SweeperDependencies, type SweepResult, sweep } from './sweeper.ts';

export interface RecoveryClients {
  /** DynamoDB (index queries, reads, bookkeeping, confirm/cancel, ack items). */
  readonly dynamodb?: DynamoDBClient;
  /** Publishers' clients: created with SDK retries off, as the relay's (the relay core retries per entry). */
  readonly sns?: SNSClient;
  readonly eventBridge?: EventBridgeClient;
  readonly sqs?: SQSClient;
  /** Client for tracked-mode redeliveries (SDK retries on). */
  readonly redeliverySqs?: SQSClient;
  /** Client for check-back invocations. */
  readonly lambda?: LambdaClient;
}

export interface RecoveryHandlerOptions {
  /** @default readRelayConfig(process.env) */
  readonly relayConfig?: RelayConfig;
  /** @default readRecoveryConfig(process.env) */
  readonly recoveryConfig?: RecoveryConfig;
  /** @default readTrackingSettings(process.env) */
  readonly tracking?: TrackingSettings;
  /** @default - one client per service per container */
  readonly clients?: RecoveryClients;
  /** @default new Logger() */
  readonly logger?: Logger;
  /** @default new Metrics() (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME) */
  readonly metrics?: Metrics;
  /** @default Date.now */
  readonly now?: () => number;
  /** The relay core's retry policy. @default the relay's */
  readonly retry?: RetryPolicy;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
  /**
   * Time kept free at the end of the invocation: no publish or check-back starts after `remaining - reserve`.
   * @default 20% of the remaining time, between 1 and 5 seconds
   */
  readonly reserveMs?: number;
}

/** Everything a run needs that lives as long as the container. */
export interface RecoveryResources {
  readonly tableName: string;
  readonly doc: DynamoDBDocumentClient;
  readonly relay: RelayDependencies;
  readonly writer: OutboxWriter;
  readonly lambda: LambdaClient;
  readonly redeliver: ReturnType<typeof sqsRedeliverer>;
  readonly recovery: RecoveryConfig;
  readonly ackTimeoutMs: number;
}

/** What a run counts besides the sweeper's own result. */
export interface RunCounters {
  /** Records the relay core quarantined while republishing them (unpublishable). */
  relayQuarantined: number;
  checkbackUnknown: number;
  redeliveryErrors: number;
}

export interface RunContext {
  /** Epoch ms after which no publish call or check-back starts. */
  readonly deadline: number;
  readonly now: () => number;
  readonly logger: Logger;
  readonly counters: RunCounters;
  readonly retry?: RetryPolicy;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export type RecoveryRunSummary = Omit<SweepResult, 'failures' | 'reservedKeys'> &
  RunCounters & { readonly failedSteps: number };

/** The recovery run could not read the pending index: nothing was recovered. Its metrics were still recorded. */
export class RecoveryRunError extends OutboxError {
  override name = 'RecoveryRunError';
}

export function createRecoveryResources(options: RecoveryHandlerOptions = {}): RecoveryResources {
  const config = options.relayConfig ?? readRelayConfig();
  const recovery = options.recoveryConfig ?? readRecoveryConfig();
  const tracking = options.tracking ?? readTrackingSettings();
  const clients = options.clients ?? {};
  const dynamodb = clients.dynamodb ?? new DynamoDBClient({});
  const doc = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const acks = createAckRecorder({
    client: dynamodb,
    tableName: config.tableName,
    tracking,
    retentionDays: config.retentionDays,
  });
  return {
    tableName: config.tableName,
    doc,
    relay: {
      publishers: createPublishers(config, clients),
      bookkeeper: createBookkeeper({
        client: dynamodb,
        tableName: config.tableName,
        retentionDays: config.retentionDays,
      }),
      // Republishing a stuck record first publishes its aggregate's unpublished predecessors (per-aggregate order).
      predecessors: createPredecessorFinder({ client: dynamodb, tableName: config.tableName }),
      ...(acks ? { acks } : {}),
    },
    writer: new OutboxWriter({
      tableName: config.tableName,
      client: doc,
      // Confirm what the producer prepared: its limit may be up to 1 MiB, more than the writer's default.
      maxEventBytes: recovery.maxEventBytes,
      ...(options.now ? { now: options.now } : {}),
    }),
    lambda: clients.lambda ?? new LambdaClient({}),
    redeliver: sqsRedeliverer(clients.redeliverySqs ?? new SQSClient({})),
    recovery,
    ackTimeoutMs: tracking.ackTimeoutSeconds * 1000,
  };
}

const ANSWERS: ReadonlySet<string> = new Set(['committed', 'rolled-back', 'unknown']);

/** Reads a check-back function's answer: `{ "status": "committed" | "rolled-back" | "unknown" }`. */
export function parseCheckbackAnswer(payload: Uint8Array | undefined): CheckbackAnswer | undefined {
  if (!payload || payload.byteLength === 0) return undefined;
  try {
    const answer = JSON.parse(Buffer.from(payload).toString('utf8')) as { status?: unknown } | null;
    const status = answer?.status;
    return typeof status === 'string' && ANSWERS.has(status) ? (status as CheckbackAnswer) : undefined;
  } catch {
    return undefined;
  }
}

/** The sweeper's dependencies for one run. */
export function sweeperDependencies(resources: RecoveryResources, run: RunContext): SweeperDependencies {
  const { logger, counters } = run;
  const { checkbackFunctions, checkbackTimeoutMs } = resources.recovery;

  const republish: SweeperDependencies['republish'] = async (items) => {
    const report = await relay(
      items.map((item, i) => ({ ref: String(i), decoded: decodeItem(item) })),
      resources.relay,
      {
        deadline: run.deadline,
        now: run.now,
        ...(run.retry ? { retry: run.retry } : {}),
        ...(run.sleep ? { sleep: run.sleep } : {}),
        ...(run.random ? { random: run.random } : {}),
      },
    );
    const published: string[] = [];
    const held: string[] = [];
    const failed = new Map<string, string>();
    report.results.forEach((result, i) => {
      const id = String(items[i]?.id ?? '');
      switch (result.status) {
        case 'held':
          // Waits for an earlier SCHEDULED event of its aggregate: the sweeper releases it after that one.
          held.push(result.eventId);
          break;
        case 'published':
          published.push(result.record.id);
          break;
        case 'quarantined':
          // The relay set it QUARANTINED (Q# shard): the sweeper's own retry bookkeeping then finds it changed.
          if (result.marked) counters.relayQuarantined++;
          logger.warn('Quarantined an unpublishable outbox event while republishing it', {
            eventId: result.eventId ?? id,
            pk: result.key.pk,
            sk: result.key.sk,
            reason: result.reason,
          });
          break;
        case 'retry':
          failed.set(result.eventId || id, `${result.code}: ${result.reason}`);
          logger.error('Could not republish a stuck outbox event; the sweeper retries it with backoff', {
            eventId: result.eventId || id,
            pk: result.key.pk,
            sk: result.key.sk,
            code: result.code,
            reason: result.reason,
            target: result.target,
          });
          break;
        default:
          // 'ignored' (no longer READY: published meanwhile) and 'already-done' need nothing.
          break;
      }
    });
    // Predecessors the relay core found READY in the table and published first (not among the items).
    const predecessors: string[] = [];
    for (const result of report.predecessors) {
      if (result.status === 'published') {
        published.push(result.record.id);
        predecessors.push(result.record.id);
      } else if (result.status === 'quarantined' && result.marked) {
        counters.relayQuarantined++;
      }
    }
    if (predecessors.length > 0) {
      logger.warn(
        'Published unpublished predecessors of the stuck events first, keeping per-aggregate order',
        {
          eventIds: predecessors,
        },
      );
    }
    return { published, failed, held };
  };

  const checkback: SweeperDependencies['checkback'] = async ({ eventId, aggregateKey, source }) => {
    const unknown = (message: string, attributes: Record<string, unknown> = {}): CheckbackAnswer => {
      counters.checkbackUnknown++;
      logger.warn(message, { eventId, aggregateKey, source, ...attributes });
      return 'unknown';
    };
    const functionName = checkbackFunctions[source];
    if (!functionName) {
      return unknown('No check-back function is configured for this event source; the answer is unknown', {
        configuredSources: Object.keys(checkbackFunctions),
      });
    }
    const budget = Math.min(checkbackTimeoutMs, run.deadline - run.now());
    if (budget <= 0) return unknown('No time left in this run to ask the check-back function');
    try {
      const response = await resources.lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: Buffer.from(JSON.stringify({ eventId, aggregateKey, source }), 'utf8'),
        }),
        { abortSignal: AbortSignal.timeout(budget) },
      );
      if (response.FunctionError) {
        return unknown('The check-back function failed; the answer is unknown', {
          functionName,
          functionError: response.FunctionError,
        });
      }
      const answer = parseCheckbackAnswer(response.Payload);
      if (!answer) {
        return unknown(
          'The check-back function did not answer { "status": "committed" | "rolled-back" | "unknown" }',
          { functionName },
        );
      }
      if (answer === 'unknown') return unknown('The check-back function answered unknown', { functionName });
      logger.info('Check-back answered', { eventId, aggregateKey, source, answer });
      return answer;
    } catch (error) {
      return unknown('Invoking the check-back function failed; the answer is unknown', {
        functionName,
        error: (error as Error)?.name ?? 'Error',
        reason: (error as Error)?.message,
      });
    }
  };

  const redeliver: NonNullable<SweeperDependencies['redeliver']> = async (target, envelopeJson) => {
    try {
      await resources.redeliver(target, envelopeJson);
      logger.info('Redelivered a tracked event to a subscriber whose acknowledgement is overdue', {
        subscriber: target.subscriber,
        attempt: target.attempt,
      });
    } catch (error) {
      // The attempt still counts: after the limit the ack is marked FAILED and the AcksFailed alarm fires.
      counters.redeliveryErrors++;
      logger.error('Redelivering a tracked event failed; the attempt counts toward the limit', {
        subscriber: target.subscriber,
        queueUrl: target.queueUrl,
        attempt: target.attempt,
        error: (error as Error)?.name ?? 'Error',
        reason: (error as Error)?.message,
      });
    }
  };

  return {
    client: resources.doc,
    tableName: resources.tableName,
    now: run.now,
    republish,
    checkback,
    confirm: (message) => resources.writer.confirm(message),
    cancel: (message, reason) => resources.writer.cancel(message, reason),
    redeliver,
  };
}

/**
 * Adds one run's metrics (units: Seconds for the age, Count otherwise). When the index could not be read the age
 * and count are unknown and left out (a 0 would clear the stuck alarm); the Errors alarm reports that run.
 */
export function recordRunMetrics(summary: RecoveryRunSummary, metrics: Metrics): void {
  if (summary.indexRead) {
    metrics.addMetric(
      RecoveryMetric.oldestUnpublishedAge,
      MetricUnit.Seconds,
      Math.round(summary.oldestUnpublishedAgeMs / 1000),
    );
    metrics.addMetric(RecoveryMetric.unpublishedCount, MetricUnit.Count, summary.unpublishedCount);
  }
  const counts: [string, number][] = [
    [RecoveryMetric.republished, summary.republished],
    [RecoveryMetric.released, summary.released],
    [RecoveryMetric.confirmed, summary.confirmed],
    [RecoveryMetric.cancelled, summary.cancelled],
    [RecoveryMetric.quarantined, summary.quarantined + summary.relayQuarantined],
    [RecoveryMetric.checkbackUnknown, summary.checkbackUnknown],
    [RecoveryMetric.redelivered, summary.redelivered],
    [RecoveryMetric.acksFailed, summary.acksFailed],
    [RecoveryMetric.redeliveryErrors, summary.redeliveryErrors],
    [RecoveryMetric.indexReadUnits, summary.indexReadUnits],
    [RecoveryMetric.reservedKeyIgnored, summary.reservedKeyIgnored],
  ];
  for (const [name, value] of counts) metrics.addMetric(name, MetricUnit.Count, value);
}

/** Builds the recovery function's handler: one sweep per scheduled invocation. */
export function createRecoveryHandler(options: RecoveryHandlerOptions = {}) {
  const logger = options.logger ?? new Logger();
  const metrics = options.metrics ?? new Metrics();
  const now = options.now ?? Date.now;
  let resources: RecoveryResources | undefined;

  const runOnce = async (_event: unknown, context: Context): Promise<RecoveryRunSummary> => {
    resources ??= createRecoveryResources(options);
    const started = now();
    const remaining = context.getRemainingTimeInMillis();
    const reserve = options.reserveMs ?? Math.min(5000, Math.max(1000, remaining * 0.2));
    const counters: RunCounters = { relayQuarantined: 0, checkbackUnknown: 0, redeliveryErrors: 0 };
    const deps = sweeperDependencies(resources, {
      deadline: started + remaining - reserve,
      now,
      logger,
      counters,
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
    const { failures, ...result } = await sweep(deps, {
      ...resources.recovery.sweeper,
      ackTimeoutMs: resources.ackTimeoutMs,
    });
    const { reservedKeys, ...counts } = result;
    const summary: RecoveryRunSummary = { ...counts, ...counters, failedSteps: failures.length };
    if (reservedKeys.length > 0) {
      logger.warn('Ignored due records in the reserved key space; they are never released or republished', {
        count: summary.reservedKeyIgnored,
        keys: reservedKeys,
      });
    }
    recordRunMetrics(summary, metrics);
    for (const failure of failures) {
      const error = failure.error as Error | undefined;
      logger.error(
        failure.step === 'index'
          ? 'Reading the pending index failed; nothing was recovered in this run'
          : 'A recovery step failed for one entry; its attempt counts and the run carried on',
        {
          step: failure.step,
          eventId: failure.eventId,
          pk: failure.pk,
          sk: failure.sk,
          error: error?.name ?? 'Error',
          reason: error?.message,
        },
      );
    }
    const quarantined = summary.quarantined + summary.relayQuarantined;
    const log = quarantined > 0 || summary.acksFailed > 0 || failures.length > 0 ? logger.warn : logger.info;
    log.call(logger, 'Recovery run finished', { ...summary, durationMs: now() - started });
    if (!summary.indexRead) {
      const cause = failures.find((f) => f.step === 'index')?.error;
      throw new RecoveryRunError(
        `The recovery run could not read the outbox's pending index (${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? ''}); check the table, the index and the function's dynamodb:Query permission. Its metrics were recorded.`,
        { cause, retryable: true },
      );
    }
    return summary;
  };

  return middy<unknown, RecoveryRunSummary>(runOnce)
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

export const handler = createRecoveryHandler();
