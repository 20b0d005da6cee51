import { describe, expect, it } from 'vitest';
import { buildEnvelope, envelopeProblems, traceparentFromXRay } from '../../functions/runtime/envelope.ts';
import { OutboxValidationError } from '../../functions/runtime/errors.ts';
import { isUuidV7, uuidv7, uuidv7Time } from '../../functions/runtime/ids.ts';

const base = { partitionKey: 'order#1', sequence: 1, defaultSource: '/orders' };

describe('uuidv7', () => {
  it('is a valid v7 id carrying its creation time', () => {
    const now = Date.UTC(2026, 10, 22, 12, 0, 0);
    const id = uuidv7(now);
    expect(isUuidV7(id)).toBe(true);
    expect(uuidv7Time(id)).toBe(now);
  });

  it('is strictly increasing within one millisecond and unique', () => {
    const now = Date.now() + 10_000;
    const ids = Array.from({ length: 5000 }, () => uuidv7(now));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('buildEnvelope', () => {
  it('builds a CloudEvents 1.0 structured-mode envelope with the outbox extensions', () => {
    const { envelope, json, bytes } = buildEnvelope(
      {
        type: 'OrderPlaced',
        data: { orderId: '1' },
        subject: '1',
        traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      },
      { ...base, sequence: 7, now: Date.UTC(2026, 0, 1) },
    );
    expect(envelope).toMatchObject({
      specversion: '1.0',
      source: '/orders',
      type: 'OrderPlaced',
      subject: '1',
      time: '2026-01-01T00:00:00.000Z',
      datacontenttype: 'application/json',
      partitionkey: 'order#1',
      sequence: 7,
      data: { orderId: '1' },
    });
    expect(isUuidV7(envelope.id)).toBe(true);
    expect(JSON.parse(json)).toEqual(envelope);
    expect(bytes).toBe(Buffer.byteLength(json));
    expect(envelopeProblems(JSON.parse(json))).toEqual([]);
  });

  it.each([
    ['missing type', { data: {} }, base, 'event.type'],
    ['missing source', { type: 'T', data: {} }, { ...base, defaultSource: undefined }, 'event.source'],
    ['missing aggregate key', { type: 'T', data: {} }, { ...base, partitionKey: '' }, 'event.partitionkey'],
    ['missing data', { type: 'T' }, base, 'event.data'],
    ['a function in data', { type: 'T', data: { f: () => 1 } }, base, 'event.data.f'],
    ['NaN in data', { type: 'T', data: { n: [1, Number.NaN] } }, base, 'event.data.n[1]'],
    ['a BigInt in data', { type: 'T', data: { b: 1n } }, base, 'event.data.b'],
    ['a class instance in data', { type: 'T', data: { m: new Map() } }, base, 'event.data.m'],
    ['a bad id', { type: 'T', data: {}, id: 'not-a-uuid' }, base, 'event.id'],
    ['a bad traceparent', { type: 'T', data: {}, traceparent: 'x' }, base, 'event.traceparent'],
  ])('rejects %s naming the field', (_name, input, options, field) => {
    const build = () => buildEnvelope(input as never, options as never);
    expect(build).toThrow(OutboxValidationError);
    expect(build).toThrow(expect.objectContaining({ field }));
  });

  it('rejects a circular structure', () => {
    const data: Record<string, unknown> = {};
    data.self = data;
    expect(() => buildEnvelope({ type: 'T', data }, base)).toThrow(/deeper than 64/);
  });

  it('enforces the size limit with the byte count in the message', () => {
    const data = { blob: 'x'.repeat(300 * 1024) };
    expect(() => buildEnvelope({ type: 'T', data }, base)).toThrow(/over the 262144-byte limit/);
    expect(buildEnvelope({ type: 'T', data }, { ...base, maxEventBytes: 1024 * 1024 }).bytes).toBeGreaterThan(
      300 * 1024,
    );
  });
});

describe('traceparentFromXRay', () => {
  it('converts the Lambda X-Ray header to W3C trace context', () => {
    expect(
      traceparentFromXRay('Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1'),
    ).toBe('00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01');
    expect(traceparentFromXRay(undefined)).toBeUndefined();
    expect(traceparentFromXRay('garbage')).toBeUndefined();
  });
});

describe('envelopeProblems', () => {
  it('lists every problem of an invalid envelope', () => {
    expect(envelopeProblems('x')).toEqual([{ field: '$', reason: 'not a JSON object' }]);
    const fields = envelopeProblems({ specversion: '0.3', id: 'a', sequence: 0 }).map((p) => p.field);
    expect(fields).toEqual(['specversion', 'source', 'type', 'time', 'partitionkey', 'sequence', 'data']);
  });
});
