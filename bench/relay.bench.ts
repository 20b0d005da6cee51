/**
 * Relay cost: publish API calls per 1,000 events per target, DynamoDB write units spent on bookkeeping per event,
 * predecessor lookups (read units) per 1,000 events, relay CPU per 1 KB event with mocked clients, and the relay
 * bundle's minified size and cold import time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { PublishBatchCommand, type PublishBatchRequestEntry, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import type { AttributeValue, Context, DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { build } from 'esbuild';
import {
  INDEX_ENTRY_OVERHEAD_BYTES,
  itemSizeBytes,
  markPublishedWriteUnits,
} from '../functions/relay/bookkeeping.ts';
import type { RelayConfig } from '../functions/relay/config.ts';
import { createRelayHandler } from '../functions/relay/handler.ts';
import { FinishedMemory } from '../functions/relay/relay.ts';
import { DEFAULT_RETENTION_DAYS } from '../functions/runtime/record-format.ts';
import { OutboxWriter } from '../functions/runtime/writer.ts';
import { cpuMicrosPerOp, median, round } from './stats.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const ROOT = path.join(import.meta.dirname, '..');
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/direct.fifo';
const CONFIG: RelayConfig = {
  tableName: 'outbox',
  retentionDays: DEFAULT_RETENTION_DAYS,
  snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:events.fifo',
  eventBusName: 'outbox-bus',
  sqsQueueUrls: [QUEUE],
  snsMaxMessageBytes: 262_144,
  sqsMaxMessageBytes: 1_048_576,
  eventBridgeMaxEntryBytes: 1_048_576,
};
const CONTEXT = {
  functionName: 'relay',
  awsRequestId: 'bench',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:relay',
  memoryLimitInMB: '512',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

/** Data sized so the envelope is about 1 KB. */
function orderData(i: number) {
  return {
    orderId: `order-${i}`,
    customerId: `customer-${i % 97}`,
    amountCents: 1999 + i,
    currency: 'EUR',
    lines: Array.from({ length: 8 }, (_, j) => ({
      sku: `SKU-${j}-${i % 13}`,
      quantity: 1 + (j % 3),
      priceCents: 250 + j,
    })),
    notes: 'x'.repeat(313),
  };
}

function toAttributeValue(value: unknown): AttributeValue {
  if (typeof value === 'number') return { N: String(value) };
  if (value instanceof Uint8Array) return { B: Buffer.from(value).toString('base64') };
  return { S: String(value) };
}

/** Stream records exactly as the writer stores them: `aggregates` × `perAggregate` events, interleaved. */
function streamBatch(aggregates: number, perAggregate: number, salt: string): DynamoDBRecord[] {
  const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client: {} as never });
  const images: Record<string, AttributeValue>[][] = [];
  for (let a = 0; a < aggregates; a++) {
    const ofAggregate: Record<string, AttributeValue>[] = [];
    // A transaction holds at most 99 events (plus the head item).
    for (let version = 0; version < perAggregate; version += 90) {
      const { command } = writer.buildTransaction(
        {
          aggregate: { key: `order#${salt}-${a}` },
          events: Array.from({ length: Math.min(90, perAggregate - version) }, (_, e) => ({
            type: 'OrderChanged',
            data: orderData(a * 100 + version + e),
          })),
        },
        version,
      );
      for (const item of (command.TransactItems ?? []).slice(1)) {
        ofAggregate.push(
          Object.fromEntries(
            Object.entries(item.Put?.Item ?? {}).map(([k, v]) => [k, toAttributeValue(v)]),
          ) as Record<string, AttributeValue>,
        );
      }
    }
    images.push(ofAggregate);
  }
  // Interleave aggregates, as a shard delivers them.
  const records: DynamoDBRecord[] = [];
  for (let e = 0; e < perAggregate; e++) {
    for (let a = 0; a < aggregates; a++) {
      records.push({
        eventID: `${salt}-${records.length}`,
        eventName: 'INSERT',
        dynamodb: { NewImage: images[a]?.[e], SequenceNumber: String(1e20 + records.length) },
      });
    }
  }
  return records;
}

function mockTargets() {
  const sns = mockClient(SNSClient);
  const eventBridge = mockClient(EventBridgeClient);
  const sqs = mockClient(SQSClient);
  const ddb = mockClient(DynamoDBClient);
  sns
    .on(PublishBatchCommand)
    .callsFake((input: { PublishBatchRequestEntries: PublishBatchRequestEntry[] }) => ({
      Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })),
      Failed: [],
    }));
  eventBridge.on(PutEventsCommand).callsFake((input: { Entries: PutEventsRequestEntry[] }) => ({
    FailedEntryCount: 0,
    Entries: input.Entries.map((_, i) => ({ EventId: String(i) })),
  }));
  sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: SendMessageBatchRequestEntry[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })),
    Failed: [],
  }));
  ddb.on(UpdateItemCommand).resolves({});
  // The predecessor lookup finds the usual answer: the previous event, already PUBLISHED.
  ddb.on(QueryCommand).resolves({ Items: [{ status: { S: 'PUBLISHED' } }] });
  return {
    calls: () => ({
      sns: sns.commandCalls(PublishBatchCommand).length,
      eventbridge: eventBridge.commandCalls(PutEventsCommand).length,
      sqs: sqs.commandCalls(SendMessageBatchCommand).length,
      dynamodb: ddb.commandCalls(UpdateItemCommand).length,
      queries: ddb.commandCalls(QueryCommand).length,
    }),
    reset: () => {
      for (const m of [sns, eventBridge, sqs, ddb]) m.resetHistory();
    },
    restore: () => {
      for (const m of [sns, eventBridge, sqs, ddb]) m.restore();
    },
  };
}

function relayHandler(config: RelayConfig) {
  const handler = createRelayHandler({
    config,
    clients: {
      sns: new SNSClient({ region: 'us-east-1' }),
      eventBridge: new EventBridgeClient({ region: 'us-east-1' }),
      sqs: new SQSClient({ region: 'us-east-1' }),
      dynamodb: new DynamoDBClient({ region: 'us-east-1' }),
    },
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Bench', serviceName: 'relay' }),
    // Remember nothing: every iteration publishes, as fresh stream records would.
    memory: new FinishedMemory(0),
  });
  return (records: DynamoDBRecord[]) => handler({ Records: records }, CONTEXT) as Promise<unknown>;
}

async function callsPer1000(aggregates: number, perAggregate: number) {
  const mocks = mockTargets();
  await relayHandler(CONFIG)(streamBatch(aggregates, perAggregate, 'calls'));
  const calls = mocks.calls();
  mocks.restore();
  return calls;
}

/**
 * Predecessor lookups (strongly consistent Queries) for 1,000 events that reach the relay in batches of 100, each
 * aggregate's events in order: an aggregate pays one lookup in every batch after its first (its previous event was
 * in an earlier batch), none in the batch that starts it at sequence 1.
 */
async function lookupsPer1000(aggregates: number, perAggregate: number) {
  const mocks = mockTargets();
  const relayBatch = relayHandler(CONFIG);
  const records = streamBatch(aggregates, perAggregate, 'lookups');
  for (let start = 0; start < records.length; start += 100)
    await relayBatch(records.slice(start, start + 100));
  const { queries } = mocks.calls();
  mocks.restore();
  return queries;
}

/**
 * Clients whose `send` answers at once with success. For CPU, these replace aws-sdk-client-mock, whose sinon
 * stubs (argument matching, call recording) cost more than the relay itself; SDK command objects are still built.
 */
function fakeClients() {
  const answer = (command: { input: Record<string, unknown> }): unknown => {
    const input = command.input;
    if (Array.isArray(input.PublishBatchRequestEntries)) {
      return {
        Successful: (input.PublishBatchRequestEntries as { Id: string }[]).map((e) => ({ Id: e.Id })),
        Failed: [],
      };
    }
    if (Array.isArray(input.Entries) && 'QueueUrl' in input) {
      return { Successful: (input.Entries as { Id: string }[]).map((e) => ({ Id: e.Id })), Failed: [] };
    }
    if (Array.isArray(input.Entries)) {
      return {
        FailedEntryCount: 0,
        Entries: (input.Entries as unknown[]).map((_, i) => ({ EventId: String(i) })),
      };
    }
    return {};
  };
  const client = { send: async (command: { input: Record<string, unknown> }) => answer(command) };
  return {
    sns: client as unknown as SNSClient,
    eventBridge: client as unknown as EventBridgeClient,
    sqs: client as unknown as SQSClient,
    dynamodb: client as unknown as DynamoDBClient,
  };
}

async function cpuPerEvent(config: RelayConfig): Promise<number> {
  const handler = createRelayHandler({
    config,
    clients: fakeClients(),
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'Bench', serviceName: 'relay' }),
    memory: new FinishedMemory(0),
  });
  const batch = streamBatch(10, 10, 'cpu'); // 100 events, a full default batch
  const perBatch = await cpuMicrosPerOp(() => handler({ Records: batch }, CONTEXT) as Promise<unknown>, {
    iterations: 50,
    runs: 9,
    warmup: 50,
  });
  return round(perBatch / batch.length);
}

function writeUnits() {
  const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client: {} as never });
  const sample = (data: unknown) => {
    const { command } = writer.buildTransaction(
      { aggregate: { key: 'order#0' }, events: [{ type: 'OrderChanged', data }] },
      0,
    );
    const item = command.TransactItems?.[1]?.Put?.Item as Record<string, string | number>;
    const now = item.createdAt as number;
    const { pendingShard: _shard, pendingDueAt: _due, ...rest } = item;
    const after = {
      ...rest,
      status: 'PUBLISHED',
      publishedAt: now,
      expiresAt: Math.floor(now / 1000) + 7 * 86_400,
    };
    // Index entry: index keys + table keys + projected attributes + 100 bytes overhead.
    const indexEntry =
      itemSizeBytes({
        pendingShard: item.pendingShard,
        pendingDueAt: item.pendingDueAt,
        pk: item.pk,
        sk: item.sk,
        id: item.id,
        status: item.status,
        attempts: item.attempts,
        sequence: item.sequence,
        createdAt: item.createdAt,
      }) + INDEX_ENTRY_OVERHEAD_BYTES;
    const before = itemSizeBytes(item);
    const afterBytes = itemSizeBytes(after);
    return {
      envelopeBytes: Buffer.byteLength(String(item.envelope)),
      before,
      after: afterBytes,
      indexEntry,
      units: markPublishedWriteUnits(before, afterBytes, indexEntry),
      redelivery: Math.ceil(afterBytes / 1024),
    };
  };
  return { oneKb: sample(orderData(1)), small: sample({ orderId: 'o-1', amountCents: 100 }) };
}

async function bundle(): Promise<{ bytes: number; clients: string; importMs: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-bench-'));
  try {
    const outfile = path.join(dir, 'relay.mjs');
    // Same settings as createOutboxFunction's NodejsFunction bundling.
    const result = await build({
      entryPoints: [path.join(ROOT, 'functions', 'relay', 'handler.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      minify: true,
      mainFields: ['module', 'main'],
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
      outfile,
      metafile: true,
      logLevel: 'silent',
    });
    const clients = [
      ...new Set(
        Object.keys(result.metafile.inputs)
          .map((input) => /@aws-sdk\/(client-[a-z-]+)\//.exec(input)?.[1])
          .filter((name): name is string => name !== undefined),
      ),
    ].sort();
    const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(outfile).href)}); console.log(performance.now() - t);`;
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', POWERTOOLS_METRICS_DISABLED: 'true' },
        encoding: 'utf8',
      });
      if (run.status !== 0) throw new Error(`importing the relay bundle failed: ${run.stderr}`);
      times.push(Number(run.stdout.trim()));
    }
    return { bytes: statSync(outfile).size, clients: clients.join(', '), importMs: round(median(times), 1) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Record<string, number | string>> {
  const spread = await callsPer1000(100, 10); // 1,000 events, 100 aggregates
  const hot = await callsPer1000(1, 1000); // 1,000 events of one aggregate
  const lookupsSpread = await lookupsPer1000(100, 10); // each batch: the next event of 100 aggregates
  const lookupsGrouped = await lookupsPer1000(10, 100); // each batch: the next 10 events of 10 aggregates
  const cpuSns = await cpuPerEvent({ ...CONFIG, eventBusName: undefined, sqsQueueUrls: [] });
  const cpuAll = await cpuPerEvent(CONFIG);
  const wu = writeUnits();
  const b = await bundle();

  console.table({
    'SNS FIFO PublishBatch': { '100 aggregates × 10': spread.sns, '1 aggregate × 1000': hot.sns },
    'EventBridge PutEvents': {
      '100 aggregates × 10': spread.eventbridge,
      '1 aggregate × 1000': hot.eventbridge,
    },
    'SQS FIFO SendMessageBatch': { '100 aggregates × 10': spread.sqs, '1 aggregate × 1000': hot.sqs },
    'DynamoDB UpdateItem': { '100 aggregates × 10': spread.dynamodb, '1 aggregate × 1000': hot.dynamodb },
  });

  return {
    calls_per_1000_events_sns: spread.sns,
    calls_per_1000_events_eventbridge: spread.eventbridge,
    calls_per_1000_events_sqs: spread.sqs,
    calls_per_1000_events_limit: 100,
    calls_per_1000_events_one_aggregate_sns_sqs: hot.sns,
    calls_per_1000_events_one_aggregate_eventbridge: hot.eventbridge,
    envelope_bytes: wu.oneKb.envelopeBytes,
    item_bytes_before_after: `${wu.oneKb.before} / ${wu.oneKb.after}`,
    index_entry_bytes: wu.oneKb.indexEntry,
    bookkeeping_wru_per_event_1kb: wu.oneKb.units,
    bookkeeping_wru_per_event_small: wu.small.units,
    bookkeeping_wru_redelivery_new_container: wu.oneKb.redelivery,
    bookkeeping_wru_breakdown: `UpdateItem ⌈max(before, after) / 1 KB⌉ + pending-index delete ⌈entry / 1 KB⌉ (${wu.oneKb.units - Math.ceil(wu.oneKb.indexEntry / 1024)} + ${Math.ceil(wu.oneKb.indexEntry / 1024)})`,
    predecessor_lookups_per_1000_events_1_per_aggregate_per_batch: lookupsSpread,
    predecessor_lookups_per_1000_events_10_per_aggregate_per_batch: lookupsGrouped,
    // Strongly consistent Query, Limit 1: the PUBLISHED predecessor's item size, rounded up to 4 KB.
    predecessor_rru_per_lookup_1kb: Math.ceil(wu.oneKb.after / 4096),
    cpu_us_per_1kb_event_sns: cpuSns,
    cpu_us_per_1kb_event_sns_eventbridge_sqs: cpuAll,
    cpu_target_us: 30,
    bundle_kb_minified: round(b.bytes / 1024, 1),
    bundle_sdk_clients: b.clients,
    cold_import_ms: b.importMs,
  };
}
