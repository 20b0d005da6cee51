import { uuidv7 } from 'serverless-outbox/writer';

/**
 * The demo workload: orders placed, paid and shipped at a steady rate by several concurrent producers,
 * so several aggregates are in flight with several events each.
 */

export type OrderStep = 'place' | 'pay' | 'ship';
export const ORDER_STEPS: readonly OrderStep[] = ['place', 'pay', 'ship'];

export interface OrderCommand {
  readonly action: OrderStep;
  readonly orderId: string;
  /** Stable across the workload's retries of this command: the producer's `requestId`. */
  readonly commandId: string;
  readonly customerId?: string;
  readonly amountCents?: number;
  /** `place`: size of an attachment-like field in the event's data (a large event when over 256 KB). */
  readonly attachmentBytes?: number;
  /** Delayed delivery of the command's event (epoch ms). */
  readonly deliverAt?: number;
  /** `pay` through a prepared message (prepare → charge → confirm): the payment's UUIDv7, kept across retries. */
  readonly paymentId?: string;
}

export interface WorkloadOptions {
  readonly orders: number;
  /** Commands per second across all producers. */
  readonly ratePerSecond: number;
  /** Concurrent producers (in-flight invocations). */
  readonly concurrency: number;
  /**
   * Invokes the producer; resolves true when the command committed, 'abandoned' when the order ends here on purpose
   * (a prepared payment left to check-back, or rolled back by it): no retry, no next step, not a failure.
   */
  readonly invoke: (command: OrderCommand) => Promise<boolean | 'abandoned'>;
  readonly onCommitted?: (command: OrderCommand) => void;
  /** Tries per command before the workload gives up on that order. @default 5 */
  readonly maxTries?: number;
  readonly orderIdPrefix?: string;
  /**
   * Seconds to delay the delivery of this step's event (none when undefined). The aggregate's next step is then
   * committed right after it, while the delayed event is still held.
   */
  readonly delaySecondsFor?: (orderId: string, step: OrderStep) => number | undefined;
  /** Bytes of the attachment an order's `place` carries (none when undefined). */
  readonly attachmentBytesFor?: (orderId: string) => number | undefined;
  /** Whether an order's (undelayed) `pay` goes through a prepared message. */
  readonly preparedPay?: (orderId: string) => boolean;
}

export interface WorkloadResult {
  readonly commandsCommitted: number;
  readonly commandsFailed: number;
  /** Orders that ended early on purpose (see `invoke`). */
  readonly commandsAbandoned: number;
  readonly durationMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const started = Date.now();
  const prefix = options.orderIdPrefix ?? 'o';
  const queue: { orderId: string; step: number }[] = Array.from({ length: options.orders }, (_, i) => ({
    orderId: `${prefix}${String(i + 1).padStart(5, '0')}`,
    step: 0,
  }));
  const interval = 1000 / options.ratePerSecond;
  let nextSlot = Date.now();
  let committed = 0;
  let failed = 0;
  let abandoned = 0;
  let inFlight = 0;

  async function takeSlot(): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, nextSlot);
    nextSlot = slot + interval;
    if (slot > now) await sleep(slot - now);
  }

  async function producer(): Promise<void> {
    for (;;) {
      const next = queue.shift();
      if (!next) {
        // Another producer may still push this order's next step.
        if (inFlight === 0) return;
        await sleep(5);
        continue;
      }
      inFlight++;
      try {
        const step = ORDER_STEPS[next.step] ?? 'place';
        const n = Number.parseInt(next.orderId.slice(prefix.length), 10);
        const commandId = `${next.orderId}.${step}`;
        const delaySeconds = options.delaySecondsFor?.(next.orderId, step);
        const attachmentBytes = step === 'place' ? options.attachmentBytesFor?.(next.orderId) : undefined;
        const prepared =
          step === 'pay' && delaySeconds === undefined && options.preparedPay?.(next.orderId) === true;
        const command: OrderCommand =
          step === 'place'
            ? {
                action: 'place',
                orderId: next.orderId,
                commandId,
                customerId: `c-${n % 50}`,
                amountCents: 1000 + (n % 9000),
                ...(attachmentBytes === undefined ? {} : { attachmentBytes }),
              }
            : {
                action: step,
                orderId: next.orderId,
                commandId,
                ...(delaySeconds === undefined ? {} : { deliverAt: Date.now() + delaySeconds * 1000 }),
                ...(prepared ? { paymentId: uuidv7() } : {}),
              };
        let ok: boolean | 'abandoned' = false;
        for (let attempt = 1; attempt <= (options.maxTries ?? 5) && !ok; attempt++) {
          await takeSlot();
          ok = await options.invoke(command).catch(() => false);
        }
        if (ok === 'abandoned') {
          abandoned++;
        } else if (ok) {
          committed++;
          options.onCommitted?.(command);
          if (next.step + 1 < ORDER_STEPS.length) {
            const following = { orderId: next.orderId, step: next.step + 1 };
            // After a delayed event, its aggregate's next step goes first: committed while the delayed one is held.
            if (command.deliverAt === undefined) queue.push(following);
            else queue.unshift(following);
          }
        } else {
          failed++;
        }
      } finally {
        inFlight--;
      }
    }
  }

  await Promise.all(Array.from({ length: options.concurrency }, () => producer()));
  return {
    commandsCommitted: committed,
    commandsFailed: failed,
    commandsAbandoned: abandoned,
    durationMs: Date.now() - started,
  };
}
