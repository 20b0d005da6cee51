/**
 * What the operator CLI acts on, as the outbox's stack outputs describe it. Dependency-free: the CLI and the
 * offline runtime (which writes `.local-runs/deployment.json`) share it.
 */
import { StackOutputKey, SUBSCRIPTION_OUTPUT_PATTERN } from './outputs.ts';

export interface SubscriptionQueues {
  /** Subscription name (kebab-case when discovered from stack outputs: `SubOrderHistoryQueueUrl` → `order-history`). */
  name: string;
  queueUrl: string;
  deadLetterQueueUrl: string;
  /** True for SQS FIFO queues (URL ends in `.fifo`). */
  fifo: boolean;
}

export interface Deployment {
  outboxTableName: string;
  subscriptions: SubscriptionQueues[];
  /** SNS FIFO topic of ordered subscriptions. */
  topicArn?: string;
  /** EventBridge bus of rule-based subscriptions. */
  busName?: string;
  /** The relay's on-failure destination (stream batches that exhausted their retries: metadata only). */
  relayFailureQueueUrl?: string;
  /** Local endpoints by service (`dynamodb`, `sqs`, `sns`, `eventbridge`); present for the offline runtime. */
  endpoints?: Record<string, string>;
}

/** A CloudFormation output, as DescribeStacks returns it. */
export interface StackOutput {
  readonly OutputKey?: string;
  readonly OutputValue?: string;
}

/** The stack lacks an output the outbox writes: it is not an outbox stack, or predates the operator CLI. */
export class IncompleteStackOutputsError extends Error {
  override name = 'IncompleteStackOutputsError';
}

/** Builds a deployment from CloudFormation outputs (`OutboxTableName`, `Sub<Name>QueueUrl`, `Sub<Name>DlqUrl`, ...). */
export function deploymentFromStackOutputs(outputs: readonly StackOutput[], stack: string): Deployment {
  const outbox = outboxFromStackOutputs(outputs);
  if (!outbox) {
    throw new IncompleteStackOutputsError(
      `stack ${stack} has no ${StackOutputKey.tableName} output: it predates the operator CLI or is not a serverless-outbox stack. Update it with \`npx cdk deploy\`.`,
    );
  }
  return {
    ...outbox,
    subscriptions: subscriptionsFromStackOutputs(outputs, stack).map((entry) => entry.subscription),
  };
}

/** The outbox part of a deployment (everything but the subscriptions). */
export type OutboxCoordinates = Omit<Deployment, 'subscriptions' | 'endpoints'>;

/** True when the outputs hold any of the outbox's own outputs (`OutboxTableName`, `OutboxTopicArn`, ...). */
export function hasOutboxOutputs(outputs: readonly StackOutput[]): boolean {
  const keys: readonly string[] = Object.values(StackOutputKey);
  return outputs.some((o) => o.OutputKey !== undefined && o.OutputValue && keys.includes(o.OutputKey));
}

/** The outbox's own outputs; undefined without `OutboxTableName`. */
export function outboxFromStackOutputs(outputs: readonly StackOutput[]): OutboxCoordinates | undefined {
  const byKey = outputsByKey(outputs);
  const outboxTableName = byKey.get(StackOutputKey.tableName);
  if (!outboxTableName) return undefined;
  const topicArn = byKey.get(StackOutputKey.topicArn);
  const busName = byKey.get(StackOutputKey.busName);
  const relayFailureQueueUrl = byKey.get(StackOutputKey.relayFailureQueueUrl);
  return {
    outboxTableName,
    ...(topicArn === undefined ? {} : { topicArn }),
    ...(busName === undefined ? {} : { busName }),
    ...(relayFailureQueueUrl === undefined ? {} : { relayFailureQueueUrl }),
  };
}

/**
 * The subscriptions of one stack's outputs (`Sub<Name>QueueUrl` + `Sub<Name>DlqUrl`), sorted by <Name>; each with
 * its <Name>. A stack of subscriptions needs no outbox outputs (the subscriptions may live in another stack).
 */
export function subscriptionsFromStackOutputs(
  outputs: readonly StackOutput[],
  stack: string,
): { outputName: string; subscription: SubscriptionQueues }[] {
  const subs = new Map<string, { queueUrl?: string; deadLetterQueueUrl?: string }>();
  for (const [key, value] of outputsByKey(outputs)) {
    const match = SUBSCRIPTION_OUTPUT_PATTERN.exec(key);
    if (!match) continue;
    const pascal = match[1] as string;
    const entry = subs.get(pascal) ?? {};
    if (match[2] === 'QueueUrl') entry.queueUrl = value;
    else entry.deadLetterQueueUrl = value;
    subs.set(pascal, entry);
  }
  const subscriptions: { outputName: string; subscription: SubscriptionQueues }[] = [];
  for (const [pascal, entry] of [...subs].sort(([a], [b]) => a.localeCompare(b))) {
    if (!entry.queueUrl || !entry.deadLetterQueueUrl) {
      const missing = entry.queueUrl ? `Sub${pascal}DlqUrl` : `Sub${pascal}QueueUrl`;
      throw new IncompleteStackOutputsError(
        `stack ${stack} has an incomplete subscription "${pascal}": output ${missing} is missing. Every subscription needs both Sub<Name>QueueUrl and Sub<Name>DlqUrl; redeploy the stack.`,
      );
    }
    subscriptions.push({
      outputName: pascal,
      subscription: {
        name: kebabCase(pascal),
        queueUrl: entry.queueUrl,
        deadLetterQueueUrl: entry.deadLetterQueueUrl,
        fifo: isFifoUrl(entry.queueUrl),
      },
    });
  }
  return subscriptions;
}

function outputsByKey(outputs: readonly StackOutput[]): Map<string, string> {
  const byKey = new Map<string, string>();
  for (const o of outputs) if (o.OutputKey && o.OutputValue) byKey.set(o.OutputKey, o.OutputValue);
  return byKey;
}

/** `OrderHistory` → `order-history`, `Billing` → `billing`, `SmsV2` → `sms-v2`. */
export function kebabCase(pascal: string): string {
  return pascal
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

export function isFifoUrl(queueUrl: string): boolean {
  return queueUrl.endsWith('.fifo');
}
