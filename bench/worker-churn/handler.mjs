// A function shaped like the demo's: SDK clients created at init, ~5 MB kept warm, one DynamoDB call per invocation.
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';

const dynamodb = new DynamoDBClient({});
new SQSClient({});
const kept = [];

export const handler = async () => {
  if (kept.length === 0) for (let i = 0; i < 50_000; i++) kept.push({ i, text: `${'x'.repeat(20)}${i}` });
  const out = await dynamodb.send(new ListTablesCommand({}));
  return out.TableNames?.length ?? 0;
};
