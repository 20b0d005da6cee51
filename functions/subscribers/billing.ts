import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { IdempotentConsumer } from '../consumer/consumer.ts';
import { CONSUMER_NAME_ENV } from '../consumer/dedup-format.ts';
import type { BusinessWrite, ConsumerBaseOptions, EventContext } from '../consumer/types.ts';
import type { OutboxEnvelope } from '../runtime/envelope.ts';

/**
 * Demo subscriber `billing` (ordered subscription, ordered mode): records one charge per order.
 * OrderPlaced puts the charge, OrderPaid captures it; both are committed in the same transaction as the
 * consumer's per-order cursor, so each happens exactly once and never out of order.
 */
export const BILLING_CONSUMER_NAME = 'billing';
export const CHARGES_TABLE_ENV = 'CHARGES_TABLE_NAME';
export const ORDER_EVENT_PREFIX = 'com.example.orders.';
export const ORDER_PLACED = `${ORDER_EVENT_PREFIX}OrderPlaced`;
export const ORDER_PAID = `${ORDER_EVENT_PREFIX}OrderPaid`;

export interface OrderPlacedData {
  readonly orderId: string;
  readonly customerId: string;
  readonly amountCents: number;
}

export interface OrderPaidData {
  readonly orderId: string;
}

/** The writes billing wants for one order event (none for events it does not charge on). */
export function billingWrites(
  event: OutboxEnvelope,
  context: EventContext,
  chargesTable: string,
): BusinessWrite[] {
  if (event.type === ORDER_PLACED) {
    const data = event.data as OrderPlacedData;
    return [
      {
        Put: {
          TableName: chargesTable,
          Item: {
            orderId: data.orderId,
            customerId: data.customerId,
            amountCents: data.amountCents,
            status: 'PENDING',
            eventId: context.idempotencyKey,
            chargedAt: event.time,
          },
          // One charge per order, even if a different event ever claimed the same order.
          ConditionExpression: 'attribute_not_exists(orderId)',
        },
      },
    ];
  }
  if (event.type === ORDER_PAID) {
    const data = event.data as OrderPaidData;
    return [
      {
        Update: {
          TableName: chargesTable,
          Key: { orderId: data.orderId },
          UpdateExpression: 'SET #status = :captured, capturedAt = :time, captureEventId = :eventId',
          ConditionExpression: 'attribute_exists(orderId)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':captured': 'CAPTURED',
            ':time': event.time,
            ':eventId': context.idempotencyKey,
          },
        },
      },
    ];
  }
  return [];
}

export interface BillingConsumerOptions extends ConsumerBaseOptions {
  /** @default process.env.CHARGES_TABLE_NAME */
  readonly chargesTableName?: string;
}

export function createBillingConsumer(options: BillingConsumerOptions = {}): IdempotentConsumer {
  const { chargesTableName, ...base } = options;
  const chargesTable = chargesTableName ?? process.env[CHARGES_TABLE_ENV];
  if (!chargesTable) {
    throw new Error(`${CHARGES_TABLE_ENV} is not set: deploy billing with the charges table name.`);
  }
  return new IdempotentConsumer({
    ...base,
    // The subscription name (set by Messaging) wins, so the same code can serve a renamed subscription.
    name: base.name ?? process.env[CONSUMER_NAME_ENV] ?? BILLING_CONSUMER_NAME,
    mode: 'ordered',
    onGap: 'retry',
    handle: (event, context) => billingWrites(event, context, chargesTable),
  });
}

let consumer: IdempotentConsumer | undefined;

/** Lambda entry point (SQS FIFO event source with ReportBatchItemFailures). */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  consumer ??= createBillingConsumer();
  return consumer.handler(event, context);
};
