import { describe, expect, it } from 'vitest';
import { snsSubscriptionFilter } from '../../functions/contract/sns-subscription-filter.ts';
import { InvalidFilterPolicyError } from '../../functions/patterns/sns-filter-policy.ts';

// `outbox local --check` judged SNS subscriptions with the EventBridge engine before; these cases differ.
const event = {
  type: 'OrderPlaced',
  source: 'orders',
  partitionKey: 'order-1',
  sequence: 7,
  envelope: { type: 'OrderPlaced', data: { total: 250 } },
};

describe('snsSubscriptionFilter (the offline check of SNS subscriptions)', () => {
  it('no policy, or an empty one, lets everything through (the EventBridge engine rejected {})', () => {
    expect(snsSubscriptionFilter(undefined, undefined)(event)).toBe(true);
    expect(snsSubscriptionFilter('{}', undefined)(event)).toBe(true);
  });

  it('matches the attributes the relay publishes, sequence as a Number', () => {
    expect(snsSubscriptionFilter({ type: [{ prefix: 'Order' }] }, undefined)(event)).toBe(true);
    expect(
      snsSubscriptionFilter(JSON.stringify({ sequence: [{ numeric: ['>', 10] }] }), undefined)(event),
    ).toBe(false);
    expect(snsSubscriptionFilter({ subject: [{ exists: false }] }, 'MessageAttributes')(event)).toBe(true);
  });

  it('with FilterPolicyScope MessageBody, matches the envelope with nested keys', () => {
    expect(snsSubscriptionFilter({ data: { total: [{ numeric: ['>=', 100] }] } }, 'MessageBody')(event)).toBe(
      true,
    );
    expect(snsSubscriptionFilter({ data: { total: [{ numeric: ['>=', 300] }] } }, 'MessageBody')(event)).toBe(
      false,
    );
  });

  it('rejects what SNS rejects: nesting on attributes, EventBridge-only operators', () => {
    expect(() => snsSubscriptionFilter({ data: { total: [1] } }, 'MessageAttributes')).toThrow(
      InvalidFilterPolicyError,
    );
    expect(() => snsSubscriptionFilter({ type: [{ wildcard: 'Order*' }] }, undefined)).toThrow(
      'Unrecognized match type wildcard',
    );
  });
});
