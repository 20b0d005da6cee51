import * as path from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { Outbox } from '../../lib/outbox.ts';
import { OutboxDashboard } from '../../lib/outbox-dashboard.ts';
import { NO_BUNDLING, synthOrdersStack } from './stack-fixture.ts';

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
  let stack: OrdersStack;
  let all: Widget[];
  beforeAll(() => {
    ({ stack } = synthOrdersStack());
    const { dashboard } = stack.outbox;
    if (!dashboard) throw new Error('the demo outbox has no dashboard');
    all = widgets(stack, dashboard);
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
    const app = new App({ context: NO_BUNDLING });
    const stack = new Stack(app, 'Dash');
    // The Outbox's own dashboard is off: this one shows the relay only (no recovery), like a hand-made one.
    const outbox = new Outbox(stack, 'Outbox', {
      dashboard: false,
      table: { removalPolicy: RemovalPolicy.DESTROY },
      dedupTable: { removalPolicy: RemovalPolicy.DESTROY },
    });
    const { relay } = outbox;
    const dashboard = new OutboxDashboard(stack, 'Dashboard', { relay });
    const before = widgets(stack, dashboard);
    expect(before.some((w) => /messages waiting|Consumers/.test(w.properties.title ?? ''))).toBe(false);
    expect(before.every((w) => w.type !== 'metric' || (w.properties.metrics ?? []).length > 0)).toBe(true);
    expect(before.some((w) => /Recovery|Oldest unpublished/.test(w.properties.title ?? ''))).toBe(false);

    dashboard.addSubscription(
      outbox.subscribe('late', {
        kind: 'ordered',
        consumer: { entry: path.join(import.meta.dirname, '../../examples/orders/billing.ts') },
      }),
    );
    const after = widgets(stack, dashboard);
    expect(flat(widget(after, /messages waiting/))).toContain('"label":"late"');
    expect(flat(widget(after, /^Consumers: errors/))).toContain('late function errors');
    expect(after.find((w) => w.type === 'alarm')?.properties.alarms).toHaveLength(relay.alarms.length + 3);
  });
});
