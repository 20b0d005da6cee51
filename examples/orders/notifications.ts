import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  CONSUMER_NAME_ENV,
  type ConsumerBaseOptions,
  IdempotentConsumer,
  type LeaseEventContext,
  type OutboxEnvelope,
  outboxConsumer,
} from 'serverless-outbox/consumer';
import { sharedDocumentClient } from 'serverless-outbox/writer';
/**
 * Demo subscriber `notifications` (rule-based subscription, lease mode): tells the customer about their
 * order through an external service, passing the event id as the idempotency key. Written with the middy
 * middleware to show that style.
 */
import { logHandling, NOTIFICATIONS_CONSUMER_NAME } from './contract.ts';
import { NOTIFICATION_SINK_TABLE_ENV, NotificationSink } from './notification-sink.ts';

export { NOTIFICATIONS_CONSUMER_NAME, NOTIFIED_EVENT_TYPES } from './contract.ts';

export async function notify(
  sink: NotificationSink,
  event: OutboxEnvelope,
  context: LeaseEventContext,
): Promise<void> {
  const data = (event.data ?? {}) as { orderId?: string; customerId?: string };
  await sink.send(
    {
      idempotencyKey: context.idempotencyKey,
      recipient: data.customerId ?? `order:${data.orderId ?? event.partitionkey}`,
      template: event.type.slice(event.type.lastIndexOf('.') + 1),
    },
    context.signal,
  );
}

export interface NotificationsConsumerOptions extends ConsumerBaseOptions {
  /** @default a sink on process.env.NOTIFICATION_SINK_TABLE_NAME */
  readonly sink?: NotificationSink;
  readonly leaseMs?: number;
}

export function createNotificationsConsumer(options: NotificationsConsumerOptions = {}): IdempotentConsumer {
  const { sink: givenSink, leaseMs, ...base } = options;
  let sink = givenSink;
  if (!sink) {
    const tableName = process.env[NOTIFICATION_SINK_TABLE_ENV];
    if (!tableName)
      throw new Error(
        `${NOTIFICATION_SINK_TABLE_ENV} is not set: deploy notifications with the sink table name.`,
      );
    sink = new NotificationSink({ tableName, client: base.client ?? sharedDocumentClient() });
  }
  const target = sink;
  return new IdempotentConsumer({
    ...base,
    name: base.name ?? process.env[CONSUMER_NAME_ENV] ?? NOTIFICATIONS_CONSUMER_NAME,
    mode: 'lease',
    ...(leaseMs === undefined ? {} : { leaseMs }),
    handle: (event, context) => {
      logHandling(NOTIFICATIONS_CONSUMER_NAME, event, context);
      return notify(target, event, context);
    },
  });
}

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let wrapped: Handler | undefined;

/** Lambda entry point (standard SQS event source with ReportBatchItemFailures). */
export const handler: Handler = (event, context) => {
  wrapped ??= middy<SQSEvent, SQSBatchResponse>().use(
    outboxConsumer(createNotificationsConsumer()),
  ) as unknown as Handler;
  return wrapped(event, context);
};
