/**
 * Names shared by the demo subscribers and the CDK code that deploys them. Dependency-free so `lib/` can
 * import it without pulling in the AWS SDK.
 */
export const BILLING_CONSUMER_NAME = 'billing';
export const CHARGES_TABLE_ENV = 'CHARGES_TABLE_NAME';
export const ORDER_EVENT_PREFIX = 'com.example.orders.';
export const ORDER_PLACED = `${ORDER_EVENT_PREFIX}OrderPlaced`;
export const ORDER_PAID = `${ORDER_EVENT_PREFIX}OrderPaid`;
export const ORDER_SHIPPED = `${ORDER_EVENT_PREFIX}OrderShipped`;

/** The payments table (key `orderId`) of prepared payments: the producer's business change outside the outbox. */
export const PAYMENTS_TABLE_ENV = 'PAYMENTS_TABLE_NAME';

export const NOTIFICATIONS_CONSUMER_NAME = 'notifications';
export const NOTIFIED_EVENT_TYPES = [ORDER_PLACED, ORDER_SHIPPED] as const;
export const NOTIFICATION_SINK_TABLE_ENV = 'NOTIFICATION_SINK_TABLE_NAME';
/** Partition key of the sink table. */
export const SINK_KEY = 'idempotencyKey';

/** One entry of a charge's `ledger`: every application of an order event's effect, in commit order. */
export interface LedgerEntry {
  readonly eventId: string;
  readonly sequence: number;
  readonly type: string;
  /** Epoch ms when the consumer committed the effect. */
  readonly appliedAt: number;
}

/**
 * One JSON log line per handled event with the producer's trace id (the consumer library's context gives it): how a
 * trace is followed from the producer to this consumer (the offline report looks for it). Metadata only, no payload.
 */
export function logHandling(
  consumer: string,
  event: { readonly id: string; readonly type: string },
  context: { readonly traceId?: string },
): void {
  console.log(
    JSON.stringify({
      level: 'INFO',
      message: 'handling event',
      service: consumer,
      eventId: event.id,
      type: event.type,
      ...(context.traceId ? { traceId: context.traceId } : {}),
    }),
  );
}
