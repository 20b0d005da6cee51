/**
 * Offline IAM's cost (issue 13): what the gateway adds to each call a function makes.
 * - `map+authorize`: µs to map one TransactWriteItems (2 items) to IAM requests and authorize them, with distinct
 *   partition keys (no decision cache hits) and with one key (cached);
 * - `GetItem p50/p95`: ms per GetItem on DynamoDB Local, direct and through the gateway as a function's role
 *   (400 calls each, alternating, after 200 warm-up calls each).
 */
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { IamAuthorizer } from '../local/iam/authorizer.ts';
import { startIamGateway } from '../local/iam/gateway.ts';
import { compilePolicy } from '../local/iam/policy-language.ts';
import { mapCall } from '../local/iam/requests.ts';
import type { IamModel } from '../local/iam/template-policies.ts';
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { percentile, round } from './stats.ts';

const ROLE = 'arn:aws:iam::000000000000:role/bench';
const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table/Outbox';
const model: IamModel = {
  functionRoles: new Map([['bench-fn', ROLE]]),
  rolePolicies: new Map([
    [
      ROLE,
      [
        compilePolicy('p', {
          Statement: [
            {
              Effect: 'Allow',
              Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:GetItem'],
              Resource: TABLE,
              Condition: {
                'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': ['HEAD', 'ACK#*', 'P#*'] },
              },
            },
          ],
        }),
      ],
    ],
  ]),
  resourcePolicies: new Map(),
  encryptionKeys: new Map(),
  notes: [],
};
const facts = {
  region: 'us-east-1',
  accountId: '000000000000',
  partitionKeys: new Map([['Outbox', { table: 'pk', indexes: {} }]]),
  queueArn: () => undefined,
};

function authorizeMicros(distinct: boolean): number {
  const authorizer = new IamAuthorizer(model, { region: 'us-east-1', accountId: '000000000000' });
  const n = 20_000;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const key = `order#${distinct ? i : 0}`;
    const body = JSON.stringify({
      TransactItems: [
        { Put: { TableName: 'Outbox', Item: { pk: { S: key }, sk: { S: 'EVT#1' }, payload: { S: 'x' } } } },
        {
          Update: {
            TableName: 'Outbox',
            Key: { pk: { S: key }, sk: { S: 'S' } },
            UpdateExpression: 'SET v = :v',
          },
        },
      ],
    });
    const requests = mapCall(
      { service: 'dynamodb', operation: 'DynamoDB_20120810.TransactWriteItems', body },
      { ...facts, streamOfIterator: () => undefined },
    );
    if (!authorizer.authorizeCall('bench-fn', requests).allowed)
      throw new Error('bench policy denied a call');
  }
  return ((performance.now() - started) * 1000) / n;
}

/** Alternating calls, so DynamoDB Local's warm-up and the machine's load weigh on both paths alike. */
async function getItemLatencies(clients: readonly DynamoDBClient[]): Promise<number[][]> {
  const times: number[][] = clients.map(() => []);
  for (let i = 0; i < 600; i++) {
    for (const [c, client] of clients.entries()) {
      const t = performance.now();
      await client.send(
        new GetItemCommand({ TableName: 'Outbox', Key: { pk: { S: 'order#1' }, sk: { S: 'EVT#1' } } }),
      );
      if (i >= 200) times[c]?.push(performance.now() - t);
    }
  }
  return times;
}

export async function run(): Promise<Record<string, number | string>> {
  const uncached = authorizeMicros(true);
  const cached = authorizeMicros(false);
  const dynamodb = await startDynamoDbLocal();
  const authorizer = new IamAuthorizer(model, { region: 'us-east-1', accountId: '000000000000' });
  const gateway = await startIamGateway({
    upstreams: {
      dynamodb: () => dynamodb.endpoint,
      fauxqs: () => '',
      eventbridge: () => '',
      lambda: () => '',
    },
    authorizer: () => authorizer,
    facts,
  });
  const region = 'us-east-1';
  const direct = new DynamoDBClient({
    endpoint: dynamodb.endpoint,
    region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const asFunction = new DynamoDBClient({
    endpoint: gateway.urls.dynamodb,
    region,
    credentials: { accessKeyId: 'bench-fn', secretAccessKey: 'local' },
  });
  try {
    await direct.send(
      new CreateTableCommand({
        TableName: 'Outbox',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
      }),
    );
    await direct.send(
      new PutItemCommand({ TableName: 'Outbox', Item: { pk: { S: 'order#1' }, sk: { S: 'EVT#1' } } }),
    );
    const [directTimes = [], gatewayTimes = []] = await getItemLatencies([direct, asFunction]);
    if (authorizer.deniedCount > 0) throw new Error('the gateway denied a bench call');
    return {
      'map+authorize µs (distinct keys)': round(uncached, 1),
      'map+authorize µs (cached)': round(cached, 1),
      'GetItem p50 ms direct': round(percentile(directTimes, 50), 2),
      'GetItem p50 ms via gateway': round(percentile(gatewayTimes, 50), 2),
      'GetItem p95 ms direct': round(percentile(directTimes, 95), 2),
      'GetItem p95 ms via gateway': round(percentile(gatewayTimes, 95), 2),
    };
  } finally {
    direct.destroy();
    asFunction.destroy();
    await gateway.stop();
    await dynamodb.stop();
  }
}
