import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import {
  type FaultProxy,
  type LocalEndpoints,
  type ProxyReply,
  queryProtocolError,
  startFaultProxy,
} from 'serverless-outbox/local';
import { uuidv7 } from 'serverless-outbox/writer';
import { BILLING_CONSUMER_NAME, ORDER_PLACED, ORDER_SHIPPED } from './contract.ts';
import {
  dynamoErrorReply,
  eventSortKey,
  invokeRecoverySweep,
  sleep,
  storedEnvelope,
  writePoisonRecord,
} from './fault-mechanics.ts';
import { metricSum, readAcks, readBillingEffects, readOutbox } from './observe.ts';
import type { DemoStack } from './synth.ts';
import type { OrderStep } from './workload.ts';

/** What the caller saw from one producer invocation. */
export interface ProducerOutcome {
  readonly ok: boolean;
  readonly replayed?: boolean;
  /** The invocation's error type when it failed (e.g. OutboxOutcomeUnknownError). */
  readonly errorType?: string;
  /** The handler's run time. */
  readonly durationMs?: number;
}

/** The producer command fields the fault plan looks at. */
export interface ProducerCall {
  readonly commandId: string;
  readonly orderId: string;
  readonly action: OrderStep;
  readonly deliverAt?: number;
}

export interface FaultPlan {
  readonly context: Readonly<Record<string, string>>;
  /** Starts the proxies; call before the stack starts. */
  prepare(): Promise<void>;
  endpointsFor(
    functionName: string,
    services: { dynamodb: string; fauxqs: string },
  ): Partial<LocalEndpoints> | undefined;
  dropStreamRecord(record: unknown): boolean;
  /** Stream records delivered again in a later batch (a shard re-read); none when absent. */
  duplicateStreamRecord?(record: unknown): boolean;
  /** Offset (ms) of the clock a function's code reads; none when absent. */
  clockSkewMs?(functionName: string): number;
  /** Bytes of the attachment an order's `place` carries (a large event over 256 KB); the `--faults` list when absent. */
  attachmentBytesFor?(orderId: string): number | undefined;
  /** Whether an order's `pay` goes through a prepared message (prepare → charge → confirm); none when absent. */
  preparedPay?(orderId: string): boolean;
  /** After a failed producer call: true when the plan crashed it on purpose and check-back must finish it. */
  abandons?(command: ProducerCall): boolean;
  /** Learns the running stack's names; call before the workload. */
  attach(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<void>;
  afterWorkload(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<void>;
  /** Called about twice a second while the run settles. */
  tick(stack: DemoStack): Promise<void>;
  /** True once every injected fault has played out (recovered, quarantined or dead-lettered). */
  settled(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<boolean>;
  readonly excludedEventIds: readonly string[];
  /** Seconds to delay an order step's event by (delayed delivery), or undefined. */
  delaySecondsFor(orderId: string, step: OrderStep): number | undefined;
  /** Called after every producer invocation of the workload. */
  producerCalled(command: ProducerCall, outcome: ProducerOutcome): void;
  /**
   * After the run settled: checks what the faults must have left behind, adds the findings to describe(), and
   * returns the problems (each one fails the run).
   */
  verdict(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<string[]>;
  describe(): string[];
  stop(): Promise<void>;
}

export interface FaultPlanOptions {
  /** Orders in the workload (the faults pick their orders among them). */
  readonly orders: number;
  readonly orderIdPrefix?: string;
}

/** The recovery sweeper runs every minute in AWS; offline, the fault run fires it every few seconds. */
const SWEEP_EVERY_MS = 3000;
const RELAY_CRASH_AFTER_CALLS = 6;
const THROTTLE_FROM_CALL = 3;
const THROTTLE_WINDOW_MS = 1500;
const DUPLICATES_PER_QUEUE = 5;
const DROP_STREAM_INSERT_NUMBER = 25;
/** The delayed `pay` (within the sweeper's reach: it runs every SWEEP_EVERY_MS while the run settles). */
const DELAYED_PAY_ORDER = 3;
const PAY_DELAY_SECONDS = 5;
/** At most this long after the delayed pay is due, the sweeper waits for the relay to have seen its ship. */
const MAX_SWEEP_DEFERRAL_MS = 30_000;
/** The producer call whose answers are all lost (the caller retries) and the one that loses its first only. */
const OUTCOME_UNKNOWN_ORDER = 6;
const RESEND_SETTLED_ORDER = 8;
/** OrderPlaced records whose PUBLISHED mark the relay's proxy holds until billing has acknowledged them. */
const HELD_MARKS = 3;
/**
 * Covers billing's crash (fault 3) when it hits the held events' batch: offline, a crashed invocation's messages come
 * back after the consumer's timeout (30 s) + 2 s.
 */
const MAX_MARK_HOLD_MS = 45_000;
/** In the demo every order's first event (sequence 1) is its OrderPlaced. */
const FIRST_EVENT_SK = eventSortKey(1);

/** What DynamoDB answers when it failed internally: the SDK retries it, the writer counts it as ambiguous. */
const dynamoInternalError = (): ProxyReply =>
  dynamoErrorReply(
    'InternalServerError',
    500,
    'Internal server error (fault injection: the response was lost)',
  );

function parseJson(body: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The key of an UpdateItem that marks an outbox record PUBLISHED, else undefined. */
function publishedMarkKey(body: string): { pk: string; sk: string } | undefined {
  const input = parseJson(body) as
    | { Key?: Record<string, { S?: string }>; ExpressionAttributeValues?: Record<string, { S?: string }> }
    | undefined;
  const values = Object.values(input?.ExpressionAttributeValues ?? {});
  const pk = input?.Key?.pk?.S;
  const sk = input?.Key?.sk?.S;
  if (!pk || !sk?.startsWith('EVT#') || !values.some((v) => v?.S === 'PUBLISHED')) return undefined;
  return { pk, sk };
}

/**
 * Synthesizes, in-process, a stack with a tracked subscription that filters on a source. The library must refuse
 * it (acknowledgements are expected by event type): returns the refusal, or undefined when it was accepted.
 */
async function trackedSourceFilterRefusal(): Promise<string | undefined> {
  const { App, Stack } = await import('aws-cdk-lib');
  const { Outbox } = await import('serverless-outbox');
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'TrackedSourceFilter');
  try {
    const outbox = new Outbox(stack, 'Outbox', { eventBus: true });
    outbox.subscribe('audit', { kind: 'rule', sources: ['/other'], tracked: { eventTypes: [ORDER_PLACED] } });
    app.synth();
  } catch (error) {
    return (error as Error).message.replace(/\s*\n\s*/g, ' ');
  }
  return undefined;
}

/**
 * Holds a relay's PUBLISHED mark of an OrderPlaced record until billing has acknowledged the event (at most
 * MAX_MARK_HOLD_MS): the acknowledgement then lands while the relay's bookkeeping is still in flight.
 */
async function holdUntilAcknowledged(
  doc: DynamoDBDocumentClient,
  table: string,
  key: { pk: string; sk: string },
): Promise<{ eventId: string; ackedSeenAt?: number }> {
  const record = await doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
  const eventId = String(record.Item?.id ?? '');
  const deadline = Date.now() + MAX_MARK_HOLD_MS;
  while (eventId && Date.now() < deadline) {
    const acks = await readAcks(doc, table);
    if (
      acks.some((a) => a.eventId === eventId && a.subscriber === BILLING_CONSUMER_NAME && a.status === 'DONE')
    )
      return { eventId, ackedSeenAt: Date.now() };
    await sleep(200);
  }
  return { eventId };
}

/**
 * Committed OrderPlaced events whose billing ack is missing or not DONE (`<event id> <status>`). The ack items are
 * found by their `ACK#` partition prefix and their `subscriber` attribute, not by the exact key layout.
 */
async function unacknowledgedPlaced(
  doc: DynamoDBDocumentClient,
  table: string,
  excludedIds: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const [{ committed }, acks] = await Promise.all([readOutbox(doc, table), readAcks(doc, table)]);
  const status = new Map(
    acks.filter((a) => a.subscriber === BILLING_CONSUMER_NAME).map((a) => [a.eventId, a.status]),
  );
  return committed
    .filter((e) => e.type === ORDER_PLACED && !excludedIds.has(e.id))
    .filter((e) => status.get(e.id) !== 'DONE')
    .map((e) => `${e.id} ${status.get(e.id) ?? 'missing'}`);
}

export function createFaultPlan(options: FaultPlanOptions): FaultPlan {
  const prefix = options.orderIdPrefix ?? 'o';
  const orderId = (n: number) => `${prefix}${String(Math.min(n, options.orders)).padStart(5, '0')}`;
  const delayedOrder = orderId(DELAYED_PAY_ORDER);
  const unknownCommand = `${orderId(OUTCOME_UNKNOWN_ORDER)}.pay`;
  const resentCommand = `${orderId(RESEND_SETTLED_ORDER)}.ship`;
  const log: string[] = [];
  const excluded: string[] = [];
  let services: { dynamodb: string; fauxqs: string } | undefined;
  let snsProxy: FaultProxy | undefined;
  let dynamoProxy: FaultProxy | undefined;
  let stackRef: DemoStack | undefined;
  let relayName = '';
  let billingName = '';
  let publishCalls = 0;
  let relayCrashed = false;
  let throttleUntil = 0;
  let throttled = 0;
  let consumerCrashed = false;
  let readyInserts = 0;
  /** Lost stream deliveries: one in the middle of an aggregate, one of an aggregate's last event. */
  const dropped: { id: string; pk: string; sk: string; last: boolean }[] = [];
  let recoveredReported = false;
  let poisonRecordKey: { pk: string; sk: string } | undefined;
  let lastSweep = 0;
  let producerProxy: FaultProxy | undefined;
  let relayDynamoProxy: FaultProxy | undefined;
  let producerName = '';
  let docRef: DynamoDBDocumentClient | undefined;
  let outboxTable = '';
  /** Fault 8: the refusal message, or null when the subscription was accepted. */
  let synthRefusal: string | null | undefined;
  /** Fault 7: when the delayed pay is due. */
  let delayedDeliverAt: number | undefined;
  /** Fault 7: whether the relay has dealt with the delayed order's ship (held it, or published it). */
  let delayedShipSeen = false;
  let sweepsDeferred = 0;
  /** Fault 9, outcome unknown: armed → losing (every answer lost) → retrying (the caller's retry) → settled. */
  let unknown: 'armed' | 'losing' | 'retrying' | 'settled' = 'armed';
  let unknownSends = 0;
  let unknownReadBacks = 0;
  let unknownErrorType = '';
  let unknownRetries = 0;
  /** Fault 9, settled by the writer: armed → lost (its first answer replaced) → settled. */
  let resent: 'armed' | 'lost' | 'settled' = 'armed';
  /** Fault 10: the held marks, with when billing's ack was seen and when the mark was let through. */
  const heldMarks: { pk: string; sk: string; eventId: string; ackedSeenAt?: number; releasedAt: number }[] =
    [];
  const holdingMarks = new Set<string>();

  async function crash(functionName: string, what: string): Promise<void> {
    const killed = (await stackRef?.runtime.lambda.crash(functionName)) ?? 0;
    log.push(`${what} (${killed} execution environment${killed === 1 ? '' : 's'} killed)`);
  }

  async function delayedShipUnseen(): Promise<boolean> {
    if (delayedShipSeen || !docRef || delayedDeliverAt === undefined) return false;
    if (Date.now() > delayedDeliverAt + MAX_SWEEP_DEFERRAL_MS) return false;
    const { Item } = await docRef.send(
      new GetCommand({
        TableName: outboxTable,
        Key: { pk: `order#${delayedOrder}`, sk: 'EVT#000000000003' },
        ConsistentRead: true,
      }),
    );
    if (Item?.status === 'SCHEDULED' || Item?.status === 'PUBLISHED') delayedShipSeen = true;
    return Item?.status === 'READY';
  }

  return {
    context: {
      // Short thresholds so the sweeper acts within the run (AWS defaults are minutes).
      'outbox:recoveryStuckAfterSeconds': '10',
      'outbox:recoveryCheckbackAfterSeconds': '10',
    },

    async prepare() {
      const upstream = () => {
        if (!services) throw new Error('services not started');
        return services;
      };
      snsProxy = await startFaultProxy(() => upstream().fauxqs, {
        before(call) {
          if (call.operation !== 'PublishBatch' || !relayCrashed) return undefined;
          publishCalls++;
          if (publishCalls === THROTTLE_FROM_CALL) {
            throttleUntil = Date.now() + THROTTLE_WINDOW_MS;
            log.push(`SNS throttled PublishBatch for ${THROTTLE_WINDOW_MS} ms`);
          }
          if (Date.now() < throttleUntil) {
            throttled++;
            return queryProtocolError('Throttling', 'Rate exceeded');
          }
          return undefined;
        },
        after(call, status) {
          if (call.operation !== 'PublishBatch' || status !== 200 || relayCrashed) return;
          if (++publishCalls >= RELAY_CRASH_AFTER_CALLS) {
            relayCrashed = true;
            publishCalls = 0;
            void crash(relayName, 'relay crashed mid-batch after a successful PublishBatch');
          }
        },
      });
      // Fault 8 runs first: it needs nothing of the offline stack.
      synthRefusal = (await trackedSourceFilterRefusal()) ?? null;
      log.push(
        synthRefusal === null
          ? 'tracked subscription with a source filter: ACCEPTED at synth (it must be refused)'
          : `tracked subscription with a source filter: refused at synth: ${synthRefusal}`,
      );
      producerProxy = await startFaultProxy(() => upstream().dynamodb, {
        async around(call, forward) {
          if (call.operation.endsWith('.TransactWriteItems')) {
            const requestId = /"requestId":\{"S":"([^"]+)"\}/.exec(call.body)?.[1];
            if (requestId === unknownCommand && unknown === 'losing') {
              unknownSends++;
              return dynamoInternalError();
            }
            if (requestId === unknownCommand && unknown === 'armed') {
              const reply = await forward();
              if (reply.status !== 200) return reply;
              unknown = 'losing';
              unknownSends++;
              return dynamoInternalError();
            }
            if (requestId === resentCommand && resent === 'armed') {
              const reply = await forward();
              if (reply.status !== 200) return reply;
              resent = 'lost';
              return dynamoInternalError();
            }
          }
          // The writer's read-back of its first event after the ambiguous sends: lost too.
          if (
            unknown === 'losing' &&
            call.operation.endsWith('.GetItem') &&
            call.body.includes(`"order#${unknownCommand.split('.')[0]}"`) &&
            call.body.includes('"EVT#')
          ) {
            unknownReadBacks++;
            return dynamoInternalError();
          }
          return forward();
        },
      });
      relayDynamoProxy = await startFaultProxy(() => upstream().dynamodb, {
        async around(call, forward) {
          const mark = call.operation.endsWith('.UpdateItem') ? publishedMarkKey(call.body) : undefined;
          const key = mark ? `${mark.pk} ${mark.sk}` : '';
          if (
            !mark ||
            mark.sk !== FIRST_EVENT_SK ||
            holdingMarks.has(key) ||
            holdingMarks.size >= HELD_MARKS ||
            !docRef
          )
            return forward();
          holdingMarks.add(key);
          const held = await holdUntilAcknowledged(docRef, outboxTable, mark);
          const reply = await forward();
          heldMarks.push({ ...mark, ...held, releasedAt: Date.now() });
          return reply;
        },
      });
      dynamoProxy = await startFaultProxy(() => upstream().dynamodb, {
        after(call, status) {
          if (consumerCrashed || status !== 200 || !call.operation.endsWith('.TransactWriteItems')) return;
          const cursor = /"S#billing#([^"]+)"/.exec(call.body)?.[1];
          if (!cursor) return;
          consumerCrashed = true;
          void crash(
            billingName,
            `billing crashed after committing its effect for ${cursor}, before the ack`,
          );
        },
      });
    },

    endpointsFor(functionName, started) {
      services = started;
      if (functionName === relayName && snsProxy && relayDynamoProxy)
        return { sns: snsProxy.url, dynamodb: relayDynamoProxy.url };
      if (functionName === billingName && dynamoProxy) return { dynamodb: dynamoProxy.url };
      if (functionName === producerName && producerProxy) return { dynamodb: producerProxy.url };
      return undefined;
    },

    dropStreamRecord(record) {
      const r = record as { eventName?: string; dynamodb?: { NewImage?: Record<string, { S?: string }> } };
      const image = r.dynamodb?.NewImage;
      if (r.eventName !== 'INSERT' || image?.status?.S !== 'READY') return false;
      // The delayed order has its own fault (7); keep the two apart.
      if (image.pk?.S === `order#${delayedOrder}`) return false;
      readyInserts++;
      // The middle one is published by the relay with its successor (predecessor check); an aggregate's last
      // event has no successor, so only the recovery sweeper can publish it.
      const middle = readyInserts === DROP_STREAM_INSERT_NUMBER;
      const last = image.type?.S === ORDER_SHIPPED && !dropped.some((d) => d.last);
      if (!middle && !last) return false;
      const lost = { id: image.id?.S ?? '', pk: image.pk?.S ?? '', sk: image.sk?.S ?? '', last: !middle };
      dropped.push(lost);
      log.push(
        `stream delivery of event ${lost.id} (${lost.pk} ${lost.sk}) lost: the relay never saw it` +
          (lost.last ? ' (last event of its aggregate)' : ''),
      );
      return true;
    },

    async attach(stack, doc) {
      stackRef = stack;
      relayName = stack.ref(stack.resources.relay);
      billingName = stack.ref(stack.resources.billingConsumer);
      producerName = stack.ref(stack.resources.producer);
      docRef = doc;
      outboxTable = stack.ref(stack.resources.outboxTable);
      const id = uuidv7();
      poisonRecordKey = { pk: 'order#poison', sk: FIRST_EVENT_SK };
      await writePoisonRecord(doc, outboxTable, {
        pk: poisonRecordKey.pk,
        id,
        pendingShard: `P#${id.slice(-1)}`,
      });
      excluded.push(id);
      log.push(`poison outbox record ${id} written with a broken envelope`);
    },

    async afterWorkload(stack, doc) {
      // Duplicate deliveries: copies of published events straight into both subscription queues.
      const { committed } = await readOutbox(doc, stack.ref(stack.resources.outboxTable));
      const table = stack.ref(stack.resources.outboxTable);
      const placed = committed
        .filter((e) => e.type === ORDER_PLACED && !excluded.includes(e.id))
        .slice(0, DUPLICATES_PER_QUEUE);
      for (const event of placed) {
        const body = await storedEnvelope(doc, table, event);
        await stack.sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.ref(stack.resources.billingQueue),
            MessageBody: body,
            MessageGroupId: event.aggregateKey,
            MessageDeduplicationId: `${event.id}.duplicate`,
          }),
        );
        await stack.sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.ref(stack.resources.notificationsQueue),
            MessageBody: body,
          }),
        );
      }
      log.push(`${placed.length} duplicate deliveries sent to each subscription queue`);
      await stack.sqs.send(
        new SendMessageCommand({
          QueueUrl: stack.ref(stack.resources.notificationsQueue),
          MessageBody: '{"hello":"not an outbox envelope"}',
        }),
      );
      log.push('poison message (not an envelope) sent to the notifications queue');
    },

    async tick(stack) {
      // The demo stack always has a recovery function (synth.ts refuses a stack without one).
      if (Date.now() - lastSweep < SWEEP_EVERY_MS) return;
      lastSweep = Date.now();
      // In AWS the relay sees a change within a second and the sweeper runs once a minute, so `ship` (committed
      // right after the delayed `pay`) reaches the relay while `pay` is still SCHEDULED. Offline, the sweeper runs
      // every few seconds and the other faults can stall the relay for longer: the sweep waits until the relay has
      // dealt with `ship`, so the run shows the hold rather than a release that happened to come first.
      if (await delayedShipUnseen()) {
        sweepsDeferred++;
        return;
      }
      await invokeRecoverySweep(stack);
    },

    async settled(stack, doc) {
      const table = stack.ref(stack.resources.outboxTable);
      for (const lost of dropped) {
        const item = await doc.send(
          new GetCommand({ TableName: table, Key: { pk: lost.pk, sk: lost.sk }, ConsistentRead: true }),
        );
        if (item.Item?.status !== 'PUBLISHED') return false;
      }
      if (dropped.length > 0 && !recoveredReported) {
        recoveredReported = true;
        const republished = metricSum(stack.runtime.metrics, 'ServerlessOutbox', 'Republished');
        const predecessors = metricSum(stack.runtime.metrics, 'ServerlessOutbox', 'PredecessorsPublished');
        log.push(
          `lost deliveries recovered: ${predecessors} published by the relay ahead of a later event, ` +
            `${republished} republished by the recovery sweeper`,
        );
      }
      // The caller's retry after the lost answers must have happened (the workload is over by now).
      if (unknown === 'losing') return false;
      if (poisonRecordKey) {
        const item = await doc.send(
          new GetCommand({ TableName: table, Key: poisonRecordKey, ConsistentRead: true }),
        );
        if (item.Item?.status !== 'QUARANTINED') return false;
      }
      // Both poison paths should have paged: the quarantine alarm and a dead-letter queue alarm.
      const fired = stack.runtime.alarms.fired.map((t) => t.logicalId);
      if (!fired.some((id) => id.includes('Quarantined')) || !fired.some((id) => id.includes('DeadLetter')))
        return false;
      // Every OrderPlaced billing applied is acknowledged (fault 10).
      const pending = await unacknowledgedPlaced(doc, table, new Set(excluded));
      return pending.length === 0;
    },

    excludedEventIds: excluded,

    delaySecondsFor(id, step) {
      return id === delayedOrder && step === 'pay' ? PAY_DELAY_SECONDS : undefined;
    },

    producerCalled(command, outcome) {
      if (command.orderId === delayedOrder && command.action === 'pay' && outcome.ok) {
        delayedDeliverAt = command.deliverAt;
      }
      if (command.commandId === unknownCommand) {
        if (unknown === 'losing') {
          unknown = outcome.ok ? 'settled' : 'retrying';
          unknownErrorType = outcome.ok ? '(none: the call succeeded)' : (outcome.errorType ?? 'unknown');
          log.push(
            `producer call ${unknownCommand}: its TransactWriteItems committed, then all ${unknownSends} answers to it ` +
              `and ${unknownReadBacks} to the writer's read-back were lost (HTTP 500): the producer failed with ${unknownErrorType}` +
              (outcome.durationMs === undefined ? '' : ` after ${Math.round(outcome.durationMs)} ms`),
          );
        } else if (unknown === 'retrying') {
          unknownRetries++;
          if (outcome.ok) {
            unknown = 'settled';
            log.push(
              `the workload retried ${unknownCommand} with the same requestId: ` +
                (outcome.replayed
                  ? 'the writer returned the first commit (replayed), nothing was written twice'
                  : 'it committed (not a replay)'),
            );
          }
        }
      }
      if (command.commandId === resentCommand && resent === 'lost') {
        resent = 'settled';
        log.push(
          outcome.ok
            ? `producer call ${resentCommand}: the answer to its committed TransactWriteItems was lost once (HTTP 500); ` +
                `the writer's own re-send settled it${outcome.replayed ? ' (replayed)' : ''}, the caller saw success`
            : `producer call ${resentCommand}: the answer to its committed TransactWriteItems was lost once and reached ` +
                `the caller as ${outcome.errorType ?? 'an error'}; the workload retries it with the same requestId`,
        );
      }
    },

    async verdict(stack, doc) {
      const problems: string[] = [];
      const table = stack.ref(stack.resources.outboxTable);
      const snapshot = await readOutbox(doc, table);
      const eventsOf = (id: string) =>
        snapshot.committed
          .filter((e) => e.aggregateKey === `order#${id}`)
          .sort((a, b) => a.sequence - b.sequence);

      // 8. The tracked subscription with a source filter.
      if (synthRefusal === null) {
        problems.push('a tracked subscription with a source filter was accepted at synth');
      } else if (!synthRefusal?.includes('sources')) {
        problems.push(
          `a tracked subscription with a source filter was refused for another reason: ${synthRefusal}`,
        );
      }

      // 7. The delayed pay in the middle of its order.
      const delayed = eventsOf(delayedOrder);
      const applied = (await readBillingEffects(doc, stack.ref(stack.resources.chargesTable)))
        .filter((f) => f.aggregateKey === `order#${delayedOrder}`)
        .sort((a, b) => a.appliedAt - b.appliedAt);
      const pay = applied.find((f) => f.sequence === 2);
      const sequences = applied.map((f) => f.sequence).join(' → ');
      if (delayedDeliverAt === undefined) {
        problems.push(`order ${delayedOrder}: its delayed pay was never committed`);
      } else {
        const held = metricSum(stack.runtime.metrics, 'ServerlessOutbox', 'HeldBehindScheduled');
        log.push(
          `order ${delayedOrder}: pay committed with deliverAt +${PAY_DELAY_SECONDS} s and ship right after it ` +
            `(${held} record${held === 1 ? '' : 's'} held behind a scheduled event, ${sweepsDeferred} sweep${sweepsDeferred === 1 ? '' : 's'} ` +
            `deferred until the relay had seen ship); billing applied ${sequences || 'nothing'}` +
            (pay ? `, pay ${pay.appliedAt - delayedDeliverAt} ms after its deliverAt` : ''),
        );
        if (held === 0) problems.push(`order ${delayedOrder}: ship was never held behind the delayed pay`);
        if (sequences !== '1 → 2 → 3' || delayed.length !== 3) {
          problems.push(
            `order ${delayedOrder}: billing applied ${sequences || 'nothing'} of ${delayed.length} events (expected 1 → 2 → 3 once each)`,
          );
        }
        if (pay && pay.appliedAt < delayedDeliverAt) {
          problems.push(
            `order ${delayedOrder}: billing applied pay ${delayedDeliverAt - pay.appliedAt} ms before its deliverAt`,
          );
        }
      }

      // 9. The lost producer answers.
      const unknownOrder = unknownCommand.split('.')[0] ?? '';
      if (unknown !== 'settled') {
        problems.push(`producer call ${unknownCommand}: the lost-answer fault did not play out (${unknown})`);
      } else if (unknownErrorType !== 'OutboxOutcomeUnknownError') {
        problems.push(
          `producer call ${unknownCommand}: expected OutboxOutcomeUnknownError after the lost answers, got ${unknownErrorType}`,
        );
      }
      const unknownEvents = eventsOf(unknownOrder);
      log.push(
        `order ${unknownOrder} after the lost answers and ${unknownRetries} retr${unknownRetries === 1 ? 'y' : 'ies'}: ` +
          `${unknownEvents.length} events in the outbox (sequences ${unknownEvents.map((e) => e.sequence).join(', ')})`,
      );
      if (unknownEvents.length !== 3) {
        problems.push(`order ${unknownOrder}: ${unknownEvents.length} events in the outbox, expected 3`);
      }
      if (resent !== 'settled')
        log.push(`producer call ${resentCommand}: its answer was never lost (${resent})`);

      // 10. Acknowledgements racing the relay.
      const excludedIds = new Set([...excluded, ...snapshot.quarantinedIds]);
      const notDone = await unacknowledgedPlaced(doc, table, excludedIds);
      const placed = snapshot.committed.filter(
        (e) => e.type === ORDER_PLACED && !excludedIds.has(e.id),
      ).length;
      const raced = heldMarks.filter((m) => m.ackedSeenAt !== undefined).length;
      const acksAlarms = stack.runtime.alarms.fired
        .filter((t) => /Ack/i.test(t.logicalId))
        .map((t) => t.logicalId);
      log.push(
        `ack race: the relay's PUBLISHED marks of ${heldMarks.length} OrderPlaced records were held at its DynamoDB ` +
          `endpoint until billing had acknowledged them (${raced} acknowledged before the relay's mark); afterwards ` +
          `${placed - notDone.length}/${placed} OrderPlaced acks of billing DONE, acks alarms fired: ${acksAlarms.join(', ') || 'none'}`,
      );
      if (heldMarks.length === 0) problems.push('ack race: no PUBLISHED mark of the relay was held');
      else if (raced === 0)
        problems.push('ack race: billing acknowledged none of the held events before their mark');
      if (notDone.length > 0) {
        problems.push(
          `ack race: ${notDone.length} OrderPlaced acks of billing not DONE: ${notDone.slice(0, 5).join(', ')}`,
        );
      }
      if (acksAlarms.length > 0) problems.push(`ack race: acks alarm fired: ${acksAlarms.join(', ')}`);
      return problems;
    },

    describe() {
      return [...log, ...(throttled ? [`${throttled} PublishBatch calls answered Throttling`] : [])];
    },

    async stop() {
      await Promise.allSettled([
        snsProxy?.stop(),
        dynamoProxy?.stop(),
        producerProxy?.stop(),
        relayDynamoProxy?.stop(),
      ]);
    },
  };
}
