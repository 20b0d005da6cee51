import type { MiddlewareObj } from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { IdempotentConsumer } from './consumer.ts';
import type { ConsumerOptions } from './types.ts';

/**
 * middy middleware: processes the SQS batch idempotently and makes the handler's response the
 * `{ batchItemFailures }` that ReportBatchItemFailures expects.
 *
 * The per-event logic goes in the options (`handle`), not in the base handler: use `middy()` without a
 * handler, or with one that returns nothing (its return value is replaced). The batch is processed in
 * `before` and the response set in `after`, so middlewares registered earlier (logger context injection,
 * Powertools `logMetrics`, tracing) still run their `after` hooks.
 *
 * ```ts
 * export const handler = middy<SQSEvent, SQSBatchResponse>()
 *   .use(injectLambdaContext(logger))
 *   .use(outboxConsumer({ name: 'billing', mode: 'ordered', handle: chargeOrder }));
 * ```
 */
export function outboxConsumer<TData = unknown>(
  options: ConsumerOptions<TData> | IdempotentConsumer<TData>,
): MiddlewareObj<SQSEvent, SQSBatchResponse, Error, Context> {
  const consumer = options instanceof IdempotentConsumer ? options : new IdempotentConsumer(options);
  const responses = new WeakMap<object, SQSBatchResponse>();
  return {
    name: 'outboxConsumer',
    before: async (request) => {
      responses.set(request, await consumer.handler(request.event, request.context));
    },
    after: async (request) => {
      const response = responses.get(request);
      if (response) request.response = response;
    },
  };
}
