/**
 * A Subscription whose consumer runs mode 'single-item' (cursor on the effect's own item): no dedup table for it
 * (no grant, no environment variable, none created only for it), the declared mode in its environment, not in the
 * scheduled delivery audit, and no reliability finding about dedup retention.
 */
import { App, Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { AuditEnv } from '../../functions/audit/contract.ts';
import {
  CONSUMER_MODE_ENV,
  CONSUMER_NAME_ENV,
  DEDUP_TABLE_ENV,
  DEDUP_TTL_ENV,
} from '../../functions/consumer/dedup-format.ts';
import { Outbox } from '../../lib/outbox.ts';
import { OutboxReliabilityChecks } from '../../lib/reliability/checks.ts';
import { inlineFunction, logicalId, NO_BUNDLING, nagErrors, roleStatements } from './stack-fixture.ts';

type Resource = { Properties: Record<string, unknown> };

function variablesOf(template: Template, fn: unknown): Record<string, unknown> {
  const resource = template.findResources('AWS::Lambda::Function')[
    logicalId(fn as Parameters<typeof logicalId>[0])
  ] as Resource;
  return (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** GIVEN an outbox with a single-item consumer and, unless `only`, a transactional one beside it. */
function singleItemStack(only = false) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'SingleItemTest');
  Aspects.of(app).add(new AwsSolutionsChecks());
  Aspects.of(app).add(new OutboxReliabilityChecks());
  const outbox = new Outbox(stack, 'Outbox', {});
  const readModel = outbox.subscribe('read-model', {
    kind: 'ordered',
    eventTypes: ['orders.OrderPlaced'],
    consumer: { function: inlineFunction(stack, 'ReadModelFn'), mode: 'single-item' },
  });
  const billing = only
    ? undefined
    : outbox.subscribe('billing', {
        kind: 'ordered',
        eventTypes: ['orders.OrderPlaced'],
        consumer: { function: inlineFunction(stack, 'BillingFn') },
      });
  return { stack, outbox, readModel, billing, template: Template.fromStack(stack) };
}

const dedupTableStatements = (
  template: Template,
  role: Parameters<typeof roleStatements>[1],
  dedupTableId: string,
) => roleStatements(template, role).filter((s) => JSON.stringify(s.Resource).includes(dedupTableId));

describe('a single-item consumer', () => {
  const { stack, outbox, readModel, billing, template } = singleItemStack();

  it('is granted nothing on the dedup table, while a transactional consumer beside it is', () => {
    const dedupTableId = logicalId(outbox.dedupTable.table);
    expect(dedupTableStatements(template, readModel.consumer?.role, dedupTableId)).toEqual([]);
    expect(dedupTableStatements(template, billing?.consumer?.role, dedupTableId).length).toBeGreaterThan(0);
  });

  it('gets its declared mode and no dedup table or retention in its environment', () => {
    const env = variablesOf(template, readModel.consumer);
    expect(env[CONSUMER_MODE_ENV]).toBe('single-item');
    expect(env[CONSUMER_NAME_ENV]).toBe('read-model');
    expect(env).not.toHaveProperty(DEDUP_TABLE_ENV);
    expect(env).not.toHaveProperty(DEDUP_TTL_ENV);
    expect(readModel.consumerMode).toBe('single-item');
    expect(readModel.keepsDedupRecords).toBe(false);
    // A consumer that declares no mode gets no mode variable, and keeps its dedup table.
    const billingEnv = variablesOf(template, billing?.consumer);
    expect(billingEnv).not.toHaveProperty(CONSUMER_MODE_ENV);
    expect(billingEnv[DEDUP_TABLE_ENV]).toEqual({ Ref: logicalId(outbox.dedupTable.table) });
  });

  it('is not in the scheduled delivery audit (it keeps no dedup records to check) and has no MissingEffects alarm', () => {
    const env = variablesOf(template, outbox.audit?.fn);
    const audited = JSON.parse(String(env[AuditEnv.subscriptions])) as { name: string }[];
    expect(audited.map((s) => s.name)).toEqual(['billing']);
    expect(outbox.audit?.alarms.has('read-model')).toBe(false);
    expect(outbox.audit?.alarms.has('billing')).toBe(true);
    // `outbox audit` (CLI) learns to leave it out from this output; a dedup-table consumer has none.
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.SubReadModelConsumerMode?.Value).toBe('single-item');
    expect(outputs).not.toHaveProperty('SubBillingConsumerMode');
  });

  it('passes the reliability rules and cdk-nag', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('^Outbox-R\\d:'))).toEqual([]);
    // The fixture's own inline functions use the managed basic-execution policy; the library's constructs must be clean.
    expect(nagErrors(stack).filter((e) => e.includes('/Outbox/'))).toEqual([]);
  });
});

describe('an outbox whose only consumer is single-item', () => {
  const { stack, outbox, template } = singleItemStack(true);

  it('creates no dedup table and audits no subscription', () => {
    // The outbox table is the only table: nothing created a dedup table for the single-item consumer.
    expect(Object.keys(template.findResources('AWS::DynamoDB::Table'))).toEqual([
      logicalId(outbox.table.table),
    ]);
    const env = variablesOf(template, outbox.audit?.fn);
    expect(JSON.parse(String(env[AuditEnv.subscriptions]))).toEqual([]);
    expect(env[AuditEnv.dedupTable]).toBe('');
    // The fixture's own inline functions use the managed basic-execution policy; the library's constructs must be clean.
    expect(nagErrors(stack).filter((e) => e.includes('/Outbox/'))).toEqual([]);
  });
});

describe('the props of a single-item consumer', () => {
  it('refuse dedupRetention, which it has no use for', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'SingleItemProps');
    const outbox = new Outbox(stack, 'Outbox', {});
    expect(() =>
      outbox.subscribe('read-model', {
        kind: 'ordered',
        dedupRetention: Duration.days(30),
        consumer: { function: inlineFunction(stack, 'ReadModelFn'), mode: 'single-item' },
      }),
    ).toThrow(/dedupRetention does not apply to a 'single-item' consumer/);
  });
});
