/**
 * Stack output keys: the contract between the `Outbox` construct (which writes them) and the operator CLI (which
 * finds a deployment by them). Dependency-free so both sides import it.
 */
export const StackOutputKey = {
  tableName: 'OutboxTableName',
  topicArn: 'OutboxTopicArn',
  busName: 'OutboxBusName',
  relayFailureQueueUrl: 'RelayFailureQueueUrl',
} as const;

/** `Sub<Name>QueueUrl` / `Sub<Name>DlqUrl`: one pair per subscription, <Name> from `outputName`. */
export const SUBSCRIPTION_OUTPUT_PATTERN = /^Sub([A-Z][A-Za-z0-9]*?)(QueueUrl|DlqUrl)$/;

/** `order-history` → `OrderHistory`: the <Name> of `Sub<Name>QueueUrl` / `Sub<Name>DlqUrl`. */
export function outputName(subscription: string): string {
  return subscription
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

export function subscriptionQueueOutputKey(subscription: string): string {
  return `Sub${outputName(subscription)}QueueUrl`;
}

export function subscriptionDlqOutputKey(subscription: string): string {
  return `Sub${outputName(subscription)}DlqUrl`;
}
