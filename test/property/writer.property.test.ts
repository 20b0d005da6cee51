/**
 * Property-based tests of the outbox writer's append and expected-version paths on DynamoDB Local: fast-check
 * generates concurrent producers on one aggregate, stale and current expected versions, and retries of one command
 * (same requestId); each property states the guarantee it checks.
 */
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { OutboxConflictError, OutboxRetryableError } from '../../functions/runtime/errors.ts';
import { OutboxWriter, type TransactResult } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
/** Sized so the file stays well under a minute on a busy 2-core machine. */
const RUNS = 30;
/** A generous bound for one property on an overloaded machine (the runs take seconds when it is idle). */
const PROPERTY_TIMEOUT_MS = 180_000;

let outbox: LocalOutbox;
let writer: OutboxWriter;
let runCounter = 0;

beforeAll(async () => {
  outbox = await createLocalOutboxTable(endpoint(), 'property-writer');
  writer = new OutboxWriter({ tableName: outbox.tableName, source: '/orders', client: outbox.doc });
});

interface Command {
  readonly events: number;
  /** undefined: append at the head; else how far behind (negative: ahead of) the version read before the race. */
  readonly behind: number | undefined;
  readonly withRequestId: boolean;
}

const commandArb = fc.record({
  events: fc.integer({ min: 1, max: 3 }),
  behind: fc.option(fc.integer({ min: -1, max: 2 }), { nil: undefined }),
  withRequestId: fc.boolean(),
});

const caseArb = fc.record({
  /** Events committed before the race. */
  prefill: fc.integer({ min: 0, max: 2 }),
  commands: fc.array(commandArb, { minLength: 1, maxLength: 4 }),
  /** Each try runs one command (a retry when a command is tried twice); tries of a wave run concurrently. */
  tries: fc.array(fc.record({ command: fc.nat(), wave: fc.integer({ min: 0, max: 1 }) }), {
    minLength: 1,
    maxLength: 8,
  }),
});

async function storedEvents(aggregate: string) {
  const page = await outbox.doc.send(
    new QueryCommand({
      TableName: outbox.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :evt)',
      ExpressionAttributeValues: { ':pk': aggregate, ':evt': 'EVT#' },
      ConsistentRead: true,
    }),
  );
  return (page.Items ?? []).map((i) => ({ id: String(i.id), sequence: Number(i.sequence) }));
}

describe('outbox writer properties (DynamoDB Local)', () => {
  it(
    'under concurrent appends, stale and current expected versions and retried commands, the aggregate holds sequences 1..N once each, every commit is contiguous at the version it expected, and a requestId commits at most once',
    async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ prefill, commands, tries }) => {
          const aggregate = `order#w${++runCounter}`;
          if (prefill > 0) {
            await writer.transact({
              aggregate: { key: aggregate },
              events: Array.from({ length: prefill }, () => ({ type: 'Prefilled', data: {} })),
            });
          }
          const readVersion = await writer.currentVersion(aggregate);
          const committed = new Map<number, TransactResult[]>();
          const run = async (index: number) => {
            const command = commands[index] as Command;
            const expectedVersion =
              command.behind === undefined ? undefined : Math.max(0, readVersion - command.behind);
            try {
              const result = await writer.transact({
                aggregate: { key: aggregate, ...(expectedVersion === undefined ? {} : { expectedVersion }) },
                events: Array.from({ length: command.events }, (_, i) => ({
                  type: `C${index}`,
                  data: { i },
                })),
                ...(command.withRequestId ? { requestId: `${aggregate}.cmd${index}` } : {}),
              });
              committed.set(index, [...(committed.get(index) ?? []), result]);
              const sequences = result.events.map((e) => e.sequence);
              expect(sequences).toEqual(sequences.map((_, i) => (sequences[0] as number) + i));
              expect(result.version).toBe(sequences.at(-1));
              if (expectedVersion !== undefined && !result.replayed)
                expect(sequences[0]).toBe(expectedVersion + 1);
            } catch (error) {
              // A lost race is a typed, retryable-by-the-caller refusal; nothing else may escape.
              expect(error instanceof OutboxConflictError || error instanceof OutboxRetryableError).toBe(
                true,
              );
            }
          };
          for (const wave of [0, 1]) {
            await Promise.all(
              tries.filter((t) => t.wave === wave).map((t) => run(t.command % commands.length)),
            );
          }

          const stored = await storedEvents(aggregate);
          const sequences = stored.map((e) => e.sequence).sort((a, b) => a - b);
          expect(sequences).toEqual(sequences.map((_, i) => i + 1));
          expect(new Set(stored.map((e) => e.id)).size).toBe(stored.length);
          const head = await outbox.doc.send(
            new GetCommand({
              TableName: outbox.tableName,
              Key: { pk: aggregate, sk: 'HEAD' },
              ConsistentRead: true,
            }),
          );
          expect(Number(head.Item?.lastSequence ?? 0)).toBe(stored.length);

          let expectedTotal = prefill;
          for (const [index, results] of committed) {
            const command = commands[index] as Command;
            const fresh = results.filter((r) => !r.replayed);
            if (command.withRequestId) {
              // One commit per requestId; any replay returns exactly that commit's events.
              expect(fresh.length).toBeLessThanOrEqual(1);
              const firstIds = (fresh[0] ?? results[0])?.events.map((e) => e.id);
              for (const r of results) expect(r.events.map((e) => e.id)).toEqual(firstIds);
              expectedTotal += command.events;
            } else {
              expectedTotal += command.events * fresh.length;
            }
            const storedIds = new Set(stored.map((e) => e.id));
            for (const r of results) for (const e of r.events) expect(storedIds.has(e.id)).toBe(true);
          }
          expect(stored.length).toBe(expectedTotal);
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
