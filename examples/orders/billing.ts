import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  type BusinessWrite,
  CONSUMER_NAME_ENV,
  type ConsumerBaseOptions,
  type EventContext,
  IdempotentConsumer,
  type OutboxEnvelope,
} from 'serverless-outbox/consumer';
import { sha256Hex } from './attachment.ts';
import { type LedgerEntry, logHandling, ORDER_PAID, ORDER_PLACED, ORDER_SHIPPED } from './contract.ts';

/**
 * Demo subscriber `billing` (ordered subscription, ordered mode): records one charge per order.
 * OrderPlaced puts the charge, OrderPaid captures it; both are committed in the same transaction as the
 * consumer's per-order cursor, so each happens exactly once and never out of order.
 */
export {
  BILLING_CONSUMER_NAME,
  CHARGES_TABLE_ENV,
  ORDER_EVENT_PREFIX,
  ORDER_PAID,
  ORDER_PLACED,
  ORDER_SHIPPED,
} from './contract.ts';

export interface OrderPlacedData {
  readonly orderId: string;
  readonly customerId: string;
  readonly amountCents: number;
  /** Large orders only: what the writer stored in S3 and the consumer library fetched back. */
  readonly attachment?: string;
}

const STATE_BY_TYPE: Readonly<Record<string, string>> = {
  [ORDER_PLACED]: 'PENDING',
  [ORDER_PAID]: 'CAPTURED',
  [ORDER_SHIPPED]: 'SETTLED',
};

/**
 * The write billing wants for one order event: one Update of the order's charge that moves its state and
 * appends a ledger entry. No business condition guards it on purpose: idempotency is the consumer's job, and
 * a duplicate application would show as a second ledger entry (the offline runtime's report counts them).
 */
export function billingWrites(
  event: OutboxEnvelope,
  context: EventContext,
  chargesTable: string,
  now: number = Date.now(),
): BusinessWrite[] {
  const state = STATE_BY_TYPE[event.type];
  if (!state) return [];
  const data = (event.data ?? {}) as Partial<OrderPlacedData>;
  const entry: LedgerEntry = {
    eventId: context.idempotencyKey,
    sequence: event.sequence,
    type: event.type,
    appliedAt: now,
  };
  const placed = event.type === ORDER_PLACED;
  // What billing received of a large order's attachment, so the demo report can check it arrived intact.
  const attachment =
    placed && typeof data.attachment === 'string'
      ? { bytes: Buffer.byteLength(data.attachment, 'utf8'), sha256: sha256Hex(data.attachment) }
      : undefined;
  return [
    {
      Update: {
        TableName: chargesTable,
        Key: { orderId: data.orderId ?? event.subject ?? event.partitionkey },
        UpdateExpression: `SET #status = :state, #ledger = list_append(if_not_exists(#ledger, :empty), :entry)${
          placed ? ', customerId = :customer, amountCents = :amount, chargedAt = :time' : ''
        }${attachment ? ', attachmentBytes = :attachmentBytes, attachmentSha256 = :attachmentSha256' : ''}`,
        ExpressionAttributeNames: { '#status': 'status', '#ledger': 'ledger' },
        ExpressionAttributeValues: {
          ':state': state,
          ':empty': [],
          ':entry': [entry],
          ...(placed
            ? {
                ':customer': data.customerId ?? 'unknown',
                ':amount': data.amountCents ?? 0,
                ':time': event.time,
              }
            : {}),
          ...(attachment
            ? { ':attachmentBytes': attachment.bytes, ':attachmentSha256': attachment.sha256 }
            : {}),
        },
      },
    },
  ];
}

export interface BillingConsumerOptions extends ConsumerBaseOptions {
  /** @default process.env.CHARGES_TABLE_NAME */
  readonly chargesTableName?: string;
}

export function createBillingConsumer(options: BillingConsumerOptions = {}): IdempotentConsumer {
  const { chargesTableName, ...base } = options;
  const chargesTable = chargesTableName ?? process.env.CHARGES_TABLE_NAME;
  if (!chargesTable) {
    throw new Error(`CHARGES_TABLE_NAME is not set: deploy billing with the charges table name.`);
  }
  return new IdempotentConsumer({
    ...base,
    // The subscription name (set by Messaging) wins, so the same code can serve a renamed subscription.
    name: base.name ?? process.env[CONSUMER_NAME_ENV] ?? 'billing',
    mode: 'ordered',
    onGap: 'retry',
    handle: (event, context) => {
      logHandling('billing', event, context);
      return billingWrites(event, context, chargesTable);
    },
  });
}

let consumer: IdempotentConsumer | undefined;

/** Lambda entry point (SQS FIFO event source with ReportBatchItemFailures). */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  consumer ??= createBillingConsumer();
  return consumer.handler(event, context);
};
