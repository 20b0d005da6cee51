import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * Stand-in for an external notification service (e-mail/SMS provider) that deduplicates on an idempotency
 * key, as good providers do. It records EVERY call: one item per idempotency key with a `calls` counter,
 * so a side effect that ran twice is visible (`calls > 1`) even though the notification is "sent" once.
 */
import { SINK_KEY } from './contract.ts';

export { NOTIFICATION_SINK_TABLE_ENV, SINK_KEY } from './contract.ts';

export interface NotificationRequest {
  readonly idempotencyKey: string;
  readonly recipient: string;
  readonly template: string;
}

export interface NotificationReceipt {
  /** True only for the first call with this key: the notification went out. */
  readonly delivered: boolean;
  /** Calls seen for this key so far, this one included. */
  readonly calls: number;
}

export class NotificationSink {
  readonly tableName: string;
  readonly #client: DynamoDBDocumentClient;
  readonly #now: () => number;

  constructor(options: { tableName: string; client: DynamoDBDocumentClient; now?: () => number }) {
    this.tableName = options.tableName;
    this.#client = options.client;
    this.#now = options.now ?? Date.now;
  }

  async send(request: NotificationRequest, signal?: AbortSignal): Promise<NotificationReceipt> {
    const now = this.#now();
    const result = await this.#client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [SINK_KEY]: request.idempotencyKey },
        UpdateExpression:
          'SET recipient = if_not_exists(recipient, :recipient), template = if_not_exists(template, :template), ' +
          'firstCallAt = if_not_exists(firstCallAt, :now), lastCallAt = :now ADD calls :one',
        ExpressionAttributeValues: {
          ':recipient': request.recipient,
          ':template': request.template,
          ':now': now,
          ':one': 1,
        },
        ReturnValues: 'ALL_NEW',
      }),
      signal ? { abortSignal: signal } : {},
    );
    const calls = Number(result.Attributes?.calls ?? 1);
    return { delivered: calls === 1, calls };
  }
}
