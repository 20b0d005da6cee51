import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';

/** Metrics of one relay, for dashboards and alarms. */
export class OutboxRelayMetrics {
  /** Metric dimension of each target: `sns`, `eventbridge`, `sqs:<queue name>`. */
  readonly targets: readonly string[];
  readonly #namespace: string;
  readonly #service: string;
  readonly #fn: lambda.IFunction;
  readonly #failureQueue: sqs.IQueue;

  constructor(options: {
    namespace: string;
    service: string;
    targets: readonly string[];
    fn: lambda.IFunction;
    failureQueue: sqs.IQueue;
  }) {
    this.#namespace = options.namespace;
    this.#service = options.service;
    this.targets = options.targets;
    this.#fn = options.fn;
    this.#failureQueue = options.failureQueue;
  }

  #custom(metricName: string, dimensions: Record<string, string>, props?: cloudwatch.MetricOptions) {
    return new cloudwatch.Metric({
      namespace: this.#namespace,
      metricName,
      dimensionsMap: { service: this.#service, ...dimensions },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Entries a target accepted. */
  published(target: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('Published', { target }, props);
  }
  /** Entries sent again after throttling or a server error. */
  retried(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('Retried', {}, props);
  }
  /** Records handed back to Lambda unpublished (they are redelivered). */
  failed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('Failed', {}, props);
  }
  /** Records set aside as unpublishable. */
  quarantined(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('Quarantined', {}, props);
  }
  /**
   * READY-looking items in the reserved key space (`ACK#…`, `PRE#…`, ...) the relay refused to publish: a foreign
   * writer's bug, or a forged item.
   */
  reservedKeyIgnored(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('ReservedKeyIgnored', {}, props);
  }
  /** Milliseconds from commit to publish. @default statistic p99 */
  eventAgeAtPublish(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#custom('EventAgeAtPublish', {}, { statistic: cloudwatch.Stats.p(99), ...props });
  }
  /** Age of the newest record a batch read (how far the relay is behind). @default Maximum per minute */
  iteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#fn.metric('IteratorAge', {
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(1),
      ...props,
    });
  }
  /** Invocations that threw (configuration errors, timeouts). */
  errors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#fn.metricErrors({ period: Duration.minutes(5), ...props });
  }
  /** Batches Lambda gave up on (metadata in the failure queue). */
  failureQueueDepth(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.#failureQueue.metricApproximateNumberOfMessagesVisible({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(1),
      ...props,
    });
  }
}
