/**
 * The policies of running stacks, resolved to the local ARNs: each function's execution role (inline policies,
 * AWS::IAM::Policy / ManagedPolicy resources attached to it, the AWS-managed policies in MANAGED_POLICIES) and the
 * resource policies AWS checks (queue and topic policies, KMS key policies, Lambda permissions).
 */
import type { LocalResourceRegistry, ResolveContext } from '../runtime/template.ts';
import { isRecord, resolveIntrinsics } from '../runtime/template.ts';
import {
  type CompiledPolicy,
  compilePolicy,
  type PolicyDocument,
  type PolicyStatement,
} from './policy-language.ts';
import { DYNAMODB_LOCAL_ARN } from './requests.ts';

/**
 * The AWS-managed policies offline runs model (the ones Lambda execution roles use); any other AWS-managed policy
 * grants nothing offline and is listed at start-up.
 */
const MANAGED_POLICIES: Readonly<Record<string, readonly PolicyStatement[]>> = {
  'service-role/AWSLambdaBasicExecutionRole': [
    {
      Effect: 'Allow',
      Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: '*',
    },
  ],
  'service-role/AWSLambdaSQSQueueExecutionRole': [
    {
      Effect: 'Allow',
      Action: [
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'logs:CreateLogGroup',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ],
      Resource: '*',
    },
  ],
  'service-role/AWSLambdaDynamoDBExecutionRole': [
    {
      Effect: 'Allow',
      Action: [
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
        'logs:CreateLogGroup',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ],
      Resource: '*',
    },
  ],
  AWSXRayDaemonWriteAccess: [
    {
      Effect: 'Allow',
      Action: [
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
        'xray:GetSamplingStatisticSummaries',
      ],
      Resource: '*',
    },
  ],
};

/** The resource policies of one resource ARN (several QueuePolicy resources may attach to one queue). */
export interface ResourcePolicies {
  readonly policy: CompiledPolicy;
  /** KMS key policies decide on their own (IAM policies count only when the key policy delegates to the account). */
  readonly keyPolicy: boolean;
}

export interface IamModel {
  /** Function name → its execution role ARN. */
  readonly functionRoles: ReadonlyMap<string, string>;
  /** Role ARN → identity policies. */
  readonly rolePolicies: ReadonlyMap<string, readonly CompiledPolicy[]>;
  /** Resource ARN → its policy. */
  readonly resourcePolicies: ReadonlyMap<string, ResourcePolicies>;
  /** Topic or queue ARN → ARN of the KMS key that encrypts it (`alias/aws/<service>` for AWS-managed keys). */
  readonly encryptionKeys: ReadonlyMap<string, string>;
  /** What is not modelled (printed at start-up). */
  readonly notes: readonly { logicalId: string; note: string }[];
}

export interface StackPolicies {
  readonly ctx: ResolveContext;
  readonly registry: LocalResourceRegistry;
}

/** `arn:aws:dynamodb:ddblocal:...` (DynamoDB Local's ARNs) with the runtime's region, as the gateway sees requests. */
function normalizeDynamoDbLocalArns(value: unknown, region: string): unknown {
  if (typeof value === 'string') return value.replace(DYNAMODB_LOCAL_ARN, `arn:$1:dynamodb:${region}:`);
  if (Array.isArray(value)) return value.map((v) => normalizeDynamoDbLocalArns(v, region));
  if (isRecord(value))
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, normalizeDynamoDbLocalArns(v, region)]),
    );
  return value;
}

const asArray = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The logical id a `{Ref: X}` / `{Fn::GetAtt: [X, ...]}` names, before resolution. */
function referencedId(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  if (typeof value.Ref === 'string') return value.Ref;
  const getAtt = value['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  if (typeof getAtt === 'string') return getAtt.split('.')[0];
  return undefined;
}

export function iamModelFromStacks(stacks: readonly StackPolicies[]): IamModel {
  const functionRoles = new Map<string, string>();
  const rolePolicies = new Map<string, CompiledPolicy[]>();
  const resourceStatements = new Map<
    string,
    { statements: PolicyStatement[]; keyPolicy: boolean; name: string }
  >();
  const encryptionKeys = new Map<string, string>();
  const notes: { logicalId: string; note: string }[] = [];

  for (const { ctx, registry } of stacks) {
    const resources = Object.entries(ctx.template.Resources);
    const resolve = (value: unknown, logicalId: string): unknown =>
      normalizeDynamoDbLocalArns(
        resolveIntrinsics(value, { ...ctx, resourceId: logicalId }),
        ctx.pseudo.region,
      );
    const roleArnOf = (logicalId: string): string | undefined => {
      const arn = registry.getAtt(logicalId, 'Arn');
      return typeof arn === 'string' ? arn : undefined;
    };
    const addIdentity = (roleArn: string, policy: CompiledPolicy) => {
      const list = rolePolicies.get(roleArn) ?? [];
      list.push(policy);
      rolePolicies.set(roleArn, list);
    };
    const addResource = (arn: string, name: string, statements: unknown, keyPolicy = false) => {
      const entry = resourceStatements.get(arn) ?? { statements: [], keyPolicy, name };
      entry.statements.push(...(asArray(statements) as PolicyStatement[]));
      resourceStatements.set(arn, entry);
    };
    const guard = (logicalId: string, work: () => void) => {
      try {
        work();
      } catch (error) {
        notes.push({
          logicalId,
          note: `policy not checked offline: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    };
    const managedPolicyIds = new Map<string, { document: unknown; logicalId: string }>();
    for (const [logicalId, resource] of resources)
      if (resource.Type === 'AWS::IAM::ManagedPolicy')
        managedPolicyIds.set(logicalId, { document: resource.Properties?.PolicyDocument, logicalId });

    for (const [logicalId, resource] of resources) {
      const props = (resource.Properties ?? {}) as Record<string, unknown>;
      guard(logicalId, () => {
        switch (resource.Type) {
          case 'AWS::IAM::Role': {
            const roleArn = roleArnOf(logicalId);
            if (!roleArn) return;
            if (!rolePolicies.has(roleArn)) rolePolicies.set(roleArn, []);
            for (const inline of asArray(props.Policies) as Record<string, unknown>[])
              addIdentity(
                roleArn,
                compilePolicy(
                  `${logicalId}/${String(inline.PolicyName)}`,
                  resolve(inline.PolicyDocument, logicalId) as PolicyDocument,
                ),
              );
            for (const managed of asArray(props.ManagedPolicyArns)) {
              const id = referencedId(managed);
              const inTemplate = id ? managedPolicyIds.get(id) : undefined;
              if (inTemplate) {
                addIdentity(
                  roleArn,
                  compilePolicy(id as string, resolve(inTemplate.document, id as string) as PolicyDocument),
                );
                continue;
              }
              const arn = String(resolve(managed, logicalId));
              const known = MANAGED_POLICIES[arn.replace(/^arn:[^:]+:iam::aws:policy\//, '')];
              if (known) addIdentity(roleArn, compilePolicy(arn, { Statement: known }));
              else
                notes.push({
                  logicalId,
                  note: `managed policy ${arn} is not modelled offline: it grants nothing here`,
                });
            }
            return;
          }
          case 'AWS::IAM::Policy':
          case 'AWS::IAM::ManagedPolicy': {
            const roles = asArray(props.Roles)
              .map(referencedId)
              .filter((id): id is string => id !== undefined);
            if (roles.length === 0) return;
            const policy = compilePolicy(
              logicalId,
              resolve(props.PolicyDocument, logicalId) as PolicyDocument,
            );
            for (const role of roles) {
              const roleArn = roleArnOf(role);
              if (roleArn) addIdentity(roleArn, policy);
            }
            return;
          }
          case 'AWS::Lambda::Function': {
            const name = registry.ref(logicalId);
            const roleArn = resolve(props.Role, logicalId);
            if (name && typeof roleArn === 'string') functionRoles.set(name, roleArn);
            return;
          }
          case 'AWS::SQS::QueuePolicy': {
            const document = resolve(props.PolicyDocument, logicalId) as PolicyDocument;
            for (const url of asArray(resolve(props.Queues, logicalId))) {
              const queue = registry.findByValue(String(url));
              const arn = queue?.attributes.Arn;
              if (typeof arn === 'string') addResource(arn, logicalId, document.Statement);
            }
            return;
          }
          case 'AWS::SNS::TopicPolicy': {
            const document = resolve(props.PolicyDocument, logicalId) as PolicyDocument;
            for (const arn of asArray(resolve(props.Topics, logicalId)))
              addResource(String(arn), logicalId, document.Statement);
            return;
          }
          case 'AWS::KMS::Key': {
            const arn = registry.getAtt(logicalId, 'Arn');
            const document = resolve(props.KeyPolicy, logicalId) as PolicyDocument | undefined;
            if (typeof arn === 'string' && document) addResource(arn, logicalId, document.Statement, true);
            return;
          }
          case 'AWS::Lambda::Permission': {
            const fn = String(resolve(props.FunctionName, logicalId));
            const functionArn = fn.startsWith('arn:') ? fn : registry.findByValue(fn)?.attributes.Arn;
            if (typeof functionArn !== 'string') return;
            const principal = String(resolve(props.Principal, logicalId));
            const sourceArn = resolve(props.SourceArn, logicalId);
            const sourceAccount = resolve(props.SourceAccount, logicalId);
            const condition: Record<string, Record<string, string>> = {};
            if (typeof sourceArn === 'string') condition.ArnLike = { 'aws:SourceArn': sourceArn };
            if (typeof sourceAccount === 'string')
              condition.StringEquals = { 'aws:SourceAccount': sourceAccount };
            addResource(functionArn, logicalId, {
              Effect: 'Allow',
              Action: String(resolve(props.Action, logicalId)),
              Resource: functionArn,
              Principal: principal.endsWith('.amazonaws.com')
                ? { Service: principal }
                : principal === '*'
                  ? '*'
                  : { AWS: principal },
              ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
            });
            return;
          }
          case 'AWS::SNS::Topic':
          case 'AWS::SQS::Queue': {
            const key = props.KmsMasterKeyId;
            if (key === undefined) return;
            const resourceArn = registry.getAtt(
              logicalId,
              resource.Type === 'AWS::SNS::Topic' ? 'TopicArn' : 'Arn',
            );
            const keyId = referencedId(key);
            const keyArn = keyId ? registry.getAtt(keyId, 'Arn') : resolve(key, logicalId);
            if (typeof resourceArn === 'string' && typeof keyArn === 'string')
              encryptionKeys.set(resourceArn, keyArn);
            return;
          }
          default:
            return;
        }
      });
    }
  }
  const resourcePolicies = new Map<string, ResourcePolicies>();
  for (const [arn, entry] of resourceStatements) {
    try {
      resourcePolicies.set(arn, {
        policy: compilePolicy(entry.name, { Statement: entry.statements }),
        keyPolicy: entry.keyPolicy,
      });
    } catch (error) {
      notes.push({ logicalId: entry.name, note: `policy not checked offline: ${String(error)}` });
    }
  }
  return { functionRoles, rolePolicies, resourcePolicies, encryptionKeys, notes };
}
