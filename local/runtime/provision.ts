import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type LocalSecondaryIndex,
  ResourceInUseException,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createBucket } from './s3-buckets.ts';
import {
  type CfnTemplate,
  dependencyOrder,
  isRecord,
  LocalResourceRegistry,
  type PseudoParameters,
  type RegisteredResource,
  type ResolveContext,
  resolveIntrinsics,
  resourceEnabled,
  TemplateError,
} from './template.ts';

export interface ProvisionClients {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  /** fauxqs' S3 (path-style). Without it, buckets are reported as unsupported. */
  readonly s3?: S3Client;
}

export interface ProvisionOptions {
  readonly template: CfnTemplate;
  readonly pseudo: PseudoParameters;
  readonly clients: ProvisionClients;
  readonly parameters?: Readonly<Record<string, string>>;
  /** Add to (or start from) an existing registry. @default a new one */
  readonly registry?: LocalResourceRegistry;
  /**
   * The in-memory SSM Parameter Store: `AWS::SSM::Parameter` resources are put here, and dynamic references /
   * `AWS::SSM::Parameter::Value<...>` parameters read from it. @default - SSM parameters have no local effect
   */
  readonly ssmParameters?: Map<string, string>;
  /** `Fn::ImportValue` (see ResolveContext.importValue). */
  readonly importValue?: (name: string) => string | undefined;
}

export interface ResourceReport {
  readonly logicalId: string;
  readonly type: string;
  /** Why it was ignored / is unsupported, or what was left out when provisioning it. */
  readonly notes: readonly string[];
}

export interface ProvisionResult {
  readonly registry: LocalResourceRegistry;
  /** Created in DynamoDB Local / fauxqs. */
  readonly provisioned: readonly ResourceReport[];
  /** Registered here (names/ARNs) but run by other parts of the runtime: functions, mappings, rules, alarms, buses. */
  readonly delegated: readonly ResourceReport[];
  /** No local effect (IAM, policies, KMS, log groups, ...): placeholder names/ARNs registered. */
  readonly ignored: readonly ResourceReport[];
  /** Not emulated: anything referring to these fails to resolve. Print them at start-up. */
  readonly unsupported: readonly ResourceReport[];
  /** Resources skipped because their Condition is false. */
  readonly skipped: readonly string[];
}

export class ProvisionError extends TemplateError {
  readonly type: string;
  constructor(logicalId: string, type: string, message: string, options?: { cause?: unknown }) {
    super(`could not create ${type} locally: ${message}`, logicalId, options);
    this.name = 'ProvisionError';
    this.type = type;
  }
}

/** Types run by other modules of the runtime (they read the registry for names and ARNs). */
const DELEGATED = new Set([
  'AWS::Lambda::Function',
  'AWS::Lambda::EventSourceMapping',
  'AWS::Events::Rule',
  'AWS::Events::EventBus',
  'AWS::Scheduler::Schedule',
  'AWS::CloudWatch::Alarm',
]);

/** Types with no behaviour to emulate locally: permissions, encryption, logging, metadata. */
const IGNORED_PREFIXES = [
  'AWS::SSM::Parameter',
  'AWS::IAM::',
  'AWS::KMS::',
  'AWS::Logs::',
  'AWS::CDK::',
  'Custom::CDK',
];
const IGNORED = new Set([
  'AWS::SQS::QueuePolicy',
  'AWS::SNS::TopicPolicy',
  'AWS::S3::BucketPolicy',
  'AWS::Lambda::Permission',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::Events::EventBusPolicy',
  'AWS::CloudWatch::Dashboard',
]);

/**
 * Creates the template's tables, queues, topics and SQS subscriptions in dependency order and
 * returns a registry of their local names, ARNs and URLs, plus what was not provisioned.
 */
export async function provision(opts: ProvisionOptions): Promise<ProvisionResult> {
  const registry = opts.registry ?? new LocalResourceRegistry();
  const provisioned: ResourceReport[] = [];
  const delegated: ResourceReport[] = [];
  const ignored: ResourceReport[] = [];
  const unsupported: ResourceReport[] = [];
  const skipped: string[] = [];
  const { template, pseudo } = opts;

  for (const logicalId of dependencyOrder(template)) {
    const resource = template.Resources[logicalId];
    if (!resource) continue;
    const ctx: ResolveContext = {
      template,
      registry,
      pseudo,
      resourceId: logicalId,
      ...(opts.parameters ? { parameters: opts.parameters } : {}),
      ...(opts.importValue ? { importValue: opts.importValue } : {}),
      ...(opts.ssmParameters ? { ssmParameter: (name: string) => opts.ssmParameters?.get(name) } : {}),
    };
    if (!resourceEnabled(logicalId, ctx)) {
      skipped.push(logicalId);
      continue;
    }
    const type = resource.Type;
    const props = (resource.Properties ?? {}) as Record<string, unknown>;
    const resolve = (value: unknown): unknown => resolveIntrinsics(value, ctx);
    const notes: string[] = [];
    try {
      switch (type) {
        case 'AWS::DynamoDB::Table':
        case 'AWS::DynamoDB::GlobalTable':
          registry.register(
            await createTable(logicalId, type, resolve(props) as Record<string, unknown>, opts, notes),
          );
          provisioned.push({ logicalId, type, notes });
          continue;
        case 'AWS::SQS::Queue':
          registry.register(
            await createQueue(logicalId, resolve(props) as Record<string, unknown>, opts, notes),
          );
          provisioned.push({ logicalId, type, notes });
          continue;
        case 'AWS::SNS::Topic': {
          const topic = await createTopic(logicalId, resolve(props) as Record<string, unknown>, opts, notes);
          registry.register(topic);
          provisioned.push({ logicalId, type, notes });
          continue;
        }
        case 'AWS::SNS::Subscription': {
          const subscription = await createSubscription(
            logicalId,
            resolve(props) as Record<string, unknown>,
            opts,
            notes,
          );
          if (subscription) {
            registry.register(subscription);
            provisioned.push({ logicalId, type, notes });
          } else {
            unsupported.push({ logicalId, type, notes });
          }
          continue;
        }
        case 'AWS::S3::Bucket': {
          if (!opts.clients.s3) break;
          const bucket = await createBucket(
            logicalId,
            resolve(props) as Record<string, unknown>,
            pseudo,
            opts.clients.s3,
            notes,
          );
          registry.register(bucket);
          provisioned.push({ logicalId, type, notes });
          continue;
        }
        case 'AWS::SSM::Parameter': {
          if (!opts.ssmParameters) break;
          const resolved = resolve(props) as Record<string, unknown>;
          const name =
            typeof resolved.Name === 'string'
              ? resolved.Name
              : `CFN-${localPhysicalName(pseudo, logicalId, 1000)}`;
          const value = Array.isArray(resolved.Value)
            ? resolved.Value.join(',')
            : String(resolved.Value ?? '');
          opts.ssmParameters.set(name, value);
          registry.register({
            logicalId,
            type,
            ref: name,
            attributes: { Type: String(resolved.Type ?? 'String'), Value: value },
          });
          provisioned.push({ logicalId, type, notes: ['in the local in-memory parameter store'] });
          continue;
        }
        default:
          break;
      }
    } catch (error) {
      if (error instanceof TemplateError) throw error;
      throw new ProvisionError(logicalId, type, error instanceof Error ? error.message : String(error), {
        cause: error,
      });
    }
    if (DELEGATED.has(type)) {
      registry.register(delegatedResource(logicalId, type, props, ctx));
      delegated.push({ logicalId, type, notes: [] });
    } else if (IGNORED.has(type) || IGNORED_PREFIXES.some((p) => type.startsWith(p))) {
      registry.register(syntheticResource(logicalId, type, pseudo));
      ignored.push({ logicalId, type, notes: ['no local effect'] });
    } else {
      unsupported.push({ logicalId, type, notes: ['not emulated by the local runtime'] });
    }
  }
  return { registry, provisioned, delegated, ignored, unsupported, skipped };
}

/** `<stack>-<logicalId>` cut to `max` characters (CloudFormation would add a random suffix). */
export function localPhysicalName(
  pseudo: PseudoParameters,
  logicalId: string,
  max: number,
  suffix = '',
): string {
  const base = `${pseudo.stackName}-${logicalId}`.replace(/[^A-Za-z0-9_-]/g, '-');
  return base.slice(0, max - suffix.length) + suffix;
}

async function createTable(
  logicalId: string,
  type: string,
  props: Record<string, unknown>,
  opts: ProvisionOptions,
  notes: string[],
): Promise<RegisteredResource> {
  const tableName =
    typeof props.TableName === 'string' ? props.TableName : localPhysicalName(opts.pseudo, logicalId, 255);
  const global = type === 'AWS::DynamoDB::GlobalTable';
  const provisionedBilling = props.BillingMode === 'PROVISIONED';
  const throughput = { ReadCapacityUnits: 5, WriteCapacityUnits: 5 };
  const input: CreateTableCommandInput = {
    TableName: tableName,
    AttributeDefinitions: props.AttributeDefinitions as AttributeDefinition[],
    KeySchema: props.KeySchema as CreateTableCommandInput['KeySchema'],
    BillingMode: provisionedBilling ? 'PROVISIONED' : 'PAY_PER_REQUEST',
    ...(provisionedBilling
      ? {
          ProvisionedThroughput: (props.ProvisionedThroughput as typeof throughput | undefined) ?? throughput,
        }
      : {}),
  };
  const gsis = Array.isArray(props.GlobalSecondaryIndexes) ? props.GlobalSecondaryIndexes : [];
  if (gsis.length > 0) {
    input.GlobalSecondaryIndexes = gsis.map((raw) => {
      const gsi = raw as Record<string, unknown>;
      return {
        IndexName: gsi.IndexName,
        KeySchema: gsi.KeySchema,
        Projection: gsi.Projection,
        ...(provisionedBilling ? { ProvisionedThroughput: gsi.ProvisionedThroughput ?? throughput } : {}),
      } as GlobalSecondaryIndex;
    });
  }
  const lsis = Array.isArray(props.LocalSecondaryIndexes) ? props.LocalSecondaryIndexes : [];
  if (lsis.length > 0) {
    input.LocalSecondaryIndexes = lsis.map((raw) => {
      const lsi = raw as Record<string, unknown>;
      return {
        IndexName: lsi.IndexName,
        KeySchema: lsi.KeySchema,
        Projection: lsi.Projection,
      } as LocalSecondaryIndex;
    });
  }
  const stream = isRecord(props.StreamSpecification) ? props.StreamSpecification : undefined;
  if (stream?.StreamViewType) {
    input.StreamSpecification = {
      StreamEnabled: true,
      StreamViewType: stream.StreamViewType as 'NEW_AND_OLD_IMAGES',
    };
  }
  if (props.TimeToLiveSpecification) {
    notes.push(
      'TimeToLiveSpecification ignored: DynamoDB Local never expires items (nor emits TTL REMOVE records)',
    );
  }
  if (global && Array.isArray(props.Replicas) && props.Replicas.length > 1) {
    notes.push('GlobalTable replicas ignored: one local table');
  }
  let description: TableDescription | undefined;
  try {
    description = (await opts.clients.dynamodb.send(new CreateTableCommand(input))).TableDescription;
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
    // Re-running against a persistent emulator: reuse the table.
    description = (await opts.clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName })))
      .Table;
    notes.push('table already existed: reused as is');
  }
  return {
    logicalId,
    type,
    ref: tableName,
    attributes: {
      Arn: description?.TableArn ?? '',
      ...(description?.LatestStreamArn ? { StreamArn: description.LatestStreamArn } : {}),
      TableId: description?.TableId ?? tableName,
    },
  };
}

const QUEUE_ATTRIBUTES = [
  'FifoQueue',
  'ContentBasedDeduplication',
  'DeduplicationScope',
  'FifoThroughputLimit',
  'VisibilityTimeout',
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'RedriveAllowPolicy',
];

async function createQueue(
  logicalId: string,
  props: Record<string, unknown>,
  opts: ProvisionOptions,
  notes: string[],
): Promise<RegisteredResource> {
  const fifo = props.FifoQueue === true || props.FifoQueue === 'true';
  const queueName =
    typeof props.QueueName === 'string'
      ? props.QueueName
      : localPhysicalName(opts.pseudo, logicalId, 80, fifo ? '.fifo' : '');
  const attributes: Record<string, string> = {};
  for (const key of QUEUE_ATTRIBUTES) {
    const value = props[key];
    if (value === undefined) continue;
    attributes[key] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  if (props.KmsMasterKeyId !== undefined || props.SqsManagedSseEnabled !== undefined) {
    notes.push('encryption settings ignored');
  }
  const created = (
    await opts.clients.sqs.send(new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }))
  ).QueueUrl as string;
  // fauxqs names queues `http://sqs.<region>.localhost:<port>/...`, a host that does not resolve everywhere, and
  // the SDK sends requests to the QueueUrl's host: use the loopback address fauxqs listens on instead.
  const queueUrl = created.replace(/\/\/sqs\.[a-z0-9-]+\.localhost:/, '//127.0.0.1:');
  const arn = (
    await opts.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn as string;
  return {
    logicalId,
    type: 'AWS::SQS::Queue',
    ref: queueUrl,
    attributes: { Arn: arn, QueueName: queueName, QueueUrl: queueUrl },
  };
}

async function createTopic(
  logicalId: string,
  props: Record<string, unknown>,
  opts: ProvisionOptions,
  notes: string[],
): Promise<RegisteredResource> {
  const fifo = props.FifoTopic === true || props.FifoTopic === 'true';
  const topicName =
    typeof props.TopicName === 'string'
      ? props.TopicName
      : localPhysicalName(opts.pseudo, logicalId, 256, fifo ? '.fifo' : '');
  const attributes: Record<string, string> = {};
  if (fifo) attributes.FifoTopic = 'true';
  if (props.ContentBasedDeduplication !== undefined)
    attributes.ContentBasedDeduplication = String(props.ContentBasedDeduplication);
  if (typeof props.DisplayName === 'string') attributes.DisplayName = props.DisplayName;
  if (props.KmsMasterKeyId !== undefined) notes.push('KmsMasterKeyId ignored');
  const topicArn = (
    await opts.clients.sns.send(new CreateTopicCommand({ Name: topicName, Attributes: attributes }))
  ).TopicArn as string;
  // Inline subscriptions (Subscription: [{ Protocol, Endpoint }]).
  for (const raw of Array.isArray(props.Subscription) ? props.Subscription : []) {
    const sub = raw as Record<string, unknown>;
    if (sub.Protocol === 'sqs') {
      await opts.clients.sns.send(
        new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: String(sub.Endpoint) }),
      );
    } else {
      notes.push(`inline ${String(sub.Protocol)} subscription not emulated`);
    }
  }
  return {
    logicalId,
    type: 'AWS::SNS::Topic',
    ref: topicArn,
    attributes: { TopicArn: topicArn, TopicName: topicName },
  };
}

async function createSubscription(
  logicalId: string,
  props: Record<string, unknown>,
  opts: ProvisionOptions,
  notes: string[],
): Promise<RegisteredResource | undefined> {
  if (props.Protocol !== 'sqs') {
    notes.push(`protocol ${String(props.Protocol)} is not emulated (only sqs)`);
    return undefined;
  }
  const attributes: Record<string, string> = {};
  if (props.RawMessageDelivery !== undefined)
    attributes.RawMessageDelivery = String(props.RawMessageDelivery);
  if (props.FilterPolicy !== undefined) {
    attributes.FilterPolicy =
      typeof props.FilterPolicy === 'string' ? props.FilterPolicy : JSON.stringify(props.FilterPolicy);
  }
  if (props.FilterPolicyScope !== undefined) attributes.FilterPolicyScope = String(props.FilterPolicyScope);
  if (props.RedrivePolicy !== undefined) {
    attributes.RedrivePolicy =
      typeof props.RedrivePolicy === 'string' ? props.RedrivePolicy : JSON.stringify(props.RedrivePolicy);
  }
  const response = await opts.clients.sns.send(
    new SubscribeCommand({
      TopicArn: String(props.TopicArn),
      Protocol: 'sqs',
      Endpoint: String(props.Endpoint),
      Attributes: attributes,
      ReturnSubscriptionArn: true,
    }),
  );
  const arn = response.SubscriptionArn as string;
  return { logicalId, type: 'AWS::SNS::Subscription', ref: arn, attributes: { Arn: arn } };
}

function delegatedResource(
  logicalId: string,
  type: string,
  props: Record<string, unknown>,
  ctx: ResolveContext,
): RegisteredResource {
  const { pseudo } = ctx;
  const prefix = `arn:${pseudo.partition}`;
  const named = (key: string, max: number): string => {
    const value = props[key] === undefined ? undefined : resolveIntrinsics(props[key], ctx);
    return typeof value === 'string' ? value : localPhysicalName(pseudo, logicalId, max);
  };
  switch (type) {
    case 'AWS::Lambda::Function': {
      const name = named('FunctionName', 64);
      return {
        logicalId,
        type,
        ref: name,
        attributes: { Arn: `${prefix}:lambda:${pseudo.region}:${pseudo.accountId}:function:${name}` },
      };
    }
    case 'AWS::Events::EventBus': {
      const name = named('Name', 256);
      return {
        logicalId,
        type,
        ref: name,
        attributes: {
          Arn: `${prefix}:events:${pseudo.region}:${pseudo.accountId}:event-bus/${name}`,
          Name: name,
        },
      };
    }
    case 'AWS::Events::Rule': {
      const name = named('Name', 64);
      // AWS: a rule on a custom bus is `rule/<bus>/<name>`; on the default bus `rule/<name>`.
      const bus = named('EventBusName', 256).split('/').pop();
      const onBus = props.EventBusName === undefined || bus === 'default' ? '' : `${bus}/`;
      return {
        logicalId,
        type,
        ref: name,
        attributes: { Arn: `${prefix}:events:${pseudo.region}:${pseudo.accountId}:rule/${onBus}${name}` },
      };
    }
    case 'AWS::Scheduler::Schedule': {
      const name = named('Name', 64);
      return {
        logicalId,
        type,
        ref: name,
        attributes: {
          Arn: `${prefix}:scheduler:${pseudo.region}:${pseudo.accountId}:schedule/default/${name}`,
        },
      };
    }
    case 'AWS::CloudWatch::Alarm': {
      const name = named('AlarmName', 255);
      return {
        logicalId,
        type,
        ref: name,
        attributes: { Arn: `${prefix}:cloudwatch:${pseudo.region}:${pseudo.accountId}:alarm:${name}` },
      };
    }
    default:
      return { logicalId, type, ref: `${logicalId}-local`, attributes: { Id: `${logicalId}-local` } };
  }
}

/** Placeholder Ref/Arn so that references to ignored resources (roles, keys, log groups) still resolve. */
function syntheticResource(logicalId: string, type: string, pseudo: PseudoParameters): RegisteredResource {
  const name = localPhysicalName(pseudo, logicalId, 64);
  const service = type.split('::')[1]?.toLowerCase() ?? 'local';
  // Roles and keys get ARNs of AWS's shape: policies name them (key policies, role principals).
  const arn =
    type === 'AWS::IAM::Role'
      ? `arn:${pseudo.partition}:iam::${pseudo.accountId}:role/${name}`
      : type === 'AWS::IAM::ManagedPolicy'
        ? `arn:${pseudo.partition}:iam::${pseudo.accountId}:policy/${name}`
        : type === 'AWS::KMS::Key'
          ? `arn:${pseudo.partition}:kms:${pseudo.region}:${pseudo.accountId}:key/${name}`
          : `arn:${pseudo.partition}:${service}:${pseudo.region}:${pseudo.accountId}:${name}`;
  // Any attribute resolves: `*Arn` to the placeholder ARN, anything else to the placeholder name.
  const attributes = new Proxy<Record<string, unknown>>(
    {},
    { get: (_t, key) => (String(key).endsWith('Arn') ? arn : name) },
  );
  return { logicalId, type, ref: name, attributes, synthetic: true };
}
