import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import middy from '@middy/core';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { createBookkeeper } from './bookkeeping.ts';
import { type RelayConfig, readRelayConfig } from './config.ts';
import { decodeStreamRecord } from './decode.ts';
import { createPredecessorFinder } from './predecessors.ts';
import type { RetryPolicy } from './publish.ts';
import { PublishedSequences } from './published-memory.ts';
import {
  FinishedMemory,
  type RelayDependencies,
  type RelayReport,
  type RelayResult,
  relay,
} from './relay.ts';
import { createPublishers, type RelayClients } from './targets.ts';
import { createAckRecorder, readTrackingSettings, type TrackingSettings } from './tracking.ts';

export { createPublishers, type RelayClients } from './targets.ts';

export interface RelayHandlerOptions {
  /** @default readRelayConfig(process.env), read once per container on the first invocation */
  readonly config?: RelayConfig;
  /** @default - one client per service per container */
  readonly clients?: RelayClients;
  /** @default new Logger() (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL) */
  readonly logger?: Logger;
  /** @default new Metrics() (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME) */
  readonly metrics?: Metrics;
  readonly retry?: RetryPolicy;
  /**
   * Time kept free at the end of the invocation for bookkeeping: no publish call starts and no retry is
   * scheduled after `remaining - reserve`.
   * @default 20% of the remaining time, between 1 and 5 seconds
   */
  readonly reserveMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default a FinishedMemory of 20,000 changes per container */
  readonly memory?: FinishedMemory;
  /**
   * Tracked mode: which event types' subscribers must acknowledge, and how long they have.
   * @default readTrackingSettings(process.env) (OUTBOX_TRACKED_SUBSCRIBERS, OUTBOX_ACK_TIMEOUT_SECONDS)
   */
  readonly tracking?: TrackingSettings;
}

/** Compares DynamoDB stream sequence numbers (decimal strings of varying length). */
export function compareSequenceNumbers(a: string, b: string): number {
  return a.length === b.length ? (a < b ? -1 : a > b ? 1 : 0) : a.length - b.length;
}

/**
 * Batch item failures for a partial batch response: for every aggregate with unfinished records, the LOWEST stream
 * sequence number among them. Lambda checkpoints at the lowest reported number and redelivers everything after
 * it, so the aggregate's failed record and every later one come back (records arrive shuffled across items, so
 * the lowest may belong to a later event of the aggregate, not the one that failed).
 */
export function batchItemFailures(
  refs: readonly string[],
  results: readonly RelayResult[],
): { itemIdentifier: string }[] {
  const lowest = new Map<string, string>();
  results.forEach((result, i) => {
    if (result.status !== 'retry') return;
    const ref = refs[i] ?? '';
    const current = lowest.get(result.key.pk);
    if (current === undefined || compareSequenceNumbers(ref, current) < 0) lowest.set(result.key.pk, ref);
  });
  return [...lowest.values()].map((itemIdentifier) => ({ itemIdentifier }));
}

function recordTelemetry(report: RelayReport, logger: Logger, metrics: Metrics): Record<string, number> {
  const counts = {
    published: 0,
    alreadyDone: 0,
    quarantined: 0,
    held: 0,
    ignored: 0,
    reservedKeyIgnored: 0,
    retry: 0,
  };
  for (const result of report.results) {
    switch (result.status) {
      case 'published':
        counts.published++;
        // createdAt 0: a foreign writer left it out; no age to report.
        if (result.sent && result.record.createdAt > 0) {
          metrics.addMetric('EventAgeAtPublish', MetricUnit.Milliseconds, result.ageMs);
        }
        break;
      case 'already-done':
        counts.alreadyDone++;
        break;
      case 'quarantined':
        if (result.marked) {
          counts.quarantined++;
          logger.warn('Quarantined an outbox event; fix or discard it, then set status READY to publish it', {
            eventId: result.eventId,
            pk: result.key.pk,
            sk: result.key.sk,
            reason: result.reason,
          });
        }
        break;
      case 'held':
        counts.held++;
        logger.info('Held an outbox event back behind an earlier scheduled event of its aggregate', {
          eventId: result.eventId,
          pk: result.key.pk,
          sk: result.key.sk,
          behind: result.behind,
          dueAt: result.dueAt,
        });
        break;
      case 'ignored':
        counts.ignored++;
        if (result.reservedKey) {
          counts.reservedKeyIgnored++;
          logger.warn('Ignored a READY event record in the reserved key space; it is never published', {
            pk: result.reservedKey.pk,
            sk: result.reservedKey.sk,
            reason: result.reason,
          });
        }
        break;
      case 'retry':
        counts.retry++;
        if (result.code !== 'Blocked') {
          logger.error('Outbox event not published in this invocation; Lambda redelivers it', {
            eventId: result.eventId,
            pk: result.key.pk,
            sk: result.key.sk,
            code: result.code,
            reason: result.reason,
            target: result.target,
            attempts: result.attempts,
          });
        }
        break;
    }
  }
  const predecessors = predecessorTelemetry(report, logger);
  for (const [target, accepted] of Object.entries(report.publish.accepted)) {
    metrics.singleMetric().addDimension('target', target).addMetric('Published', MetricUnit.Count, accepted);
  }
  metrics.addMetric('Retried', MetricUnit.Count, report.publish.retried);
  metrics.addMetric('Failed', MetricUnit.Count, counts.retry);
  metrics.addMetric('Quarantined', MetricUnit.Count, counts.quarantined + predecessors.quarantined);
  metrics.addMetric('PredecessorsPublished', MetricUnit.Count, predecessors.published);
  metrics.addMetric('HeldBehindScheduled', MetricUnit.Count, counts.held);
  metrics.addMetric('ReservedKeyIgnored', MetricUnit.Count, counts.reservedKeyIgnored);
  return {
    ...counts,
    predecessorLookups: report.predecessorLookups,
    predecessorsPublished: predecessors.published,
  };
}

/**
 * Unpublished predecessors the relay published before their successors mean a stream delivery was lost (Lambda
 * gave up on a batch, or a change was never delivered): WARN with their ids, never payloads.
 */
function predecessorTelemetry(
  report: RelayReport,
  logger: Logger,
): { published: number; quarantined: number } {
  const published: { eventId: string; pk: string; sequence: number }[] = [];
  let quarantined = 0;
  for (const result of report.predecessors) {
    switch (result.status) {
      case 'published':
        published.push({ eventId: result.record.id, pk: result.record.pk, sequence: result.record.sequence });
        break;
      case 'quarantined':
        if (result.marked) {
          quarantined++;
          logger.warn(
            'Quarantined an unpublished predecessor of a relayed event; fix or discard it, then set status READY to publish it',
            {
              eventId: result.eventId,
              pk: result.key.pk,
              sk: result.key.sk,
              reason: result.reason,
            },
          );
        }
        break;
      case 'retry':
        if (result.code !== 'Blocked') {
          logger.error(
            'An unpublished predecessor of a relayed event was not finished; it stays READY for a later invocation or the sweeper',
            {
              eventId: result.eventId,
              pk: result.key.pk,
              sk: result.key.sk,
              code: result.code,
              reason: result.reason,
              target: result.target,
            },
          );
        }
        break;
      default:
        break;
    }
  }
  if (published.length > 0) {
    logger.warn(
      'Published unpublished predecessors before their successors: a stream delivery was lost (see the failure queue)',
      { predecessors: published },
    );
  }
  return { published: published.length, quarantined };
}

/**
 * Builds the relay's Lambda handler: DynamoDB stream batch → publish → bookkeeping → partial batch response.
 * Logs carry ids, keys and reasons, never payloads.
 */
export function createRelayHandler(options: RelayHandlerOptions = {}) {
  const logger = options.logger ?? new Logger();
  const metrics = options.metrics ?? new Metrics();
  const now = options.now ?? Date.now;
  let deps: RelayDependencies | undefined;

  const setUp = (): RelayDependencies => {
    const config = options.config ?? readRelayConfig();
    const dynamodb = options.clients?.dynamodb ?? new DynamoDBClient({});
    const acks = createAckRecorder({
      client: dynamodb,
      tableName: config.tableName,
      tracking: options.tracking ?? readTrackingSettings(),
      retentionDays: config.retentionDays,
    });
    return {
      publishers: createPublishers(config, options.clients),
      bookkeeper: createBookkeeper({
        client: dynamodb,
        tableName: config.tableName,
        retentionDays: config.retentionDays,
      }),
      memory: options.memory ?? new FinishedMemory(),
      published: new PublishedSequences(),
      predecessors: createPredecessorFinder({ client: dynamodb, tableName: config.tableName }),
      ...(acks ? { acks } : {}),
    };
  };

  const relayBatch = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
    deps ??= setUp();
    const started = now();
    const remaining = context.getRemainingTimeInMillis();
    const reserve = options.reserveMs ?? Math.min(5000, Math.max(1000, remaining * 0.2));
    const records = event.Records ?? [];
    const refs = records.map((r) => r.dynamodb?.SequenceNumber ?? '');
    const report = await relay(
      records.map((r, i) => ({
        ref: refs[i] ?? '',
        ...(r.eventID === undefined ? {} : { changeId: r.eventID }),
        decoded: decodeStreamRecord(r),
      })),
      deps,
      {
        deadline: started + remaining - reserve,
        now,
        ...(options.retry ? { retry: options.retry } : {}),
        ...(options.random ? { random: options.random } : {}),
        ...(options.sleep ? { sleep: options.sleep } : {}),
      },
    );
    const counts = recordTelemetry(report, logger, metrics);
    const failures = batchItemFailures(refs, report.results);
    if (failures.some((f) => f.itemIdentifier === '')) {
      // Without a sequence number Lambda cannot checkpoint precisely: fail the whole batch so nothing is skipped.
      throw new Error(
        'A stream record to retry has no SequenceNumber; failing the whole batch so Lambda retries it',
      );
    }
    logger.info('Relayed a stream batch', {
      records: records.length,
      ...counts,
      calls: report.publish.calls,
      retriedEntries: report.publish.retried,
      failedAggregates: failures.length,
      durationMs: now() - started,
    });
    return { batchItemFailures: failures };
  };

  return middy<DynamoDBStreamEvent, DynamoDBBatchResponse>(relayBatch)
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

export const handler = createRelayHandler();
