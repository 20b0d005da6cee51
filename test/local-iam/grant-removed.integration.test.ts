/**
 * The demo stack with grants and policy statements removed, offline: the calls and deliveries AWS would refuse
 * are refused, with AWS's errors, dropped and counted. The same stack with its grants runs clean (`npm start`).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SYNTH_SCRIPT, type DemoResources } from '../../examples/orders/synth.ts';
import { DEFAULT_LARGE_EVENTS_PREFIX } from '../../functions/contract/large-events.ts';
import { type OfflineRuntime, startOfflineRuntime, synthesize } from '../../local/offline.ts';
import type { CfnTemplate } from '../../local/runtime/template.ts';

type Statement = { Action?: unknown; Principal?: unknown; Resource?: unknown; Sid?: string };
type Mutable = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

function statementsOf(template: Mutable, type: string, where: (logicalId: string) => boolean) {
  return Object.entries(template.Resources)
    .filter(([id, r]) => r.Type === type && where(id))
    .map(([id, r]) => ({
      id,
      document: (r.Properties?.PolicyDocument ?? r.Properties?.KeyPolicy) as { Statement: Statement[] },
    }));
}

/** Removes statements matching `drop` from the policies of `type` whose logical id matches `where`; returns how many. */
function removeStatements(
  template: Mutable,
  type: string,
  where: (logicalId: string) => boolean,
  drop: (s: Statement) => boolean,
): number {
  let removed = 0;
  for (const { document } of statementsOf(template, type, where)) {
    const before = document.Statement.length;
    document.Statement = document.Statement.filter((s) => !drop(s));
    removed += before - document.Statement.length;
  }
  return removed;
}

const mentions = (value: unknown, text: string) => JSON.stringify(value ?? '').includes(text);

describe('offline IAM on the demo stack with grants removed', () => {
  let offline: OfflineRuntime;
  let resources: DemoResources;
  const lines: string[] = [];

  beforeAll(async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'outbox-iam-'));
    const synth = await synthesize<DemoResources>(workDir, DEMO_SYNTH_SCRIPT);
    resources = synth.resources;
    const template = structuredClone(synth.template) as unknown as Mutable;
    // 1. The producer's grant on the Orders table (outbox.grantWrite stays: only the app's own table goes).
    expect(
      removeStatements(
        template,
        'AWS::IAM::Policy',
        (id) => id.startsWith('OrderProducerRole'),
        (s) => mentions(s.Resource, 'Orders'),
      ),
    ).toBe(1);
    // 2. The billing queue's permission for the relay topic.
    expect(
      removeStatements(
        template,
        'AWS::SQS::QueuePolicy',
        (id) => id.startsWith('OutboxSubscriptionsbillingQueuePolicy'),
        (s) => mentions(s.Principal, 'sns.amazonaws.com'),
      ),
    ).toBe(1);
    // 3. CloudWatch's permission on the alarm topic.
    expect(
      removeStatements(
        template,
        'AWS::SNS::TopicPolicy',
        (id) => id.startsWith('OutboxAlarmsTopicPolicy'),
        (s) => mentions(s.Principal, 'cloudwatch.amazonaws.com'),
      ),
    ).toBe(1);
    // 4. EventBridge's permission on the notifications queue (its DLQ's stays).
    expect(
      removeStatements(
        template,
        'AWS::SQS::QueuePolicy',
        (id) => id.startsWith('OutboxSubscriptionsnotificationsQueuePolicy'),
        (s) => mentions(s.Principal, 'events.amazonaws.com'),
      ),
    ).toBe(1);
    // 5. The billing consumer's read of large-event payloads (notifications keeps its own).
    expect(
      removeStatements(
        template,
        'AWS::IAM::Policy',
        (id) => id.toLowerCase().includes('billing'),
        (s) => mentions(s.Action, 's3:GetObject'),
      ),
    ).toBe(1);
    offline = await startOfflineRuntime({
      log: (line) => lines.push(line),
      synth: async () => ({
        stacks: [
          {
            template: template as unknown as CfnTemplate,
            assetRoot: synth.assetRoot,
            stackName: synth.stackName,
          },
        ],
      }),
    });
  }, 180_000);

  afterAll(async () => {
    await offline?.stop();
  });

  it('denies the producer its write with AWS AccessDeniedException and message, per item of the transaction', async () => {
    const outcome = await offline.runtime.invoke(resources.producer, {
      action: 'place',
      orderId: 'o-iam-1',
      commandId: 'c-iam-1',
      customerId: 'c1',
      amountCents: 100,
    });
    const text = JSON.stringify(outcome.error ?? outcome.result);
    expect(text).toContain('AccessDeniedException');
    expect(text).toMatch(
      /User: arn:aws:sts::000000000000:assumed-role\/ServerlessOutbox-OrderProducerRole[^/]+\/ServerlessOutbox-OrderProducer[^ ]+ is not authorized to perform: dynamodb:(PutItem|UpdateItem|ConditionCheckItem|GetItem) on resource: arn:aws:dynamodb:[^ ]+:table\/ServerlessOutbox-Orders[^ ]+ because no identity-based policy allows the dynamodb:\w+ action/,
    );
    const denied = offline.iamReport().deniedCalls;
    expect(denied.length).toBeGreaterThan(0);
    expect(denied[0]?.principal).toContain('assumed-role/ServerlessOutbox-OrderProducerRole');
  });

  it('drops the relay topic deliveries the billing queue policy no longer allows, and counts them', async () => {
    const { runtime } = offline;
    expect(lines.some((l) => /may not deliver to .*billing/i.test(l))).toBe(true);
    const snsDrops = () => offline.iamReport().droppedDeliveries.filter((d) => d.path === 'sns -> sqs');
    expect(snsDrops()).toEqual([]);
    const topicArn = String(
      runtime.registry.ofType('AWS::SNS::Topic').find((t) => t.logicalId.startsWith('OutboxRelayTopic'))?.ref,
    );
    // Published as the relay's role, through the gateway (what the relay does for each committed event).
    const relay = new SNSClient({
      endpoint: offline.functionEndpoints.fauxqs,
      region: 'us-east-1',
      credentials: { accessKeyId: String(runtime.registry.ref(resources.relay)), secretAccessKey: 'local' },
    });
    try {
      await relay.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: '{}',
          MessageGroupId: 'o-iam-2',
          MessageDeduplicationId: 'd-iam-2',
        }),
      );
    } finally {
      relay.destroy();
    }
    const dropped = snsDrops();
    expect(dropped).toHaveLength(1);
    expect(dropped[0]?.resource).toMatch(/billing/i);
    expect(dropped[0]?.principal).toBe('sns.amazonaws.com');
    const failed = runtime.metrics.all().filter((m) => m.metricName === 'NumberOfNotificationsFailed');
    expect(failed.reduce((n, m) => n + m.value, 0)).toBe(1);
    // The refused subscription was removed at start-up: the billing queue receives nothing.
    const billingUrl = runtime.registry
      .ofType('AWS::SQS::Queue')
      .find((q) => q.logicalId.startsWith('OutboxSubscriptionsbillingQueue'))?.ref as string;
    const queue = await offline.fauxqs.inspectQueue(billingUrl.split('/').pop() as string);
    expect((queue?.messages.ready.length ?? 0) + (queue?.messages.inflight.length ?? 0)).toBe(0);
  });

  it('drops the alarm notifications CloudWatch may no longer publish to the alarm topic', async () => {
    await offline.runtime.alarms.evaluate();
    const notifications = offline.runtime.alarms.notifications;
    expect(notifications.length).toBeGreaterThan(0);
    expect(notifications.every((n) => !n.delivered)).toBe(true);
    const dropped = offline.iamReport().droppedDeliveries.filter((d) => d.path === 'cloudwatch -> sns');
    expect(dropped.length).toBe(notifications.length);
    expect(dropped[0]?.message).toMatch(
      /^User: cloudwatch\.amazonaws\.com is not authorized to perform: sns:Publish on resource: arn:aws:sns:.*because no resource-based policy allows the sns:Publish action$/,
    );
  });
  it('refuses the rule delivery the notifications queue policy no longer allows: not retried, counted, dead-lettered', async () => {
    const { runtime } = offline;
    const bus = String(runtime.registry.ofType('AWS::Events::EventBus')[0]?.ref);
    const events = new EventBridgeClient({
      endpoint: offline.endpoints.eventbridge,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const put = await events.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: bus,
              Source: '/demo/orders',
              DetailType: 'com.example.orders.OrderPlaced',
              Detail: '{"id":"e-iam-4"}',
            },
          ],
        }),
      );
      expect(put.FailedEntryCount).toBe(0);
    } finally {
      events.destroy();
    }
    const queueOf = (prefix: string) =>
      String(runtime.registry.ofType('AWS::SQS::Queue').find((q) => q.logicalId.startsWith(prefix))?.ref)
        .split('/')
        .pop() as string;
    const depth = async (name: string) => {
      const q = await offline.fauxqs.inspectQueue(name);
      return (q?.messages.ready.length ?? 0) + (q?.messages.inflight.length ?? 0);
    };
    const dlq = queueOf('OutboxSubscriptionsnotificationsDeadLetterQueue');
    for (let i = 0; i < 50 && (await depth(dlq)) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await depth(dlq)).toBe(1);
    expect(await depth(queueOf('OutboxSubscriptionsnotificationsQueue'))).toBe(0);
    const dropped = offline.iamReport().droppedDeliveries.filter((d) => d.path === 'events -> sqs');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ principal: 'events.amazonaws.com', action: 'sqs:SendMessage' });
    expect(dropped[0]?.source).toMatch(/:rule\/.+\/.+/);
    const failed = runtime.metrics
      .all()
      .filter((m) => m.namespace === 'AWS/Events' && m.metricName === 'FailedInvocations');
    expect(failed.reduce((n, m) => n + m.value, 0)).toBe(1);
  });

  it("denies the billing consumer a large event's payload once its s3:GetObject grant is gone; notifications may read it", async () => {
    const { runtime } = offline;
    const bucket = String(runtime.registry.ofType('AWS::S3::Bucket')[0]?.ref);
    const key = `${DEFAULT_LARGE_EVENTS_PREFIX}e-iam-5.json`;
    const clientAs = (accessKeyId: string) =>
      new S3Client({
        endpoint: offline.functionEndpoints.fauxqs,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey: 'local' },
      });
    const operator = clientAs('local');
    const billing = clientAs(String(runtime.registry.ref(resources.billingConsumer)));
    const notifications = clientAs(String(runtime.registry.ref(resources.notificationsConsumer)));
    try {
      await operator.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"big":true}' }));
      const read = await notifications.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      expect(await read.Body?.transformToString()).toBe('{"big":true}');
      const denied = await billing.send(new GetObjectCommand({ Bucket: bucket, Key: key })).then(
        () => undefined,
        (error: unknown) => error as { name?: string; message?: string },
      );
      expect(denied?.name).toBe('AccessDenied');
      const calls = offline.iamReport().deniedCalls.filter((c) => c.action === 's3:GetObject');
      expect(calls).toHaveLength(1);
      expect(calls[0]?.resource).toBe(`arn:aws:s3:::${bucket}/${key}`);
    } finally {
      for (const client of [operator, billing, notifications]) client.destroy();
    }
  });
});
