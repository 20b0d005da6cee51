import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../lib/outbox.ts';
import { inlineFunction, logicalId, NO_BUNDLING } from './stack-fixture.ts';

/**
 * A dedup record must outlive every way a message can come back: the queue's retention, then the DLQ's (a FIFO DLQ
 * restarts the clock, and a redrive re-sends), plus EventBridge's retries for rule subscriptions (#10).
 */
function outboxStack() {
  const stack = new Stack(new App({ context: NO_BUNDLING }), 'Dedup');
  return { stack, outbox: new Outbox(stack, 'Outbox', { eventBus: true }) };
}

function consumerEnv(stack: Stack, fn: ReturnType<typeof inlineFunction>): Record<string, unknown> {
  const resource = Template.fromStack(stack).toJSON().Resources[logicalId(fn)];
  return resource.Properties.Environment.Variables;
}

describe('dedup retention derived from the subscription’s retentions', () => {
  it.each([
    ['ordered', { kind: 'ordered' } as const, 4 * 86_400 + 14 * 86_400],
    ['rule', { kind: 'rule', eventTypes: ['a.A'] } as const, 4 * 86_400 + 14 * 86_400 + 86_400],
    [
      'ordered with 10-day queue retention',
      { kind: 'ordered', retentionPeriod: Duration.days(10) } as const,
      10 * 86_400 + 14 * 86_400,
    ],
  ])(
    '%s: the consumer remembers events for queue + DLQ retention (+ EventBridge retries)',
    (_n, props, seconds) => {
      const { stack, outbox } = outboxStack();
      const fn = inlineFunction(stack, 'Consumer');
      outbox.subscribe('team', { ...props, consumer: { function: fn } });
      expect(consumerEnv(stack, fn).OUTBOX_DEDUP_TTL_SECONDS).toBe(String(seconds));
    },
  );

  it('refuses a dedupRetention shorter than the longest time a message can come back', () => {
    const { stack, outbox } = outboxStack();
    expect(() =>
      outbox.subscribe('team', {
        kind: 'ordered',
        dedupRetention: Duration.days(14),
        consumer: { function: inlineFunction(stack, 'Consumer') },
      }),
    ).toThrow(
      /dedupRetention must cover the longest time a message can come back \(.* = 1555200 seconds\), but 1209600/,
    );
  });
});
