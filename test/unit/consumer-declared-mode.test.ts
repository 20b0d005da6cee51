/** The mode a Subscription declares (OUTBOX_CONSUMER_MODE) must be the mode the consumer code runs. */
import { afterEach, describe, expect, it } from 'vitest';
import { CONSUMER_MODE_ENV } from '../../functions/consumer/dedup-format.ts';
import { ConsumerConfigurationError, createConsumer } from '../../functions/consumer/index.ts';

const noWrite = () => ({ Update: { TableName: 'read-model', Key: { pk: 'a' } } });

describe('the declared consumer mode', () => {
  afterEach(() => {
    delete process.env[CONSUMER_MODE_ENV];
  });

  it('refuses a mode other than the one the Subscription declared (it granted no dedup table)', () => {
    process.env[CONSUMER_MODE_ENV] = 'single-item';
    expect(() =>
      createConsumer({ name: 'read-model', mode: 'ordered', tableName: 'dedup', handle: () => [] }),
    ).toThrow(ConsumerConfigurationError);
    expect(() =>
      createConsumer({ name: 'read-model', mode: 'ordered', tableName: 'dedup', handle: () => [] }),
    ).toThrow(/declares this consumer with mode 'single-item'.*mode 'ordered' was provided/);
  });

  it('accepts the declared mode, and any mode when none is declared', () => {
    process.env[CONSUMER_MODE_ENV] = 'single-item';
    expect(createConsumer({ name: 'read-model', mode: 'single-item', handle: noWrite }).mode).toBe(
      'single-item',
    );
    delete process.env[CONSUMER_MODE_ENV];
    expect(
      createConsumer({ name: 'read-model', mode: 'ordered', tableName: 'dedup', handle: () => [] }).mode,
    ).toBe('ordered');
  });
});
