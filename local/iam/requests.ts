/**
 * Maps one AWS API call (as the IAM gateway sees it on the wire) to what IAM authorizes: actions, resource ARNs and
 * request context keys. DynamoDB (incl. the per-item actions of TransactWriteItems / TransactGetItems, and the
 * fine-grained keys `dynamodb:LeadingKeys`, `dynamodb:Attributes`, `dynamodb:Select`, `dynamodb:ReturnValues`),
 * DynamoDB Streams, SQS (JSON and query protocols), SNS, EventBridge PutEvents and Lambda Invoke.
 */
import type { ContextValues } from './policy-language.ts';

export interface MappedRequest {
  readonly action: string;
  readonly resource: string;
  readonly context: ContextValues;
}

/** What the mapper needs to know of the running stacks. */
export interface MappingFacts {
  readonly region: string;
  readonly accountId: string;
  /** Table name → partition key attribute of the table and of each index. */
  readonly partitionKeys: ReadonlyMap<
    string,
    { readonly table: string; readonly indexes: Readonly<Record<string, string>> }
  >;
  /** Queue URL → queue ARN (when known; else derived from the URL's last segment). */
  queueArn(url: string): string | undefined;
  /** Stream ARN a shard iterator reads (remembered from GetShardIterator / GetRecords answers). */
  streamOfIterator(iterator: string): string | undefined;
}

export interface WireCall {
  /** The service of the SigV4 credential scope (`dynamodb`, `sqs`, `sns`, `events`, `lambda`). */
  readonly service: string;
  /** `X-Amz-Target` or the query `Action`. */
  readonly operation: string;
  readonly body: string;
  readonly method?: string;
  readonly path?: string;
}

export class UnmappedCallError extends Error {
  constructor(service: string, operation: string) {
    super(`the IAM gateway cannot map ${service} ${operation} to an IAM action: it is not checked offline`);
    this.name = 'UnmappedCallError';
  }
}

type Json = Record<string, unknown>;
const parseJson = (body: string): Json => {
  try {
    const v = JSON.parse(body || '{}') as unknown;
    return typeof v === 'object' && v !== null ? (v as Json) : {};
  } catch {
    return {};
  }
};

/** The service of a SigV4 `Authorization` header's credential scope, and its access key id. */
export function credentialOf(
  authorization: string | undefined,
): { accessKeyId: string; service: string } | undefined {
  const match = /Credential=([^/,\s]+)\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization ?? '');
  return match ? { accessKeyId: match[1] as string, service: match[2] as string } : undefined;
}

export function mapCall(call: WireCall, facts: MappingFacts): MappedRequest[] {
  const operation = call.operation.includes('.')
    ? (call.operation.split('.').pop() as string)
    : call.operation;
  if (call.operation.startsWith('DynamoDBStreams_'))
    return mapStreams(operation, parseJson(call.body), facts);
  switch (call.service) {
    case 'dynamodb':
      return mapDynamoDb(operation, parseJson(call.body), facts);
    case 'sqs':
      return mapSqs(operation, call, facts);
    case 'sns':
      return mapSns(operation, new URLSearchParams(call.body), facts);
    case 'events':
      return mapEvents(operation, parseJson(call.body), facts);
    case 'lambda':
      return mapLambda(call, facts);
    case 's3':
      return mapS3(call);
    default:
      throw new UnmappedCallError(call.service, call.operation);
  }
}

// ---- DynamoDB --------------------------------------------------------------------------------------------------

/**
 * DynamoDB Local names region `ddblocal` in its ARNs; IAM sees them (and the policies, see template-policies.ts)
 * with the runtime's region, so a policy that builds a table ARN from `AWS::Region` matches too.
 */
export const DYNAMODB_LOCAL_ARN = /^arn:([^:]+):dynamodb:ddblocal:/;
const normalized = (facts: MappingFacts, arn: string) =>
  arn.replace(DYNAMODB_LOCAL_ARN, `arn:$1:dynamodb:${facts.region}:`);

const tableArn = (facts: MappingFacts, table: string) =>
  table.startsWith('arn:')
    ? normalized(facts, table)
    : `arn:aws:dynamodb:${facts.region}:${facts.accountId}:table/${table}`;

/** The scalar of an AttributeValue as IAM sees it in `dynamodb:LeadingKeys`. */
function scalar(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Json;
  for (const type of ['S', 'N', 'B']) if (typeof v[type] === 'string') return v[type] as string;
  return undefined;
}

/** Top-level attribute names an expression reads or writes (`#name` placeholders resolved). */
function expressionAttributes(expression: unknown, names: unknown): string[] {
  if (typeof expression !== 'string') return [];
  const placeholders = (typeof names === 'object' && names !== null ? names : {}) as Record<string, string>;
  const out = new Set<string>();
  // Strip values, functions and keywords; what remains at path starts are attribute names.
  const cleaned = expression.replace(/:[A-Za-z0-9_]+/g, ' ');
  for (const m of cleaned.matchAll(/(#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g)) {
    const token = m[1] as string;
    if (m[2]) continue; // a function: attribute_exists(...), if_not_exists(...), list_append(...)
    const preceding = cleaned.slice(0, m.index).trimEnd();
    if (preceding.endsWith('.') || /\[[0-9]*$/.test(preceding)) continue; // nested path segment
    if (/^(SET|REMOVE|ADD|DELETE|AND|OR|NOT|BETWEEN|IN|size)$/i.test(token)) continue;
    out.add(token.startsWith('#') ? (placeholders[token] ?? token) : token);
  }
  return [...out];
}

interface ItemRequest {
  readonly TableName?: string;
  readonly Key?: Json;
  readonly Item?: Json;
  readonly UpdateExpression?: string;
  readonly ConditionExpression?: string;
  readonly ProjectionExpression?: string;
  readonly ExpressionAttributeNames?: Json;
  readonly ReturnValues?: string;
  readonly AttributesToGet?: string[];
}

function itemContext(req: ItemRequest, facts: MappingFacts): Record<string, string | string[]> {
  const table = String(req.TableName ?? '');
  const keyName = facts.partitionKeys.get(table.split('/').pop() ?? table)?.table;
  const record = req.Key ?? req.Item;
  const context: Record<string, string | string[]> = {};
  const leading = keyName && record ? scalar(record[keyName]) : undefined;
  if (leading !== undefined) context['dynamodb:LeadingKeys'] = [leading];
  const attributes = new Set<string>([
    ...Object.keys(req.Key ?? {}),
    ...Object.keys(req.Item ?? {}),
    ...expressionAttributes(req.UpdateExpression, req.ExpressionAttributeNames),
    ...expressionAttributes(req.ConditionExpression, req.ExpressionAttributeNames),
    ...expressionAttributes(req.ProjectionExpression, req.ExpressionAttributeNames),
    ...(req.AttributesToGet ?? []),
  ]);
  if (attributes.size > 0) context['dynamodb:Attributes'] = [...attributes];
  if (req.ReturnValues) context['dynamodb:ReturnValues'] = req.ReturnValues;
  return context;
}

const ITEM_ACTIONS = new Set(['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem']);

/** One item-level request (on its own or inside a transaction), authorized as `dynamodb:<action>` on its table. */
function itemRequest(action: string, req: ItemRequest, facts: MappingFacts): MappedRequest {
  return {
    action: `dynamodb:${action}`,
    resource: tableArn(facts, String(req.TableName)),
    context: itemContext(req, facts),
  };
}

function mapDynamoDb(operation: string, body: Json, facts: MappingFacts): MappedRequest[] {
  if (ITEM_ACTIONS.has(operation)) return [itemRequest(operation, body as ItemRequest, facts)];
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    // No IAM action of its own: each item is authorized as its own PutItem / UpdateItem / DeleteItem / ConditionCheckItem / GetItem.
    const actionOf: Record<string, string> = {
      Put: 'PutItem',
      Update: 'UpdateItem',
      Delete: 'DeleteItem',
      ConditionCheck: 'ConditionCheckItem',
      Get: 'GetItem',
    };
    return ((body.TransactItems as Json[] | undefined) ?? []).flatMap((item) =>
      Object.entries(item).flatMap(([kind, req]) => {
        const action = actionOf[kind];
        return action ? [itemRequest(action, req as ItemRequest, facts)] : [];
      }),
    );
  }
  if (operation === 'BatchWriteItem' || operation === 'BatchGetItem') {
    return Object.entries((body.RequestItems as Json | undefined) ?? {}).map(([table, value]) => {
      const keyName = facts.partitionKeys.get(table.split('/').pop() ?? table)?.table;
      const records: Json[] =
        operation === 'BatchGetItem'
          ? (((value as Json).Keys as Json[] | undefined) ?? [])
          : ((value as Json[]) ?? []).map(
              (w) =>
                ((w.PutRequest as Json | undefined)?.Item ??
                  (w.DeleteRequest as Json | undefined)?.Key ??
                  {}) as Json,
            );
      const leading = keyName
        ? records.map((r) => scalar(r[keyName])).filter((v): v is string => v !== undefined)
        : [];
      const context: Record<string, string[]> = {};
      if (leading.length > 0) context['dynamodb:LeadingKeys'] = [...new Set(leading)];
      return { action: `dynamodb:${operation}`, resource: tableArn(facts, table), context };
    });
  }
  if (operation === 'Query' || operation === 'Scan') {
    const table = String(body.TableName ?? '');
    const index = typeof body.IndexName === 'string' ? body.IndexName : undefined;
    const keys = facts.partitionKeys.get(table);
    const keyName = index ? keys?.indexes[index] : keys?.table;
    const context: Record<string, string | string[]> = {};
    if (operation === 'Query' && keyName) {
      const leading = queryPartitionValue(body, keyName);
      if (leading !== undefined) context['dynamodb:LeadingKeys'] = [leading];
    }
    if (typeof body.Select === 'string') context['dynamodb:Select'] = body.Select;
    const attributes = expressionAttributes(body.ProjectionExpression, body.ExpressionAttributeNames);
    if (attributes.length > 0) context['dynamodb:Attributes'] = attributes;
    return [
      {
        action: `dynamodb:${operation}`,
        resource: index ? `${tableArn(facts, table)}/index/${index}` : tableArn(facts, table),
        context,
      },
    ];
  }
  if (operation === 'ListTables') return [{ action: 'dynamodb:ListTables', resource: '*', context: {} }];
  const table =
    typeof body.TableName === 'string'
      ? body.TableName
      : typeof body.ResourceArn === 'string'
        ? body.ResourceArn
        : undefined;
  return [{ action: `dynamodb:${operation}`, resource: table ? tableArn(facts, table) : '*', context: {} }];
}

/** The partition key value of a Query: `<key> = :v` in KeyConditionExpression (or KeyConditions EQ). */
function queryPartitionValue(body: Json, keyName: string): string | undefined {
  const names = (body.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const values = (body.ExpressionAttributeValues ?? {}) as Json;
  const expression = typeof body.KeyConditionExpression === 'string' ? body.KeyConditionExpression : '';
  for (const m of expression.matchAll(/(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)/g)) {
    const name = (m[1] as string).startsWith('#') ? names[m[1] as string] : m[1];
    if (name === keyName) return scalar(values[m[2] as string]);
  }
  const legacy = (body.KeyConditions as Json | undefined)?.[keyName] as
    | { AttributeValueList?: unknown[] }
    | undefined;
  return scalar(legacy?.AttributeValueList?.[0]);
}

function mapStreams(operation: string, body: Json, facts: MappingFacts): MappedRequest[] {
  const action = `dynamodb:${operation}`;
  if (operation === 'ListStreams') return [{ action, resource: '*', context: {} }];
  const stream =
    typeof body.StreamArn === 'string'
      ? body.StreamArn
      : typeof body.ShardIterator === 'string'
        ? facts.streamOfIterator(body.ShardIterator)
        : undefined;
  return [{ action, resource: stream ? normalized(facts, stream) : '*', context: {} }];
}

// ---- SQS / SNS -------------------------------------------------------------------------------------------------

const SQS_BATCH: Readonly<Record<string, string>> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

function mapSqs(operation: string, call: WireCall, facts: MappingFacts): MappedRequest[] {
  const json = call.operation.startsWith('AmazonSQS.');
  const params = json ? parseJson(call.body) : Object.fromEntries(new URLSearchParams(call.body));
  const action = `sqs:${SQS_BATCH[operation] ?? operation}`;
  if (operation === 'ListQueues') return [{ action, resource: '*', context: {} }];
  const url = typeof params.QueueUrl === 'string' ? params.QueueUrl : undefined;
  const name = typeof params.QueueName === 'string' ? params.QueueName : url?.split('/').pop();
  const arn =
    (url && facts.queueArn(url)) ?? (name ? `arn:aws:sqs:${facts.region}:${facts.accountId}:${name}` : '*');
  return [{ action, resource: arn, context: {} }];
}

function mapSns(operation: string, params: URLSearchParams, facts: MappingFacts): MappedRequest[] {
  const action = `sns:${operation === 'PublishBatch' ? 'Publish' : operation}`;
  const topic = params.get('TopicArn') ?? params.get('TargetArn') ?? params.get('ResourceArn');
  if (!topic && operation === 'Unsubscribe') {
    const subscription = params.get('SubscriptionArn') ?? '';
    return [{ action, resource: subscription.split(':').slice(0, 6).join(':') || '*', context: {} }];
  }
  if (!topic && operation === 'CreateTopic')
    return [
      {
        action,
        resource: `arn:aws:sns:${facts.region}:${facts.accountId}:${params.get('Name') ?? ''}`,
        context: {},
      },
    ];
  return [{ action, resource: topic ?? '*', context: {} }];
}

// ---- EventBridge / Lambda --------------------------------------------------------------------------------------

function mapEvents(operation: string, body: Json, facts: MappingFacts): MappedRequest[] {
  const busArn = (bus: unknown) => {
    const name = typeof bus === 'string' && bus !== '' ? bus : 'default';
    return name.startsWith('arn:')
      ? name
      : `arn:aws:events:${facts.region}:${facts.accountId}:event-bus/${name}`;
  };
  if (operation !== 'PutEvents') {
    return [{ action: `events:${operation}`, resource: busArn(body.EventBusName), context: {} }];
  }
  const seen = new Map<string, MappedRequest>();
  for (const entry of (body.Entries as Json[] | undefined) ?? []) {
    const request: MappedRequest = {
      action: 'events:PutEvents',
      resource: busArn(entry.EventBusName),
      context: {
        ...(typeof entry.Source === 'string' ? { 'events:source': entry.Source } : {}),
        ...(typeof entry.DetailType === 'string' ? { 'events:detail-type': entry.DetailType } : {}),
      },
    };
    seen.set(JSON.stringify(request), request);
  }
  return [...seen.values()];
}

function mapLambda(call: WireCall, facts: MappingFacts): MappedRequest[] {
  const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(call.path ?? '');
  if (!match) throw new UnmappedCallError('lambda', `${call.method ?? ''} ${call.path ?? ''}`);
  const id = decodeURIComponent(match[1] as string);
  // A name, a partial ARN (`123:function:name`) or an ARN, possibly with a qualifier.
  const name = id.includes(':function:')
    ? (id.split(':function:')[1]?.split(':')[0] ?? id)
    : (id.split(':')[0] ?? id);
  return [
    {
      action: 'lambda:InvokeFunction',
      resource: `arn:aws:lambda:${facts.region}:${facts.accountId}:function:${name}`,
      context: {},
    },
  ];
}

// ---- S3 (path-style requests: /bucket/key) --------------------------------------------------------------------

function mapS3(call: WireCall): MappedRequest[] {
  const url = new URL(call.path ?? '/', 'http://local');
  const [bucket, ...rest] = url.pathname.replace(/^\//, '').split('/');
  const key = rest.map(decodeURIComponent).join('/');
  if (!bucket) return [{ action: 's3:ListAllMyBuckets', resource: '*', context: {} }];
  const method = (call.method ?? 'GET').toUpperCase();
  if (!key) {
    if (method === 'GET' && !url.searchParams.has('location'))
      return [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: {} }];
    throw new UnmappedCallError('s3', `${method} ${url.pathname}${url.search}`);
  }
  if (url.searchParams.has('uploadId') || url.searchParams.has('uploads'))
    return [{ action: 's3:PutObject', resource: `arn:aws:s3:::${bucket}/${key}`, context: {} }];
  const action =
    method === 'PUT'
      ? 's3:PutObject'
      : method === 'DELETE'
        ? 's3:DeleteObject'
        : method === 'GET' || method === 'HEAD'
          ? 's3:GetObject'
          : undefined;
  if (!action) throw new UnmappedCallError('s3', `${method} ${url.pathname}`);
  return [{ action, resource: `arn:aws:s3:::${bucket}/${key}`, context: {} }];
}
