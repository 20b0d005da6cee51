import { describe, expect, it } from 'vitest';
import { type OrderCommand, runWorkload } from '../../examples/orders/workload.ts';

describe('runWorkload', () => {
  it('retries a command under the same commandId until it commits', async () => {
    const calls: OrderCommand[] = [];
    let failOnce = true;
    const result = await runWorkload({
      orders: 1,
      ratePerSecond: 1000,
      concurrency: 1,
      invoke: async (command) => {
        calls.push(command);
        if (command.action === 'pay' && failOnce) {
          failOnce = false;
          throw new Error('outcome unknown');
        }
        return true;
      },
    });
    expect(result).toMatchObject({ commandsCommitted: 3, commandsFailed: 0 });
    expect(calls.map((c) => c.commandId)).toEqual([
      'o00001.place',
      'o00001.pay',
      'o00001.pay',
      'o00001.ship',
    ]);
    expect(calls[1]).toEqual(calls[2]);
  });

  it('delays only the chosen step and commits its order next step right after it', async () => {
    const calls: OrderCommand[] = [];
    const before = Date.now();
    await runWorkload({
      orders: 3,
      ratePerSecond: 1000,
      concurrency: 1,
      delaySecondsFor: (orderId, step) => (orderId === 'o00002' && step === 'pay' ? 5 : undefined),
      invoke: async (command) => {
        calls.push(command);
        return true;
      },
    });
    const delayed = calls.filter((c) => c.deliverAt !== undefined);
    expect(delayed.map((c) => c.commandId)).toEqual(['o00002.pay']);
    expect(delayed[0]?.deliverAt).toBeGreaterThanOrEqual(before + 5000);
    const ids = calls.map((c) => c.commandId);
    expect(ids[ids.indexOf('o00002.pay') + 1]).toBe('o00002.ship');
    expect(ids).toHaveLength(9);
  });

  it('gives a prepared pay one payment id for all its tries; an abandoned order stops there without failing', async () => {
    const calls: OrderCommand[] = [];
    let tries = 0;
    const result = await runWorkload({
      orders: 3,
      ratePerSecond: 1000,
      concurrency: 1,
      delaySecondsFor: (orderId, step) => (orderId === 'o00003' && step === 'pay' ? 1 : undefined),
      preparedPay: (orderId) => orderId !== 'o00001',
      invoke: async (command) => {
        calls.push(command);
        if (command.commandId === 'o00002.pay' && ++tries < 3) return tries === 2 ? 'abandoned' : false;
        return true;
      },
    });
    expect(result).toMatchObject({ commandsCommitted: 7, commandsFailed: 0, commandsAbandoned: 1 });
    const pays = calls.filter((c) => c.action === 'pay');
    // o00001: not prepared; o00002: prepared, same id on its retry, abandoned (no ship); o00003: delayed, so not prepared.
    expect(pays.map((c) => [c.orderId, c.paymentId !== undefined])).toEqual([
      ['o00001', false],
      ['o00002', true],
      ['o00002', true],
      ['o00003', false],
    ]);
    expect(pays[1]?.paymentId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(pays[1]?.paymentId).toBe(pays[2]?.paymentId);
    expect(calls.map((c) => c.commandId)).not.toContain('o00002.ship');
  });
});
