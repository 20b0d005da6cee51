/**
 * The scheduled delivery audit (OutboxAudit, wired by Outbox's `audit` prop): its schedule, the subscriptions it
 * audits (in its environment), an alarm per audited subscription on the alarm topic, and read-only grants.
 */
import { App, Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { AuditEnv } from '../../functions/audit/contract.ts';
import { Outbox, type OutboxProps } from '../../lib/outbox.ts';
import { inlineFunction, logicalId, NO_BUNDLING, nagErrors, roleStatements } from './stack-fixture.ts';

type Resource = { Properties: Record<string, unknown> };

function auditStack(audit?: OutboxProps['audit']) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'AuditTest');
  Aspects.of(app).add(new AwsSolutionsChecks());
  const outbox = new Outbox(stack, 'Outbox', { eventBus: true, ...(audit === undefined ? {} : { audit }) });
  outbox.subscribe('billing', {
    kind: 'ordered',
    eventTypes: ['orders.OrderPlaced'],
    consumer: { function: inlineFunction(stack, 'BillingFn') },
  });
  outbox.subscribe('analytics', {
    kind: 'rule',
    sources: ['/orders'],
    consumer: { function: inlineFunction(stack, 'AnalyticsFn') },
  });
  // No consumer of this library: no dedup records to check, so not audited.
  outbox.subscribe('export', { kind: 'ordered', eventTypes: ['orders.OrderShipped'] });
  return { stack, outbox, template: Template.fromStack(stack) };
}

describe('the scheduled delivery audit', () => {
  const { stack, outbox, template } = auditStack();
  const audit = outbox.audit;

  it('runs every 5 minutes by default, auditing the 5-minute window that ended 10 minutes ago', () => {
    expect(audit).toBeDefined();
    const rule = template.findResources('AWS::Events::Rule')[logicalId(audit?.schedule)] as Resource;
    expect(rule.Properties.ScheduleExpression).toBe('rate(5 minutes)');
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(audit?.fn)] as Resource;
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env[AuditEnv.windowSeconds]).toBe('300');
    expect(env[AuditEnv.lagSeconds]).toBe('600');
    expect(env[AuditEnv.maxItemsPerRun]).toBe('50000');
    expect(env[AuditEnv.outboxTable]).toEqual({ Ref: logicalId(outbox.table.table) });
    expect(env[AuditEnv.dedupTable]).toEqual({ Ref: logicalId(outbox.dedupTable.table) });
  });

  it('audits the subscriptions with a consumer and a known filter, with their filters', () => {
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(audit?.fn)] as Resource;
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.parse(String(env[AuditEnv.subscriptions]))).toEqual([
      { name: 'billing', filter: { kind: 'event-types', types: ['orders.OrderPlaced'], prefixes: [] } },
      { name: 'analytics', filter: { kind: 'event-pattern', pattern: { source: ['/orders'] } } },
    ]);
  });

  it('alarms per audited subscription on MissingEffects > 0, to the outbox alarm topic', () => {
    expect([...(audit?.alarms.keys() ?? [])]).toEqual(['billing', 'analytics']);
    for (const name of ['billing', 'analytics']) {
      const alarm = template.findResources('AWS::CloudWatch::Alarm')[
        logicalId(audit?.alarms.get(name))
      ] as Resource;
      expect(alarm.Properties).toMatchObject({
        MetricName: 'MissingEffects',
        Namespace: 'ServerlessOutbox',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        Statistic: 'Maximum',
        Period: 300,
        TreatMissingData: 'notBreaching',
        Dimensions: expect.arrayContaining([{ Name: 'subscription', Value: name }]),
        AlarmActions: [{ Ref: logicalId(outbox.alarms.topic) }],
      });
    }
  });

  it('grants only reads: DescribeTable and Scan on the outbox table, BatchGetItem on the dedup table', () => {
    const statements = roleStatements(template, audit?.fn.role);
    const dynamo = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('dynamodb:')));
    expect(dynamo).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: ['dynamodb:DescribeTable', 'dynamodb:Scan'],
        Resource: { 'Fn::GetAtt': [logicalId(outbox.table.table), 'Arn'] },
      }),
      expect.objectContaining({
        Effect: 'Allow',
        Action: 'dynamodb:BatchGetItem',
        Resource: { 'Fn::GetAtt': [logicalId(outbox.dedupTable.table), 'Arn'] },
      }),
    ]);
    // Everything else is writing its own log group.
    const others = statements.flatMap((s) => [s.Action].flat()).filter((a) => !a.startsWith('dynamodb:'));
    expect(others.every((a) => a.startsWith('logs:'))).toBe(true);
  });

  it('leaves cdk-nag AwsSolutions clean (the inline test consumers aside)', () => {
    expect(nagErrors(stack).filter((e) => e.includes('/Outbox/'))).toEqual([]);
  });
});

describe('the audit prop', () => {
  it('false: no audit function, schedule nor alarm', () => {
    const { outbox, template } = auditStack(false);
    expect(outbox.audit).toBeUndefined();
    const fns = Object.values(template.findResources('AWS::Lambda::Function')) as Resource[];
    expect(fns.some((f) => String(f.Properties.Description).startsWith('Outbox delivery audit'))).toBe(false);
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: 'MissingEffects' }, 0);
  });

  it('{ schedule, lag, window, maxItemsPerRun } reach the rule and the function', () => {
    const { outbox, template } = auditStack({
      schedule: Duration.minutes(15),
      lag: Duration.minutes(30),
      window: Duration.minutes(20),
      maxItemsPerRun: 5000,
    });
    const rule = template.findResources('AWS::Events::Rule')[logicalId(outbox.audit?.schedule)] as Resource;
    expect(rule.Properties.ScheduleExpression).toBe('rate(15 minutes)');
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(outbox.audit?.fn)] as Resource;
    expect((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
      [AuditEnv.lagSeconds]: '1800',
      [AuditEnv.windowSeconds]: '1200',
      [AuditEnv.maxItemsPerRun]: '5000',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'MissingEffects', Period: 900 });
  });

  it('refuses a lag under a minute and a window shorter than the schedule, saying why', () => {
    expect(() => auditStack({ lag: Duration.seconds(10) })).toThrow(/lag must be at least 1 minute/);
    expect(() => auditStack({ schedule: Duration.minutes(10), window: Duration.minutes(5) })).toThrow(
      /window must be at least the schedule's period/,
    );
  });
});
