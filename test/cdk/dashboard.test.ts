import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { beforeAll, describe, expect, it } from 'vitest';
import { AlarmTopic } from '../../lib/alarm-topic.ts';
import { Messaging } from '../../lib/messaging.ts';
import { OutboxDashboard } from '../../lib/outbox-dashboard.ts';
import { OutboxRelay } from '../../lib/outbox-relay.ts';
import type { OutboxStack } from '../../lib/outbox-stack.ts';
import { OutboxTable } from '../../lib/outbox-table.ts';
import { synthOutboxStack } from './stack-fixture.ts';

interface Widget {
  type: string;
  properties: { title?: string; metrics?: unknown[][]; alarms?: unknown[] };
}

/** The dashboard body with its tokens resolved to a JSON structure (Fn::Join parts stringified back). */
function widgets(stack: Stack, dashboard: OutboxDashboard): Widget[] {
  const body = stack.resolve(
    (dashboard.dashboard.node.defaultChild as cloudwatch.CfnDashboard).dashboardBody,
  ) as unknown;
  const text =
    typeof body === 'string'
      ? body
      : ((body as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1] ?? [])
          .map((part) => (typeof part === 'string' ? part : JSON.stringify(part).replace(/"/g, "'")))
          .join('');
  return (JSON.parse(text) as { widgets: Widget[] }).widgets;
}

function widget(all: readonly Widget[], title: RegExp): Widget {
  const found = all.find((w) => title.test(w.properties.title ?? ''));
  if (!found) throw new Error(`no widget titled ${title}: ${all.map((w) => w.properties.title).join(' | ')}`);
  return found;
}

const metricNames = (w: Widget) => (w.properties.metrics ?? []).map((m) => `${m[0]}/${m[1]}`);
const flat = (w: Widget) => JSON.stringify(w.properties.metrics);

describe('OutboxDashboard in the demo stack', () => {
  let stack: OutboxStack;
  let all: Widget[];
  beforeAll(() => {
    ({ stack } = synthOutboxStack());
    all = widgets(stack, stack.dashboard);
  });

  it('is one CloudWatch dashboard of the stack', () => {
    Template.fromStack(stack).hasResource('AWS::CloudWatch::Dashboard', {});
  });

  it('shows published per minute per target, and what the sweeper republished', () => {
    const published = widget(all, /^Published per minute/);
    expect(flat(published)).toContain('"target","sns"');
    expect(flat(published)).toContain('"target","eventbridge"');
    expect(metricNames(published)).toContain('ServerlessOutbox/Republished');
    expect(JSON.stringify(published)).toContain('"period":60');
  });

  it('shows the oldest unpublished age with the stuck threshold, and the stream iterator age', () => {
    const age = widget(all, /^Oldest unpublished age/);
    expect(metricNames(age)).toEqual(
      expect.arrayContaining([
        'ServerlessOutbox/OldestUnpublishedAgeSeconds',
        'ServerlessOutbox/UnpublishedCount',
      ]),
    );
    expect(JSON.stringify(age)).toContain('"value":300');
    expect(metricNames(widget(all, /iterator age/))).toEqual(['AWS/Lambda/IteratorAge']);
  });

  it("shows each subscription queue's backlog and oldest age, every DLQ and the relay failure queue", () => {
    const backlog = widget(all, /messages waiting/);
    const age = widget(all, /oldest message age/);
    const dlqs = widget(all, /^Dead-letter queues/);
    for (const name of ['billing', 'notifications']) {
      expect(flat(backlog)).toContain(`"label":"${name}"`);
      expect(flat(age)).toContain(`"label":"${name}"`);
      expect(flat(dlqs)).toContain(`"label":"${name} DLQ"`);
    }
    expect(metricNames(backlog).every((m) => m === 'AWS/SQS/ApproximateNumberOfMessagesVisible')).toBe(true);
    expect(metricNames(age).every((m) => m === 'AWS/SQS/ApproximateAgeOfOldestMessage')).toBe(true);
    expect(flat(dlqs)).toContain('relay failure queue');
  });

  it('shows consumer errors (Lambda errors and the consumers’ own failed-event counts)', () => {
    const errors = widget(all, /^Consumers: errors/);
    expect(metricNames(errors)).toEqual(
      expect.arrayContaining(['AWS/Lambda/Errors', 'ServerlessOutbox/EventsFailed']),
    );
    expect(flat(errors)).toContain('"consumer","billing"');
  });

  it('shows the state of every alarm of the stack', () => {
    const alarms = all.find((w) => w.type === 'alarm');
    const count = Object.keys(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).length;
    expect(alarms?.properties.alarms).toHaveLength(count);
  });
});

describe('OutboxDashboard without subscriptions', () => {
  it('leaves out the queue and consumer widgets rather than render them empty, and adds them with addSubscription', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Dash');
    const alarms = new AlarmTopic(stack, 'Alarms');
    const outbox = new OutboxTable(stack, 'Outbox', { removalPolicy: RemovalPolicy.DESTROY });
    const relay = new OutboxRelay(stack, 'Relay', { outbox, alarms });
    const dashboard = new OutboxDashboard(stack, 'Dashboard', { relay });
    const before = widgets(stack, dashboard);
    expect(before.some((w) => /messages waiting|Consumers/.test(w.properties.title ?? ''))).toBe(false);
    expect(before.every((w) => w.type !== 'metric' || (w.properties.metrics ?? []).length > 0)).toBe(true);
    expect(before.some((w) => /Recovery|Oldest unpublished/.test(w.properties.title ?? ''))).toBe(false);

    const messaging = new Messaging(stack, 'M', {
      alarmTopic: alarms,
      relay,
      dedupTableRemovalPolicy: RemovalPolicy.DESTROY,
    });
    dashboard.addSubscription(
      messaging.subscribe('late', {
        kind: 'ordered',
        consumer: { entry: 'subscribers/billing.ts' },
      }),
    );
    const after = widgets(stack, dashboard);
    expect(flat(widget(after, /messages waiting/))).toContain('"label":"late"');
    expect(flat(widget(after, /^Consumers: errors/))).toContain('late function errors');
    expect(after.find((w) => w.type === 'alarm')?.properties.alarms).toHaveLength(relay.alarms.length + 3);
  });
});
