import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { deploymentFromOutputs, pascalCase } from '../../bin/commands/deployment.ts';
import { OrdersStack, StackContext } from '../../examples/orders/stack.ts';
import { outputName } from '../../functions/contract/outputs.ts';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { Outbox } from '../../lib/outbox.ts';
import { OutboxRecovery, type OutboxRecoveryProps } from '../../lib/outbox-recovery.ts';
import { OutboxRelay } from '../../lib/outbox-relay.ts';
import { OutboxTable } from '../../lib/outbox-table.ts';
import {
  logicalId,
  NO_BUNDLING,
  nagErrors,
  roleStatements,
  type Statement,
  synthOrdersStack,
} from './stack-fixture.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };

function functionEnv(template: Template, descriptionPrefix: string): Record<string, unknown> {
  const fns = Object.values(template.findResources('AWS::Lambda::Function')) as Resource[];
  const fn = fns.find((f) => String(f.Properties.Description).startsWith(descriptionPrefix));
  if (!fn) throw new Error(`no function described "${descriptionPrefix}..."`);
  return (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The statements of the recovery function's role. */
function recoveryStatements(template: Template, recovery: OutboxRecovery): Statement[] {
  return roleStatements(template, recovery.fn.role);
}

const actionsOf = (statements: readonly Statement[]) =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

/** A stack with only the outbox, relay and recovery, for prop variations. */
function recoveryStack(
  props: Partial<OutboxRecoveryProps> = {},
  extend: (stack: Stack, relay: OutboxRelay, recovery: OutboxRecovery) => void = () => {},
) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'RecoveryOnly');
  const outbox = new OutboxTable(stack, 'Outbox', { removalPolicy: RemovalPolicy.DESTROY });
  const alarms = new AlarmTopic(stack, 'Alarms');
  const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms });
  const recovery = new OutboxRecovery(stack, 'Recovery', { outbox, relay, alarms, ...props });
  extend(stack, relay, recovery);
  return { stack, recovery, relay, template: Template.fromStack(stack) };
}

let template: Template;
let stack: OrdersStack;
beforeAll(() => {
  ({ template, stack } = synthOrdersStack());
});

describe('OutboxRecovery in the demo stack', () => {
  it('runs the recovery function every minute from an EventBridge rule, without retries that could overlap runs', () => {
    const fnId = logicalId(stack.outbox.recovery.fn);
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 0,
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
      Principal: 'events.amazonaws.com',
    });
  });

  it("gives the recovery function the relay's publishing environment plus validated sweeper settings", () => {
    const relayEnv = functionEnv(template, 'Outbox relay');
    const env = functionEnv(template, 'Outbox recovery sweeper');
    for (const name of [
      'OUTBOX_TABLE_NAME',
      'OUTBOX_RETENTION_DAYS',
      'OUTBOX_SNS_TOPIC_ARN',
      'OUTBOX_SNS_MAX_MESSAGE_BYTES',
      'OUTBOX_EVENT_BUS_NAME',
      'OUTBOX_TRACKED_SUBSCRIBERS',
      'OUTBOX_ACK_TIMEOUT_SECONDS',
    ]) {
      expect(env[name], name).toBeDefined();
      expect(env[name], name).toEqual(relayEnv[name]);
    }
    expect(env).toMatchObject({
      OUTBOX_RECOVERY_STUCK_AFTER_SECONDS: '120',
      OUTBOX_RECOVERY_CHECKBACK_AFTER_SECONDS: '300',
      OUTBOX_RECOVERY_MAX_ATTEMPTS: '5',
      OUTBOX_RECOVERY_BACKOFF_BASE_SECONDS: '60',
      OUTBOX_RECOVERY_MAX_ENTRIES_PER_RUN: '500',
      OUTBOX_ACK_MAX_REDELIVERIES: '3',
      OUTBOX_CHECKBACK_TIMEOUT_SECONDS: '10',
      // The demo producer's check-back function answers for its prepared payments.
      OUTBOX_CHECKBACK_FUNCTIONS: {
        'Fn::Join': ['', ['{"/demo/orders":"', { Ref: logicalId(stack.paymentCheckback) }, '"}']],
      },
      POWERTOOLS_SERVICE_NAME: 'Test/Outbox/Recovery',
      POWERTOOLS_METRICS_NAMESPACE: 'ServerlessOutbox',
    });
  });

  it('grants Query on the pending index and the table (predecessor lookup), the reads and writes of confirm/cancel and bookkeeping, publish, redelivery to tracked queues, and invoking the check-back function', () => {
    const statements = recoveryStatements(template, stack.outbox.recovery);
    expect([...new Set(actionsOf(statements))].sort()).toEqual(
      [
        'dynamodb:BatchGetItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'kms:Decrypt',
        'kms:GenerateDataKey*',
        'lambda:InvokeFunction',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'sns:Publish',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    const invoke = statements.filter((s) => actionsOf([s]).includes('lambda:InvokeFunction'));
    const checkbackArn = { 'Fn::GetAtt': [logicalId(stack.paymentCheckback), 'Arn'] };
    expect(invoke.map((s) => s.Resource)).toEqual([
      [checkbackArn, { 'Fn::Join': ['', [checkbackArn, ':*']] }],
    ]);
    const tableId = logicalId(stack.outbox.table.table);
    const query = statements.find((s) => s.Action === 'dynamodb:Query');
    expect(query?.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/pending-by-due-time']],
    });
    // The relay core's predecessor lookup (granted with the relay's publish permissions): the table, no index.
    const tableQuery = statements.filter((s) => s !== query && actionsOf([s]).includes('dynamodb:Query'));
    expect(tableQuery.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [tableId, 'Arn'] }]);
    for (const s of statements.filter((st) => actionsOf([st]).some((a) => a.startsWith('dynamodb:')))) {
      if (s.Action === 'dynamodb:Query') continue;
      expect(s.Resource).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
    }
    const billingQueueId = logicalId(stack.billing.queue);
    const sends = statements.filter((s) => actionsOf([s]).includes('sqs:SendMessage'));
    expect(sends.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [billingQueueId, 'Arn'] }]);
    expect(JSON.stringify(statements)).not.toMatch(/dynamodb:Scan|dynamodb:\*|index\/\*|"\*"/);
  });

  it('passes the cdk-nag AwsSolutions pack with no unsuppressed errors in the recovery and dashboard', () => {
    expect(nagErrors(stack).filter((e) => /\/(Recovery|Dashboard)\//.test(e))).toEqual([]);
  });
});

describe('OrdersStack outputs (the operator CLI contract)', () => {
  it('exports the table, topic, bus, relay failure queue and every subscription queue and DLQ under exact keys', () => {
    const id = logicalId;
    const { billing, notifications } = stack;
    const { relay } = stack.outbox;
    if (!relay.topic || !relay.bus) throw new Error('demo incomplete');
    template.hasOutput('OutboxTableName', { Value: { Ref: id(stack.outbox.table.table) } });
    template.hasOutput('OutboxTopicArn', { Value: { Ref: id(relay.topic) } });
    template.hasOutput('OutboxBusName', { Value: { Ref: id(relay.bus) } });
    template.hasOutput('RelayFailureQueueUrl', { Value: { Ref: id(relay.failureQueue) } });
    template.hasOutput('SubBillingQueueUrl', { Value: { Ref: id(billing.queue) } });
    template.hasOutput('SubBillingDlqUrl', { Value: { Ref: id(billing.deadLetterQueue) } });
    template.hasOutput('SubNotificationsQueueUrl', { Value: { Ref: id(notifications.queue) } });
    template.hasOutput('SubNotificationsDlqUrl', { Value: { Ref: id(notifications.deadLetterQueue) } });
  });

  it('is read back by the CLI as the same subscriptions', () => {
    const outputs = Object.keys(template.toJSON().Outputs as Record<string, unknown>).map((key) => ({
      OutputKey: key,
      OutputValue: key.endsWith('Url')
        ? `https://sqs.example/${key}${key.startsWith('SubBilling') ? '.fifo' : ''}`
        : key,
    }));
    const deployment = deploymentFromOutputs(outputs);
    expect(deployment.outboxTableName).toBe('OutboxTableName');
    expect(deployment.subscriptions.map((s) => [s.name, s.fifo])).toEqual([
      ['billing', true],
      ['notifications', false],
    ]);
    expect(deployment.relayFailureQueueUrl).toBe('https://sqs.example/RelayFailureQueueUrl');
  });

  it.each(['billing', 'order-history', 'order_history', 'sms.v2', 'A'])(
    'names the outputs of %s as the CLI does',
    (name) => {
      expect(outputName(name)).toBe(pascalCase(name));
      // GIVEN a subscription named so WHEN it writes its outputs THEN the CLI finds them under its keys
      const outputStack = new Stack(new App({ context: NO_BUNDLING }), 'Names');
      const outbox = new Outbox(outputStack, 'Outbox', { table: { removalPolicy: RemovalPolicy.DESTROY } });
      const sub = outbox.subscribe(name, { kind: 'ordered' });
      const outputs = Template.fromStack(outputStack);
      outputs.hasOutput(`Sub${pascalCase(name)}QueueUrl`, { Value: { Ref: logicalId(sub.queue) } });
      outputs.hasOutput(`Sub${pascalCase(name)}DlqUrl`, { Value: { Ref: logicalId(sub.deadLetterQueue) } });
    },
  );
});

describe('OrdersStack settings', () => {
  it('reads the recovery thresholds from CDK context (strings from -c or numbers)', () => {
    const app = new App({
      context: {
        ...NO_BUNDLING,
        [StackContext.recoveryStuckAfterSeconds]: '30',
        [StackContext.recoveryCheckbackAfterSeconds]: 45,
      },
    });
    const template = Template.fromStack(new OrdersStack(app, 'Ctx'));
    expect(functionEnv(template, 'Outbox recovery sweeper')).toMatchObject({
      OUTBOX_RECOVERY_STUCK_AFTER_SECONDS: '30',
      OUTBOX_RECOVERY_CHECKBACK_AFTER_SECONDS: '45',
    });
  });

  it('rejects a context threshold that is not a whole number of seconds', () => {
    const app = new App({ context: { ...NO_BUNDLING, [StackContext.recoveryStuckAfterSeconds]: 'soon' } });
    expect(() => new OrdersStack(app, 'Bad')).toThrow(/outbox:recoveryStuckAfterSeconds .* "soon"/);
  });

  it('passes one retention to the relay and the recovery function', () => {
    const app = new App({ context: NO_BUNDLING });
    const template = Template.fromStack(new OrdersStack(app, 'Retention', { retention: Duration.days(3) }));
    expect(functionEnv(template, 'Outbox relay').OUTBOX_RETENTION_DAYS).toBe('3');
    expect(functionEnv(template, 'Outbox recovery sweeper').OUTBOX_RETENTION_DAYS).toBe('3');
  });
});

describe('OutboxRecovery props', () => {
  it('configures check-back functions per event source, grants invoking them and stays cdk-nag clean', () => {
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Checkback');
    const outbox = new OutboxTable(stack, 'Outbox', { removalPolicy: RemovalPolicy.DESTROY });
    const alarms = new AlarmTopic(stack, 'Alarms');
    const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms });
    const payments = new lambda.Function(stack, 'PaymentsCheckback', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ status: "unknown" });'),
    });
    const recovery = new OutboxRecovery(stack, 'Recovery', {
      outbox,
      relay,
      alarms,
      checkbackFunctions: { '/payments': payments },
      schedule: events.Schedule.rate(Duration.minutes(5)),
      stuckAfter: Duration.minutes(10),
      maxAttempts: 8,
      timeout: Duration.minutes(2),
    });
    Aspects.of(app).add(new AwsSolutionsChecks());
    const template = Template.fromStack(stack);
    const paymentsId = logicalId(payments);
    expect(functionEnv(template, 'Outbox recovery sweeper')).toMatchObject({
      OUTBOX_CHECKBACK_FUNCTIONS: { 'Fn::Join': ['', ['{"/payments":"', { Ref: paymentsId }, '"}']] },
      OUTBOX_RECOVERY_STUCK_AFTER_SECONDS: '600',
      OUTBOX_RECOVERY_MAX_ATTEMPTS: '8',
    });
    const invoke = recoveryStatements(template, recovery).find((s) =>
      actionsOf([s]).includes('lambda:InvokeFunction'),
    );
    expect(JSON.stringify(invoke?.Resource)).toContain(paymentsId);
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Outbox recovery sweeper'),
      Timeout: 120,
      Runtime: Match.stringLikeRegexp('nodejs(2[2-9]|[3-9]\\d)\\.x'),
      Architectures: ['arm64'],
    });
    expect(recovery.checkbackSources).toEqual(['/payments']);
    expect(nagErrors(stack).filter((e) => /\/Recovery\//.test(e))).toEqual([]);
  });

  it('includes check-back functions added after construction', () => {
    const { template, recovery } = recoveryStack({}, (stack, _relay, recovery) => {
      recovery.addCheckbackFunction(
        '/orders',
        lambda.Function.fromFunctionName(stack, 'Imported', 'orders-cb'),
      );
    });
    const env = JSON.stringify(functionEnv(template, 'Outbox recovery sweeper').OUTBOX_CHECKBACK_FUNCTIONS);
    expect(env).toContain('/orders');
    expect(env).toContain('orders-cb');
    const invoke = recoveryStatements(template, recovery).find((st) =>
      actionsOf([st]).includes('lambda:InvokeFunction'),
    );
    expect(JSON.stringify(invoke?.Resource)).toContain('orders-cb');
  });

  it.each([
    [
      'a stuck threshold of 5 s',
      { stuckAfter: Duration.seconds(5) },
      /stuckAfter must be whole seconds from 10/,
    ],
    ['0 attempts', { maxAttempts: 0 }, /maxAttempts must be an integer from 1 to 100, but 0/],
    [
      'a 16-minute timeout',
      { timeout: Duration.minutes(16) },
      /timeout must be whole seconds from 10 to 900/,
    ],
    ['a negative redelivery limit', { maxRedeliveries: -1 }, /maxRedeliveries .* but -1/],
    [
      'a stuck alarm below one minute',
      { oldestUnpublishedAgeAlarmThreshold: Duration.seconds(30) },
      /oldestUnpublishedAgeAlarmThreshold .* but 30 seconds/,
    ],
  ])('rejects %s', (_name, props, message) => {
    expect(() => recoveryStack(props as Partial<OutboxRecoveryProps>)).toThrow(message);
  });

  it('grants redelivery to queues tracked after the recovery was created', () => {
    let queue: sqs.Queue | undefined;
    const { stack, template, recovery } = recoveryStack({}, (st, relay) => {
      queue = new sqs.Queue(st, 'Late', { fifo: true });
      relay.trackDelivery({ name: 'late', queue, eventTypes: ['T'] });
    });
    const queueId = stack.getLogicalId(queue?.node.defaultChild as never);
    const sends = recoveryStatements(template, recovery).filter((s) =>
      actionsOf([s]).includes('sqs:SendMessage'),
    );
    expect(sends.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [queueId, 'Arn'] }]);
    expect(functionEnv(template, 'Outbox recovery sweeper').OUTBOX_TRACKED_SUBSCRIBERS).toEqual({
      'Fn::Join': ['', ['{"T":[{"name":"late","queueUrl":"', { Ref: queueId }, '","fifo":true}]}']],
    });
  });
});
