/**
 * The fresh project of test/package/local-app.test.ts: a two-stack CDK app on the packed package, and a vitest
 * test in that project that runs it with `startLocal()`.
 */

const PLATFORM_STACK = `import * as path from 'node:path';
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { Outbox } from 'serverless-outbox';

export class ShopPlatformStack extends Stack {
  readonly outbox: Outbox;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.outbox = new Outbox(this, 'Outbox', { eventBus: true });

    const orders = new dynamodb.TableV2(this, 'Orders', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
    });
    const placeOrder = new nodejs.NodejsFunction(this, 'PlaceOrder', {
      entry: path.join(import.meta.dirname, '../src/place-order.ts'),
      runtime: lambda.Runtime.NODEJS_22_X,
      // The 3 s default is too short for a cold start while other tests load the machine (it timed out so).
      timeout: Duration.seconds(30),
      environment: {
        OUTBOX_TABLE_NAME: this.outbox.table.tableName,
        ORDERS_TABLE_NAME: orders.tableName,
        OUTBOX_EVENT_SOURCE: '/shop/orders',
      },
    });
    this.outbox.grantWrite(placeOrder);
    orders.grantWriteData(placeOrder);

    const charges = new dynamodb.TableV2(this, 'Charges', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
    });
    const billing = this.outbox.subscribe('billing', {
      kind: 'ordered',
      eventTypePrefixes: ['com.example.orders.'],
      consumer: {
        entry: path.join(import.meta.dirname, '../src/billing.ts'),
        environment: { CHARGES_TABLE_NAME: charges.tableName },
      },
    });
    charges.grantWriteData(billing.consumer!);
  }
}
`;

const SHIPPING_STACK = `import * as path from 'node:path';
import { Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { type IOutbox, Subscription } from 'serverless-outbox';

export class ShippingStack extends Stack {
  constructor(scope: Construct, id: string, props: StackProps & { readonly outbox: IOutbox }) {
    super(scope, id, props);
    const shipments = new dynamodb.TableV2(this, 'Shipments', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
    });
    const subscription = new Subscription(this, 'Shipping', {
      outbox: props.outbox,
      name: 'shipping',
      kind: 'rule',
      sources: ['/shop/orders'],
      consumer: {
        entry: path.join(import.meta.dirname, '../src/shipping.ts'),
        environment: { SHIPMENTS_TABLE_NAME: shipments.tableName },
      },
    });
    shipments.grantWriteData(subscription.consumer!);
  }
}
`;

const APP = `import { App } from 'aws-cdk-lib';
import { ShippingStack } from '../lib/shipping-stack.ts';
import { ShopPlatformStack } from '../lib/platform-stack.ts';

const app = new App();
const platform = new ShopPlatformStack(app, 'ShopPlatform');
new ShippingStack(app, 'Shipping', { outbox: platform.outbox });
`;

const PLACE_ORDER = `import { OutboxWriter } from 'serverless-outbox/writer';

const writer = new OutboxWriter();

export async function handler(order: { orderId: string; amountCents: number }) {
  const { events } = await writer.transact({
    aggregate: { key: \`order#\${order.orderId}\`, expectedVersion: 0 },
    writes: [
      {
        Put: {
          TableName: process.env.ORDERS_TABLE_NAME,
          Item: { orderId: order.orderId, amountCents: order.amountCents },
          ConditionExpression: 'attribute_not_exists(orderId)',
        },
      },
    ],
    events: [{ type: 'com.example.orders.OrderPlaced', subject: order.orderId, data: order }],
  });
  return { eventId: events[0]?.id };
}
`;

/** Both consumers record when the event was committed (its \`time\`) and when they applied it. */
const consumer = (
  mode: string,
  tableEnv: string,
) => `import { createConsumer } from 'serverless-outbox/consumer';

interface OrderPlaced {
  readonly orderId: string;
  readonly amountCents: number;
}

const consumer = createConsumer<OrderPlaced>({
  mode: '${mode}',
  handle: (event) =>
    event.type === 'com.example.orders.OrderPlaced'
      ? [
          {
            Put: {
              TableName: process.env.${tableEnv},
              Item: {
                orderId: event.data.orderId,
                amountCents: event.data.amountCents,
                committedAt: Date.parse(event.time ?? ''),
                appliedAt: Date.now(),
              },
            },
          },
        ]
      : [],
});

export const handler = consumer.handler;
`;

const LOCAL_TEST = `import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { startLocal } from 'serverless-outbox/local';

it('runs both stacks offline: the producer events reach both consumers', async () => {
  const started = performance.now();
  const local = await startLocal({ log: (line) => { if (/warn|error|UNSUPPORTED/i.test(line)) console.error(line); } });
  const readyMs = Math.round(performance.now() - started);
  try {
    const ddb = new DynamoDBClient({
      region: local.env.AWS_REGION,
      endpoint: local.env.AWS_ENDPOINT_URL_DYNAMODB,
      credentials: { accessKeyId: local.env.AWS_ACCESS_KEY_ID, secretAccessKey: local.env.AWS_SECRET_ACCESS_KEY },
    });
    const tables = {
      billing: local.physicalName('ShopPlatform/Charges'),
      shipping: local.physicalName('Shipping/Shipments'),
    };
    // Reads both effects of an order; the consumers stored when the event was committed and when they applied it.
    const latencies: Record<string, number[]> = { billing: [], shipping: [] };
    const waitForEffects = async (orderId: string) => {
      const deadline = Date.now() + 60_000;
      for (const [subscription, table] of Object.entries(tables)) {
        for (;;) {
          const { Item } = await ddb.send(new GetItemCommand({ TableName: table, Key: { orderId: { S: orderId } } }));
          if (Item) {
            latencies[subscription]?.push(Number(Item.appliedAt?.N) - Number(Item.committedAt?.N));
            break;
          }
          if (Date.now() > deadline) throw new Error(\`\${subscription} did not apply \${orderId} within 60 s\`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const place = async (orderId: string, amountCents: number) => {
      const out = await local.invoke<{ eventId: string }>('ShopPlatform/PlaceOrder', { orderId, amountCents });
      expect(out.eventId).toMatch(/^[0-9a-f-]{36}$/);
    };
    // Right after start-up (cold functions): three orders, then their effects.
    for (const [i, orderId] of ['o-1', 'o-2', 'o-3'].entries()) await place(orderId, 100 * (i + 1));
    for (const orderId of ['o-1', 'o-2', 'o-3']) await waitForEffects(orderId);
    const cold = structuredClone(latencies);
    latencies.billing = [];
    latencies.shipping = [];
    // Warm: one order at a time.
    for (const [i, orderId] of ['w-1', 'w-2', 'w-3'].entries()) {
      await place(orderId, 10 * (i + 1));
      await waitForEffects(orderId);
    }
    const warm = structuredClone(latencies);
    const check = await local.check();
    const bySubscription = Object.fromEntries(check.subscriptions.map((s) => [s.subscription, s]));
    expect(bySubscription.billing).toMatchObject({ expected: 6, applied: 6, missing: 0, deadLettered: 0 });
    expect(bySubscription.shipping).toMatchObject({ expected: 6, applied: 6, missing: 0, deadLettered: 0 });
    expect(check.ok).toBe(true);
    ddb.destroy();
    console.log(\`LOCAL_APP_FIGURES \${JSON.stringify({ readyMs, workDir: local.workDir, timings: local.timings, latencies: { cold, warm } })}\`);
  } finally {
    await local.stop();
  }
}, 240_000);
`;

export function localAppProjectFiles(): Record<string, string> {
  return {
    'bin/app.ts': APP,
    'lib/platform-stack.ts': PLATFORM_STACK,
    'lib/shipping-stack.ts': SHIPPING_STACK,
    'src/place-order.ts': PLACE_ORDER,
    'src/billing.ts': consumer('ordered', 'CHARGES_TABLE_NAME'),
    'src/shipping.ts': consumer('transactional', 'SHIPMENTS_TABLE_NAME'),
    'test/local.test.ts': LOCAL_TEST,
    'package.json': JSON.stringify({ name: 'outbox-local-app', private: true, type: 'module' }, null, 2),
    'cdk.json': JSON.stringify({ app: 'node bin/app.ts' }),
    'vitest.config.ts': `import { defineConfig } from 'vitest/config';\nexport default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 240_000, hookTimeout: 240_000 } });\n`,
  };
}
