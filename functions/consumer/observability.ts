import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
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
