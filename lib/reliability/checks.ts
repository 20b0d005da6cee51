import { Annotations, type IAspect, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import {
  ACK_EVENT_TYPES_ENV,
  CONSUMER_NAME_ENV,
  DEDUP_TTL_ENV,
} from '../../functions/consumer/dedup-format.ts';
import { booleanOf, type ModelResource, numberOf, objectOf, StackModel } from './stack-model.ts';

/** The reliability rules, by id (see docs/reliability-rules.md). */
export const OutboxReliabilityRule = {
  /** A subscription queue has no DLQ, or its DLQ has no depth alarm. */
  deadLetterQueue: 'Outbox-R1',
  /** A consumer's dedup retention is shorter than the longest time a message can come back. */
  dedupRetention: 'Outbox-R2',
  /** A queue's visibility timeout is below 6 × the timeout of the function reading it. */
  visibilityTimeout: 'Outbox-R3',
  /** An SQS event source mapping does not report partial batch failures. */
  batchItemFailures: 'Outbox-R4',
  /** A standard (non-FIFO) queue is subscribed to an SNS FIFO topic: the order is lost. */
  orderedQueue: 'Outbox-R5',
  /** A tracked consumer's queue is fed through a filter the acknowledgement tracking cannot evaluate. */
  trackedFilter: 'Outbox-R6',
  /** A DynamoDB stream event source mapping has no on-failure destination, or retries without bound. */
  streamFailure: 'Outbox-R7',
} as const;

export type OutboxReliabilityRuleId = (typeof OutboxReliabilityRule)[keyof typeof OutboxReliabilityRule];

const RULE_IDS: readonly string[] = Object.values(OutboxReliabilityRule);

/** A rule switched off for a construct and everything below it, with the reason why. */
export interface OutboxReliabilitySuppression {
  readonly id: OutboxReliabilityRuleId;
  /** Why the rule does not apply here: required, and kept in the cloud assembly's metadata. */
  readonly reason: string;
}

/** Metadata type under which suppressions are recorded on a construct. */
export const RELIABILITY_SUPPRESSIONS_METADATA = 'serverless-outbox:reliability-suppressions';

/** CloudFormation defaults the rules rely on when a property is absent. */
const SQS_DEFAULT_RETENTION_SECONDS = 345_600;
const SQS_DEFAULT_VISIBILITY_SECONDS = 30;
const SQS_MAX_RETENTION_SECONDS = 1_209_600;
const LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3;
const EVENTBRIDGE_DEFAULT_MAX_EVENT_AGE_SECONDS = 86_400;
const VISIBILITY_FACTOR = 6;
const DLQ_DEPTH_METRICS = ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage'];

const QUEUE = 'AWS::SQS::Queue';
const TOPIC = 'AWS::SNS::Topic';
const FUNCTION = 'AWS::Lambda::Function';

/** Stacks already checked, whichever OutboxReliabilityChecks instance (app-level or an Outbox's) got there first. */
const checkedStacks = new WeakSet<Stack>();

interface Finding {
  readonly id: OutboxReliabilityRuleId;
  readonly resource: ModelResource;
  readonly message: string;
}

/**
 * Fails synthesis (an ERROR annotation on the resource) when the stack's CloudFormation resources break one of the
 * outbox's reliability rules, whichever way they were built: `Subscription`, plain aws-cdk-lib constructs, or escape
 * hatches. `Outbox` applies it to its own stack (prop `reliabilityRules`); apply it to the whole app with
 * `Aspects.of(app).add(new OutboxReliabilityChecks())`. Each stack is checked once, on its own resources: a
 * reference to another stack is not followed. Suppress a rule with `OutboxReliabilityChecks.suppress(...)`.
 */
export class OutboxReliabilityChecks implements IAspect {
  /**
   * Switches rules off for `scope` and every construct below it. Each suppression needs a non-empty reason.
   * @throws when a rule id is unknown or a reason is empty
   */
  static suppress(scope: IConstruct, suppressions: readonly OutboxReliabilitySuppression[]): void {
    for (const s of suppressions) {
      if (!RULE_IDS.includes(s.id)) {
        throw new Error(
          `OutboxReliabilityChecks.suppress: unknown rule id "${String(s.id)}"; the rules are ${RULE_IDS.join(', ')}`,
        );
      }
      if (typeof s.reason !== 'string' || s.reason.trim() === '') {
        throw new Error(
          `OutboxReliabilityChecks.suppress: ${s.id} on ${scope.node.path} needs a reason (why the rule does not apply here), but an empty one was provided`,
        );
      }
    }
    scope.node.addMetadata(
      RELIABILITY_SUPPRESSIONS_METADATA,
      suppressions.map((s) => ({ id: s.id, reason: s.reason.trim() })),
    );
  }

  /** The suppression of a rule on this construct or one of its ancestors, if any. */
  static suppressionOf(
    construct: IConstruct,
    id: OutboxReliabilityRuleId,
  ): OutboxReliabilitySuppression | undefined {
    for (const scope of construct.node.scopes) {
      for (const entry of scope.node.metadata) {
        if (entry.type !== RELIABILITY_SUPPRESSIONS_METADATA) continue;
        const found = (entry.data as OutboxReliabilitySuppression[]).find((s) => s.id === id);
        if (found) return found;
      }
    }
    return undefined;
  }

  visit(node: IConstruct): void {
    const stack = [...node.node.scopes].reverse().find((s): s is Stack => Stack.isStack(s));
    if (!stack || checkedStacks.has(stack)) return;
    checkedStacks.add(stack);
    // The check itself runs in the validation phase: after every aspect (whatever its priority or place in the
    // tree) has changed the resources, and without resolving (and caching) lazy values while they still change.
    stack.node.addValidation({
      validate: () => {
        for (const finding of findings(new StackModel(stack))) {
          if (OutboxReliabilityChecks.suppressionOf(finding.resource.construct, finding.id)) continue;
          Annotations.of(finding.resource.construct).addError(`${finding.id}: ${finding.message}`);
        }
        return [];
      },
    });
  }
}

type Json = Record<string, unknown>;

function path(resource: ModelResource): string {
  return resource.construct.node.path;
}

function variablesOf(fn: ModelResource): Json {
  return objectOf(objectOf(fn.properties.Environment)?.Variables) ?? {};
}

function retentionOf(queue: ModelResource): number {
  return numberOf(queue.properties.MessageRetentionPeriod) ?? SQS_DEFAULT_RETENTION_SECONDS;
}

function isFifo(queue: ModelResource): boolean {
  return booleanOf(queue.properties.FifoQueue) === true;
}

function deadLetterTargetOf(queue: ModelResource): unknown {
  return objectOf(queue.properties.RedrivePolicy)?.deadLetterTargetArn;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/** Every rule, over one stack's resources. */
function findings(model: StackModel): Finding[] {
  const result: Finding[] = [];
  const queueOf = (value: unknown) => model.target(value, QUEUE, 'Arn');

  const snsFeeds = model
    .ofType('AWS::SNS::Subscription')
    .filter((s) => s.properties.Protocol === 'sqs')
    .flatMap((s) => {
      const queue = queueOf(s.properties.Endpoint);
      return queue ? [{ subscription: s, queue, topic: model.target(s.properties.TopicArn, TOPIC) }] : [];
    });
  const ruleFeeds = model.ofType('AWS::Events::Rule').flatMap((rule) =>
    (Array.isArray(rule.properties.Targets) ? (rule.properties.Targets as unknown[]) : []).flatMap((t) => {
      const target = objectOf(t);
      const queue = target && queueOf(target.Arn);
      return target && queue ? [{ rule, target, queue }] : [];
    }),
  );
  const mappings = model.ofType('AWS::Lambda::EventSourceMapping');
  const sqsMappings = mappings.flatMap((mapping) => {
    const source = mapping.properties.EventSourceArn;
    const queue = queueOf(source);
    const sqsArn = typeof source === 'string' && /^arn:[^:]+:sqs:/.test(source);
    if (!queue && !sqsArn) return [];
    return [{ mapping, queue, fn: model.target(mapping.properties.FunctionName, FUNCTION) }];
  });

  // R1: subscription queues (fed by SNS or EventBridge, or read by Lambda) need a DLQ with a depth alarm.
  const subscriptionQueues = new Set<ModelResource>([
    ...snsFeeds.map((f) => f.queue),
    ...ruleFeeds.map((f) => f.queue),
    ...sqsMappings.flatMap((m) => (m.queue ? [m.queue] : [])),
  ]);
  const alarms = model.ofType('AWS::CloudWatch::Alarm');
  for (const queue of subscriptionQueues) {
    const dlqArn = deadLetterTargetOf(queue);
    if (dlqArn === undefined) {
      result.push({
        id: OutboxReliabilityRule.deadLetterQueue,
        resource: queue,
        message: `subscription queue ${path(queue)} has no dead-letter queue: set its RedrivePolicy (sqs.Queue \`deadLetterQueue: { queue, maxReceiveCount }\`) so a message that keeps failing is set aside for a redrive instead of retried until it expires.`,
      });
      continue;
    }
    const dlq = queueOf(dlqArn);
    if (dlq && !alarms.some((alarm) => watchesDepthOf(alarm, dlq))) {
      result.push({
        id: OutboxReliabilityRule.deadLetterQueue,
        resource: queue,
        message: `the dead-letter queue ${path(dlq)} of subscription queue ${path(queue)} has no CloudWatch alarm on its depth: add one on AWS/SQS ApproximateNumberOfMessagesVisible (dimension QueueName) with threshold 1, so a dead-lettered event pages someone.`,
      });
    }
  }

  for (const { mapping, queue, fn } of sqsMappings) {
    // R4: without partial batch responses, one failure retries (and may dead-letter) the whole batch.
    const responseTypes = mapping.properties.FunctionResponseTypes;
    if (!Array.isArray(responseTypes) || !responseTypes.includes('ReportBatchItemFailures')) {
      result.push({
        id: OutboxReliabilityRule.batchItemFailures,
        resource: mapping,
        message: `SQS event source mapping ${path(mapping)} does not report partial batch failures: set FunctionResponseTypes ["ReportBatchItemFailures"] (SqsEventSource \`reportBatchItemFailures: true\`) and return batchItemFailures, so one failing message does not send its whole batch back (and to the DLQ).`,
      });
    }
    if (!queue || !fn) continue;
    const env = variablesOf(fn);

    // R3: a visibility timeout below 6 × the function timeout redelivers messages still being processed.
    const visibility = numberOf(queue.properties.VisibilityTimeout) ?? SQS_DEFAULT_VISIBILITY_SECONDS;
    const timeout = numberOf(fn.properties.Timeout) ?? LAMBDA_DEFAULT_TIMEOUT_SECONDS;
    if (visibility < VISIBILITY_FACTOR * timeout) {
      result.push({
        id: OutboxReliabilityRule.visibilityTimeout,
        resource: queue,
        message: `queue ${path(queue)} has a visibility timeout of ${visibility} s, below 6 × the ${timeout} s timeout of the function ${path(fn)} that reads it: raise VisibilityTimeout to at least ${VISIBILITY_FACTOR * timeout} s (or shorten the function timeout), or messages still being processed are delivered again.`,
      });
    }

    // R2: the dedup memory must outlive every way a message can come back.
    const ttl = numberOf(env[DEDUP_TTL_ENV]);
    if (ttl !== undefined) {
      const dlqArn = deadLetterTargetOf(queue);
      const dlq = dlqArn === undefined ? undefined : queueOf(dlqArn);
      const dlqRetention = dlqArn === undefined ? 0 : dlq ? retentionOf(dlq) : SQS_MAX_RETENTION_SECONDS;
      const eventAge = Math.max(
        0,
        ...ruleFeeds
          .filter((f) => f.queue === queue)
          .map(
            (f) =>
              numberOf(objectOf(f.target.RetryPolicy)?.MaximumEventAgeInSeconds) ??
              EVENTBRIDGE_DEFAULT_MAX_EVENT_AGE_SECONDS,
          ),
      );
      const longest = retentionOf(queue) + dlqRetention + eventAge;
      if (ttl < longest) {
        result.push({
          id: OutboxReliabilityRule.dedupRetention,
          resource: fn,
          message: `consumer ${path(fn)} remembers applied events for ${ttl} s (${DEDUP_TTL_ENV}), but a message can come back for ${longest} s (queue ${path(queue)} retention ${retentionOf(queue)} s + DLQ retention ${dlqRetention} s${eventAge > 0 ? ` + EventBridge MaximumEventAgeInSeconds ${eventAge} s` : ''}): raise ${DEDUP_TTL_ENV} (Subscription \`dedupRetention\`) to at least ${longest}, or shorten those retentions, or a redriven event is applied twice.`,
        });
      }
    }

    // R6: acknowledgements are expected by event type alone; any other filter leaves some never acknowledged.
    const tracked = env[ACK_EVENT_TYPES_ENV];
    if (typeof tracked === 'string' && tracked !== '' && CONSUMER_NAME_ENV in env) {
      for (const feed of snsFeeds.filter((f) => f.queue === queue)) {
        const policy = objectOf(feed.subscription.properties.FilterPolicy) ?? {};
        const other = Object.keys(policy).filter((k) => k !== 'type');
        const bodyScope = feed.subscription.properties.FilterPolicyScope === 'MessageBody';
        if (other.length > 0 || (bodyScope && Object.keys(policy).length > 0)) {
          result.push({
            id: OutboxReliabilityRule.trackedFilter,
            resource: feed.subscription,
            message: `SNS subscription ${path(feed.subscription)} feeds the tracked consumer ${path(fn)} (${ACK_EVENT_TYPES_ENV}) through a filter policy on ${bodyScope ? 'the message body' : other.join(', ')}: the relay expects acknowledgements by event type only, so filter on the \`type\` message attribute alone (Subscription \`eventTypes\` / \`eventTypePrefixes\`) or drop tracking.`,
          });
        }
      }
      for (const feed of ruleFeeds.filter((f) => f.queue === queue)) {
        const pattern = objectOf(feed.rule.properties.EventPattern) ?? {};
        const other = Object.keys(pattern).filter((k) => k !== 'detail-type');
        if (other.length > 0) {
          result.push({
            id: OutboxReliabilityRule.trackedFilter,
            resource: feed.rule,
            message: `EventBridge rule ${path(feed.rule)} feeds the tracked consumer ${path(fn)} (${ACK_EVENT_TYPES_ENV}) through an event pattern on ${other.join(', ')}: the relay expects acknowledgements by event type only, so match on detail-type alone (Subscription \`eventTypes\`) or drop tracking.`,
          });
        }
      }
    }
  }

  // R5: an SNS FIFO topic delivering to a standard queue loses the per-aggregate order.
  for (const { subscription, queue, topic } of snsFeeds) {
    if (topic && booleanOf(topic.properties.FifoTopic) === true && !isFifo(queue)) {
      result.push({
        id: OutboxReliabilityRule.orderedQueue,
        resource: queue,
        message: `queue ${path(queue)} is subscribed (${path(subscription)}) to the SNS FIFO topic ${path(topic)} but is a standard queue, which loses the per-aggregate order: make it a FIFO queue (FifoQueue: true, sqs.Queue \`fifo: true\`), or use a rule-based subscription if order does not matter.`,
      });
    }
  }

  // R7: a DynamoDB stream mapping must stop retrying a batch at some point and keep its position when it does.
  for (const mapping of mappings) {
    const source = mapping.properties.EventSourceArn;
    const fromTable =
      model.target(source, 'AWS::DynamoDB::Table', 'StreamArn') ??
      model.target(source, 'AWS::DynamoDB::GlobalTable', 'StreamArn');
    const streamArn = typeof source === 'string' && /^arn:[^:]+:dynamodb:.*\/stream\//.test(source);
    if (!fromTable && !streamArn) continue;
    const problems: string[] = [];
    const onFailure = objectOf(objectOf(mapping.properties.DestinationConfig)?.OnFailure);
    if (onFailure?.Destination === undefined) {
      problems.push(
        'no on-failure destination (DestinationConfig.OnFailure; DynamoEventSource `onFailure: new SqsDlq(queue)`)',
      );
    }
    const retries = numberOf(mapping.properties.MaximumRetryAttempts);
    if (retries === undefined || retries === -1) {
      problems.push('unbounded retries (set MaximumRetryAttempts; DynamoEventSource `retryAttempts`)');
    }
    const age = numberOf(mapping.properties.MaximumRecordAgeInSeconds);
    if (age === undefined || age === -1) {
      problems.push(
        'no maximum record age (set MaximumRecordAgeInSeconds; DynamoEventSource `maxRecordAge`)',
      );
    }
    if (problems.length > 0) {
      result.push({
        id: OutboxReliabilityRule.streamFailure,
        resource: mapping,
        message: `DynamoDB stream event source mapping ${path(mapping)} has ${problems.join(', ')}: a failing batch then blocks its shard until the records expire (24 h) and is lost without a trace.`,
      });
    }
  }
  return result;
}

/** The alarm watches the queue's depth: an AWS/SQS depth metric with dimension QueueName of this queue. */
function watchesDepthOf(alarm: ModelResource, queue: ModelResource): boolean {
  const metrics: Json[] = [alarm.properties];
  if (Array.isArray(alarm.properties.Metrics)) {
    for (const query of alarm.properties.Metrics) {
      const metric = objectOf(objectOf(objectOf(query)?.MetricStat)?.Metric);
      if (metric) metrics.push(metric);
    }
  }
  const names = [
    { 'Fn::GetAtt': [queue.logicalId, 'QueueName'] },
    ...(queue.properties.QueueName === undefined ? [] : [queue.properties.QueueName]),
  ];
  return metrics.some(
    (m) =>
      m.Namespace === 'AWS/SQS' &&
      typeof m.MetricName === 'string' &&
      DLQ_DEPTH_METRICS.includes(m.MetricName) &&
      Array.isArray(m.Dimensions) &&
      m.Dimensions.some((d) => {
        const dimension = objectOf(d);
        return dimension?.Name === 'QueueName' && names.some((n) => sameValue(dimension.Value, n));
      }),
  );
}
