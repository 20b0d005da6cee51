/**
 * The scheduled delivery audit: every few minutes (an EventBridge rule, lib/outbox-audit.ts) it audits a recent
 * closed window with the shared audit core and publishes, per subscription, `MissingEffects` and `AuditedEvents`
 * (EMF, dimensions `service` + `subscription`); an alarm per subscription fires on MissingEffects > 0.
 *
 * Read-only: one DescribeTable (the item count that sizes the rotating sample), one Scan bounded by
 * maxItemsPerRun items, consistent BatchGetItem reads of the dedup table. It does not peek the DLQs (a peek is a
 * ReceiveMessage: it hides the messages from a redrive in progress and counts a receive), so a dead-lettered
 * event counts as missing here, and the subscription's DLQ alarm fires too; `outbox audit` tells them apart.
 *
 * Invoked with `{ "auditWindow": { "from": <ISO time or epoch ms>, "to": ... } }` (the offline demo does, an
 * operator may) it audits that window instead, counting every event published before the run (READY and
 * SCHEDULED ones are pending).
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import { OutboxConfigurationError } from '../runtime/errors.ts';
import { type AuditResult, auditWindow } from './audit-core.ts';
import { auditConfigFromEnv, type ScheduledAuditConfig } from './config.ts';
import { AUDIT_SUBSCRIPTION_DIMENSION, AuditMetric } from './contract.ts';
import { planRun, type RunPlan } from './run-plan.ts';

export interface ScheduledAuditSummary {
  readonly plan: RunPlan;
  readonly result?: AuditResult;
  /** Missing effects per subscription. */
  readonly missing: Readonly<Record<string, number>>;
}

export interface AuditHandlerOptions {
  readonly dynamodb?: DynamoDBClient;
  readonly config?: ScheduledAuditConfig;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/** The event of an on-demand run: audit this window rather than the scheduled one. */
export interface AuditWindowRequest {
  readonly auditWindow: { readonly from: string | number; readonly to: string | number };
}

function requestedWindow(event: unknown): { from: number; to: number } | undefined {
  const requested = (event as Partial<AuditWindowRequest> | null)?.auditWindow;
  if (requested === undefined) return undefined;
  const time = (v: unknown) =>
    typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : Number.NaN;
  const from = time(requested.from);
  const to = time(requested.to);
  if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
    throw new OutboxConfigurationError(
      `auditWindow must be { from, to } with ISO times or epoch milliseconds, from before to; got ${JSON.stringify(requested)}`,
    );
  }
  return { from, to };
}

/** Missing ids logged per subscription (the CLI lists them all). */
const LOGGED_MISSING = 20;

/** Publishes one run's figures: per subscription with its own dimension, per run under `service` only. */
export function recordAuditMetrics(result: AuditResult, metrics: Metrics): void {
  for (const sub of result.subscriptions) {
    // A single metric is flushed (and its dimensions cleared) by its one addMetric: one per figure.
    const emit = (name: string, value: number) => {
      const single = metrics.singleMetric();
      single.addDimension(AUDIT_SUBSCRIPTION_DIMENSION, sub.subscription);
      single.addMetric(name, MetricUnit.Count, value);
    };
    // Dead-lettered events are not looked for here (see the header): they are missing effects too.
    emit(AuditMetric.missingEffects, sub.missing + sub.deadLettered);
    emit(AuditMetric.auditedEvents, sub.expected);
    emit(AuditMetric.pendingEvents, sub.pending ?? 0);
  }
  metrics.addMetric(AuditMetric.itemsRead, MetricUnit.Count, result.scannedCount);
  metrics.addMetric(AuditMetric.readUnits, MetricUnit.Count, result.readUnits.scan + result.readUnits.dedup);
  metrics.addMetric(
    AuditMetric.truncated,
    MetricUnit.Count,
    result.stoppedAtItemBudget === undefined ? 0 : 1,
  );
}

export function createAuditHandler(options: AuditHandlerOptions = {}) {
  const logger = options.logger ?? new Logger();
  const metrics = options.metrics ?? new Metrics();
  const now = options.now ?? Date.now;
  let resources:
    | { config: ScheduledAuditConfig; client: DynamoDBClient; doc: DynamoDBDocumentClient }
    | undefined;

  const runOnce = async (event: unknown): Promise<ScheduledAuditSummary> => {
    const requested = requestedWindow(event);
    if (!resources) {
      const client = options.dynamodb ?? new DynamoDBClient({});
      resources = {
        config: options.config ?? auditConfigFromEnv(),
        client,
        doc: DynamoDBDocumentClient.from(client),
      };
    }
    const { config, client, doc } = resources;
    const description = await client.send(new DescribeTableCommand({ TableName: config.outboxTableName }));
    const startedAt = now();
    const scheduled = planRun({
      now: startedAt,
      lagMs: config.lagMs,
      windowMs: config.windowMs,
      itemCount: description.Table?.ItemCount ?? 0,
      maxItemsPerRun: config.maxItemsPerRun,
    });
    const plan = requested ? { ...scheduled, window: requested, settledBefore: startedAt } : scheduled;
    if (config.subscriptions.length === 0) {
      logger.info('No subscription with a consumer and a known filter: nothing to audit', { plan });
      return { plan, missing: {} };
    }
    const result = await auditWindow(
      { dynamodb: doc },
      {
        outboxTableName: config.outboxTableName,
        dedupTableName: config.dedupTableName,
        window: plan.window,
        subscriptions: config.subscriptions,
        settledBefore: plan.settledBefore,
        scan: {
          segments: plan.totalSegments,
          onlySegments: [plan.segment],
          maxItemsRead: config.maxItemsPerRun,
        },
      },
    );
    recordAuditMetrics(result, metrics);
    const missing = Object.fromEntries(
      result.subscriptions.map((s) => [s.subscription, s.missing + s.deadLettered]),
    );
    const anyMissing = Object.values(missing).some((n) => n > 0);
    const log = anyMissing || result.stoppedAtItemBudget !== undefined ? logger.warn : logger.info;
    log.call(logger, anyMissing ? 'Audit run found missing effects' : 'Audit run finished', {
      window: result.window,
      segment: `${plan.segment + 1}/${plan.totalSegments}`,
      itemsRead: result.scannedCount,
      readUnits: result.readUnits,
      requests: result.requests,
      ...(result.stoppedAtItemBudget === undefined
        ? {}
        : { truncatedAtItems: result.stoppedAtItemBudget, hint: 'raise maxItemsPerRun' }),
      subscriptions: result.subscriptions.map((s) => ({
        subscription: s.subscription,
        audited: s.expected,
        applied: s.applied,
        quarantined: s.quarantined,
        pending: s.pending,
        missing: s.missing,
        missingEvents: s.missingEvents.slice(0, LOGGED_MISSING),
      })),
    });
    return { plan, result, missing };
  };

  return middy<unknown, ScheduledAuditSummary>(runOnce)
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

export const handler = createAuditHandler();
