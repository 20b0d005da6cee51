/** Subscription defaults and validation rules (unresolved tokens are skipped, as aws-cdk's own rules do). */
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { CONSUMER_NAME_PATTERN } from '../../functions/consumer/dedup-format.ts';
import { subscriptionQueueOutputKey } from '../../functions/contract/outputs.ts';
import type {
  SubscriptionConstructProps,
  SubscriptionConsumerProps,
  SubscriptionProps,
} from '../subscription-props.ts';

export const DEFAULT_MAX_RECEIVE_COUNT = 5;
export const DEFAULT_CONSUMER_TIMEOUT = Duration.seconds(30);
export const DEFAULT_BATCH_SIZE = 10;
export const DEFAULT_MAX_CONCURRENCY = 10;
export const DEFAULT_MAX_MESSAGE_AGE = Duration.seconds(60);
export const DEFAULT_MAX_VISIBLE_MESSAGES = 10_000;
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** Output keys taken per stack: two names with one PascalCase form (`order-history`, `order_history`) would collide. */
const outputKeysByStack = new WeakMap<Stack, Map<string, string>>();

export function claimOutputKeys(scope: Construct, name: string): void {
  const stack = Stack.of(scope);
  const taken = outputKeysByStack.get(stack) ?? new Map<string, string>();
  outputKeysByStack.set(stack, taken);
  const key = subscriptionQueueOutputKey(name);
  const holder = taken.get(key);
  if (holder !== undefined) {
    throw new Error(
      `Invalid subscription "${name}": its stack output ${key} is already written by subscription "${holder}" in stack ${stack.stackName}; rename one of them, or give one \`outputs: false\``,
    );
  }
  taken.set(key, name);
}

export const DEFAULT_QUEUE_RETENTION = Duration.days(4);
export const DEAD_LETTER_RETENTION = Duration.days(14);
export const DEFAULT_MAX_EVENT_AGE = Duration.hours(24);

/**
 * The longest a delivered message can come back after it was first sent: its time in the queue, then in the DLQ
 * (whose FIFO clock restarts on the move), then EventBridge's retries before it reached the queue.
 */
export function longestReturnSeconds(props: SubscriptionProps): number {
  const queue = (props.retentionPeriod ?? DEFAULT_QUEUE_RETENTION).toSeconds();
  const eventBridge = props.kind === 'rule' ? (props.maxEventAge ?? DEFAULT_MAX_EVENT_AGE).toSeconds() : 0;
  return queue + DEAD_LETTER_RETENTION.toSeconds() + eventBridge;
}

/** The consumer's timeout: given, else the function's own (a lambda.Function), else the default. */
export function consumerTimeout(consumer: SubscriptionConsumerProps | undefined): Duration {
  if (consumer?.timeout) return consumer.timeout;
  if (consumer?.function instanceof lambda.Function && consumer.function.timeout)
    return consumer.function.timeout;
  return DEFAULT_CONSUMER_TIMEOUT;
}
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/**
 * True when the topic is known to be a standard (non-FIFO) topic. An imported topic whose ARN is a token
 * cannot be checked at synth time and is trusted.
 */
export function isKnownStandardTopic(topic: sns.ITopic): boolean {
  if (topic.fifo) return false;
  return topic instanceof sns.Topic || !Token.isUnresolved(topic.topicArn);
}

function isResolved(value: number | undefined): value is number {
  return value !== undefined && !Token.isUnresolved(value);
}

function rangeRule(
  errors: string[],
  what: string,
  value: number | undefined,
  min: number,
  max: number,
): void {
  if (!isResolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    errors.push(`${what} must be an integer from ${min} to ${max}, but ${value} was provided`);
  }
}

/** Validates subscription props as a list of rules; unresolved tokens are skipped. */
export function validateSubscriptionProps(
  name: string,
  props: SubscriptionConstructProps,
  scopeStack: Stack = Stack.of(props.outbox),
): string[] {
  const errors: string[] = [];
  if (!CONSUMER_NAME_PATTERN.test(name)) {
    errors.push(
      `the subscription name must be 1-64 letters, digits, '.', '_' or '-', but "${name}" was provided`,
    );
  }
  const kind = (props as { kind?: unknown }).kind;
  if (kind !== 'ordered' && kind !== 'rule') {
    errors.push(`kind must be 'ordered' or 'rule', but ${String(kind)} was provided`);
    return errors;
  }
  rangeRule(errors, 'maxReceiveCount', props.maxReceiveCount, 1, 1000);
  const consumer = props.consumer;
  const timeoutSeconds = consumerTimeout(consumer).toSeconds();
  if (consumer) {
    if (!consumer.entry && !consumer.function) {
      errors.push(
        'consumer needs `entry` (a handler file in your project) or `function` (a lambda.IFunction), but neither was provided',
      );
    }
    rangeRule(errors, 'consumer.maxConcurrency', consumer.maxConcurrency, 2, 1000);
    rangeRule(errors, 'consumer.batchSize', consumer.batchSize, 1, kind === 'ordered' ? 10 : 10_000);
    if (kind === 'ordered' && consumer.maxBatchingWindow !== undefined) {
      errors.push(
        'consumer.maxBatchingWindow is not supported by FIFO queues (ordered subscriptions), but it was provided',
      );
    }
    const window = consumer.maxBatchingWindow?.toSeconds();
    if (isResolved(window) && window > 300) {
      errors.push(
        `consumer.maxBatchingWindow must be at most 300 seconds, but ${window} seconds was provided`,
      );
    }
    if (
      kind === 'rule' &&
      isResolved(consumer.batchSize) &&
      consumer.batchSize > 10 &&
      !consumer.maxBatchingWindow
    ) {
      errors.push(
        `consumer.batchSize above 10 needs consumer.maxBatchingWindow, but batchSize ${consumer.batchSize} was provided without one`,
      );
    }
    if (isResolved(timeoutSeconds) && VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds > MAX_VISIBILITY_SECONDS) {
      errors.push(
        `consumer.timeout must be at most ${MAX_VISIBILITY_SECONDS / VISIBILITY_TIMEOUT_FACTOR} seconds so that 6× fits SQS's 12-hour visibility limit, but ${timeoutSeconds} seconds was provided`,
      );
    }
  }
  const visibility = props.visibilityTimeout?.toSeconds();
  if (isResolved(visibility)) {
    if (visibility > MAX_VISIBILITY_SECONDS) {
      errors.push(`visibilityTimeout must be at most 12 hours, but ${visibility} seconds was provided`);
    }
    if (consumer && isResolved(timeoutSeconds) && visibility < VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds) {
      errors.push(
        `visibilityTimeout must be at least 6 × the consumer timeout (${VISIBILITY_TIMEOUT_FACTOR * timeoutSeconds} seconds), but ${visibility} seconds was provided`,
      );
    }
  }
  if (props.dedupRetention !== undefined && props.consumer?.mode === 'single-item') {
    errors.push(
      "dedupRetention does not apply to a 'single-item' consumer (its cursor lives on its effect item and never expires), but it was provided",
    );
  }
  const dedup = props.dedupRetention?.toSeconds();
  const longestReturn = longestReturnSeconds(props);
  if (isResolved(dedup) && isResolved(longestReturn) && dedup < longestReturn) {
    errors.push(
      `dedupRetention must cover the longest time a message can come back (queue retention + 14-day DLQ retention${kind === 'rule' ? ' + maxEventAge' : ''} = ${longestReturn} seconds), but ${dedup} seconds was provided`,
    );
  }
  const retention = props.retentionPeriod?.toSeconds();
  if (isResolved(retention) && (retention < 60 || retention > 14 * 86_400)) {
    errors.push(`retentionPeriod must be from 60 seconds to 14 days, but ${retention} seconds was provided`);
  }
  const age = props.alarms?.maxMessageAge?.toSeconds();
  if (isResolved(age) && age < 1)
    errors.push(`alarms.maxMessageAge must be at least 1 second, but ${age} seconds was provided`);
  const visible = props.alarms?.maxVisibleMessages;
  if (isResolved(visible) && (!Number.isInteger(visible) || visible < 1)) {
    errors.push(`alarms.maxVisibleMessages must be a positive integer, but ${visible} was provided`);
  }
  if (props.tracked) errors.push(...trackedProblems(props, scopeStack));
  if (kind === 'ordered') {
    const topic = props.outbox.topic;
    if (!topic) {
      errors.push(
        'an ordered subscription needs the SNS FIFO topic the relay publishes to, but no topic was provided',
      );
    } else if (isKnownStandardTopic(topic)) {
      errors.push('an ordered subscription needs an SNS FIFO topic, but a standard topic was provided');
    }
    for (const [field, list] of [
      ['eventTypes', props.eventTypes],
      ['eventTypePrefixes', props.eventTypePrefixes],
    ] as const) {
      if (list !== undefined && (list.length === 0 || list.some((t) => typeof t !== 'string' || t === ''))) {
        errors.push(
          `${field} must be a non-empty list of non-empty strings, but ${JSON.stringify(list)} was provided`,
        );
      }
    }
    if (props.filterPolicy?.type && (props.eventTypes || props.eventTypePrefixes)) {
      errors.push(
        'filterPolicy.type conflicts with eventTypes/eventTypePrefixes; use one of them, but both were provided',
      );
    }
  } else {
    if (!props.outbox.bus)
      errors.push(
        'a rule-based subscription needs the EventBridge bus the relay publishes to, but no bus was provided',
      );
    if (!props.eventPattern && !props.eventTypes?.length && !props.sources?.length) {
      errors.push(
        'a rule-based subscription needs eventPattern, eventTypes or sources (EventBridge rejects an empty pattern), but none was provided',
      );
    }
    rangeRule(errors, 'retryAttempts', props.retryAttempts, 0, 185);
    const maxAge = props.maxEventAge?.toSeconds();
    if (isResolved(maxAge) && (maxAge < 60 || maxAge > 86_400)) {
      errors.push(`maxEventAge must be from 60 seconds to 24 hours, but ${maxAge} seconds was provided`);
    }
  }
  return errors;
}

/** A tracked type the subscription's own filter never delivers would never be acknowledged. */
function trackedProblems(props: SubscriptionConstructProps, scopeStack: Stack): string[] {
  const types = props.tracked?.eventTypes;
  if (!Array.isArray(types) || types.length === 0 || types.some((t) => typeof t !== 'string' || t === '')) {
    return [
      `tracked.eventTypes must be a non-empty list of event types, but ${JSON.stringify(types)} was provided`,
    ];
  }
  const errors: string[] = [];
  if (!props.outbox.relay) {
    errors.push(
      'a tracked subscription needs the relay that records acknowledgements, and an imported outbox has none; subscribe with the Outbox construct itself (outbox.subscribe(...)) in its own app',
    );
  } else if (Stack.of(props.outbox) !== scopeStack) {
    errors.push(
      "a tracked subscription must be in the outbox's stack (the relay records acknowledgements with its queue URL, so another stack would make the two stacks depend on each other); use outbox.subscribe(...) for it",
    );
  }
  // The relay records a pending acknowledgement by event type alone: a filter on anything else (source, aggregate,
  // detail) would let it expect an acknowledgement for an event the queue never receives, and the sweeper would
  // then push that event into the queue anyway (#10.2).
  const beyondType =
    props.kind === 'ordered'
      ? Object.keys(props.filterPolicy ?? {}).map((key) => `filterPolicy.${key}`)
      : [
          ...(props.sources?.length ? ['sources'] : []),
          ...Object.keys(props.eventPattern ?? {}).map((key) => `eventPattern.${key}`),
        ];
  if (beyondType.length > 0) {
    errors.push(
      `a tracked subscription may filter on the event type only (eventTypes / eventTypePrefixes), because acknowledgements are expected by type, but ${beyondType.join(', ')} ${beyondType.length === 1 ? 'was' : 'were'} provided; drop \`tracked\` or move the other conditions into the consumer`,
    );
  }
  const exact = props.eventTypes;
  const prefixes = props.kind === 'ordered' ? props.eventTypePrefixes : undefined;
  if (exact || prefixes) {
    const unreachable = types.filter(
      (t) => !(exact ?? []).includes(t) && !(prefixes ?? []).some((p) => t.startsWith(p)),
    );
    if (unreachable.length > 0) {
      errors.push(
        `tracked.eventTypes must be types this subscription receives, but ${unreachable.join(', ')} ${unreachable.length === 1 ? 'is' : 'are'} filtered out`,
      );
    }
  }
  return errors;
}
