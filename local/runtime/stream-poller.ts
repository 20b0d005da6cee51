import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
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
import type { LambdaInvokeError } from './lambda.ts';
import type { LocalResourceRegistry } from './template.ts';

/** An `AWS::Lambda::EventSourceMapping` on a DynamoDB stream, resolved to local values. */
export interface StreamMappingConfig {
  /** Used in log messages. */
  readonly id: string;
  readonly functionName: string;
  readonly streamArn: string;
  /** @default 100 */
  readonly batchSize?: number;
  /** @default 0 */
  readonly maximumBatchingWindowInSeconds?: number;
  /** AT_TIMESTAMP is read as TRIM_HORIZON plus a timestamp filter. */
  readonly startingPosition: 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP';
  /** Epoch seconds, for AT_TIMESTAMP. */
  readonly startingPositionTimestamp?: number;
  /** @default false */
  readonly bisectBatchOnFunctionError?: boolean;
  /** -1 = until the record expires. @default -1 */
  readonly maximumRetryAttempts?: number;
  /** -1 = no limit. @default -1 */
  readonly maximumRecordAgeInSeconds?: number;
  /** FunctionResponseTypes includes ReportBatchItemFailures. @default false */
  readonly reportBatchItemFailures?: boolean;
  /** FilterCriteria.Filters[].Pattern (JSON strings). */
  readonly filterPatterns?: readonly string[];
  /** DestinationConfig.OnFailure, resolved: an SQS queue (URL) or an SNS topic (ARN). */
  readonly onFailure?: { readonly queueUrl: string } | { readonly topicArn: string };
}

export interface StreamPollerDeps {
  readonly invoker: FunctionInvoker;
  readonly streams: DynamoDBStreamsClient;
  /** Needed for an SQS on-failure destination. */
  readonly sqs?: SQSClient;
  /** Needed for an SNS on-failure destination. */
  readonly sns?: SNSClient;
  /** Put into each record's awsRegion (DynamoDB Local reports "ddblocal"). @default 'us-east-1' */
  readonly region?: string;
  /** Idle wait between GetRecords calls; Lambda polls about 4 times a second. @default 250 */
  readonly pollIntervalMs?: number;
  /** Wait before retrying a failed batch. @default attempt => min(100 * 2^(attempt-1), 5000) */
  readonly retryDelayMs?: (attempt: number) => number;
  /** How often to look for new shards. @default 5000 */
  readonly shardRefreshMs?: number;
  readonly log?: PollerLog;
  /** Fault injection: records for which this returns true are lost (never delivered, checkpointed past). */
  readonly drop?: (record: DynamoDbLambdaRecord) => boolean;
  /**
   * Fault injection: a record for which this returns true (asked once, after its batch succeeded) is delivered
   * again in the next batch, ahead of newer records, as Lambda does when it re-reads a shard from an older
   * checkpoint. Consumers must absorb the copy.
   */
  readonly duplicate?: (record: DynamoDbLambdaRecord) => boolean;
}

/** The record Lambda puts in `event.Records` for a DynamoDB stream. */
export interface DynamoDbLambdaRecord {
  readonly eventID: string;
  readonly eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  readonly eventVersion: string;
  readonly eventSource: 'aws:dynamodb';
  readonly awsRegion: string;
  readonly dynamodb: {
    readonly ApproximateCreationDateTime?: number;
    readonly Keys?: Record<string, unknown>;
    readonly NewImage?: Record<string, unknown>;
    readonly OldImage?: Record<string, unknown>;
    readonly SequenceNumber: string;
    readonly SizeBytes?: number;
    readonly StreamViewType?: string;
  };
  readonly eventSourceARN: string;
  readonly userIdentity?: { readonly type?: string; readonly principalId?: string };
}

export interface StreamPollerStats {
  /** Function invocations, including retries. */
  invocations: number;
  /** Records handed to the function at least once. */
  recordsDelivered: number;
  /** Records dropped by FilterCriteria. */
  recordsFiltered: number;
  /** Records given up on (retries exhausted or too old); metadata went to the on-failure destination. */
  recordsDiscarded: number;
  /** Records delivered once more after they succeeded (the `duplicate` fault). */
  recordsDuplicated: number;
}

interface Pending {
  readonly record: DynamoDbLambdaRecord;
  /** When this poller first read the record: the local stand-in for arrival time. */
  readonly seenAt: number;
  /** A copy the `duplicate` fault put back (not asked again, not counted as delivered again). */
  readonly again?: boolean;
}

interface WorkItem {
  readonly records: readonly Pending[];
  /** Failed invocations of these records so far (bisecting does not count). */
  failures: number;
  invokes: number;
  lastError?: LambdaInvokeError | undefined;
}

/**
 * Polls every shard of a DynamoDB stream and invokes a function like Lambda's event source mapping:
 * in order per shard, one batch in flight per shard, with filtering, batching window, retries,
 * bisecting, partial batch responses and the on-failure destination.
 */
export class StreamPoller {
  readonly #config: StreamMappingConfig;
  readonly #deps: StreamPollerDeps;
  readonly #filter: (record: unknown) => boolean;
  readonly #abort = new AbortController();
  readonly #shards = new Map<string, Promise<void>>();
  readonly #finished = new Set<string>();
  readonly #log: PollerLog;
  #discovery: Promise<void> | undefined;
  #startedAt = 0;
  readonly stats: StreamPollerStats = {
    invocations: 0,
    recordsDelivered: 0,
    recordsFiltered: 0,
    recordsDiscarded: 0,
    recordsDuplicated: 0,
  };

  constructor(config: StreamMappingConfig, deps: StreamPollerDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#filter = compileFilters(config.filterPatterns);
    this.#log = deps.log ?? defaultPollerLog;
  }

  /** Resolves once every open shard has an iterator: changes made after this are seen even with LATEST. */
  async start(): Promise<void> {
    this.#startedAt = Date.now();
    await this.#discoverShards(true);
    this.#discovery = this.#discoveryLoop();
  }

  /** Stops polling; waits for the batch in flight (if any) to finish. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([this.#discovery, ...this.#shards.values()]);
  }

  async #discoveryLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      await sleep(this.#deps.shardRefreshMs ?? 5_000, signal);
      if (signal.aborted) break;
      try {
        await this.#discoverShards(false);
      } catch (error) {
        this.#log('warn', `${this.#config.id}: DescribeStream failed: ${String(error)}`);
      }
    }
  }

  async #discoverShards(initial: boolean): Promise<void> {
    const shards: Shard[] = [];
    let exclusiveStartShardId: string | undefined;
    do {
      const page = await this.#deps.streams.send(
        new DescribeStreamCommand({
          StreamArn: this.#config.streamArn,
          ExclusiveStartShardId: exclusiveStartShardId,
        }),
      );
      shards.push(...(page.StreamDescription?.Shards ?? []));
      exclusiveStartShardId = page.StreamDescription?.LastEvaluatedShardId;
    } while (exclusiveStartShardId);
    const known = new Set(shards.map((s) => s.ShardId));
    const starting: Promise<void>[] = [];
    for (const shard of shards) {
      const id = shard.ShardId;
      if (!id || this.#shards.has(id)) continue;
      // A child shard waits until its parent is drained, to keep per-item order.
      const parent = shard.ParentShardId;
      if (parent && known.has(parent) && !this.#finished.has(parent)) continue;
      const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      // LATEST applies to the shards open at start-up; shards found later are read from the start.
      const fromLatest = initial && this.#config.startingPosition === 'LATEST';
      if (fromLatest && closed) {
        this.#finished.add(id);
        continue;
      }
      let ready!: () => void;
      starting.push(new Promise<void>((resolve) => (ready = resolve)));
      this.#shards.set(
        id,
        this.#pollShard(id, fromLatest, ready).finally(() => {
          this.#finished.add(id);
          // Children of this shard can start now.
          if (!this.#abort.signal.aborted) void this.#discoverShards(false).catch(() => {});
        }),
      );
    }
    await Promise.all(starting);
  }

  async #pollShard(shardId: string, fromLatest: boolean, ready: () => void): Promise<void> {
    const { streams } = this.#deps;
    const signal = this.#abort.signal;
    const batchSize = this.#config.batchSize ?? 100;
    const windowMs = (this.#config.maximumBatchingWindowInSeconds ?? 0) * 1000;
    const pollMs = this.#deps.pollIntervalMs ?? 250;
    // Last sequence number read from the shard (filtered or not): where to resume after an error.
    let lastRead: string | undefined;
    const getIterator = async (): Promise<string | undefined> =>
      (
        await streams.send(
          new GetShardIteratorCommand({
            StreamArn: this.#config.streamArn,
            ShardId: shardId,
            ...(lastRead
              ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: lastRead }
              : { ShardIteratorType: fromLatest ? 'LATEST' : 'TRIM_HORIZON' }),
          }),
        )
      ).ShardIterator;
    let iterator: string | undefined;
    try {
      iterator = await getIterator();
    } catch (error) {
      this.#log('error', `${this.#config.id}: GetShardIterator failed for ${shardId}: ${String(error)}`);
    } finally {
      ready();
    }
    const buffer: Pending[] = [];
    let closed = false;
    // One immediate retry after a trimmed iterator; a second one in a row is a real failure.
    let trimmedRetry = false;
    while (!signal.aborted) {
      try {
        let fetched = false;
        if (!closed && buffer.length < batchSize) {
          iterator ??= await getIterator();
          const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
          iterator = page.NextShardIterator;
          trimmedRetry = false;
          if (!iterator) closed = true;
          const now = Date.now();
          for (const raw of page.Records ?? []) {
            fetched = true;
            const record = toLambdaRecord(raw, this.#config.streamArn, this.#deps.region ?? 'us-east-1');
            lastRead = record.dynamodb.SequenceNumber;
            if (!this.#passesStart(record) || !this.#filter(record)) {
              this.stats.recordsFiltered++;
              continue;
            }
            if (this.#deps.drop?.(record)) {
              this.#deps.log?.('warn', `fault injection: dropped stream record ${record.eventID}`);
              continue;
            }
            buffer.push({ record, seenAt: now });
          }
        }
        if (buffer.length === 0) {
          if (closed) return;
          if (!fetched) await sleep(pollMs, signal);
          continue;
        }
        const first = buffer[0] as Pending;
        const waited = Date.now() - first.seenAt;
        if (buffer.length < batchSize && windowMs > 0 && waited < windowMs && !closed) {
          await sleep(Math.min(pollMs, windowMs - waited), signal);
          continue;
        }
        const batch = buffer.slice(0, batchSize);
        await this.#deliver(shardId, batch);
        buffer.splice(0, batch.length, ...this.#duplicatesOf(batch));
      } catch (error) {
        iterator = undefined;
        // DynamoDB Local answers a GetRecords that races the shard's first write with TrimmedDataAccessException:
        // a fresh iterator reads on at once (waiting the error pause here delayed the first event by a second).
        if ((error as Error).name === 'TrimmedDataAccessException' && !trimmedRetry) {
          trimmedRetry = true;
          continue;
        }
        // Expired iterator, emulator hiccup, unknown function...: resume from the last record read.
        this.#log('error', `${this.#config.id}: polling ${shardId} failed, retrying: ${String(error)}`);
        await sleep(1_000, signal);
      }
    }
  }

  /** The records of a delivered batch the `duplicate` fault sends again, in their order. */
  #duplicatesOf(batch: readonly Pending[]): Pending[] {
    if (!this.#deps.duplicate || this.#abort.signal.aborted) return [];
    const copies = batch.filter((p) => !p.again && this.#deps.duplicate?.(p.record));
    for (const copy of copies)
      this.#deps.log?.('warn', `fault injection: stream record ${copy.record.eventID} delivered again`);
    this.stats.recordsDuplicated += copies.length;
    return copies.map((p) => ({ ...p, again: true }));
  }

  #passesStart(record: DynamoDbLambdaRecord): boolean {
    if (this.#config.startingPosition !== 'AT_TIMESTAMP') return true;
    const at = this.#config.startingPositionTimestamp ?? this.#startedAt / 1000;
    return (
      (record.dynamodb.ApproximateCreationDateTime ?? Number.POSITIVE_INFINITY) >= Math.floor(at / 60) * 60
    );
  }

  /** Resolves once every record of `batch` has succeeded or been discarded; retries block the shard. */
  async #deliver(shardId: string, batch: Pending[]): Promise<void> {
    const signal = this.#abort.signal;
    const config = this.#config;
    const maxRetries = config.maximumRetryAttempts ?? -1;
    const maxAgeMs = (config.maximumRecordAgeInSeconds ?? -1) * 1000;
    const work: WorkItem[] = [{ records: batch, failures: 0, invokes: 0 }];
    while (work.length > 0) {
      // Stopping mid-retry leaves the records unprocessed, as a disabled mapping would.
      if (signal.aborted) return;
      const item = work[0] as WorkItem;
      if (maxAgeMs >= 0) {
        const now = Date.now();
        const expired = item.records.filter((p) => now - p.seenAt > maxAgeMs);
        if (expired.length > 0) {
          await this.#discard(shardId, expired, item, 'RecordAgeExceeded');
          const rest = item.records.filter((p) => !expired.includes(p));
          if (rest.length === 0) {
            work.shift();
            continue;
          }
          work[0] = { ...item, records: rest };
          continue;
        }
      }
      const event = { Records: item.records.map((p) => p.record) };
      this.stats.invocations++;
      if (item.failures === 0 && item.invokes === 0)
        this.stats.recordsDelivered += item.records.filter((p) => !p.again).length;
      item.invokes++;
      const outcome = await this.#deps.invoker.invoke(config.functionName, event, { onThrottle: 'queue' });
      // A failure caused by shutting down must not count as a retry or reach the on-failure destination.
      if (signal.aborted && outcome.error) return;
      let failedFrom = -1;
      if (outcome.error) {
        failedFrom = 0;
      } else if (config.reportBatchItemFailures) {
        const ids = new Set(item.records.map((p) => p.record.dynamodb.SequenceNumber));
        const failures = batchItemFailures(outcome.result, ids);
        if (failures === 'all') failedFrom = 0;
        else if (failures.length > 0) {
          // Checkpoint at the lowest failed sequence number; everything from there is retried.
          const lowest = failures.reduce((a, b) => (BigInt(a) <= BigInt(b) ? a : b));
          failedFrom = item.records.findIndex((p) => p.record.dynamodb.SequenceNumber === lowest);
        }
      }
      if (failedFrom < 0) {
        work.shift();
        continue;
      }
      item.lastError = outcome.error;
      const remaining = item.records.slice(failedFrom);
      const partial = failedFrom > 0;
      if (config.bisectBatchOnFunctionError && !partial && remaining.length > 1) {
        // Split without counting a retry: halves are retried (and split again) on their own.
        const half = Math.ceil(remaining.length / 2);
        work.splice(
          0,
          1,
          {
            records: remaining.slice(0, half),
            failures: item.failures,
            invokes: item.invokes,
            lastError: item.lastError,
          },
          {
            records: remaining.slice(half),
            failures: item.failures,
            invokes: item.invokes,
            lastError: item.lastError,
          },
        );
        continue;
      }
      const next: WorkItem = {
        records: remaining,
        failures: item.failures + 1,
        invokes: item.invokes,
        lastError: item.lastError,
      };
      if (maxRetries >= 0 && next.failures > maxRetries) {
        await this.#discard(shardId, remaining, next, 'RetryAttemptsExhausted');
        work.shift();
        continue;
      }
      work[0] = next;
      const delay =
        this.#deps.retryDelayMs?.(next.failures) ?? Math.min(100 * 2 ** (next.failures - 1), 5_000);
      await sleep(delay, signal);
    }
  }

  async #discard(
    shardId: string,
    records: readonly Pending[],
    item: WorkItem,
    condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded',
  ): Promise<void> {
    this.stats.recordsDiscarded += records.length;
    const first = records[0] as Pending;
    const last = records[records.length - 1] as Pending;
    const destination = this.#config.onFailure;
    this.#log(
      'warn',
      `${this.#config.id}: discarding ${records.length} record(s) of ${shardId} ` +
        `(${condition}, sequence ${first.record.dynamodb.SequenceNumber}..${last.record.dynamodb.SequenceNumber})` +
        (destination ? '' : ' with no on-failure destination'),
    );
    if (!destination) return;
    const arrival = (p: Pending): string =>
      new Date((p.record.dynamodb.ApproximateCreationDateTime ?? p.seenAt / 1000) * 1000)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z');
    const message = {
      requestContext: {
        requestId: crypto.randomUUID(),
        functionArn: this.#deps.invoker.functionArn(this.#config.functionName),
        condition,
        approximateInvokeCount: item.invokes,
      },
      ...(item.invokes > 0
        ? {
            responseContext: {
              statusCode: 200,
              executedVersion: '$LATEST',
              ...(item.lastError ? { functionError: 'Unhandled' } : {}),
            },
          }
        : {}),
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: first.record.dynamodb.SequenceNumber,
        endSequenceNumber: last.record.dynamodb.SequenceNumber,
        approximateArrivalOfFirstRecord: arrival(first),
        approximateArrivalOfLastRecord: arrival(last),
        batchSize: records.length,
        streamArn: this.#config.streamArn,
      },
    };
    const body = JSON.stringify(message);
    try {
      if ('queueUrl' in destination) {
        if (!this.#deps.sqs) throw new Error('no SQS client configured for the on-failure destination');
        await this.#deps.sqs.send(
          new SendMessageCommand({ QueueUrl: destination.queueUrl, MessageBody: body }),
        );
      } else {
        if (!this.#deps.sns) throw new Error('no SNS client configured for the on-failure destination');
        await this.#deps.sns.send(new PublishCommand({ TopicArn: destination.topicArn, Message: body }));
      }
    } catch (error) {
      this.#log(
        'error',
        `${this.#config.id}: could not send to the on-failure destination: ${String(error)}`,
      );
    }
  }
}

/** Converts a DynamoDB Streams API record into the record Lambda delivers (binary values as base64). */
export function toLambdaRecord(raw: StreamRecord, streamArn: string, region: string): DynamoDbLambdaRecord {
  const ddb = raw.dynamodb ?? {};
  const created = ddb.ApproximateCreationDateTime;
  return {
    eventID: raw.eventID ?? '',
    eventName: (raw.eventName ?? 'INSERT') as DynamoDbLambdaRecord['eventName'],
    eventVersion: raw.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    dynamodb: {
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      ...(ddb.Keys ? { Keys: toJson(ddb.Keys) as Record<string, unknown> } : {}),
      ...(ddb.NewImage ? { NewImage: toJson(ddb.NewImage) as Record<string, unknown> } : {}),
      ...(ddb.OldImage ? { OldImage: toJson(ddb.OldImage) as Record<string, unknown> } : {}),
      SequenceNumber: ddb.SequenceNumber ?? '',
      ...(ddb.SizeBytes === undefined ? {} : { SizeBytes: ddb.SizeBytes }),
      ...(ddb.StreamViewType ? { StreamViewType: ddb.StreamViewType } : {}),
    },
    eventSourceARN: streamArn,
    ...(raw.userIdentity
      ? { userIdentity: { type: raw.userIdentity.Type, principalId: raw.userIdentity.PrincipalId } }
      : {}),
  };
}

function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJson(v);
    return out;
  }
  return value;
}

/**
 * Reads a resolved `AWS::Lambda::EventSourceMapping` on a DynamoDB stream. `notes` lists settings
 * that are accepted but not emulated.
 */
export function streamMappingFromTemplate(
  logicalId: string,
  props: Readonly<Record<string, unknown>>,
  registry: LocalResourceRegistry,
): { config: StreamMappingConfig; notes: string[] } {
  const notes: string[] = [];
  const number = (key: string): number | undefined =>
    props[key] === undefined ? undefined : Number(props[key]);
  const destination = (props.DestinationConfig as { OnFailure?: { Destination?: string } } | undefined)
    ?.OnFailure?.Destination;
  let onFailure: StreamMappingConfig['onFailure'];
  if (destination) {
    const target = registry.findByValue(destination);
    if (target?.type === 'AWS::SQS::Queue') onFailure = { queueUrl: target.ref };
    else if (target?.type === 'AWS::SNS::Topic') onFailure = { topicArn: target.ref };
    else
      notes.push(
        `on-failure destination ${destination} is not a local queue or topic: failures are only logged`,
      );
  }
  if ((number('ParallelizationFactor') ?? 1) > 1)
    notes.push('ParallelizationFactor > 1 runs as 1 (one batch per shard)');
  if (props.TumblingWindowInSeconds !== undefined) notes.push('TumblingWindowInSeconds is not emulated');
  const startingPosition = String(
    props.StartingPosition ?? 'LATEST',
  ) as StreamMappingConfig['startingPosition'];
  const config: StreamMappingConfig = {
    id: logicalId,
    functionName: functionNameOf(String(props.FunctionName)),
    streamArn: String(props.EventSourceArn),
    startingPosition,
    ...optional('batchSize', number('BatchSize')),
    ...optional('maximumBatchingWindowInSeconds', number('MaximumBatchingWindowInSeconds')),
    ...optional('startingPositionTimestamp', number('StartingPositionTimestamp')),
    ...optional('maximumRetryAttempts', number('MaximumRetryAttempts')),
    ...optional('maximumRecordAgeInSeconds', number('MaximumRecordAgeInSeconds')),
    bisectBatchOnFunctionError:
      props.BisectBatchOnFunctionError === true || props.BisectBatchOnFunctionError === 'true',
    reportBatchItemFailures:
      Array.isArray(props.FunctionResponseTypes) &&
      props.FunctionResponseTypes.includes('ReportBatchItemFailures'),
    filterPatterns: filterPatternsOf(props.FilterCriteria),
    ...optional('onFailure', onFailure),
  };
  return { config, notes };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
