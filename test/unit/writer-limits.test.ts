import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import {
  messageBytes,
  eventBridgeEntryBytes as relayEventBridgeBytes,
} from '../../functions/relay/publishers.ts';
import {
  OutboxConfigurationError,
  OutboxLimitError,
  OutboxValidationError,
} from '../../functions/runtime/errors.ts';
import {
  eventBridgeEntryBytes,
  PUBLISH_TARGETS_ENV,
  SNS_MAX_MESSAGE_BYTES,
  snsMessageBytes,
} from '../../functions/runtime/message-limits.ts';
import {
  type OutboxEventInput,
  OutboxWriter,
  type OutboxWriterOptions,
} from '../../functions/runtime/writer.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

function writerWith(options: Partial<OutboxWriterOptions> = {}): OutboxWriter {
  return new OutboxWriter({ tableName: 'outbox', source: '/orders', client, now: () => NOW, ...options });
}

afterEach(() => ddb.reset());

async function commit(writer: OutboxWriter, event: OutboxEventInput): Promise<unknown> {
  ddb.on(TransactWriteCommand).resolves({});
  return writer.transact({ aggregate: { key: 'order#1', expectedVersion: 0 }, events: [event] }).then(
    () => 'committed',
    (e: unknown) => e,
  );
}

/** An event whose envelope is exactly `bytes` long. */
function eventOfEnvelopeBytes(writer: OutboxWriter, bytes: number): OutboxEventInput {
  const probe = { type: 'OrderPlaced', subject: '1', id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', data: '' };
  const built = writer.buildTransaction({ aggregate: { key: 'order#1' }, events: [probe] }, 0);
  const base = Buffer.byteLength(JSON.stringify(built.events[0]));
  return { ...probe, data: 'x'.repeat(bytes - base) };
}

describe('OutboxWriter refuses at write time what the targets would refuse (#11.5)', () => {
  it('refuses an envelope of exactly 256 KB: with its attributes it is over the SNS limit', async () => {
    const writer = writerWith();
    const event = eventOfEnvelopeBytes(writer, SNS_MAX_MESSAGE_BYTES);
    const { command } = writerWith({ targets: ['sqs'] }).buildTransaction(
      { aggregate: { key: 'order#1' }, events: [event] },
      0,
    );
    expect(Buffer.byteLength(command.TransactItems?.[1]?.Put?.Item?.envelope as string)).toBe(262_144);

    const error = await commit(writer, event);
    expect(error).toBeInstanceOf(OutboxValidationError);
    expect((error as OutboxValidationError).field).toBe('events[0]');
    expect((error as Error).message).toMatch(/SNS message incl\. attributes \(262144 bytes\)/);
    expect((error as Error).message).toMatch(/262\d{3} bytes, over the 262144-byte limit/);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('accepts the largest envelope whose SNS message (body + attributes) fits', async () => {
    const writer = writerWith();
    const overhead =
      snsMessageBytes({
        envelopeBytes: 1_000,
        type: 'OrderPlaced',
        source: '/orders',
        partitionKey: 'order#1',
        sequence: 1,
        subject: '1',
      }) - 1_000;
    const fits = eventOfEnvelopeBytes(writer, SNS_MAX_MESSAGE_BYTES - overhead);
    expect(await commit(writer, fits)).toBe('committed');
    const over = eventOfEnvelopeBytes(writer, SNS_MAX_MESSAGE_BYTES - overhead + 1);
    expect(await commit(writer, over)).toBeInstanceOf(OutboxLimitError);
  });

  it.each([
    [
      'a type over 128 bytes',
      { type: 'T'.repeat(129), data: {} },
      'events[0].type',
      /DetailType \(128 bytes\)/,
    ],
    [
      'a 128-byte type of multi-byte characters',
      { type: 'é'.repeat(65), data: {} },
      'events[0].type',
      /DetailType/,
    ],
    [
      'a source over 256 bytes',
      { type: 'T', source: `/${'s'.repeat(256)}`, data: {} },
      'events[0].source',
      /Source \(256 bytes\)/,
    ],
    [
      'a source starting with "aws."',
      { type: 'T', source: 'aws.orders', data: {} },
      'events[0].source',
      /"aws\."/,
    ],
  ])('refuses %s for EventBridge, naming the limit', async (_name, event, field, limit) => {
    const error = await commit(writerWith(), event);
    expect(error).toBeInstanceOf(OutboxLimitError);
    expect(error).toMatchObject({ field, target: 'eventbridge' });
    expect((error as Error).message).toMatch(limit);
    // Without EventBridge among the targets, the same event is deliverable.
    expect(await commit(writerWith({ targets: ['sns', 'sqs'] }), event)).toBe('committed');
  });

  it('lets events up to maxEventBytes through when no target has a smaller limit', async () => {
    const event = { type: 'T', data: 'x'.repeat(500_000) };
    const withSns = writerWith({ maxEventBytes: 1024 * 1024 });
    expect(await commit(withSns, event)).toMatchObject({ target: 'sns' });
    const withoutSns = writerWith({ maxEventBytes: 1024 * 1024, targets: ['sqs', 'eventbridge'] });
    expect(await commit(withoutSns, event)).toBe('committed');
  });

  it(`reads the targets from ${PUBLISH_TARGETS_ENV} and refuses unknown ones`, async () => {
    const saved = process.env[PUBLISH_TARGETS_ENV];
    try {
      process.env[PUBLISH_TARGETS_ENV] = 'sqs, sns';
      expect(writerWith().targets).toEqual(['sqs', 'sns']);
      process.env[PUBLISH_TARGETS_ENV] = 'sns,kafka';
      expect(() => writerWith()).toThrow(OutboxConfigurationError);
      expect(() => writerWith()).toThrow(/OUTBOX_PUBLISH_TARGETS/);
      delete process.env[PUBLISH_TARGETS_ENV];
      expect(writerWith().targets).toEqual(['sns', 'sqs', 'eventbridge']);
      expect(() => writerWith({ targets: [] })).toThrow(OutboxConfigurationError);
    } finally {
      if (saved === undefined) delete process.env[PUBLISH_TARGETS_ENV];
      else process.env[PUBLISH_TARGETS_ENV] = saved;
    }
  });
});

describe('message-limits agrees with what the relay counts', () => {
  it.each([
    ['with a subject', '1'],
    ['without a subject', undefined],
  ])('SNS message and EventBridge entry sizes, %s', (_name, subject) => {
    const envelope = JSON.stringify({ data: 'é'.repeat(100) });
    const record: OutboxRecord = {
      pk: 'commande#é',
      sk: 'EVT#000000001234',
      id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
      type: 'Bestellung.Aufgegeben',
      source: '/orders/ü',
      sequence: 1234,
      envelope,
      envelopeBytes: Buffer.byteLength(envelope),
      createdAt: NOW,
      ...(subject === undefined ? {} : { subject }),
    };
    const message = {
      envelopeBytes: record.envelopeBytes,
      type: record.type,
      source: record.source,
      partitionKey: record.pk,
      sequence: record.sequence,
      ...(subject === undefined ? {} : { subject }),
    };
    expect(snsMessageBytes(message)).toBe(messageBytes(record));
    expect(eventBridgeEntryBytes(message)).toBe(relayEventBridgeBytes(record));
  });
});
