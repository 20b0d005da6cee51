/**
 * Prepared payments: a `pay` whose business change (a payment record and the order's PAID state) commits apart from
 * its event, as a change in another store or a card charge would: prepare → charge → confirm. A producer that dies
 * in between is answered for by the check-back function (payment-checkback.ts), which decides from the payment
 * record and fences it: once it answered "rolled back", the charge can no longer happen, whatever the clocks say.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { OutboxValidationError, type OutboxWriter } from 'serverless-outbox/writer';
import { ORDER_PAID } from './contract.ts';

export const PaymentStatus = { charged: 'CHARGED', rolledBack: 'ROLLED_BACK' } as const;

/** The answer a producer gives for a prepared payment the check-back rolled back: the order stops here. */
export const PAYMENT_ROLLED_BACK = 'PaymentRolledBack';

export interface PaymentRecord {
  readonly orderId: string;
  readonly status: (typeof PaymentStatus)[keyof typeof PaymentStatus];
  /** The prepared message the payment belongs to. */
  readonly eventId: string;
}

export async function readPayment(
  client: DynamoDBDocumentClient,
  paymentsTable: string,
  orderId: string,
): Promise<PaymentRecord | undefined> {
  const { Item } = await client.send(
    new GetCommand({ TableName: paymentsTable, Key: { orderId }, ConsistentRead: true }),
  );
  return Item as PaymentRecord | undefined;
}

/**
 * The check-back's decision: the payment as it stands, or — when there is none — a ROLLED_BACK record written in
 * its place, so a producer still on its way cannot charge afterwards (its charge is conditional on no record).
 */
export async function decidePayment(
  client: DynamoDBDocumentClient,
  paymentsTable: string,
  orderId: string,
  eventId: string,
): Promise<'committed' | 'rolled-back' | 'unknown'> {
  const { Attributes } = await client.send(
    new UpdateCommand({
      TableName: paymentsTable,
      Key: { orderId },
      UpdateExpression:
        'SET #status = if_not_exists(#status, :rolledBack), eventId = if_not_exists(eventId, :eventId), decidedAt = if_not_exists(decidedAt, :now)',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':rolledBack': PaymentStatus.rolledBack,
        ':eventId': eventId,
        ':now': Date.now(),
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  const payment = Attributes as PaymentRecord;
  // Another message's payment for this order: not ours to decide; the sweeper retries, then quarantines (alarmed).
  if (payment.eventId !== eventId) return 'unknown';
  return payment.status === PaymentStatus.charged ? 'committed' : 'rolled-back';
}

export interface PreparedPayDeps {
  readonly writer: OutboxWriter;
  readonly client: DynamoDBDocumentClient;
  readonly ordersTable: string;
  readonly paymentsTable: string;
}

export type PreparedPayOutcome =
  | { readonly ok: true; readonly eventId: string; readonly sequence: number; readonly replayed: boolean }
  | { readonly ok: false; readonly eventId: string; readonly rolledBack: true };

/** prepare → charge (payment record + order PAID, one transaction of their own) → confirm. */
export async function payPrepared(
  deps: PreparedPayDeps,
  command: {
    readonly orderId: string;
    /** The caller's UUIDv7 for this payment, the same on every retry: the prepared message's id. */
    readonly paymentId: string;
    readonly traceparent?: string;
  },
): Promise<PreparedPayOutcome> {
  const { writer, client } = deps;
  const aggregateKey = `order#${command.orderId}`;
  const order = await client.send(
    new GetCommand({ TableName: deps.ordersTable, Key: { orderId: command.orderId }, ConsistentRead: true }),
  );
  if (!order.Item) throw new OutboxValidationError('orderId', `order ${command.orderId} does not exist`);
  const eventId = command.paymentId;
  const message = await writer.prepare(aggregateKey, {
    id: eventId,
    type: ORDER_PAID,
    subject: command.orderId,
    data: { orderId: command.orderId, amountCents: order.Item.amountCents as number },
    ...(command.traceparent === undefined ? {} : { traceparent: command.traceparent }),
  });
  if ((await charge(deps, command.orderId, eventId, order.Item)) === 'rolled-back') {
    await writer.cancel(message, 'payment rolled back (check-back answered first)');
    return { ok: false, eventId, rolledBack: true };
  }
  // Idempotent: the check-back may have confirmed it already.
  const confirmed = await writer.confirm(message);
  return { ok: true, eventId, sequence: confirmed.sequence, replayed: !confirmed.confirmedNow };
}

/** The payment and the order's PAID state, once: a retry finds its own payment; a fenced one finds ROLLED_BACK. */
async function charge(
  deps: PreparedPayDeps,
  orderId: string,
  eventId: string,
  order: Record<string, unknown>,
): Promise<'charged' | 'rolled-back'> {
  const decided = async (): Promise<'charged' | 'rolled-back' | undefined> => {
    const payment = await readPayment(deps.client, deps.paymentsTable, orderId);
    if (!payment) return undefined;
    if (payment.eventId !== eventId)
      throw new Error(
        `order ${orderId} already has a payment for message ${payment.eventId}, not ${eventId}`,
      );
    return payment.status === PaymentStatus.charged ? 'charged' : 'rolled-back';
  };
  const earlier = await decided();
  if (earlier) return earlier;
  const version = order.version as number;
  try {
    await deps.client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: deps.paymentsTable,
              Item: {
                orderId,
                status: PaymentStatus.charged,
                eventId,
                amountCents: order.amountCents,
                chargedAt: Date.now(),
              },
              ConditionExpression: 'attribute_not_exists(orderId)',
            },
          },
          {
            Update: {
              TableName: deps.ordersTable,
              Key: { orderId },
              UpdateExpression: 'SET #state = :state, version = :next',
              ConditionExpression: 'version = :expected',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':state': 'PAID', ':next': version + 1, ':expected': version },
            },
          },
        ],
      }),
    );
    return 'charged';
  } catch (error) {
    // A lost answer of our own charge, or the check-back's fence: the payment record says which.
    const after = await decided();
    if (after) return after;
    throw error;
  }
}
