/**
 * Property-based tests of the consumer's dedup store (transactional, ordered and lease modes) on DynamoDB Local:
 * fast-check generates the interleavings of concurrent deliveries, crashes and lease expiries; each property
 * states the guarantee it checks.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DedupStatus, eventDedupKey } from '../../functions/consumer/dedup-format.ts';
import { type CursorResult, DedupStore, type Lease } from '../../functions/consumer/dedup-store.ts';
import { EventInProgressError, LeaseLostError, SequenceGapError } from '../../functions/consumer/errors.ts';
import type { GapPolicy } from '../../functions/consumer/types.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import { localAwsConfig, useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const DEDUP_TABLE = 'property-dedup';
const EFFECTS_TABLE = 'property-effects';
/** Sized so the file stays well under a minute on a busy 2-core machine. */
const RUNS = 25;
/** A generous bound for one property on an overloaded machine (the runs take seconds when it is idle). */
const PROPERTY_TIMEOUT_MS = 180_000;

let doc: DynamoDBDocumentClient;
let runCounter = 0;
/** A consumer name per run keeps the runs' dedup keys apart in the shared table. */
const nextConsumer = () => `c${++runCounter}`;

beforeAll(async () => {
  doc = DynamoDBDocumentClient.from(new DynamoDBClient({ ...localAwsConfig(endpoint()), maxAttempts: 1 }));
  for (const TableName of [DEDUP_TABLE, EFFECTS_TABLE]) {
    await doc.send(
      new CreateTableCommand({
        TableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
  }
});

function store(now: () => number = Date.now): DedupStore {
  return new DedupStore({
    tableName: DEDUP_TABLE,
    client: doc,
    ttlSeconds: 3600,
    now,
    sleep: async () => {},
  });
}

function envelope(aggregate: string, sequence: number): OutboxEnvelope {
  return buildEnvelope(
    { type: 'OrderPlaced', source: '/orders', data: { aggregate, sequence } },
    { partitionKey: aggregate, sequence },
  ).envelope;
}

/** The business write committed with the dedup item: appends `value` to the effect log of `key`. */
function appendEffect(key: string, value: number) {
  return {
    Update: {
      TableName: EFFECTS_TABLE,
      Key: { pk: key },
      UpdateExpression: 'SET #log = list_append(if_not_exists(#log, :empty), :value)',
      ExpressionAttributeNames: { '#log': 'log' },
      ExpressionAttributeValues: { ':empty': [], ':value': [value] },
    },
  };
}

async function effectLog(key: string): Promise<number[]> {
  const item = await doc.send(
    new GetCommand({ TableName: EFFECTS_TABLE, Key: { pk: key }, ConsistentRead: true }),
  );
  return (item.Item?.log as number[] | undefined) ?? [];
}

/** Deliveries in waves: every delivery of a wave runs concurrently, waves run one after another. */
const deliveriesArb = (events: number) =>
  fc.array(
    fc.record({
      event: fc.integer({ min: 0, max: events - 1 }),
      wave: fc.integer({ min: 0, max: 2 }),
      /** The worker died before it committed (its message comes back later). */
      crashBeforeCommit: fc.boolean(),
    }),
    { minLength: 1, maxLength: 12 },
  );

function waves<T extends { wave: number }>(items: readonly T[]): T[][] {
  const byWave: T[][] = [[], [], []];
  for (const item of items) byWave[item.wave]?.push(item);
  return byWave.filter((w) => w.length > 0);
}

describe('dedup store properties (DynamoDB Local)', () => {
  it(
    'transactional: under concurrent and repeated deliveries and crashes before commit, each event is applied exactly once',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.constant(n), deliveriesArb(n))),
          async ([events, deliveries]) => {
            const consumer = nextConsumer();
            const dedup = store();
            const envelopes = Array.from({ length: events }, (_, i) => envelope(`${consumer}#agg${i}`, 1));
            const applied = new Array<number>(events).fill(0);
            const done = new Set<number>();
            const deliver = async (event: number) => {
              const target = envelopes[event] as OutboxEnvelope;
              const result = await dedup
                .commitEvent(consumer, target, [appendEffect(target.id, 1)])
                .catch(() => undefined); // a lost conflict is a failed delivery: the message comes back
              if (result?.status === 'applied') applied[event] = (applied[event] ?? 0) + 1;
              if (result) done.add(event);
            };
            for (const wave of waves(deliveries)) {
              await Promise.all(wave.map((d) => (d.crashBeforeCommit ? undefined : deliver(d.event))));
            }
            // At-least-once transport: every event that was not yet applied is delivered again until it is.
            for (let round = 0; done.size < events && round < 10; round++) {
              await Promise.all(envelopes.map((_, i) => (done.has(i) ? undefined : deliver(i))));
            }
            for (const target of envelopes) expect(await effectLog(target.id)).toEqual([1]);
            expect(applied).toEqual(new Array(events).fill(1));
          },
        ),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  const orderedCase = (onGap: GapPolicy) =>
    fc.integer({ min: 1, max: 5 }).chain((n) =>
      fc.tuple(
        fc.constant(n),
        fc.array(
          fc.record({
            sequence: fc.integer({ min: 1, max: n }),
            wave: fc.integer({ min: 0, max: 2 }),
            crashBeforeCommit: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.constant(onGap),
      ),
    );

  async function runOrdered(
    events: number,
    deliveries: readonly { sequence: number; wave: number; crashBeforeCommit: boolean }[],
    onGap: GapPolicy,
  ) {
    const consumer = nextConsumer();
    const aggregate = `${consumer}#order`;
    const dedup = store();
    const envelopes = Array.from({ length: events }, (_, i) => envelope(aggregate, i + 1));
    const outcomes: (CursorResult['status'] | 'gap')[] = [];
    const finished = new Set<number>();
    const deliver = async (sequence: number) => {
      const target = envelopes[sequence - 1] as OutboxEnvelope;
      try {
        const result = await dedup.advanceCursor(
          consumer,
          target,
          [appendEffect(aggregate, sequence)],
          onGap,
        );
        outcomes.push(result.status);
        finished.add(sequence);
      } catch (error) {
        if (error instanceof SequenceGapError) outcomes.push('gap');
        // Any failure: the message comes back later.
      }
    };
    for (const wave of waves(deliveries)) {
      await Promise.all(wave.map((d) => (d.crashBeforeCommit ? undefined : deliver(d.sequence))));
    }
    for (let round = 0; finished.size < events && round < events + 3; round++) {
      await Promise.all(envelopes.map((_, i) => (finished.has(i + 1) ? undefined : deliver(i + 1))));
    }
    return { log: await effectLog(aggregate), outcomes, finished };
  }

  it(
    'ordered (gap policy retry): whatever order and duplication deliveries arrive in, the effects are applied once each, in sequence order',
    async () => {
      await fc.assert(
        fc.asyncProperty(orderedCase('retry'), async ([events, deliveries, onGap]) => {
          // A redelivered older event is reported stale and skipped; that is fine as long as its effect was applied.
          const { log } = await runOrdered(events, deliveries, onGap);
          expect(log).toEqual(Array.from({ length: events }, (_, i) => i + 1));
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'ordered (gap policy accept): the effects applied are strictly increasing and none is applied twice',
    async () => {
      await fc.assert(
        fc.asyncProperty(orderedCase('accept'), async ([events, deliveries, onGap]) => {
          const { log } = await runOrdered(events, deliveries, onGap);
          for (let i = 1; i < log.length; i++) expect(log[i]).toBeGreaterThan(log[i - 1] as number);
          expect(log.length).toBeGreaterThan(0);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  const LEASE_MS = 1000;
  const leaseSteps = fc.array(
    fc.oneof(
      fc.record({
        op: fc.constantFrom('claim' as const, 'complete' as const, 'extend' as const, 'release' as const),
        worker: fc.integer({ min: 0, max: 2 }),
      }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2 * LEASE_MS }) }),
    ),
    { minLength: 1, maxLength: 20 },
  );

  type ModelRecord =
    | { readonly status: 'IN_PROGRESS'; readonly owner: string; readonly expiresAt: number }
    | { readonly status: 'COMPLETED' }
    | undefined;

  const lossState = (record: ModelRecord) =>
    !record ? 'released' : record.status === 'COMPLETED' ? 'completed-by-other' : 'taken-over';

  it(
    'lease: under any interleaving of workers that claim, heartbeat, complete, release or crash (stop) and any clock advance, the store behaves as the lease state machine (one live owner, only the owner completes, completed is final)',
    async () => {
      await fc.assert(
        fc.asyncProperty(leaseSteps, async (steps) => {
          const consumer = nextConsumer();
          let now = 1_800_000_000_000;
          const dedup = store(() => now);
          const eventId = 'event-1';
          let model: ModelRecord;
          const leases: (Lease | undefined)[] = [undefined, undefined, undefined];
          for (const step of steps) {
            if (step.op === 'advance') {
              now += step.ms;
              continue;
            }
            const lease = leases[step.worker];
            if (step.op === 'claim') {
              const outcome = await dedup.claim(consumer, eventId, LEASE_MS).catch((e: unknown) => e);
              if (!model || (model.status === 'IN_PROGRESS' && model.expiresAt < now)) {
                expect(outcome).toMatchObject({ status: 'claimed' });
                const claimed = (outcome as { lease: Lease }).lease;
                leases[step.worker] = claimed;
                model = { status: 'IN_PROGRESS', owner: claimed.owner, expiresAt: claimed.expiresAt };
              } else if (model.status === 'COMPLETED') {
                expect(outcome).toEqual({ status: 'duplicate' });
              } else {
                expect(outcome).toBeInstanceOf(EventInProgressError);
              }
              continue;
            }
            // A worker that holds no lease does not complete, heartbeat or release.
            if (!lease) continue;
            const owns = model?.status === 'IN_PROGRESS' && model.owner === lease.owner;
            if (step.op === 'complete') {
              const outcome = await dedup.complete(consumer, eventId, lease).catch((e: unknown) => e);
              if (owns) {
                expect(outcome).toBeUndefined();
                model = { status: 'COMPLETED' };
              } else {
                expect(outcome).toBeInstanceOf(LeaseLostError);
                expect((outcome as LeaseLostError).state).toBe(lossState(model));
              }
            } else if (step.op === 'extend') {
              const outcome = await dedup.extend(consumer, eventId, lease, LEASE_MS).catch((e: unknown) => e);
              if (owns) {
                expect(outcome).toEqual({ owner: lease.owner, expiresAt: now + LEASE_MS });
                model = { status: 'IN_PROGRESS', owner: lease.owner, expiresAt: now + LEASE_MS };
              } else {
                expect(outcome).toBeInstanceOf(LeaseLostError);
              }
            } else {
              expect(await dedup.release(consumer, eventId, lease)).toBe(owns);
              if (owns) model = undefined;
            }
          }
          const stored = await doc.send(
            new GetCommand({
              TableName: DEDUP_TABLE,
              Key: { pk: eventDedupKey(consumer, eventId) },
              ConsistentRead: true,
            }),
          );
          expect(stored.Item?.status).toBe(model?.status);
          if (model?.status === 'IN_PROGRESS') expect(stored.Item?.leaseOwner).toBe(model.owner);
          if (model?.status === DedupStatus.Completed) expect(stored.Item?.leaseOwner).toBeUndefined();
        }),
        { numRuns: RUNS * 3 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'lease: of workers claiming one event at the same instant, exactly one gets the lease',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 2, max: 6 }), async (workers) => {
          const consumer = nextConsumer();
          const dedup = store();
          const outcomes = await Promise.all(
            Array.from({ length: workers }, () =>
              dedup.claim(consumer, 'event-1', LEASE_MS).catch((e: unknown) => e),
            ),
          );
          const claimed = outcomes.filter((o) => (o as { status?: string }).status === 'claimed');
          expect(claimed).toHaveLength(1);
          expect(outcomes.filter((o) => o instanceof EventInProgressError)).toHaveLength(workers - 1);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
