import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventDedupKey } from '../../functions/consumer/dedup-format.ts';
import {
  ConsumerMetric,
  CountingMetrics,
  createConsumer,
  EventInProgressError,
  type LeaseHandler,
  LeaseLostError,
} from '../../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let doc: DynamoDBDocumentClient;
let tableCounter = 0;

async function createDedupTable(): Promise<string> {
  const name = `lease-dedup-${++tableCounter}`;
  await doc.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  return name;
}

function event(orderId: string): OutboxEnvelope {
  return buildEnvelope(
    { type: 'OrderPlaced', source: '/orders', data: { orderId } },
    { partitionKey: `order#${orderId}`, sequence: 1 },
  ).envelope;
}

beforeAll(() => {
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ ...localAwsConfig(endpoint()), maxAttempts: 1 }));
});

describe('lease mode: the lease outlives a slow effect (#10.7), against DynamoDB Local', () => {
  it('a second delivery while a slow effect outruns leaseMs does not run the effect concurrently', async () => {
    const tableName = await createDedupTable();
    // Long enough that a renewal lands in time on a busy machine (each has leaseMs * 2/3 to arrive).
    const leaseMs = 3_000;
    let running = 0;
    let mostAtOnce = 0;
    let runs = 0;
    const slowEffect: LeaseHandler = async () => {
      runs++;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      await sleep(3 * leaseMs);
      running--;
    };
    // Two workers (e.g. two pollOnce loops, or two Lambda instances) with the same settings.
    const worker = () =>
      createConsumer({
        name: 'emails',
        mode: 'lease',
        leaseMs,
        tableName,
        client: doc,
        logger: silent,
        metrics: new CountingMetrics(),
        handle: slowEffect,
      });
    const first = worker();
    const second = worker();
    const placed = event('slow');

    const firstRun = first.process(placed);
    // Well past the first lease's original expiry, with the effect still running.
    await sleep(2 * leaseMs);
    const secondOutcome = await second.process(placed).catch((error: unknown) => error);

    expect(secondOutcome).toBeInstanceOf(EventInProgressError);
    expect(await firstRun).toMatchObject({ status: 'applied' });
    expect(mostAtOnce).toBe(1);
    expect(runs).toBe(1);
    // Once completed, any later delivery is a duplicate.
    expect(await second.process(placed)).toMatchObject({ status: 'duplicate' });
  });

  it('a worker whose lease was taken over is aborted through its signal and does not complete', async () => {
    const tableName = await createDedupTable();
    const leaseMs = 3_000;
    const metrics = new CountingMetrics();
    let abortedAfterMs: number | undefined;
    let abortReason: unknown;
    const consumer = createConsumer({
      name: 'payments',
      mode: 'lease',
      leaseMs,
      tableName,
      client: doc,
      logger: silent,
      metrics,
      handle: async (_event, { signal }) => {
        const started = Date.now();
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => resolve(), { once: true });
          setTimeout(resolve, 3 * leaseMs);
        });
        if (signal.aborted) {
          abortedAfterMs = Date.now() - started;
          abortReason = signal.reason;
        }
      },
    });
    const charged = event('taken-over');

    const run = consumer.process(charged).catch((error: unknown) => error);
    await sleep(100);
    // Another worker takes the event over (e.g. its clock ran ahead): the record now has another owner.
    const key = { pk: eventDedupKey('payments', charged.id) };
    const rivalOwner = 'rival-owner-token';
    await doc.send(
      new PutCommand({
        TableName: tableName,
        Item: { ...key, status: 'IN_PROGRESS', leaseOwner: rivalOwner, leaseExpiresAt: Date.now() + 60_000 },
      }),
    );

    const error = await run;

    expect(error).toBeInstanceOf(LeaseLostError);
    expect((error as LeaseLostError).state).toBe('taken-over');
    // Noticed by a heartbeat (every leaseMs / 3), long before the lease itself would have run out.
    expect(abortedAfterMs).toBeDefined();
    expect(abortedAfterMs as number).toBeLessThan(leaseMs * 0.8);
    expect(abortReason).toBeInstanceOf(LeaseLostError);
    expect(metrics.get(ConsumerMetric.LeasesLost)).toBe(1);
    const record = await doc.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    expect(record.Item).toMatchObject({ status: 'IN_PROGRESS', leaseOwner: rivalOwner });
  });
});
