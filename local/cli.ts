/**
 * `outbox local` (behind `npm start`). Until the full offline runtime lands this runs the smallest
 * end-to-end demo: DynamoDB Local, one transaction through the real producer code, and its stream records.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { startDynamoDbLocal } from './services/dynamodb-local.ts';

export async function runLocalCommand(_argv: string[]): Promise<number> {
  const ddb = await startDynamoDbLocal();
  try {
    process.env.AWS_ENDPOINT_URL_DYNAMODB = ddb.endpoint;
    process.env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS = ddb.endpoint;
    process.env.AWS_REGION = 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID = 'local';
    process.env.AWS_SECRET_ACCESS_KEY = 'local';
    process.env.OUTBOX_TABLE_NAME = 'outbox';
    process.env.ORDERS_TABLE_NAME = 'orders';
    const { createLocalOutboxTable, readStream } = await import('../test/support/outbox-table.ts');
    const outbox = await createLocalOutboxTable(ddb.endpoint, 'demo-outbox');
    process.env.OUTBOX_TABLE_NAME = outbox.tableName;
    await new DynamoDBClient({}).send(
      new CreateTableCommand({
        TableName: 'orders',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'orderId', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
      }),
    );
    const { handler } = await import('../functions/orders/place-order.ts');
    const placed = await handler({ action: 'place', orderId: '1001', customerId: 'c-1', amountCents: 4200 });
    const paid = await handler({ action: 'pay', orderId: '1001' });
    console.log('committed', placed, paid);
    const records = await readStream(ddb.endpoint, outbox.streamArn);
    for (const r of records) {
      const image = unmarshall((r.dynamodb?.NewImage ?? {}) as never);
      console.log(r.eventName, image.pk, image.sk, image.status ?? '', image.type ?? '');
    }
    const events = records.filter(
      (r) => r.eventName === 'INSERT' && String(r.dynamodb?.NewImage?.sk?.S).startsWith('EVT#'),
    );
    console.log(`${events.length} events committed with their business writes and seen on the outbox stream`);
    return events.length === 2 ? 0 : 1;
  } finally {
    await ddb.stop();
  }
}
