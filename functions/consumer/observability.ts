import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { isTraceparent, type OutboxEnvelope, traceparentFromXRay } from '../runtime/envelope.ts';
import type { ConsumerLogger, ConsumerMetric, ConsumerMetrics } from './types.ts';

export const DEFAULT_METRICS_NAMESPACE = 'ServerlessOutbox';

/** CloudWatch EMF through Powertools Metrics, with a `consumer` dimension. */
export function powertoolsConsumerMetrics(consumer: string): ConsumerMetrics {
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? DEFAULT_METRICS_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? consumer,
    defaultDimensions: { consumer },
  });
  let pending = false;
  return {
    count(metric: ConsumerMetric, value = 1) {
      metrics.addMetric(metric, MetricUnit.Count, value);
      pending = true;
    },
    publish() {
      // Publishing nothing makes Powertools warn on every invocation.
      if (!pending) return;
      pending = false;
      metrics.publishStoredMetrics();
    },
  };
}

/** Powertools Logger (structured JSON, Lambda context aware). */
export function powertoolsConsumerLogger(consumer: string): ConsumerLogger {
  const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? consumer });
  return {
    info: (message, attributes) => logger.info(message, attributes ?? {}),
    warn: (message, attributes) => logger.warn(message, attributes ?? {}),
    error: (message, attributes) => logger.error(message, attributes ?? {}),
  };
}

/** Counts in memory; handy in tests and for the offline runtime's report. */
export class CountingMetrics implements ConsumerMetrics {
  readonly counts = new Map<ConsumerMetric, number>();
  published = 0;
  count(metric: ConsumerMetric, value = 1): void {
    this.counts.set(metric, (this.counts.get(metric) ?? 0) + value);
  }
  publish(): void {
    this.published++;
  }
  get(metric: ConsumerMetric): number {
    return this.counts.get(metric) ?? 0;
  }
}

/** The keys the consumer puts on every log line it writes for one event. */
export interface EventLogKeys {
  readonly eventId: string;
  /** The producer's W3C trace id (32 hex digits). */
  readonly traceId?: string;
  /** The same id as X-Ray writes it (`1-<8 hex>-<24 hex>`), to search for in the X-Ray / CloudWatch console. */
  readonly xrayTraceId?: string;
}

export interface EventTrace {
  readonly traceparent?: string;
  readonly traceId?: string;
}

/**
 * The producer's trace context for an event: the envelope's `traceparent`, else the record's `AWSTraceHeader`
 * system attribute (SQS FIFO direct, or SNS with active tracing), else its `traceparent` message attribute.
 */
export function eventTrace(envelope: Pick<OutboxEnvelope, 'traceparent'>, record?: SQSRecord): EventTrace {
  const candidates = [
    envelope.traceparent,
    traceparentFromXRay(record?.attributes?.AWSTraceHeader),
    record?.messageAttributes?.traceparent?.stringValue,
  ];
  const traceparent = candidates.find(isTraceparent);
  return traceparent === undefined ? {} : { traceparent, traceId: traceparent.slice(3, 35) };
}

/** The log keys for an event. */
export function eventLogKeys(eventId: string, trace: EventTrace): EventLogKeys {
  const traceId = trace.traceId;
  return traceId === undefined
    ? { eventId }
    : { eventId, traceId, xrayTraceId: `1-${traceId.slice(0, 8)}-${traceId.slice(8)}` };
}

const currentEvent = new AsyncLocalStorage<EventLogKeys>();

/**
 * Runs `fn` with `keys` added to every line the eventScopedLogger writes, until it settles. Scoped to the
 * async call chain rather than appended to the shared logger, because FIFO groups run concurrently.
 */
export function withEventLogKeys<T>(keys: EventLogKeys, fn: () => T): T {
  return currentEvent.run(keys, fn);
}

/** Wraps a logger so each line written while an event is processed carries that event's keys. */
export function eventScopedLogger(logger: ConsumerLogger): ConsumerLogger {
  const merge = (attributes: Record<string, unknown> | undefined) => {
    const keys = currentEvent.getStore();
    return keys === undefined ? attributes : { ...keys, ...attributes };
  };
  return {
    info: (message, attributes) => logger.info(message, merge(attributes)),
    warn: (message, attributes) => logger.warn(message, merge(attributes)),
    error: (message, attributes) => logger.error(message, merge(attributes)),
  };
}
