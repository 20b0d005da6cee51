/**
 * Offline IAM for one runtime: the gateway in front of the services, each function's credentials, pollers that act
 * as the function's role, and the service-to-service deliveries (SNS → SQS, EventBridge → SQS, CloudWatch → SNS)
 * checked against the resource and key policies. Hooks into startOfflineRuntime through runtime options.
 */
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SNSClient, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { MetricStore } from '../runtime/metrics.ts';
import type { LocalStackRuntime, PollerClients } from '../runtime/runtime.ts';
import type { ScheduleDefinition, ScheduleTarget } from '../runtime/schedules.ts';
import { isRecord, resolveIntrinsics } from '../runtime/template.ts';
import { type DeniedCall, type DroppedDelivery, IamAuthorizer } from './authorizer.ts';
import { type IamGateway, startIamGateway } from './gateway.ts';
import type { MappingFacts } from './requests.ts';
import { iamModelFromStacks } from './template-policies.ts';

/** What the run report lists about IAM. */
export interface IamReport {
  readonly enforced: boolean;
  readonly deniedCalls: readonly DeniedCall[];
  readonly droppedDeliveries: readonly DroppedDelivery[];
  readonly deniedCount: number;
  readonly droppedCount: number;
  /** Policies or calls the gateway could not check (printed at start-up). */
  readonly notChecked: readonly string[];
}

/** A delivery AWS would refuse: not retried, as EventBridge does not retry a target that refuses it. */
export class DeliveryDeniedError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(`${message} (the target's resource policy must allow the service: fix the policy in the stack)`);
    this.name = 'DeliveryDeniedError';
  }
}

export interface OfflineIam {
  readonly gateway: IamGateway;
  readonly authorizer: () => IamAuthorizer | undefined;
  /** The access key id of a function: its name. */
  accessKeyIdFor(functionName: string): string;
  clientsFor(functionName: string): PollerClients;
  /** Builds the policy model and checks the SNS → SQS subscriptions (refused ones are removed, as AWS never delivers them). */
  beforeStart(stacks: readonly LocalStackRuntime[]): Promise<void>;
  authorizeAlarmAction(alarmArn: string, topicArn: string): boolean;
  /** A rule's schedule → Lambda: the function's resource policy (AWS::Lambda::Permission) must allow the rule. */
  authorizeSchedule(definition: ScheduleDefinition, target: ScheduleTarget): boolean;
  /** EventBridge → SQS: throws DeliveryDeniedError when the queue policy refuses the rule. */
  checkRuleDelivery(ruleArn: string, ruleName: string, queueArn: string): void;
  attachMetrics(metrics: MetricStore): void;
  report(): IamReport;
  stop(): Promise<void>;
}

export async function startOfflineIam(opts: {
  readonly services: {
    readonly dynamodb: string;
    readonly fauxqs: string;
    readonly eventbridge: () => string;
    readonly lambda: () => string;
  };
  readonly region: string;
  readonly accountId: string;
  readonly log: (line: string) => void;
}): Promise<OfflineIam> {
  const { region, accountId } = opts;
  let authorizer: IamAuthorizer | undefined;
  let metrics: MetricStore | undefined;
  const partitionKeys = new Map<string, { table: string; indexes: Record<string, string> }>();
  const queueArns = new Map<string, string>();
  /** Topic ARN → the SQS subscriptions its topic may not deliver to. */
  const refusedSubscriptions = new Map<string, { queueArn: string; message: string }[]>();
  const notChecked: string[] = [];
  const facts: Omit<MappingFacts, 'streamOfIterator'> = {
    region,
    accountId,
    partitionKeys,
    queueArn: (url) => queueArns.get(url),
  };
  const countRefusedFanOut = (topicArn: string) => {
    for (const refused of refusedSubscriptions.get(topicArn) ?? []) {
      authorizer?.recordDropped({
        principal: 'sns.amazonaws.com',
        action: 'sqs:SendMessage',
        resource: refused.queueArn,
        message: refused.message,
        path: 'sns -> sqs',
        source: topicArn,
      });
      metrics?.put({
        namespace: 'AWS/SNS',
        metricName: 'NumberOfNotificationsFailed',
        dimensions: { TopicName: topicArn.split(':').pop() ?? topicArn },
        value: 1,
        unit: 'Count',
        timestamp: Date.now(),
      });
    }
  };
  const gateway = await startIamGateway({
    upstreams: {
      dynamodb: () => opts.services.dynamodb,
      fauxqs: () => opts.services.fauxqs,
      eventbridge: opts.services.eventbridge,
      lambda: opts.services.lambda,
    },
    authorizer: () => authorizer,
    facts,
    log: (line) => opts.log(`[iam] ${line}`),
    onForwarded: (requests, status) => {
      if (status !== 200) return;
      for (const r of requests) if (r.action === 'sns:Publish') countRefusedFanOut(r.resource);
    },
  });

  const clients = new Map<string, Required<PollerClients>>();
  const credentialsOf = (functionName: string) => ({ accessKeyId: functionName, secretAccessKey: 'local' });

  return {
    gateway,
    authorizer: () => authorizer,
    accessKeyIdFor: (functionName) => functionName,
    clientsFor(functionName) {
      let found = clients.get(functionName);
      if (!found) {
        const credentials = credentialsOf(functionName);
        found = {
          sqs: new SQSClient({ endpoint: gateway.urls.fauxqs, region, credentials }),
          sns: new SNSClient({ endpoint: gateway.urls.fauxqs, region, credentials }),
          streams: new DynamoDBStreamsClient({ endpoint: gateway.urls.dynamodb, region, credentials }),
        };
        clients.set(functionName, found);
      }
      return found;
    },
    async beforeStart(stacks) {
      const model = iamModelFromStacks(stacks.map((s) => ({ ctx: s.ctx, registry: s.registry })));
      for (const n of model.notes) notChecked.push(`${n.logicalId}: ${n.note}`);
      for (const stack of stacks) {
        for (const queue of stack.registry.ofType('AWS::SQS::Queue'))
          if (typeof queue.attributes.Arn === 'string') queueArns.set(queue.ref, queue.attributes.Arn);
        for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
          if (resource.Type !== 'AWS::DynamoDB::Table' && resource.Type !== 'AWS::DynamoDB::GlobalTable')
            continue;
          const name = stack.registry.ref(logicalId);
          if (!name) continue;
          const hashOf = (schema: unknown) =>
            String(
              (Array.isArray(schema) ? schema : []).find((k: unknown) => isRecord(k) && k.KeyType === 'HASH')
                ?.AttributeName ?? '',
            );
          const props = resource.Properties ?? {};
          const indexes: Record<string, string> = {};
          for (const index of [
            ...((props.GlobalSecondaryIndexes as unknown[]) ?? []),
            ...((props.LocalSecondaryIndexes as unknown[]) ?? []),
          ])
            if (isRecord(index))
              indexes[String(resolveIntrinsics(index.IndexName, stack.ctx))] = hashOf(index.KeySchema);
          partitionKeys.set(name, { table: hashOf(props.KeySchema), indexes });
        }
      }
      authorizer = new IamAuthorizer(model, { region, accountId });
      for (const [fn, role] of model.functionRoles)
        if (!model.rolePolicies.has(role))
          notChecked.push(`${fn}: its role ${role} is not defined in the stacks: its calls are not checked`);
      const sns = new SNSClient({
        endpoint: opts.services.fauxqs,
        region,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      try {
        for (const stack of stacks) {
          for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
            if (resource.Type !== 'AWS::SNS::Subscription') continue;
            const props = resolveIntrinsics(resource.Properties ?? {}, {
              ...stack.ctx,
              resourceId: logicalId,
            }) as Record<string, unknown>;
            if (props.Protocol !== 'sqs') continue;
            const topicArn = String(props.TopicArn);
            const queueArn = String(props.Endpoint);
            const decision = authorizer.authorizeDelivery({
              service: 'sns.amazonaws.com',
              action: 'sqs:SendMessage',
              resource: queueArn,
              sourceArn: topicArn,
              path: 'sns -> sqs',
              record: false,
            });
            if (decision.allowed) continue;
            const subscriptionArn = stack.registry.ref(logicalId);
            if (subscriptionArn) await sns.send(new UnsubscribeCommand({ SubscriptionArn: subscriptionArn }));
            const list = refusedSubscriptions.get(topicArn) ?? [];
            list.push({ queueArn, message: decision.message ?? '' });
            refusedSubscriptions.set(topicArn, list);
            opts.log(
              `[iam] ${logicalId}: ${topicArn} may not deliver to ${queueArn} (queue policy): its messages are dropped, as on AWS`,
            );
          }
        }
      } finally {
        sns.destroy();
      }
    },
    authorizeAlarmAction(alarmArn, topicArn) {
      if (!authorizer) return true;
      const decision = authorizer.authorizeDelivery({
        service: 'cloudwatch.amazonaws.com',
        action: 'sns:Publish',
        resource: topicArn,
        sourceArn: alarmArn,
        path: 'cloudwatch -> sns',
      });
      if (decision.allowed) countRefusedFanOut(topicArn);
      return decision.allowed;
    },
    authorizeSchedule(definition, target) {
      // EventBridge Scheduler invokes with its own execution role: not modelled (README).
      if (!authorizer || definition.kind !== 'events-rule') return true;
      const functionArn = `arn:aws:lambda:${region}:${accountId}:function:${target.functionName}`;
      const decision = authorizer.authorizeDelivery({
        service: 'events.amazonaws.com',
        action: 'lambda:InvokeFunction',
        resource: functionArn,
        sourceArn: definition.arn,
        path: 'events -> lambda',
      });
      if (!decision.allowed)
        metrics?.put({
          namespace: 'AWS/Events',
          metricName: 'FailedInvocations',
          dimensions: { RuleName: definition.name },
          value: 1,
          unit: 'Count',
          timestamp: Date.now(),
        });
      return decision.allowed;
    },
    checkRuleDelivery(ruleArn, ruleName, queueArn) {
      if (!authorizer) return;
      const decision = authorizer.authorizeDelivery({
        service: 'events.amazonaws.com',
        action: 'sqs:SendMessage',
        resource: queueArn,
        sourceArn: ruleArn,
        path: 'events -> sqs',
      });
      if (decision.allowed) return;
      metrics?.put({
        namespace: 'AWS/Events',
        metricName: 'FailedInvocations',
        dimensions: { RuleName: ruleName },
        value: 1,
        unit: 'Count',
        timestamp: Date.now(),
      });
      throw new DeliveryDeniedError(decision.message ?? `events.amazonaws.com may not send to ${queueArn}`);
    },
    attachMetrics(store) {
      metrics = store;
    },
    report() {
      return {
        enforced: true,
        deniedCalls: authorizer?.deniedCalls ?? [],
        droppedDeliveries: authorizer?.droppedDeliveries ?? [],
        deniedCount: authorizer?.deniedCount ?? 0,
        droppedCount: authorizer?.droppedCount ?? 0,
        notChecked: [
          ...notChecked,
          ...[...gateway.unmapped].map((u) => `${u}: not mapped to IAM, passed unchecked`),
        ],
      };
    },
    async stop() {
      for (const c of clients.values()) {
        c.sqs.destroy();
        c.sns.destroy();
        c.streams.destroy();
      }
      await gateway.stop();
    },
  };
}
