/**
 * The fault plan of one chaos run (`npm start -- --chaos --seed N`): the demo's fault mechanisms (proxies at the
 * network boundary, killed execution environments, lost stream records, writes to queues and tables), driven by a
 * schedule drawn from the run's seed instead of a fixed list. Its verdict checks what every run must leave behind:
 * poison quarantined or dead-lettered and alarmed, no record stuck without an alarm, acks DONE or FAILED-and-alarmed.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  type FaultProxy,
  type ProxiedCall,
  type ProxyReply,
  queryProtocolError,
  type SeededRandom,
  startFaultProxy,
} from 'serverless-outbox/local';
import { NOTIFIED_EVENT_TYPES } from '../contract.ts';
import {
  dynamoErrorReply,
  invokeRecoverySweep,
  sleep,
  storedEnvelope,
  writePoisonRecord,
} from '../fault-mechanics.ts';
import type { FaultPlan, ProducerCall } from '../faults.ts';
import { LARGE_ATTACHMENT_BYTES } from '../large-orders.ts';
import { readOutbox } from '../observe.ts';
import type { DemoStack } from '../synth.ts';
import { checkInvariants } from './invariants.ts';
import { checkPreparedPayments } from './prepared-invariants.ts';
import {
  type ChaosSchedule,
  describeSchedule,
  drawSchedule,
  type PreparedCrash,
  SKEWED_ROLES,
} from './schedule.ts';

export interface ChaosPlan extends FaultPlan {
  readonly schedule: ChaosSchedule;
  duplicateStreamRecord(record: unknown): boolean;
  clockSkewMs(functionName: string): number;
  preparedPay(orderId: string): boolean;
  abandons(command: ProducerCall): boolean;
  /** How many of each fault actually fired, e.g. `relay-crash: 2`. */
  counts(): Readonly<Record<string, number>>;
  /** The run's problems so far; `quiet` leaves the log alone (the settle loop asks twice a second). */
  inspect(stack: DemoStack, doc: DynamoDBDocumentClient, quiet: boolean): Promise<string[]>;
}

const lostAnswer = () => dynamoErrorReply('InternalServerError', 500, 'chaos: the response was lost');
const throttled = () =>
  dynamoErrorReply('ProvisionedThroughputExceededException', 400, 'chaos: throughput exceeded');

const orderNumber = (orderId: string) => Number.parseInt(orderId.replace(/^\D+/, ''), 10);

const isPublishedMark = (call: ProxiedCall) =>
  call.operation.endsWith('.UpdateItem') && call.body.includes('"EVT#') && call.body.includes('"PUBLISHED"');

export function createChaosPlan(random: SeededRandom, orders: number): ChaosPlan {
  const schedule = drawSchedule(random, orders);
  const log: string[] = describeSchedule(schedule).map((line) => `schedule: ${line}`);
  const counts: Record<string, number> = {};
  const count = (kind: string) => {
    counts[kind] = (counts[kind] ?? 0) + 1;
  };
  const calls: Record<string, number> = {};
  const nth = (kind: string) => {
    calls[kind] = (calls[kind] ?? 0) + 1;
    return calls[kind];
  };
  const proxies: FaultProxy[] = [];
  const byFunction = new Map<string, { dynamodb?: string; sns?: string }>();
  const poisonIds: string[] = [];
  let services: { dynamodb: string; fauxqs: string } | undefined;
  let stackRef: DemoStack | undefined;
  let docRef: DynamoDBDocumentClient | undefined;
  /** Half the duplicates go out while the workload runs, one every this many producer calls. */
  const duplicateEvery = random.int(10, 40);
  let duplicatesDuringWorkload = Math.floor(schedule.duplicatesPerQueue / 2);
  let names = { relay: '', billing: '', notifications: '', producer: '', recovery: '' };
  /** Roles whose environments started with a skewed clock (a function started before attach() reads the true one). */
  const skewed = new Set<string>();
  /** Prepared pays whose producer this run killed between prepare and confirm (orderId → where). */
  const preparedKilled = new Map<string, PreparedCrash>();

  /**
   * Kills the producer between prepare and confirm of a prepared pay the schedule picked: right after its
   * prepare (a PRE# PutItem), or right after its charge (the TransactWriteItems that writes the CHARGED payment).
   * Undefined when the call is none of those.
   */
  async function preparedCrash(
    call: ProxiedCall,
    forward: () => Promise<ProxyReply>,
  ): Promise<ProxyReply | undefined> {
    const when =
      call.operation.endsWith('.PutItem') && call.body.includes('"PRE#')
        ? 'before-charge'
        : call.operation.endsWith('.TransactWriteItems') && call.body.includes('"CHARGED"')
          ? 'after-charge'
          : undefined;
    if (!when) return undefined;
    const orderId =
      (when === 'before-charge'
        ? /"pk":\{"S":"order#([^"]+)"\}/.exec(call.body)
        : /"orderId":\{"S":"([^"]+)"\}/.exec(call.body))?.[1] ?? '';
    if (schedule.preparedCrashes.get(orderNumber(orderId)) !== when || preparedKilled.has(orderId))
      return undefined;
    const reply = await forward();
    if (reply.status !== 200) return reply;
    preparedKilled.set(orderId, when);
    await crash(
      names.producer,
      `producer-crash-${when === 'before-charge' ? 'after-prepare' : 'after-charge'}`,
    );
    return lostAnswer();
  }
  let throttleUntil = 0;
  /** Producer requestIds whose next answers are lost, with how many are left. */
  const losing = new Map<string, number>();
  let sweeper: ReturnType<typeof setInterval> | undefined;
  let sweeping = false;
  let duplicatesSent = 0;
  const upstream = () => {
    if (!services) throw new Error('chaos: the services are not started yet');
    return services;
  };

  async function crash(functionName: string, kind: string): Promise<void> {
    count(kind);
    await stackRef?.runtime.lambda.crash(functionName);
  }

  /** The consumer-side faults, on one consumer's DynamoDB endpoint. */
  async function consumerProxy(consumer: 'billing' | 'notifications'): Promise<FaultProxy> {
    return startFaultProxy(() => upstream().dynamodb, {
      async around(call, forward) {
        const n = nth('consumer-call');
        if (schedule.consumerThrottle.has(n)) {
          count('consumer-throttled');
          return throttled();
        }
        const hold = schedule.slowConsumerCall.get(n);
        if (hold !== undefined) {
          count('consumer-slow');
          await sleep(hold);
        }
        if (consumer === 'billing' && call.operation.endsWith('.TransactWriteItems')) {
          const commit = nth('billing-commit');
          if (schedule.billingCrashBeforeCommit.has(commit)) {
            await crash(names.billing, 'billing-crash-before-commit');
            return lostAnswer();
          }
          const reply = await forward();
          if (reply.status === 200 && schedule.billingCrashAfterCommit.has(commit))
            await crash(names.billing, 'billing-crash-after-commit');
          return reply;
        }
        if (
          consumer === 'notifications' &&
          call.operation.endsWith('.PutItem') &&
          call.body.includes('"IN_PROGRESS"')
        ) {
          const reply = await forward();
          if (reply.status === 200 && schedule.notificationsCrashAfterClaim.has(nth('notifications-claim')))
            await crash(names.notifications, 'notifications-crash-after-claim');
          return reply;
        }
        return forward();
      },
    });
  }

  async function sweep(stack: DemoStack): Promise<void> {
    if (sweeping) return;
    sweeping = true;
    try {
      await invokeRecoverySweep(stack);
      count('sweeps');
    } finally {
      sweeping = false;
    }
  }

  async function sendDuplicates(
    stack: DemoStack,
    doc: DynamoDBDocumentClient,
    howMany: number,
  ): Promise<void> {
    const table = stack.ref(stack.resources.outboxTable);
    const { committed } = await readOutbox(doc, table);
    const candidates = committed.filter((e) => !poisonIds.includes(e.id));
    for (let i = 0; i < howMany && candidates.length > 0; i++) {
      const event = random.pick(candidates);
      const body = await storedEnvelope(doc, table, event);
      if (!body) continue;
      duplicatesSent++;
      await stack.sqs.send(
        new SendMessageCommand({
          QueueUrl: stack.ref(stack.resources.billingQueue),
          MessageBody: body,
          MessageGroupId: event.aggregateKey,
          MessageDeduplicationId: `${event.id}.chaos-${duplicatesSent}`,
        }),
      );
      // notifications' rule routes only its types there: a copy of another type is no duplicate, it is a new event.
      if ((NOTIFIED_EVENT_TYPES as readonly string[]).includes(event.type))
        await stack.sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.ref(stack.resources.notificationsQueue),
            MessageBody: body,
          }),
        );
      count('duplicate-deliveries');
    }
  }

  const plan: ChaosPlan = {
    schedule,
    counts: () => ({ ...counts }),
    context: {
      'outbox:recoveryStuckAfterSeconds': '10',
      'outbox:recoveryCheckbackAfterSeconds': '10',
    },

    async prepare() {
      const sns = await startFaultProxy(() => upstream().fauxqs, {
        before(call) {
          if (call.operation !== 'PublishBatch') return undefined;
          const window = schedule.publishThrottle.get(nth('publish'));
          if (window !== undefined) throttleUntil = Date.now() + window;
          if (Date.now() < throttleUntil) {
            count('publish-throttled');
            return queryProtocolError('Throttling', 'Rate exceeded');
          }
          return undefined;
        },
        after(call, status) {
          if (call.operation !== 'PublishBatch' || status !== 200) return;
          if (schedule.relayCrashAfterPublish.has(nth('published')))
            void crash(names.relay, 'relay-crash-after-publish');
        },
      });
      const relayDynamo = await startFaultProxy(() => upstream().dynamodb, {
        async around(call, forward) {
          if (!isPublishedMark(call)) return forward();
          const hold = schedule.relayMarkHold.get(nth('mark'));
          if (hold !== undefined) {
            count('relay-mark-held');
            await sleep(hold);
          }
          return forward();
        },
      });
      const producer = await startFaultProxy(() => upstream().dynamodb, {
        async around(call, forward) {
          const killed = await preparedCrash(call, forward);
          if (killed) return killed;
          if (!call.operation.endsWith('.TransactWriteItems')) return forward();
          const requestId = /"requestId":\{"S":"([^"]+)"\}/.exec(call.body)?.[1] ?? '';
          const left = losing.get(requestId);
          if (left !== undefined && left > 0) {
            losing.set(requestId, left - 1);
            const reply = await forward();
            count('producer-answer-lost');
            return reply.status === 200 ? lostAnswer() : reply;
          }
          const n = nth('producer-commit');
          if (schedule.producerCrashBeforeCommit.has(n)) {
            await crash(names.producer, 'producer-crash-before-commit');
            return lostAnswer();
          }
          const reply = await forward();
          if (reply.status !== 200) return reply;
          const lose = schedule.producerLostAnswers.get(n);
          if (lose !== undefined && requestId) {
            losing.set(requestId, lose - 1);
            count('producer-answer-lost');
            return lostAnswer();
          }
          if (schedule.producerCrashAfterCommit.has(n)) {
            await crash(names.producer, 'producer-crash-after-commit');
            return lostAnswer();
          }
          return reply;
        },
      });
      const billing = await consumerProxy('billing');
      const notifications = await consumerProxy('notifications');
      proxies.push(sns, relayDynamo, producer, billing, notifications);
      byFunction.set('relay', { sns: sns.url, dynamodb: relayDynamo.url });
      byFunction.set('producer', { dynamodb: producer.url });
      byFunction.set('billing', { dynamodb: billing.url });
      byFunction.set('notifications', { dynamodb: notifications.url });
    },

    endpointsFor(functionName, started) {
      services = started;
      const role = (Object.keys(names) as (keyof typeof names)[]).find((k) => names[k] === functionName);
      return role ? byFunction.get(role) : undefined;
    },

    duplicateStreamRecord(record) {
      const r = record as { dynamodb?: { NewImage?: Record<string, { S?: string }> } };
      if (r.dynamodb?.NewImage?.status?.S !== 'READY') return false;
      if (!schedule.duplicatedStreamRecords.has(nth('ready-delivered'))) return false;
      count('stream-record-duplicated');
      return true;
    },

    clockSkewMs(functionName) {
      const role = SKEWED_ROLES.find((r) => names[r] === functionName);
      const skew = role ? schedule.clockSkewMs[role] : 0;
      if (role && skew !== 0 && !skewed.has(role)) {
        skewed.add(role);
        count('clock-skewed-functions');
      }
      return skew;
    },

    attachmentBytesFor(orderId) {
      const n = Number.parseInt(orderId.replace(/^\D+/, ''), 10);
      if (!schedule.largeOrders.has(n)) return undefined;
      count('large-orders');
      return LARGE_ATTACHMENT_BYTES;
    },

    preparedPay(orderId) {
      if (!schedule.preparedPays.has(orderNumber(orderId))) return false;
      count('prepared-pays');
      return true;
    },

    abandons(command) {
      return command.action === 'pay' && preparedKilled.has(command.orderId);
    },

    dropStreamRecord(record) {
      const r = record as { eventName?: string; dynamodb?: { NewImage?: Record<string, { S?: string }> } };
      if (r.eventName !== 'INSERT' || r.dynamodb?.NewImage?.status?.S !== 'READY') return false;
      if (!schedule.lostStreamInserts.has(nth('ready-insert'))) return false;
      count('stream-record-lost');
      return true;
    },

    async attach(stack, doc) {
      stackRef = stack;
      docRef = doc;
      names = {
        relay: stack.ref(stack.resources.relay),
        billing: stack.ref(stack.resources.billingConsumer),
        notifications: stack.ref(stack.resources.notificationsConsumer),
        producer: stack.ref(stack.resources.producer),
        recovery: stack.ref(stack.resources.recovery),
      };
      const table = stack.ref(stack.resources.outboxTable);
      for (let i = 1; i <= schedule.poisonRecords; i++) {
        const id = `poison-${random.seed}-${i}`;
        await writePoisonRecord(doc, table, { pk: `order#poison${i}`, id, pendingShard: 'P#0' });
        poisonIds.push(id);
        count('poison-record');
      }
      sweeper = setInterval(() => {
        void sweep(stack).catch(() => undefined);
      }, schedule.sweepEveryMs);
    },

    async afterWorkload(stack, doc) {
      await sendDuplicates(stack, doc, schedule.duplicatesPerQueue - duplicatesSent);
      for (let i = 0; i < schedule.poisonMessages.notifications; i++) {
        await stack.sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.ref(stack.resources.notificationsQueue),
            MessageBody: `{"chaos":"not an outbox envelope ${i}"}`,
          }),
        );
        count('poison-message');
      }
      for (let i = 0; i < schedule.poisonMessages.billing; i++) {
        await stack.sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.ref(stack.resources.billingQueue),
            MessageBody: `{"chaos":"not an outbox envelope ${i}"}`,
            MessageGroupId: 'chaos-poison',
            MessageDeduplicationId: `chaos-poison-${i}`,
          }),
        );
        count('poison-message');
      }
    },

    async tick() {
      // The sweeper runs on its own timer from attach() on, racing the relay during the workload too.
    },

    async settled(stack, doc) {
      return (await plan.inspect(stack, doc, true)).length === 0;
    },

    excludedEventIds: poisonIds,

    delaySecondsFor(orderId, step) {
      return schedule.delayedSteps.get(`${orderId}.${step}`);
    },

    producerCalled(command, outcome) {
      if (!outcome.ok) {
        const type = outcome.errorType ?? 'refused';
        if ((calls[`producer-error ${type}`] ?? 0) < 3)
          log.push(
            `producer call ${command.commandId} failed: ${type} after ${Math.round(outcome.durationMs ?? 0)} ms`,
          );
        nth(`producer-error ${type}`);
      }
      if (
        duplicatesDuringWorkload <= 0 ||
        !stackRef ||
        !docRef ||
        nth('producer-called') % duplicateEvery !== 0
      )
        return;
      duplicatesDuringWorkload--;
      void sendDuplicates(stackRef, docRef, 1).catch(() => undefined);
    },

    verdict: (stack, doc) => plan.inspect(stack, doc, false),

    async inspect(stack, doc, quiet) {
      const check = await checkInvariants(stack, doc, {
        poisonIds,
        poisonMessages: schedule.poisonMessages,
      });
      const prepared = await checkPreparedPayments(stack, doc, preparedKilled);
      if (!quiet) {
        log.push(
          `faults fired: ${Object.entries(counts)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')}`,
        );
        log.push(
          `alarms fired: ${check.alarmsFired.join(', ') || 'none'}; acks ${check.acks} (${check.acksFailed} FAILED)`,
        );
        log.push(prepared.line);
      }
      return [...check.problems, ...prepared.problems];
    },

    describe: () => [...log],

    async stop() {
      if (sweeper) clearInterval(sweeper);
      while (sweeping) await sleep(50);
      await Promise.allSettled(proxies.map((p) => p.stop()));
    },
  };
  return plan;
}
