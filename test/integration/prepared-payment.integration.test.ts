import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ORDER_PAID } from '../../examples/orders/contract.ts';
import {
  decidePayment,
  PaymentStatus,
  type PreparedPayDeps,
  payPrepared,
  readPayment,
} from '../../examples/orders/prepared-payment.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { OutboxWriter, type PreparedMessage } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();

/** A producer that dies right after its charge: confirm never runs. */
class DiesBeforeConfirm extends OutboxWriter {
  override async confirm(message: PreparedMessage): Promise<never> {
    throw new Error(`the producer died before confirming ${message.id}`);
  }
}

describe('prepared payments (examples/orders): prepare → charge → confirm, check-back decides for a dead producer', () => {
  let outbox: LocalOutbox;
  let deps: PreparedPayDeps;
  let orderCount = 0;

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'prepared-pay');
    const table = async (name: string) => {
      const tableName = `${name}-${outbox.tableName}`;
      await outbox.client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'orderId', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
        }),
      );
      return tableName;
    };
    deps = {
      writer: new OutboxWriter({ tableName: outbox.tableName, source: '/demo/orders', client: outbox.doc }),
      client: outbox.doc,
      ordersTable: await table('orders'),
      paymentsTable: await table('payments'),
    };
  });

  /** A placed order (version 1, its OrderPlaced committed), as place-order.ts leaves it. */
  async function placedOrder(): Promise<string> {
    const orderId = `o${++orderCount}`;
    await deps.writer.transact({
      aggregate: { key: `order#${orderId}`, expectedVersion: 0 },
      writes: [
        {
          Put: {
            TableName: deps.ordersTable,
            Item: { orderId, version: 1, state: 'PLACED', amountCents: 1200 },
          },
        },
      ],
      events: [{ type: 'com.example.orders.OrderPlaced', data: { orderId } }],
    });
    return orderId;
  }

  async function outboxItems(orderId: string) {
    const page = await outbox.doc.send(
      new QueryCommand({
        TableName: outbox.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `order#${orderId}` },
        ConsistentRead: true,
      }),
    );
    const items = page.Items ?? [];
    return {
      prepared: items.find((i) => String(i.sk).startsWith('PRE#')),
      events: items.filter((i) => String(i.sk).startsWith('EVT#')),
    };
  }

  const orderVersion = async (orderId: string) =>
    (
      await outbox.doc.send(
        new GetCommand({ TableName: deps.ordersTable, Key: { orderId }, ConsistentRead: true }),
      )
    ).Item?.version;

  it('pays: the event gets the next sequence at confirm, the payment and the order agree; check-back says committed', async () => {
    const orderId = await placedOrder();
    const paymentId = uuidv7();

    const paid = await payPrepared(deps, { orderId, paymentId });

    expect(paid).toEqual({ ok: true, eventId: paymentId, sequence: 2, replayed: false });
    const { prepared, events } = await outboxItems(orderId);
    expect(prepared?.status).toBe('CONFIRMED');
    expect(events.map((e) => [e.sequence, e.type, e.status])).toEqual([
      [1, 'com.example.orders.OrderPlaced', 'READY'],
      [2, ORDER_PAID, 'READY'],
    ]);
    expect(events[1]?.id).toBe(paymentId);
    expect(await readPayment(deps.client, deps.paymentsTable, orderId)).toMatchObject({
      status: PaymentStatus.charged,
      eventId: paymentId,
    });
    expect(await orderVersion(orderId)).toBe(2);
    expect(await decidePayment(deps.client, deps.paymentsTable, orderId, paymentId)).toBe('committed');
  });

  it('producer died after prepare: check-back rolls it back and fences the charge, so a late producer cancels instead', async () => {
    const orderId = await placedOrder();
    const paymentId = uuidv7();
    await deps.writer.prepare(`order#${orderId}`, { id: paymentId, type: ORDER_PAID, data: { orderId } });

    expect(await decidePayment(deps.client, deps.paymentsTable, orderId, paymentId)).toBe('rolled-back');
    // The producer (or a retry of its command) comes back after the check-back answered: it must not charge.
    const late = await payPrepared(deps, { orderId, paymentId });

    expect(late).toEqual({ ok: false, eventId: paymentId, rolledBack: true });
    const { prepared, events } = await outboxItems(orderId);
    expect(prepared?.status).toBe('CANCELLED');
    expect(events).toHaveLength(1);
    expect(await readPayment(deps.client, deps.paymentsTable, orderId)).toMatchObject({
      status: PaymentStatus.rolledBack,
    });
    expect(await orderVersion(orderId)).toBe(1);
  });

  it('producer died after the charge: check-back says committed; a retry confirms once, without charging again', async () => {
    const orderId = await placedOrder();
    const paymentId = uuidv7();
    const dying = {
      ...deps,
      writer: new DiesBeforeConfirm({
        tableName: outbox.tableName,
        source: '/demo/orders',
        client: outbox.doc,
      }),
    };
    await expect(payPrepared(dying, { orderId, paymentId })).rejects.toThrow(/died before confirming/);

    expect(await decidePayment(deps.client, deps.paymentsTable, orderId, paymentId)).toBe('committed');
    const retried = await payPrepared(deps, { orderId, paymentId });

    expect(retried).toEqual({ ok: true, eventId: paymentId, sequence: 2, replayed: false });
    expect(await orderVersion(orderId)).toBe(2);
    const { events } = await outboxItems(orderId);
    expect(events.map((e) => e.id)).toContain(paymentId);
    expect(events).toHaveLength(2);
  });

  it("check-back answers unknown for another message's payment of the same order", async () => {
    const orderId = await placedOrder();
    await payPrepared(deps, { orderId, paymentId: uuidv7() });

    expect(await decidePayment(deps.client, deps.paymentsTable, orderId, uuidv7())).toBe('unknown');
  });
});
