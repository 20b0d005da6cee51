import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import {
  ACK_TABLE_ENV,
  CONSUMER_NAME_ENV,
  DEAD_LETTER_QUEUE_URL_ENV,
  DEDUP_TABLE_ENV,
} from '../../functions/consumer/dedup-format.ts';
import { StackOutputKey } from '../../functions/contract/outputs.ts';
import { handlerAssetDir } from '../../lib/internal/handler-assets.ts';
import { Outbox, type OutboxProps } from '../../lib/outbox.ts';
import { CONSUMER_METRICS_NAMESPACE, Subscription } from '../../lib/subscription.ts';
import { inlineFunction, logicalId, NO_BUNDLING, roleStatements } from './stack-fixture.ts';

type Resource = { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> };

/** GIVEN an app (no bundling) with one stack `Platform` holding an Outbox `Outbox`. */
function outboxStack(
  props: OutboxProps | ((stack: Stack) => OutboxProps) = {},
  context: Record<string, unknown> = {},
) {
  const app = new App({ context: { ...NO_BUNDLING, ...context } });
  const stack = new Stack(app, 'Platform');
  const outbox = new Outbox(stack, 'Outbox', {
    table: { removalPolicy: RemovalPolicy.DESTROY },
    dedupTable: { removalPolicy: RemovalPolicy.DESTROY },
    ...(typeof props === 'function' ? props(stack) : props),
  });
  return { app, stack, outbox };
}

function resourceOf(template: Template, construct: Parameters<typeof logicalId>[0]): Resource {
  return template.toJSON().Resources[logicalId(construct)] as Resource;
}

function envOf(template: Template, fn: lambda.IFunction): Record<string, unknown> {
  return (resourceOf(template, fn).Properties.Environment as { Variables: Record<string, unknown> })
    .Variables;
}

function dashboardBody(stack: Stack, outbox: Outbox): string {
  const dashboard = outbox.dashboard?.dashboard.node.defaultChild as cloudwatch.CfnDashboard | undefined;
  if (!dashboard) throw new Error('the outbox has no dashboard');
  return JSON.stringify(stack.resolve(dashboard.dashboardBody));
}

describe('Outbox.grantWrite', () => {
  it("gives the grantee only Put/Update/ConditionCheck/GetItem on the outbox table's ARN, outside the reserved key space", () => {
    // GIVEN an outbox and a producer role
    const { stack, outbox } = outboxStack();
    const producer = new iam.Role(stack, 'Producer', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    });
    // WHEN the outbox grants it write access
    outbox.grantWrite(producer);
    // THEN the role may do exactly the writer's four actions, on the table itself (no index, no delete, no scan),
    // and never on an acknowledgement or other reserved partition key (#11.9); plus s3:PutObject below the
    // large-event prefix (claim-check, on by default)
    expect(roleStatements(Template.fromStack(stack), producer)).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: {
          'Fn::Join': [
            '',
            [{ 'Fn::GetAtt': [logicalId(outbox.largeEvents?.bucket), 'Arn'] }, '/outbox-large-events/*'],
          ],
        },
      },
      {
        Effect: 'Allow',
        Action: [
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:ConditionCheckItem',
          'dynamodb:GetItem',
        ],
        Resource: { 'Fn::GetAtt': [logicalId(outbox.table.table), 'Arn'] },
        Condition: {
          'ForAllValues:StringNotLike': {
            'dynamodb:LeadingKeys': ['HEAD', 'ACK#*', 'EVT#*', 'PRE#*', 'P#*', 'Q#*', 'REQ#*', 'HEAD#*'],
          },
        },
      },
    ]);
  });
});

describe('Subscription in another stack of the same app', () => {
  /** GIVEN a platform stack with the outbox (with a bus) and a team stack subscribing to it. */
  function twoStacks() {
    const { app, stack, outbox } = outboxStack({ eventBus: true });
    const teamStack = new Stack(app, 'Team');
    const analytics = new Subscription(teamStack, 'Analytics', {
      outbox,
      name: 'analytics',
      kind: 'rule',
      eventTypes: ['com.example.orders.OrderPlaced'],
    });
    return { app, stack, teamStack, outbox, analytics };
  }

  it('synthesizes both stacks', () => {
    const { app, stack, teamStack } = twoStacks();
    // WHEN the app is synthesized THEN both stacks are in the assembly (no dependency cycle)
    const assembly = app.synth();
    expect(assembly.getStackByName(stack.stackName).template.Resources).toBeDefined();
    expect(assembly.getStackByName(teamStack.stackName).template.Resources).toBeDefined();
  });

  it("puts the rule in the team stack, on the outbox's bus imported from the platform stack", () => {
    const { teamStack, stack, analytics } = twoStacks();
    Template.fromStack(teamStack).hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { 'Fn::ImportValue': Match.stringLikeRegexp(`^${stack.stackName}:`) },
      EventPattern: { 'detail-type': ['com.example.orders.OrderPlaced'] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalId(analytics.queue), 'Arn'] } })],
    });
    // The platform stack has no pattern rule of its own (only the recovery schedule).
    const platformRules = Template.fromStack(stack).findResources('AWS::Events::Rule', {
      Properties: { EventPattern: Match.anyValue() },
    });
    expect(platformRules).toEqual({});
  });

  it("writes the subscription's outputs in the team stack, not the outbox's", () => {
    const { teamStack, stack, analytics } = twoStacks();
    const team = Template.fromStack(teamStack);
    team.hasOutput('SubAnalyticsQueueUrl', { Value: { Ref: logicalId(analytics.queue) } });
    team.hasOutput('SubAnalyticsDlqUrl', { Value: { Ref: logicalId(analytics.deadLetterQueue) } });
    const platformOutputs = Object.keys(Template.fromStack(stack).toJSON().Outputs ?? {});
    expect(platformOutputs.filter((key) => key.startsWith('Sub'))).toEqual([]);
  });

  it("registers with the outbox but keeps its queue off the outbox's dashboard (which would be a cycle)", () => {
    const { stack, outbox, analytics } = twoStacks();
    expect(outbox.subscriptions.get('analytics')).toBe(analytics);
    const body = dashboardBody(stack, outbox);
    expect(body).not.toContain('analytics');
    expect(body).not.toContain('Fn::ImportValue');
  });

  it("rejects a tracked subscription outside the outbox's stack", () => {
    // GIVEN an outbox and a team stack
    const { app, outbox } = outboxStack();
    const teamStack = new Stack(app, 'Team');
    // WHEN the team stack makes a tracked subscription THEN it is rejected: it must be in the outbox's stack
    expect(
      () =>
        new Subscription(teamStack, 'Audit', {
          outbox,
          name: 'audit',
          kind: 'ordered',
          tracked: { eventTypes: ['com.example.orders.OrderPlaced'] },
        }),
    ).toThrow(/a tracked subscription must be in the outbox's stack/);
  });
});

describe("Outbox's dashboard", () => {
  it("shows a subscription made in the outbox's own stack", () => {
    const { stack, outbox } = outboxStack();
    const billing = outbox.subscribe('billing', { kind: 'ordered' });
    const body = dashboardBody(stack, outbox);
    expect(body).toContain(logicalId(billing.queue));
    expect(body).toContain(logicalId(billing.deadLetterQueue));
  });
});

describe('Outbox with an existing alarm topic', () => {
  const pagerArn = 'arn:aws:sns:eu-west-1:123456789012:team-pager';

  /** GIVEN an outbox given an imported topic, with a subscription (so the outbox's alarms and a team's). */
  function withImportedTopic() {
    const { stack, outbox } = outboxStack((s) => ({
      alarmTopic: sns.Topic.fromTopicArn(s, 'Pager', pagerArn),
    }));
    outbox.subscribe('billing', { kind: 'ordered' });
    return { stack, outbox, template: Template.fromStack(stack) };
  }

  it('makes it the alarm and OK action of every alarm', () => {
    const { template } = withImportedTopic();
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([pagerArn]);
      expect(alarm.Properties.OKActions).toEqual([pagerArn]);
    }
  });

  it('creates no alarm topic (nor its key) of its own', () => {
    const { template, outbox } = withImportedTopic();
    expect(outbox.alarmTopic.topicArn).toBe(pagerArn);
    template.resourcePropertiesCountIs('AWS::SNS::Topic', { DisplayName: 'Outbox alarms' }, 0);
    template.resourcePropertiesCountIs(
      'AWS::KMS::Key',
      { Description: 'Encrypts the outbox alarm topic' },
      0,
    );
    // The only topic is the relay's event topic.
    expect(Object.keys(template.findResources('AWS::SNS::Topic'))).toEqual([logicalId(outbox.relay.topic)]);
  });
});

describe('Operator-CLI outputs of two Outboxes in one stack', () => {
  it('rejects a second Outbox writing them, saying to give it `outputs: false`', () => {
    const { stack } = outboxStack();
    expect(() => new Outbox(stack, 'Second')).toThrow(
      /already holds an Outbox with operator-CLI outputs; give this one `outputs: false`/,
    );
  });

  it('accepts a second Outbox with `outputs: false`, and the outputs stay the first one’s', () => {
    const { stack, outbox } = outboxStack();
    const second = new Outbox(stack, 'Second', { outputs: false });
    const template = Template.fromStack(stack);
    template.hasOutput(StackOutputKey.tableName, { Value: { Ref: logicalId(outbox.table.table) } });
    template.hasOutput(StackOutputKey.topicArn, { Value: { Ref: logicalId(outbox.relay.topic) } });
    template.hasOutput(StackOutputKey.relayFailureQueueUrl, {
      Value: { Ref: logicalId(outbox.relay.failureQueue) },
    });
    expect(JSON.stringify(template.toJSON().Outputs)).not.toContain(logicalId(second.table.table));
  });
});

describe('Subscription with `consumer: { function }`', () => {
  /** GIVEN an outbox and the team's own lambda.Function (inline code: nothing to bundle). */
  function withFunctionConsumer() {
    const { stack, outbox } = outboxStack();
    const fn = inlineFunction(stack, 'TeamConsumer');
    const billing = outbox.subscribe('billing', { kind: 'ordered', consumer: { function: fn } });
    return { stack, outbox, fn, billing, template: Template.fromStack(stack) };
  }

  it('sets the consumer environment variables on the function', () => {
    const { template, outbox, fn, billing } = withFunctionConsumer();
    const env = envOf(template, fn);
    expect(env).toMatchObject({
      [DEDUP_TABLE_ENV]: { Ref: logicalId(outbox.dedupTable.table) },
      [CONSUMER_NAME_ENV]: 'billing',
      [DEAD_LETTER_QUEUE_URL_ENV]: { Ref: logicalId(billing.deadLetterQueue) },
      POWERTOOLS_SERVICE_NAME: 'billing',
      POWERTOOLS_METRICS_NAMESPACE: CONSUMER_METRICS_NAMESPACE,
    });
    expect(env[ACK_TABLE_ENV]).toBeUndefined();
    expect(billing.consumer).toBe(fn);
  });

  it('feeds the function from the queue through an event source mapping with ReportBatchItemFailures', () => {
    const { template, fn, billing } = withFunctionConsumer();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(fn) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(billing.queue), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it("derives the queue's visibility timeout from the function's own timeout (6×)", () => {
    const { stack, outbox } = outboxStack();
    const fn = new lambda.Function(stack, 'Slow', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
      timeout: Duration.minutes(1),
    });
    const slow = outbox.subscribe('slow', { kind: 'ordered', consumer: { function: fn } });
    expect(resourceOf(Template.fromStack(stack), slow.queue).Properties.VisibilityTimeout).toBe(360);
  });

  it('warns that an imported function gets no environment, naming the variables to set', () => {
    const { stack, outbox } = outboxStack();
    const imported = lambda.Function.fromFunctionAttributes(stack, 'Imported', {
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:team-consumer',
      role: iam.Role.fromRoleArn(stack, 'ImportedRole', 'arn:aws:iam::123456789012:role/team-consumer'),
      sameEnvironment: true,
    });
    outbox.subscribe('billing', { kind: 'ordered', consumer: { function: imported } });
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp(`its environment cannot be set: set ${DEDUP_TABLE_ENV}`),
    );
    expect(warnings).toHaveLength(1);
  });
});

describe("Outbox's own functions (relay and recovery)", () => {
  /** GIVEN an outbox synthesized with bundling on (the default): nothing of the library is bundled. */
  function synthWithAssetMetadata() {
    const { stack, outbox } = outboxStack(
      {},
      { 'aws:cdk:bundling-stacks': ['**'], 'aws:cdk:enable-asset-metadata': true },
    );
    return { stack, outbox, template: Template.fromStack(stack) };
  }

  it.each(['relay', 'recovery'] as const)(
    '%s runs the prebuilt dist/handlers bundle from an S3 asset, index.handler on nodejs24.x',
    (handler) => {
      const { outbox, template } = synthWithAssetMetadata();
      const fn = handler === 'relay' ? outbox.relay.fn : outbox.recovery.fn;
      const resource = resourceOf(template, fn);
      // The asset is the prebuilt folder itself (same fingerprint), not a bundle made at synth time.
      const prebuilt = new s3assets.Asset(new Stack(new App(), 'Probe'), 'Prebuilt', {
        path: handlerAssetDir(handler),
      });
      expect(resource.Properties).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs24.x' });
      expect(resource.Properties.Code).toEqual({
        S3Bucket: expect.anything(),
        S3Key: `${prebuilt.assetHash}.zip`,
      });
      expect(resource.Metadata?.['aws:asset:is-bundled']).toBe(false);
    },
  );
});

describe('TLS only, for every action (#11.9)', () => {
  it.each([
    ['the event topic', (outbox: Outbox) => outbox.relay.topic],
    ['the alarm topic', (outbox: Outbox) => outbox.alarmTopic],
  ])('denies every SNS action on %s without TLS', (_name, topicOf) => {
    // GIVEN an outbox
    const { stack, outbox } = outboxStack();
    const topic = topicOf(outbox) as sns.Topic;
    // THEN its topic policy denies sns:* to anyone over plain HTTP
    Template.fromStack(stack).hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: logicalId(topic) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });
});

describe('reserved key space alarm (#11.2)', () => {
  it('pages when the relay ignores a publishable-looking item in the reserved key space', () => {
    // GIVEN an outbox
    const { stack, outbox } = outboxStack();
    // THEN an alarm on the relay's ReservedKeyIgnored metric notifies the alarm topic
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ReservedKeyIgnored',
      Threshold: 1,
      AlarmActions: [{ Ref: logicalId(outbox.alarmTopic as sns.Topic) }],
    });
  });
});

describe('outputs for the delivery audit (#15.2)', () => {
  it('writes the dedup table name and each subscription filter the audit can evaluate', () => {
    // GIVEN an outbox with an ordered subscription on type prefixes and a rule subscription on types and a source
    const { stack, outbox } = outboxStack({ eventBus: true });
    outbox.subscribe('billing', {
      kind: 'ordered',
      eventTypePrefixes: ['com.example.orders.'],
      consumer: { function: inlineFunction(stack, 'Billing') },
    });
    outbox.subscribe('notifications', { kind: 'rule', eventTypes: ['a.A'], sources: ['/orders'] });
    // THEN the stack outputs carry what `outbox audit` needs
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.OutboxDedupTableName?.Value).toEqual({ Ref: logicalId(outbox.dedupTable.table) });
    expect(JSON.parse(String(outputs.SubBillingFilter?.Value))).toEqual({
      kind: 'event-types',
      types: [],
      prefixes: ['com.example.orders.'],
    });
    expect(JSON.parse(String(outputs.SubNotificationsFilter?.Value))).toEqual({
      kind: 'event-pattern',
      pattern: { 'detail-type': ['a.A'], source: ['/orders'] },
    });
  });
});
