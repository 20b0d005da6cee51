import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { selector } from '../../bin/commands/audit.ts';
import { parseSubscriptionFilter } from '../../functions/contract/audit-filter.ts';
import { Outbox } from '../../lib/outbox.ts';
import { inlineFunction, NO_BUNDLING } from './stack-fixture.ts';

describe("the audit evaluates an ordered subscription's SNS filter policy", () => {
  it('writes the filter policy (with the type condition) as Sub<Name>Filter, and the audit selects by it', () => {
    // GIVEN an ordered subscription filtering on a message attribute besides its event types
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Platform');
    const outbox = new Outbox(stack, 'Outbox', {
      table: { removalPolicy: RemovalPolicy.DESTROY },
      dedupTable: { removalPolicy: RemovalPolicy.DESTROY },
    });
    outbox.subscribe('billing', {
      kind: 'ordered',
      eventTypes: ['OrderPlaced'],
      filterPolicy: { source: sns.SubscriptionFilter.stringFilter({ allowlist: ['/orders'] }) },
      consumer: { function: inlineFunction(stack, 'Billing') },
    });
    // THEN the output carries the same policy the SNS subscription has
    const template = Template.fromStack(stack).toJSON();
    const outputs = template.Outputs as Record<string, { Value: unknown }>;
    const output = JSON.parse(String(outputs.SubBillingFilter?.Value));
    const subscription = Object.values(
      template.Resources as Record<string, { Type: string; Properties: { FilterPolicy?: unknown } }>,
    ).find((r) => r.Type === 'AWS::SNS::Subscription' && r.Properties.FilterPolicy);
    expect(output).toEqual({
      kind: 'sns-filter-policy',
      policy: subscription?.Properties.FilterPolicy,
      scope: 'MessageAttributes',
    });
    expect(output.policy).toEqual({ source: ['/orders'], type: ['OrderPlaced'] });

    // AND the audit selects exactly what SNS would deliver (before: no output, every event counted)
    const filter = parseSubscriptionFilter(output);
    if (typeof filter === 'string') throw new Error(filter);
    const select = selector(filter);
    const event = {
      id: 'e',
      type: 'OrderPlaced',
      source: '/orders',
      aggregateKey: 'o-1',
      sequence: 1,
      status: 'PUBLISHED',
      createdAt: 0,
    };
    expect(select(event)).toBe(true);
    expect(select({ ...event, source: '/billing' })).toBe(false);
    expect(select({ ...event, type: 'OrderCancelled' })).toBe(false);
  });

  it('reads sns-filter-policy filters from a deployment file and rejects malformed ones', () => {
    expect(parseSubscriptionFilter({ kind: 'sns-filter-policy', policy: { type: ['a'] } })).toEqual({
      kind: 'sns-filter-policy',
      policy: { type: ['a'] },
      scope: 'MessageAttributes',
    });
    expect(parseSubscriptionFilter({ kind: 'sns-filter-policy', policy: [] })).toBe(
      'policy must be an SNS filter policy (a JSON object)',
    );
    expect(parseSubscriptionFilter({ kind: 'sns-filter-policy', policy: {}, scope: 'Body' })).toBe(
      'scope must be "MessageAttributes" or "MessageBody"',
    );
  });
});
