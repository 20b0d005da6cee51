/**
 * Writer cost: CPU per event (envelope build, validation, command build) with a mocked client, and the
 * DynamoDB write units one transact call costs per event.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { OutboxWriter } from '../functions/runtime/writer.ts';
import { cpuMicrosPerOp, round } from './stats.ts';

/** A ~1 KB order payload. */
function orderData(i: number) {
  return {
    orderId: `order-${i}`,
    customerId: `customer-${i % 97}`,
    amountCents: 1999 + i,
    currency: 'EUR',
    lines: Array.from({ length: 8 }, (_, j) => ({
      sku: `SKU-${j}-${i % 13}`,
      quantity: 1 + (j % 3),
      priceCents: 250 + j,
    })),
    shippingAddress: { street: '1 Example Street', city: 'Springfield', postcode: '12345', country: 'DE' },
    notes: 'x'.repeat(200),
  };
}

/** DynamoDB item size: attribute name lengths + value sizes (strings UTF-8, numbers ~ digits/2+1). */
export function itemSizeBytes(item: Record<string, unknown>): number {
  const attributes = marshall(item, { removeUndefinedValues: true, convertClassInstanceToMap: true });
  let size = 0;
  for (const [name, value] of Object.entries(attributes)) {
    size += Buffer.byteLength(name);
    if (value.S !== undefined) size += Buffer.byteLength(value.S);
    else if (value.N !== undefined) size += Math.ceil(value.N.replace(/^-|\./g, '').length / 2) + 1;
    else if (value.B !== undefined) size += value.B.length;
    else size += Buffer.byteLength(JSON.stringify(value));
  }
  return size;
}

export async function run(): Promise<Record<string, number | string>> {
  const ddb = mockClient(DynamoDBDocumentClient);
  ddb.on(TransactWriteCommand).resolves({});
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const writer = new OutboxWriter({ tableName: 'outbox', source: '/orders', client });
  const sample = writer.buildTransaction(
    { aggregate: { key: 'order#0' }, events: [{ type: 'OrderPlaced', data: orderData(0) }] },
    0,
  );
  const envelopeBytes = Buffer.byteLength(JSON.stringify(sample.events[0]));

  // CPU of building + validating + command building (the part the writer adds to a business Lambda).
  const buildMicros = await cpuMicrosPerOp(
    (i) =>
      writer.buildTransaction(
        { aggregate: { key: `order#${i}` }, events: [{ type: 'OrderPlaced', data: orderData(i) }] },
        0,
      ),
    { iterations: 2000, runs: 7 },
  );
  // The whole transact() call through the mocked client (includes SDK command/middleware overhead).
  const transactMicros = await cpuMicrosPerOp(
    (i) =>
      writer.transact({
        aggregate: { key: `order#${i}`, expectedVersion: 0 },
        events: [{ type: 'OrderPlaced', data: orderData(i) }],
      }),
    { iterations: 1000, runs: 5 },
  );
  ddb.restore();

  // Write units: transactional writes cost 2 WCU per started KB per item; the GSI entry is a standard write.
  const items = sample.command.TransactItems ?? [];
  const record = items[1]?.Put?.Item as Record<string, unknown>;
  const head = { pk: 'order#0', sk: 'HEAD', lastSequence: 1, updatedAt: Date.now() };
  const recordWcu = 2 * Math.ceil(itemSizeBytes(record) / 1024);
  const headWcu = 2 * Math.ceil(itemSizeBytes(head) / 1024);
  const indexed = {
    pendingShard: record.pendingShard,
    pendingDueAt: record.pendingDueAt,
    pk: record.pk,
    sk: record.sk,
    id: record.id,
    status: record.status,
    attempts: record.attempts,
    sequence: record.sequence,
    createdAt: record.createdAt,
  };
  const gsiWcu = Math.ceil(itemSizeBytes(indexed) / 1024);
  const tenEventsWcu = 10 * recordWcu + headWcu + 10 * gsiWcu;
  return {
    envelope_bytes: envelopeBytes,
    outbox_item_bytes: itemSizeBytes(record),
    cpu_us_per_event_build: buildMicros,
    cpu_us_per_event_transact_mocked: transactMicros,
    cpu_target_us: 25,
    wcu_per_event_1_event_per_transaction: recordWcu + headWcu + gsiWcu,
    wcu_per_event_10_events_per_transaction: round(tenEventsWcu / 10),
    wcu_breakdown: `record ${recordWcu} (transactional) + head ${headWcu} per transaction + GSI ${gsiWcu}`,
  };
}
