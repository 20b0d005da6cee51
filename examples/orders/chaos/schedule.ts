/**
 * A chaos run's fault schedule, drawn from its seed before the run starts: which calls fail and how. Calls are
 * counted per function and operation, so the same seed injects the same faults at the same call numbers.
 */
import type { SeededRandom } from 'serverless-outbox/local';
import type { OrderStep } from '../workload.ts';

export interface ChaosSchedule {
  /** Successful PublishBatch calls of the relay after which its environment is killed (published, not marked). */
  readonly relayCrashAfterPublish: ReadonlySet<number>;
  /** PublishBatch call numbers that open a throttling window (SNS answers Throttling), with its length. */
  readonly publishThrottle: ReadonlyMap<number, number>;
  /** Relay PUBLISHED marks held for this long (ms): acks and sweeps race the relay's bookkeeping. */
  readonly relayMarkHold: ReadonlyMap<number, number>;
  /** Billing commits (TransactWriteItems) after which billing is killed (effect applied, message not deleted). */
  readonly billingCrashAfterCommit: ReadonlySet<number>;
  /** Billing commits before which billing is killed (nothing applied). */
  readonly billingCrashBeforeCommit: ReadonlySet<number>;
  /** Notifications claims (lease PutItem) after which notifications is killed: the lease must expire first. */
  readonly notificationsCrashAfterClaim: ReadonlySet<number>;
  /** Consumer DynamoDB calls answered ProvisionedThroughputExceeded (the SDK and the queue retry them). */
  readonly consumerThrottle: ReadonlySet<number>;
  /** Consumer DynamoDB calls held this long (ms) before they go through: slow handlers. */
  readonly slowConsumerCall: ReadonlyMap<number, number>;
  /** Producer commits whose answer is lost this many times after DynamoDB applied it (same requestId). */
  readonly producerLostAnswers: ReadonlyMap<number, number>;
  /** Producer commits after which the producer's environment is killed (committed; the caller retries). */
  readonly producerCrashAfterCommit: ReadonlySet<number>;
  /** Producer commits before which the producer's environment is killed (nothing committed). */
  readonly producerCrashBeforeCommit: ReadonlySet<number>;
  /** READY stream INSERTs (counted in stream order) the relay never sees: the relay or the sweeper must recover. */
  readonly lostStreamInserts: ReadonlySet<number>;
  /** Per order step, delayed delivery in seconds. */
  readonly delayedSteps: ReadonlyMap<string, number>;
  /** Copies of delivered events sent again into each subscription queue, while and after the workload runs. */
  readonly duplicatesPerQueue: number;
  /** Outbox records with a broken envelope (a buggy foreign writer). */
  readonly poisonRecords: number;
  /** Non-envelope messages sent to the notifications queue and to the billing queue. */
  readonly poisonMessages: { readonly notifications: number; readonly billing: number };
  /** How often the recovery sweeper runs, racing the relay, from the start of the workload. */
  readonly sweepEveryMs: number;
  /** Relay stream records (counted in delivery order) delivered once more in a later batch: a shard re-read. */
  readonly duplicatedStreamRecords: ReadonlySet<number>;
  /** Per function role, the offset (ms) of the clock its code reads: clocks drift apart by up to MAX_CLOCK_SKEW_MS. */
  readonly clockSkewMs: Readonly<Record<SkewedRole, number>>;
  /** Orders (by number) placed with a LARGE_ATTACHMENT_BYTES attachment: large events, claim-checked via S3. */
  readonly largeOrders: ReadonlySet<number>;
  /** Orders (by number) whose `pay` goes through a prepared message: prepare → charge → confirm. */
  readonly preparedPays: ReadonlySet<number>;
  /**
   * Prepared pays whose producer is killed between prepare and confirm, and not retried: check-back decides.
   * 'before-charge': killed right after prepare (→ rolled back, never published); 'after-charge': killed right
   * after the charge committed (→ committed, published).
   */
  readonly preparedCrashes: ReadonlyMap<number, PreparedCrash>;
}

export type PreparedCrash = 'before-charge' | 'after-charge';

/** The functions whose clocks the chaos run skews. */
export const SKEWED_ROLES = ['producer', 'relay', 'billing', 'notifications', 'recovery'] as const;
export type SkewedRole = (typeof SKEWED_ROLES)[number];
/** Largest clock offset drawn per function (so two functions differ by up to twice this). */
export const MAX_CLOCK_SKEW_MS = 2_500;

function numbers(random: SeededRandom, count: number, min: number, max: number): Set<number> {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, max - min + 1)) picked.add(random.int(min, max));
  return picked;
}

function withValues(keys: Set<number>, value: () => number): Map<number, number> {
  return new Map([...keys].map((k) => [k, value()]));
}

export function drawSchedule(random: SeededRandom, orders: number): ChaosSchedule {
  const commands = orders * 3;
  const delayedSteps = new Map<string, number>();
  const delayed = random.int(0, Math.min(4, orders));
  for (let i = 0; i < delayed; i++) {
    const order = `o${String(random.int(1, orders)).padStart(5, '0')}`;
    const step: OrderStep = random.pick(['pay', 'ship'] as const);
    delayedSteps.set(`${order}.${step}`, random.int(1, 6));
  }
  return {
    relayCrashAfterPublish: numbers(random, random.int(0, 3), 2, 40),
    publishThrottle: withValues(numbers(random, random.int(0, 3), 1, 60), () => random.int(300, 2500)),
    relayMarkHold: withValues(numbers(random, random.int(0, 6), 1, commands), () => random.int(200, 3000)),
    billingCrashAfterCommit: numbers(random, random.int(0, 2), 1, commands),
    billingCrashBeforeCommit: numbers(random, random.int(0, 2), 1, commands),
    notificationsCrashAfterClaim: numbers(random, random.int(0, 2), 1, commands),
    consumerThrottle: numbers(random, random.int(0, 6), 1, commands * 3),
    slowConsumerCall: withValues(numbers(random, random.int(0, 4), 1, commands * 3), () =>
      random.int(500, 4000),
    ),
    producerLostAnswers: withValues(numbers(random, random.int(0, 3), 1, commands), () => random.int(1, 4)),
    producerCrashAfterCommit: numbers(random, random.int(0, 2), 1, commands),
    producerCrashBeforeCommit: numbers(random, random.int(0, 2), 1, commands),
    lostStreamInserts: numbers(random, random.int(0, 4), 1, commands),
    delayedSteps,
    duplicatesPerQueue: random.int(0, 8),
    poisonRecords: random.int(0, 2),
    poisonMessages: { notifications: random.int(0, 2), billing: random.int(0, 1) },
    sweepEveryMs: random.int(2000, 6000),
    ...drawLaterKinds(random.fork('issue-17'), orders, commands),
  };
}

/** Fault kinds added later, drawn from their own stream so the kinds above keep their schedule for a given seed. */
function drawLaterKinds(
  random: SeededRandom,
  orders: number,
  commands: number,
): Pick<
  ChaosSchedule,
  'duplicatedStreamRecords' | 'clockSkewMs' | 'largeOrders' | 'preparedPays' | 'preparedCrashes'
> {
  const skew = () => (random.chance(0.2) ? 0 : random.int(-MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS));
  const clockSkewMs = Object.fromEntries(SKEWED_ROLES.map((role) => [role, skew()])) as Record<
    SkewedRole,
    number
  >;
  const largeShare = random.int(0, 15) / 100;
  const duplicatedStreamRecords = numbers(random, random.int(0, 5), 1, commands);
  const largeOrders = numbers(random, Math.round(orders * largeShare), 1, orders);
  const preparedPays = numbers(random, Math.round((orders * random.int(0, 40)) / 100), 1, orders);
  const crashed = [...preparedPays].filter(() => random.chance(0.5)).slice(0, random.int(0, 4));
  const preparedCrashes = new Map(
    crashed.map((n) => [n, random.pick(['before-charge', 'after-charge'] as const)] as const),
  );
  return { duplicatedStreamRecords, clockSkewMs, largeOrders, preparedPays, preparedCrashes };
}

/** One line per fault kind, for the run's log. */
export function describeSchedule(schedule: ChaosSchedule): string[] {
  const list = (s: ReadonlySet<number> | ReadonlyMap<number, number>) =>
    s.size === 0 ? 'none' : [...s.keys()].sort((a, b) => a - b).join(',');
  return [
    `relay crash after PublishBatch #${list(schedule.relayCrashAfterPublish)}`,
    `SNS throttling from PublishBatch #${list(schedule.publishThrottle)}`,
    `relay PUBLISHED marks held #${list(schedule.relayMarkHold)}`,
    `billing crash after commit #${list(schedule.billingCrashAfterCommit)}, before commit #${list(schedule.billingCrashBeforeCommit)}`,
    `notifications crash after claim #${list(schedule.notificationsCrashAfterClaim)}`,
    `consumer DynamoDB throttled #${list(schedule.consumerThrottle)}, slow #${list(schedule.slowConsumerCall)}`,
    `producer answers lost #${list(schedule.producerLostAnswers)}, crash after commit #${list(schedule.producerCrashAfterCommit)}, before commit #${list(schedule.producerCrashBeforeCommit)}`,
    `stream INSERTs lost #${list(schedule.lostStreamInserts)}`,
    `delayed steps ${[...schedule.delayedSteps].map(([k, s]) => `${k}+${s}s`).join(',') || 'none'}`,
    `stream records delivered twice #${list(schedule.duplicatedStreamRecords)}`,
    `clock skew ${SKEWED_ROLES.map((role) => `${role} ${schedule.clockSkewMs[role]} ms`).join(', ')}`,
    `large orders (${schedule.largeOrders.size}) #${list(schedule.largeOrders)}`,
    `prepared pays (${schedule.preparedPays.size}) #${list(schedule.preparedPays)}; producer killed ${[...schedule.preparedCrashes].map(([n, when]) => `#${n} ${when}`).join(', ') || 'never'}`,
    `duplicates per queue ${schedule.duplicatesPerQueue}, poison records ${schedule.poisonRecords}, poison messages ${schedule.poisonMessages.notifications}+${schedule.poisonMessages.billing}, sweeper every ${schedule.sweepEveryMs} ms`,
  ];
}
