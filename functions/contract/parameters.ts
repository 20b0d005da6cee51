/**
 * SSM parameters an `Outbox` with `parameterPrefix` publishes (`<prefix>/table-arn`, ...): the contract between the
 * construct, `Outbox.fromParameters` and the operator CLI's `--outbox <prefix>`. Dependency-free.
 */
export const OutboxParameterName = {
  tableArn: 'table-arn',
  topicArn: 'topic-arn',
  busArn: 'bus-arn',
  dedupTableArn: 'dedup-table-arn',
  alarmTopicArn: 'alarm-topic-arn',
  /** Only when large events are on. */
  largeEventsBucketArn: 'large-events-bucket-arn',
  largeEventsPrefix: 'large-events-prefix',
} as const;
export type OutboxParameterName = (typeof OutboxParameterName)[keyof typeof OutboxParameterName];

/** `/my-app/outbox` + `table-arn` → `/my-app/outbox/table-arn`. */
export function outboxParameterPath(prefix: string, name: OutboxParameterName): string {
  return `${prefix}/${name}`;
}

/** `arn:aws:dynamodb:eu-west-1:123456789012:table/orders-outbox` → `orders-outbox`; undefined for another ARN. */
export function tableNameFromArn(arn: string): string | undefined {
  return /^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/([^/]+)$/.exec(arn)?.[1];
}

/** `arn:aws:events:eu-west-1:123456789012:event-bus/orders` → `orders`; undefined for another ARN. */
export function busNameFromArn(arn: string): string | undefined {
  return /^arn:[^:]+:events:[^:]*:[^:]*:event-bus\/([^/]+)$/.exec(arn)?.[1];
}
