import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import {
  OutboxConflictError,
  OutboxValidationError,
  OutboxWriter,
  sharedDocumentClient,
} from 'serverless-outbox/writer';
import { attachmentFor } from './attachment.ts';
import { PAYMENTS_TABLE_ENV } from './contract.ts';
import { PAYMENT_ROLLED_BACK, payPrepared } from './prepared-payment.ts';

/** Demo producer: places, pays and ships orders, each change committed with its event in one transaction. */
export type OrderCommand = (
  | {
      readonly action: 'place';
      readonly orderId: string;
      readonly customerId: string;
      readonly amountCents: number;
      readonly lines?: readonly { sku: string; quantity: number }[];
      /** Size of an attachment-like field in the event (over 256 KB: a large event, its data goes to S3). */
      readonly attachmentBytes?: number;
    }
  | {
      readonly action: 'pay' | 'ship';
      readonly orderId: string;
      /** Publish the event no earlier than this (epoch ms): delayed delivery. */
      readonly deliverAt?: number;
      /**
       * `pay` only: pay through a prepared message (prepare → charge → confirm, prepared-payment.ts). The caller's
       * UUIDv7 for the payment, the same on every retry; it becomes the event's id.
       */
      readonly paymentId?: string;
    }
) & {
  /**
   * The caller's id for this command, the same on every retry of it: passed as the writer's `requestId`, so a
   * retry after a lost response returns the first commit instead of writing the events again.
   */
  readonly commandId?: string;
  /**
   * The caller's W3C trace context, recorded in the event's envelope (the writer's `traceparent` input). Without
   * it the writer derives one from the Lambda's X-Ray header, when the function has tracing on.
   */
  readonly traceparent?: string;
};

export interface OrderCommandResult {
  readonly ok: boolean;
  readonly orderId: string;
  readonly version?: number;
  readonly eventIds?: readonly string[];
  /** Commit time of the events (epoch ms), used to measure commit → applied latency. */
  readonly committedAt?: number;
  /** True when an earlier call with the same commandId had committed: this call wrote nothing. */
  readonly replayed?: boolean;
  readonly error?: { readonly name: string; readonly message: string };
}

const EVENT_TYPE_PREFIX = 'com.example.orders.';
const client: DynamoDBDocumentClient = sharedDocumentClient();
let writer: OutboxWriter | undefined;

function ordersTable(): string {
  const name = process.env.ORDERS_TABLE_NAME;
  if (!name) throw new Error('ORDERS_TABLE_NAME is not set: deploy the function with the orders table name.');
  return name;
}

function paymentsTable(): string {
  const name = process.env[PAYMENTS_TABLE_ENV];
  if (!name)
    throw new Error(`${PAYMENTS_TABLE_ENV} is not set: deploy the function with the payments table name.`);
  return name;
}

export async function placeOrder(command: OrderCommand): Promise<OrderCommandResult> {
  writer ??= new OutboxWriter({ client, source: process.env.OUTBOX_EVENT_SOURCE ?? '/demo/orders' });
  const aggregateKey = `order#${command.orderId}`;
  const now = Date.now();
  const requestId = command.commandId === undefined ? {} : { requestId: command.commandId };
  const trace = command.traceparent === undefined ? {} : { traceparent: command.traceparent };
  if (command.action === 'place') {
    const result = await writer.transact({
      aggregate: { key: aggregateKey, expectedVersion: 0 },
      ...requestId,
      writes: [
        {
          Put: {
            TableName: ordersTable(),
            Item: {
              orderId: command.orderId,
              customerId: command.customerId,
              amountCents: command.amountCents,
              state: 'PLACED',
              version: 1,
              placedAt: now,
            },
            ConditionExpression: 'attribute_not_exists(orderId)',
          },
        },
      ],
      events: [
        {
          type: `${EVENT_TYPE_PREFIX}OrderPlaced`,
          subject: command.orderId,
          data: {
            orderId: command.orderId,
            customerId: command.customerId,
            amountCents: command.amountCents,
            lines: command.lines ?? [],
            ...(command.attachmentBytes === undefined
              ? {}
              : { attachment: attachmentFor(command.orderId, command.attachmentBytes) }),
          },
          ...trace,
        },
      ],
    });
    return {
      ok: true,
      orderId: command.orderId,
      version: result.version,
      eventIds: result.events.map((e) => e.id),
      committedAt: now,
      ...(result.replayed ? { replayed: true } : {}),
    };
  }
  if (command.action === 'pay' && command.paymentId !== undefined) {
    const paid = await payPrepared(
      { writer, client, ordersTable: ordersTable(), paymentsTable: paymentsTable() },
      { orderId: command.orderId, paymentId: command.paymentId, ...trace },
    );
    if (!paid.ok)
      return {
        ok: false,
        orderId: command.orderId,
        error: {
          name: PAYMENT_ROLLED_BACK,
          message: `payment ${paid.eventId} was rolled back by check-back`,
        },
      };
    return {
      ok: true,
      orderId: command.orderId,
      version: paid.sequence,
      eventIds: [paid.eventId],
      committedAt: now,
      ...(paid.replayed ? { replayed: true } : {}),
    };
  }
  const order = await client.send(
    new GetCommand({ TableName: ordersTable(), Key: { orderId: command.orderId }, ConsistentRead: true }),
  );
  if (!order.Item) throw new OutboxValidationError('orderId', `order ${command.orderId} does not exist`);
  const version = order.Item.version as number;
  const [state, type] = command.action === 'pay' ? ['PAID', 'OrderPaid'] : ['SHIPPED', 'OrderShipped'];
  const result = await writer.transact({
    aggregate: { key: aggregateKey, expectedVersion: version },
    ...requestId,
    writes: [
      {
        Update: {
          TableName: ordersTable(),
          Key: { orderId: command.orderId },
          UpdateExpression: 'SET #state = :state, version = :next',
          ConditionExpression: 'version = :expected',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':state': state, ':next': version + 1, ':expected': version },
        },
      },
    ],
    events: [
      {
        type: `${EVENT_TYPE_PREFIX}${type}`,
        subject: command.orderId,
        data: { orderId: command.orderId, amountCents: order.Item.amountCents as number },
        ...(command.deliverAt === undefined ? {} : { deliverAt: command.deliverAt }),
        ...trace,
      },
    ],
  });
  return {
    ok: true,
    orderId: command.orderId,
    version: result.version,
    eventIds: result.events.map((e) => e.id),
    committedAt: now,
    ...(result.replayed ? { replayed: true } : {}),
  };
}

/**
 * Lambda entry point. A lost optimistic-concurrency race is answered, not thrown, so callers can reload. Anything
 * else fails the invocation, including OutboxOutcomeUnknownError (the commit may or may not have happened): the
 * caller retries the same command with the same commandId, which is safe.
 */
export const handler = async (command: OrderCommand): Promise<OrderCommandResult> => {
  try {
    return await placeOrder(command);
  } catch (error) {
    if (error instanceof OutboxConflictError || error instanceof OutboxValidationError) {
      return { ok: false, orderId: command.orderId, error: { name: error.name, message: error.message } };
    }
    throw error;
  }
};
