/**
 * Property-based test of the relay core on DynamoDB Local and fauxqs: fast-check generates commits on a few
 * aggregates (one may start with a poison record a foreign writer stored) and the stream batches the relay gets
 * (lost records, redelivered records, batch boundaries, fresh or warm containers); the property states the
 * guarantee it checks.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RelayConfig } from '../../functions/relay/config.ts';
import { createRelayHandler } from '../../functions/relay/handler.ts';
import { OutboxWriter } from '../../functions/runtime/writer.ts';
import { createFifoTopicWithQueue, drainQueue } from '../support/fifo-topic.ts';
import { createLocalOutboxTable, type LocalOutbox, readStream } from '../support/outbox-table.ts';
import {
  eventRecords,
  lambdaContext,
  putForeignPoisonRecord,
  relayConfigOf,
} from '../support/relay-fixtures.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const dynamoEndpoint = useDynamoDbLocal();
const fauxqsEndpoint = useFauxqs();
/** Sized so the file stays well under a minute on a busy 2-core machine. */
const RUNS = 12;
/** A generous bound for one property on an overloaded machine (the runs take seconds when it is idle). */
const PROPERTY_TIMEOUT_MS = 180_000;
/** Lambda retries a failed batch from its first failed record; a few rounds always settle a healthy target. */
const MAX_BATCH_RETRIES = 5;

const context = lambdaContext('relay', 'property');

const caseArb = fc.record({
  /** Events per aggregate (committed in an interleaved order). */
  aggregates: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
  /** The first aggregate starts with a record whose envelope is broken (a buggy foreign writer). */
  poison: fc.boolean(),
  commitOrder: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
  /** Per stream record: lost (never delivered; never the aggregate's last event), redelivered later. */
  fates: fc.array(
    fc.record({ lost: fc.boolean(), redeliveredAfter: fc.option(fc.integer({ min: 1, max: 6 })) }),
    {
      minLength: 30,
      maxLength: 30,
    },
  ),
  batchSizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 30, maxLength: 30 }),
  freshContainer: fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
});

describe('relay properties (DynamoDB Local + fauxqs)', () => {
  let outbox: LocalOutbox;
  let writer: OutboxWriter;
  let sns: SNSClient;
  let sqs: SQSClient;
  let queueUrl: string;
  let config: RelayConfig;
  let runCounter = 0;

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(dynamoEndpoint(), 'property-relay');
    writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
    sns = new SNSClient({ ...localAwsConfig(fauxqsEndpoint()), maxAttempts: 1 });
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const fifo = await createFifoTopicWithQueue(sns, sqs, {
      topic: 'property-relay',
      queue: 'property-relay',
    });
    queueUrl = fifo.queueUrl;
    config = relayConfigOf({ tableName: outbox.tableName, snsTopicArn: fifo.topicArn });
  });

  const newRelay = () =>
    createRelayHandler({
      config,
      clients: { sns, dynamodb: outbox.client },
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({ namespace: 'Test', serviceName: 'relay' }),
    });

  const putPoison = (aggregate: string) =>
    putForeignPoisonRecord(outbox, aggregate, '{"specversion":"1.0", not json');

  async function statuses(aggregate: string): Promise<Map<number, string>> {
    const items = await eventRecords(outbox, aggregate);
    return new Map(items.map((i) => [Number(i.sequence), String(i.status)]));
  }

  it(
    'for any stream batches with lost middle records, redeliveries and poison, every committed event reaches the FIFO queue once, in per-aggregate order, and ends PUBLISHED; the poison record ends QUARANTINED',
    async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async (plan) => {
          const run = ++runCounter;
          const keys = plan.aggregates.map((_, i) => `order#r${run}a${i}`);
          const poisonKey = plan.poison ? keys[0] : undefined;
          if (poisonKey) await putPoison(poisonKey);
          // Interleaved single-event commits until every aggregate has its events.
          const remaining = [...plan.aggregates];
          for (let step = 0; remaining.some((n) => n > 0); step++) {
            const open = remaining.flatMap((n, i) => (n > 0 ? [i] : []));
            const pick = open[
              (plan.commitOrder[step % plan.commitOrder.length] ?? 0) % open.length
            ] as number;
            remaining[pick] = (remaining[pick] ?? 0) - 1;
            await writer.transact({
              aggregate: { key: keys[pick] as string },
              events: [{ type: 'OrderEvent', data: {} }],
            });
          }

          const ours = (await readStream(dynamoEndpoint(), outbox.streamArn)).filter((r) =>
            keys.includes(r.dynamodb?.Keys?.pk?.S ?? ''),
          );
          const lastSk = new Map<string, string>();
          for (const r of ours) {
            const sk = r.dynamodb?.Keys?.sk?.S ?? '';
            if (sk.startsWith('EVT#')) lastSk.set(r.dynamodb?.Keys?.pk?.S ?? '', sk);
          }
          // The delivery sequence: stream order minus lost records, each redelivered record repeated a bit later.
          const deliveries: DynamoDBRecord[] = [];
          const later: { at: number; record: DynamoDBRecord }[] = [];
          ours.forEach((record, i) => {
            const fate = plan.fates[i % plan.fates.length] ?? { lost: false, redeliveredAfter: null };
            const isLast = lastSk.get(record.dynamodb?.Keys?.pk?.S ?? '') === record.dynamodb?.Keys?.sk?.S;
            if (!fate.lost || isLast) deliveries.push(record);
            if (fate.redeliveredAfter !== null) later.push({ at: i + fate.redeliveredAfter, record });
            for (const due of later.filter((l) => l.at === i)) deliveries.push(due.record);
          });
          for (const due of later.filter((l) => l.at >= ours.length)) deliveries.push(due.record);

          let relay = newRelay();
          for (let start = 0, b = 0; start < deliveries.length; b++) {
            const size = plan.batchSizes[b % plan.batchSizes.length] ?? 1;
            let batch = deliveries.slice(start, start + size);
            start += size;
            if (plan.freshContainer[b % plan.freshContainer.length]) relay = newRelay();
            for (let attempt = 0; batch.length > 0 && attempt < MAX_BATCH_RETRIES; attempt++) {
              const response = (await relay({ Records: batch }, context)) as DynamoDBBatchResponse;
              const failed = response.batchItemFailures[0]?.itemIdentifier;
              const from = batch.findIndex((r) => r.dynamodb?.SequenceNumber === failed);
              batch = failed === undefined ? [] : batch.slice(Math.max(0, from));
            }
            expect(batch).toEqual([]);
          }

          const received = (await drainQueue(sqs, queueUrl)).map(
            (m) => JSON.parse(m.Body ?? '{}') as { partitionkey: string; sequence: number },
          );
          plan.aggregates.forEach((events, i) => {
            const key = keys[i] as string;
            const first = key === poisonKey ? 2 : 1;
            const last = key === poisonKey ? events + 1 : events;
            const expected = Array.from({ length: last - first + 1 }, (_, k) => first + k);
            expect(received.filter((m) => m.partitionkey === key).map((m) => m.sequence)).toEqual(expected);
          });
          for (const key of keys) {
            for (const [sequence, status] of await statuses(key)) {
              expect(`${key} ${sequence} ${status}`).toBe(
                `${key} ${sequence} ${key === poisonKey && sequence === 1 ? 'QUARANTINED' : 'PUBLISHED'}`,
              );
            }
          }
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
