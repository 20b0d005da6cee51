import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { eventBridgeTime } from '../../functions/runtime/message-limits.ts';

/** The JSON body the real EventBridge client would send for one entry with `time` (captured, never sent). */
async function putEventsBody(time: Date | undefined): Promise<string> {
  const client = new EventBridgeClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  let body = '';
  client.middlewareStack.add(
    () => async (args) => {
      const request = args.request as { body?: unknown };
      body = Buffer.from(request.body as Uint8Array | string).toString('utf8');
      throw new Error('captured');
    },
    { step: 'finalizeRequest', name: 'captureBody' },
  );
  await client
    .send(
      new PutEventsCommand({
        Entries: [{ Source: '/orders', DetailType: 'T', Detail: '{}', ...(time ? { Time: time } : {}) }],
      }),
    )
    .catch(() => undefined);
  return body;
}

describe('eventBridgeTime: a foreign writer’s createdAt never breaks the PutEvents body (#11.4)', () => {
  it('shows the problem it avoids: an invalid Date is serialised as NaN, which is not JSON', async () => {
    const body = await putEventsBody(new Date(1e20));
    expect(body).toContain('"Time":NaN');
    expect(() => JSON.parse(body)).toThrow(SyntaxError);
  });

  it.each([
    ['missing', undefined],
    ['zero (the relay’s stand-in for missing)', 0],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['beyond what a Date holds', 1e20],
    ['past year 9999', 8.64e15],
    ['negative', -1],
    ['a string', '1795363200000'],
  ])('is undefined for a createdAt that is %s, and the body stays JSON', async (_name, createdAt) => {
    const time = eventBridgeTime(createdAt);
    expect(time).toBeUndefined();
    const body = JSON.parse(await putEventsBody(time));
    expect(body.Entries[0].Time).toBeUndefined();
  });

  it('keeps a sensible createdAt as the entry time', async () => {
    const createdAt = Date.UTC(2026, 10, 22, 16, 0, 0);
    const body = JSON.parse(await putEventsBody(eventBridgeTime(createdAt)));
    expect(body.Entries[0].Time).toBe(createdAt / 1000);
  });
});
