import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  batchItemFailures,
  compileFilters,
  defaultPollerLog,
  type FunctionInvoker,
  filterPatternsOf,
  functionNameOf,
  type PollerLog,
  sleep,
} from './event-source.ts';
import { type LocalResourceRegistry, TemplateError } from './template.ts';

/** An `AWS::Lambda::EventSourceMapping` on an SQS queue, resolved to local values. */
export interface SqsMappingConfig {
  /** Used in log messages. */
  readonly id: string;
  readonly functionName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** @default 10 */
  readonly batchSize?: number;
  /** @default 0 */
  readonly maximumBatchingWindowInSeconds?: number;
  /** ScalingConfig.MaximumConcurrency: concurrent batches. @default - the poller's defaultConcurrency */
  readonly maximumConcurrency?: number;
  /** FunctionResponseTypes includes ReportBatchItemFailures. @default false */
  readonly reportBatchItemFailures?: boolean;
  /** FilterCriteria.Filters[].Pattern (JSON strings). Messages that match none are deleted. */
  readonly filterPatterns?: readonly string[];
}

export interface SqsPollerDeps {
  readonly invoker: FunctionInvoker;
  readonly sqs: SQSClient;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Concurrent batches when the mapping sets no MaximumConcurrency (Lambda's minimum is 2). @default 2 */
  readonly defaultConcurrency?: number;
  /** Long-poll wait of each ReceiveMessage. @default 5 */
  readonly waitTimeSeconds?: number;
  readonly log?: PollerLog;
  /**
   * Time compression for local runs: failed messages come back after this many seconds instead of the
   * queue's visibility timeout (Lambda itself leaves them for the full timeout).
   * @default - the queue's visibility timeout, as in AWS
   */
  readonly failedVisibilitySeconds?: number;
  /**
   * With time compression: messages of an invocation that failed as a whole (crashed, timed out) come back no
   * sooner than this many seconds, so a lease the dead invocation held (lease mode: at most the function's timeout
   * plus a margin) has expired. Otherwise every early return finds the lease still held and maxReceiveCount
   * dead-letters an event that AWS (visibility timeout 6 × the function's timeout) would deliver.
   * @default - failedVisibilitySeconds
   */
  readonly crashedVisibilitySeconds?: () => number;
}

/** The record Lambda puts in `event.Records` for SQS. */
export interface SqsLambdaRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly messageAttributes: Readonly<Record<string, SqsLambdaMessageAttribute>>;
  readonly md5OfMessageAttributes?: string;
  readonly md5OfBody: string;
  readonly eventSource: 'aws:sqs';
  readonly eventSourceARN: string;
  readonly awsRegion: string;
}

export interface SqsLambdaMessageAttribute {
  readonly stringValue?: string;
  readonly binaryValue?: string;
  readonly stringListValues: readonly string[];
  readonly binaryListValues: readonly string[];
  readonly dataType: string;
}

export interface SqsPollerStats {
  invocations: number;
  /** Messages deleted after success (including filtered-out ones, which Lambda deletes too). */
  deleted: number;
  /** Messages left in the queue after a failure; they come back after the visibility timeout. */
  failed: number;
  filtered: number;
}

/**
 * Polls an SQS queue and invokes a function like Lambda's event source mapping. On a FIFO queue,
 * ReceiveMessage itself keeps a message group out of other batches while it is in flight.
 */
export class SqsPoller {
  readonly #config: SqsMappingConfig;
  readonly #deps: SqsPollerDeps;
  readonly #filter: (record: unknown) => boolean;
  readonly #abort = new AbortController();
  readonly #log: PollerLog;
  readonly #loops: Promise<void>[] = [];
  readonly stats: SqsPollerStats = { invocations: 0, deleted: 0, failed: 0, filtered: 0 };

  constructor(config: SqsMappingConfig, deps: SqsPollerDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#filter = compileFilters(config.filterPatterns);
    this.#log = deps.log ?? defaultPollerLog;
  }

  start(): void {
    const concurrency = Math.max(1, this.#config.maximumConcurrency ?? this.#deps.defaultConcurrency ?? 2);
    for (let i = 0; i < concurrency; i++) this.#loops.push(this.#loop());
  }

  /** Stops receiving; waits for batches in flight to finish. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        const messages = await this.#receiveBatch(signal);
        if (messages.length > 0) await this.#process(messages);
      } catch (error) {
        if (signal.aborted) break;
        this.#log(
          'error',
          `${this.#config.id}: polling ${this.#config.queueUrl} failed, retrying: ${String(error)}`,
        );
        await sleep(1_000, signal);
      }
    }
  }

  async #receiveBatch(signal: AbortSignal): Promise<Message[]> {
    const batchSize = this.#config.batchSize ?? 10;
    const windowMs = (this.#config.maximumBatchingWindowInSeconds ?? 0) * 1000;
    const messages: Message[] = [];
    let deadline = 0;
    while (!signal.aborted && messages.length < batchSize) {
      const remaining = deadline ? deadline - Date.now() : 0;
      if (messages.length > 0 && remaining <= 0) break;
      const waitSeconds =
        messages.length === 0 ? (this.#deps.waitTimeSeconds ?? 5) : Math.min(20, Math.ceil(remaining / 1000));
      const response = await this.#deps.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.#config.queueUrl,
          MaxNumberOfMessages: Math.min(10, batchSize - messages.length),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: signal },
      );
      const received = response.Messages ?? [];
      if (messages.length === 0 && received.length > 0) deadline = Date.now() + windowMs;
      messages.push(...received);
      // Without a batching window Lambda invokes with whatever one receive returned.
      if (windowMs === 0 && messages.length > 0) break;
    }
    return messages;
  }

  async #process(messages: Message[]): Promise<void> {
    const config = this.#config;
    const region = this.#deps.region ?? 'us-east-1';
    const records: SqsLambdaRecord[] = [];
    const filteredOut: SqsLambdaRecord[] = [];
    for (const message of messages) {
      const record = toSqsLambdaRecord(message, config.queueArn, region);
      (this.#filter(filterView(record)) ? records : filteredOut).push(record);
    }
    if (filteredOut.length > 0) {
      this.stats.filtered += filteredOut.length;
      await this.#delete(filteredOut);
    }
    if (records.length === 0) return;
    this.stats.invocations++;
    const outcome = await this.#deps.invoker.invoke(
      config.functionName,
      { Records: records },
      { onThrottle: 'queue' },
    );
    let failed: Set<string>;
    if (outcome.error) {
      failed = new Set(records.map((r) => r.messageId));
    } else if (config.reportBatchItemFailures) {
      const ids = new Set(records.map((r) => r.messageId));
      const failures = batchItemFailures(outcome.result, ids);
      failed = failures === 'all' ? ids : new Set(failures);
    } else {
      failed = new Set();
    }
    this.stats.failed += failed.size;
    if (failed.size > 0 && this.#deps.failedVisibilitySeconds !== undefined) {
      const visibility = outcome.error
        ? Math.max(this.#deps.failedVisibilitySeconds, this.#deps.crashedVisibilitySeconds?.() ?? 0)
        : this.#deps.failedVisibilitySeconds;
      const again = records.filter((r) => failed.has(r.messageId));
      for (let i = 0; i < again.length; i += 10) {
        await this.#deps.sqs
          .send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: config.queueUrl,
              Entries: again.slice(i, i + 10).map((r, index) => ({
                Id: String(index),
                ReceiptHandle: r.receiptHandle,
                VisibilityTimeout: visibility,
              })),
            }),
          )
          .catch((error: unknown) =>
            this.#log('warn', `${config.id}: could not shorten visibility: ${String(error)}`),
          );
      }
    }
    // Failed messages stay in flight and reappear when their visibility timeout ends, as in Lambda.
    await this.#delete(records.filter((r) => !failed.has(r.messageId)));
  }

  async #delete(records: readonly SqsLambdaRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += 10) {
      const chunk = records.slice(i, i + 10);
      const response = await this.#deps.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.#config.queueUrl,
          Entries: chunk.map((r, index) => ({ Id: String(index), ReceiptHandle: r.receiptHandle })),
        }),
      );
      this.stats.deleted += response.Successful?.length ?? 0;
      for (const failure of response.Failed ?? []) {
        this.#log(
          'warn',
          `${this.#config.id}: DeleteMessageBatch entry failed: ${failure.Code} ${failure.Message ?? ''}`,
        );
      }
    }
  }
}

/** Converts a ReceiveMessage message into the record Lambda delivers. */
export function toSqsLambdaRecord(message: Message, queueArn: string, region: string): SqsLambdaRecord {
  const messageAttributes: Record<string, SqsLambdaMessageAttribute> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined
        ? {}
        : { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
      dataType: value.DataType ?? 'String',
    };
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: { ...(message.Attributes ?? {}) },
    messageAttributes,
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** Lambda filters SQS records with a JSON body parsed, so patterns can reach into `body`. */
function filterView(record: SqsLambdaRecord): unknown {
  try {
    const body: unknown = JSON.parse(record.body);
    if (body !== null && typeof body === 'object') return { ...record, body };
  } catch {
    // Plain-text bodies are matched as strings.
  }
  return record;
}

/** Reads a resolved `AWS::Lambda::EventSourceMapping` on an SQS queue. */
export function sqsMappingFromTemplate(
  logicalId: string,
  props: Readonly<Record<string, unknown>>,
  registry: LocalResourceRegistry,
): { config: SqsMappingConfig; notes: string[] } {
  const notes: string[] = [];
  const queueArn = String(props.EventSourceArn);
  const queue = registry.findByValue(queueArn);
  if (queue?.type !== 'AWS::SQS::Queue') {
    throw new TemplateError(`event source ${queueArn} is not a queue of this template`, logicalId);
  }
  const number = (value: unknown): number | undefined => (value === undefined ? undefined : Number(value));
  const batchSize = number(props.BatchSize);
  const window = number(props.MaximumBatchingWindowInSeconds);
  const maximumConcurrency = number(
    (props.ScalingConfig as { MaximumConcurrency?: unknown } | undefined)?.MaximumConcurrency,
  );
  const config: SqsMappingConfig = {
    id: logicalId,
    functionName: functionNameOf(String(props.FunctionName)),
    queueUrl: queue.ref,
    queueArn,
    ...(batchSize === undefined ? {} : { batchSize }),
    ...(window === undefined ? {} : { maximumBatchingWindowInSeconds: window }),
    ...(maximumConcurrency === undefined ? {} : { maximumConcurrency }),
    reportBatchItemFailures:
      Array.isArray(props.FunctionResponseTypes) &&
      props.FunctionResponseTypes.includes('ReportBatchItemFailures'),
    filterPatterns: filterPatternsOf(props.FilterCriteria),
  };
  return { config, notes };
}
