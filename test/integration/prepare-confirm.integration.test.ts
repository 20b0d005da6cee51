import { gunzipSync } from 'node:zlib';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutboxValidationError } from '../../functions/runtime/errors.ts';
import { deliveryProblems } from '../../functions/runtime/message-limits.ts';
import { type OutboxEventInput, OutboxWriter, type PreparedMessage } from '../../functions/runtime/writer.ts';
import { createLocalOutboxTable, type LocalOutbox } from '../support/outbox-table.ts';
import { useDynamoDbLocal } from '../support/services.ts';

const endpoint = useDynamoDbLocal();
const SWEEPER_TRACE_HEADER = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const PRODUCER_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('confirm accepts whatever prepare accepted (#10.5), against DynamoDB Local', () => {
  let outbox: LocalOutbox;
  let producer: OutboxWriter;
  /** Like the recovery sweeper's writer: default options, running under its own X-Ray trace. */
  let sweeper: OutboxWriter;
  const savedTraceHeader = process.env._X_AMZN_TRACE_ID;

  beforeAll(async () => {
    outbox = await createLocalOutboxTable(endpoint(), 'confirm');
    producer = new OutboxWriter({ tableName: outbox.tableName, source: '/payments', client: outbox.doc });
    sweeper = new OutboxWriter({ tableName: outbox.tableName, client: outbox.doc });
  });

  afterEach(() => {
    if (savedTraceHeader === undefined) delete process.env._X_AMZN_TRACE_ID;
    else process.env._X_AMZN_TRACE_ID = savedTraceHeader;
  });

  /** Gives the aggregate a long history, so confirm assigns a sequence with many more digits than 1. */
  async function setVersion(aggregateKey: string, version: number): Promise<void> {
    await outbox.doc.send(
      new PutCommand({
        TableName: outbox.tableName,
        Item: { pk: aggregateKey, sk: 'HEAD', lastSequence: version },
      }),
    );
  }

  async function publishedEnvelope(aggregateKey: string, sequence: number): Promise<Record<string, unknown>> {
    const sk = `EVT#${String(sequence).padStart(12, '0')}`;
    const { Item } = await outbox.doc.send(
      new GetCommand({ TableName: outbox.tableName, Key: { pk: aggregateKey, sk }, ConsistentRead: true }),
    );
    const json = Item?.envelope ?? gunzipSync(Item?.envelopeGzip as Uint8Array).toString('utf8');
    return JSON.parse(json as string) as Record<string, unknown>;
  }

  /** Prepares the largest event of the form `{ type, subject, data: 'x'.repeat(n) }` that prepare accepts. */
  async function prepareLargestAccepted(
    writer: OutboxWriter,
    aggregateKey: string,
    limit: number,
  ): Promise<{ message: PreparedMessage; dataLength: number }> {
    const event = (n: number): OutboxEventInput => ({ type: 'Charged', subject: 'p-1', data: 'x'.repeat(n) });
    let accepted: { message: PreparedMessage; dataLength: number } | undefined;
    let low = 0;
    let high = limit;
    while (low <= high) {
      const n = Math.floor((low + high) / 2);
      try {
        accepted = { message: await writer.prepare(aggregateKey, event(n)), dataLength: n };
        low = n + 1;
      } catch (error) {
        expect(error).toBeInstanceOf(OutboxValidationError);
        high = n - 1;
      }
    }
    if (!accepted) throw new Error('prepare accepted nothing');
    // The largest: one byte more is refused.
    await expect(writer.prepare(aggregateKey, event(accepted.dataLength + 1))).rejects.toBeInstanceOf(
      OutboxValidationError,
    );
    return accepted;
  }

  it('confirms the largest event prepare accepted, at a 6-digit sequence, from the sweeper under its own trace', async () => {
    const key = 'pay#at-limit';
    const { message } = await prepareLargestAccepted(producer, key, 262_144);
    await setVersion(key, 99_999);

    process.env._X_AMZN_TRACE_ID = SWEEPER_TRACE_HEADER;
    const confirmed = await sweeper.confirm(message);

    expect(confirmed).toEqual({ id: message.id, sequence: 100_000, confirmedNow: true });
    const envelope = await publishedEnvelope(key, 100_000);
    // The producer had no trace: the sweeper's is not added (and did not push the envelope over the limit).
    expect(envelope.traceparent).toBeUndefined();
    const json = JSON.stringify(envelope);
    const published = {
      envelopeBytes: Buffer.byteLength(json),
      type: envelope.type as string,
      source: envelope.source as string,
      partitionKey: key,
      sequence: 100_000,
      subject: envelope.subject as string,
    };
    expect(deliveryProblems(published)).toEqual([]);
  });

  it("keeps the producer's traceparent, whether given or taken from the producer's X-Ray header", async () => {
    const key = 'pay#traced';
    const given = await producer.prepare(key, {
      type: 'Charged',
      data: {},
      traceparent: PRODUCER_TRACEPARENT,
    });
    process.env._X_AMZN_TRACE_ID =
      'Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=0';
    const fromXRay = await producer.prepare(key, { type: 'Charged', data: {} });

    process.env._X_AMZN_TRACE_ID = SWEEPER_TRACE_HEADER;
    await sweeper.confirm(given);
    await sweeper.confirm(fromXRay);

    expect((await publishedEnvelope(key, 1)).traceparent).toBe(PRODUCER_TRACEPARENT);
    expect((await publishedEnvelope(key, 2)).traceparent).toBe(
      '00-11111111222222222222222222222222-3333333333333333-00',
    );
  });

  it("confirms a large event prepared under the producer's own size limit and targets, whatever the sweeper's defaults", async () => {
    const key = 'pay#large';
    const large = new OutboxWriter({
      tableName: outbox.tableName,
      source: '/payments',
      client: outbox.doc,
      maxEventBytes: 1024 * 1024,
      targets: ['sqs'],
    });
    const message = await large.prepare(key, { type: 'Charged', data: 'x'.repeat(500_000) });

    const confirmed = await sweeper.confirm(message);

    expect(confirmed).toMatchObject({ sequence: 1, confirmedNow: true });
    expect((await publishedEnvelope(key, 1)).data).toHaveLength(500_000);
  });
});
