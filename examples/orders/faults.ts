/**
 * Fault injection for `npm start -- --faults`. Every fault is injected from outside the functions (at the
 * network boundary through a proxy, by killing an execution environment, or by writing to queues and
 * tables), so the code under test is exactly what deploys:
 * 1. relay crash mid-batch: the relay's execution environment is killed right after a PublishBatch it sent
 *    succeeded, so part of its batch is published and none of it is marked;
 * 2. publish throttling: for a window, SNS answers PublishBatch with `Throttling`;
 * 3. consumer crash after its effect, before its ack: billing's environment is killed right after its
 *    transaction committed; its messages come back (offline, after 5 s instead of the visibility timeout);
 * 4. duplicate deliveries: copies of already delivered events are sent to both subscription queues;
 * 5. poison: an outbox record with a broken envelope (as a buggy foreign writer would store) and a
 *    non-envelope message on a subscription queue;
 * 6. lost stream deliveries: a record in the middle of an aggregate never reaches the relay (the relay publishes
 *    it ahead of the aggregate's next event), and an aggregate's last event never does (the recovery sweeper
 *    republishes it).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  type FaultProxy,
  type LocalEndpoints,
  queryProtocolError,
  startFaultProxy,
} from 'serverless-outbox/local';
import { uuidv7 } from 'serverless-outbox/writer';
import { ORDER_PLACED, ORDER_SHIPPED } from './contract.ts';
import { metricSum, readOutbox } from './observe.ts';
import type { DemoStack } from './synth.ts';

export interface FaultPlan {
  readonly context: Readonly<Record<string, string>>;
  /** Starts the proxies; call before the stack starts. */
  prepare(): Promise<void>;
  endpointsFor(
    functionName: string,
    services: { dynamodb: string; fauxqs: string },
  ): Partial<LocalEndpoints> | undefined;
  dropStreamRecord(record: unknown): boolean;
  /** Learns the running stack's names; call before the workload. */
  attach(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<void>;
  afterWorkload(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<void>;
  /** Called about twice a second while the run settles. */
  tick(stack: DemoStack): Promise<void>;
  /** True once every injected fault has played out (recovered, quarantined or dead-lettered). */
  settled(stack: DemoStack, doc: DynamoDBDocumentClient): Promise<boolean>;
  readonly excludedEventIds: readonly string[];
  describe(): string[];
  stop(): Promise<void>;
}

/** The recovery sweeper runs every minute in AWS; offline, the fault run fires it every few seconds. */
const SWEEP_EVERY_MS = 3000;
const RELAY_CRASH_AFTER_CALLS = 6;
const THROTTLE_FROM_CALL = 3;
const THROTTLE_WINDOW_MS = 1500;
const DUPLICATES_PER_QUEUE = 5;
const DROP_STREAM_INSERT_NUMBER = 25;

export function createFaultPlan(): FaultPlan {
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

  async function crash(functionName: string, what: string): Promise<void> {
    const killed = (await stackRef?.runtime.lambda.crash(functionName)) ?? 0;
    log.push(`${what} (${killed} execution environment${killed === 1 ? '' : 's'} killed)`);
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
      if (functionName === relayName && snsProxy) return { sns: snsProxy.url };
      if (functionName === billingName && dynamoProxy) return { dynamodb: dynamoProxy.url };
      return undefined;
    },

    dropStreamRecord(record) {
      const r = record as { eventName?: string; dynamodb?: { NewImage?: Record<string, { S?: string }> } };
      const image = r.dynamodb?.NewImage;
      if (r.eventName !== 'INSERT' || image?.status?.S !== 'READY') return false;
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
      // A foreign writer's broken record: valid keys, status READY, an envelope that is not JSON.
      const id = uuidv7();
      poisonRecordKey = { pk: 'order#poison', sk: 'EVT#000000000001' };
      await doc.send(
        new PutCommand({
          TableName: stack.ref(stack.resources.outboxTable),
          Item: {
            ...poisonRecordKey,
            id,
            type: ORDER_PLACED,
            source: '/demo/orders',
            sequence: 1,
            status: 'READY',
            envelope: '{"specversion":"1.0", this is not JSON',
            createdAt: Date.now(),
            attempts: 0,
            pendingShard: `P#${id.slice(-1)}`,
            pendingDueAt: Date.now(),
          },
        }),
      );
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
        const item = await doc.send(
          new GetCommand({
            TableName: table,
            Key: { pk: event.aggregateKey, sk: `EVT#${String(event.sequence).padStart(12, '0')}` },
          }),
        );
        const body = String(item.Item?.envelope ?? '');
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
      const recovery = stack.resources.recovery;
      if (!recovery || Date.now() - lastSweep < SWEEP_EVERY_MS) return;
      lastSweep = Date.now();
      await stack.runtime.invoke(recovery, {
        version: '0',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        time: new Date().toISOString(),
        detail: {},
      });
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
      if (poisonRecordKey) {
        const item = await doc.send(
          new GetCommand({ TableName: table, Key: poisonRecordKey, ConsistentRead: true }),
        );
        if (item.Item?.status !== 'QUARANTINED') return false;
      }
      // Both poison paths should have paged: the quarantine alarm and a dead-letter queue alarm.
      const fired = stack.runtime.alarms.fired.map((t) => t.logicalId);
      return fired.some((id) => id.includes('Quarantined')) && fired.some((id) => id.includes('DeadLetter'));
    },

    excludedEventIds: excluded,

    describe() {
      return [...log, ...(throttled ? [`${throttled} PublishBatch calls answered Throttling`] : [])];
    },

    async stop() {
      await Promise.allSettled([snsProxy?.stop(), dynamoProxy?.stop()]);
    },
  };
}
