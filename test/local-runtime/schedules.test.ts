import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../local/runtime/clock.ts';
import { parseSchedule, ScheduleExpressionError } from '../../local/runtime/cron.ts';
import type { FunctionInvoker } from '../../local/runtime/event-source.ts';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { ScheduleRunner, schedulesFromTemplate } from '../../local/runtime/schedules.ts';
import {
  type CfnTemplate,
  LocalResourceRegistry,
  localPseudoParameters,
} from '../../local/runtime/template.ts';
import { useHandlerDirs } from './fixtures.ts';

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();
const at = (text: string): number => Date.parse(text);

describe('parseSchedule', () => {
  it.each([
    [
      'every 5 minutes from the anchor',
      'rate(5 minutes)',
      '2030-01-01T00:07:00Z',
      '2030-01-01T00:10:00.000Z',
    ],
    ['rate(1 hour)', 'rate(1 hour)', '2030-01-01T00:00:00Z', '2030-01-01T01:00:00.000Z'],
    ['every 15 minutes', 'cron(0/15 * * * ? *)', '2030-01-01T10:07:00Z', '2030-01-01T10:15:00.000Z'],
    [
      '10:15 on weekdays (2030-01-05 is a Saturday)',
      'cron(15 10 ? * MON-FRI *)',
      '2030-01-04T11:00:00Z',
      '2030-01-07T10:15:00.000Z',
    ],
    ['last day of the month', 'cron(0 0 L * ? *)', '2030-02-01T00:00:00Z', '2030-02-28T00:00:00.000Z'],
    ['second Tuesday', 'cron(0 12 ? * 3#2 *)', '2030-01-01T00:00:00Z', '2030-01-08T12:00:00.000Z'],
    ['last Friday', 'cron(0 12 ? * 6L *)', '2030-01-01T00:00:00Z', '2030-01-25T12:00:00.000Z'],
    [
      'nearest weekday to the 5th (a Saturday)',
      'cron(0 9 5W * ? *)',
      '2030-01-01T00:00:00Z',
      '2030-01-04T09:00:00.000Z',
    ],
    ['only in 2031', 'cron(0 0 1 JAN ? 2031)', '2030-06-01T00:00:00Z', '2031-01-01T00:00:00.000Z'],
    ['one-time at()', 'at(2030-03-01T08:30:00)', '2030-01-01T00:00:00Z', '2030-03-01T08:30:00.000Z'],
  ])('%s', (_name, expression, after, expected) => {
    expect(iso(parseSchedule(expression, { anchorMs: at('2030-01-01T00:00:00Z') }).next(at(after)))).toBe(
      expected,
    );
  });

  it('applies a Scheduler time zone, including daylight saving time', () => {
    const nineInLondon = parseSchedule('cron(0 9 * * ? *)', { timezone: 'Europe/London' });
    expect(iso(nineInLondon.next(at('2030-01-15T12:00:00Z')))).toBe('2030-01-16T09:00:00.000Z');
    expect(iso(nineInLondon.next(at('2030-07-15T12:00:00Z')))).toBe('2030-07-16T08:00:00.000Z');
  });

  it('ends one-time and past-year schedules', () => {
    expect(parseSchedule('at(2030-03-01T08:30:00)').next(at('2030-03-01T08:30:00Z'))).toBeUndefined();
    expect(parseSchedule('cron(0 0 1 1 ? 2029)').next(at('2030-01-01T00:00:00Z'))).toBeUndefined();
  });

  it.each([
    ['both day fields set', 'cron(0 0 1 * MON *)'],
    ['five fields', 'cron(0 0 * * ?)'],
    ['out of range', 'cron(61 0 * * ? *)'],
    ['unknown unit', 'rate(5 weeks)'],
  ])('rejects %s', (_name, expression) => {
    expect(() => parseSchedule(expression)).toThrow(ScheduleExpressionError);
  });
});

const TEMPLATE: CfnTemplate = {
  Resources: {
    Sweeper: { Type: 'AWS::Lambda::Function', Properties: {} },
    SweepRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        ScheduleExpression: 'rate(1 minute)',
        State: 'ENABLED',
        Targets: [
          { Arn: { 'Fn::GetAtt': ['Sweeper', 'Arn'] }, Id: 'Target0' },
          { Arn: 'arn:aws:sqs:us-east-1:000000000000:q', Id: 'Target1' },
        ],
      },
    },
    Nightly: {
      Type: 'AWS::Scheduler::Schedule',
      Properties: {
        ScheduleExpression: 'cron(0 2 * * ? *)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: { 'Fn::GetAtt': ['Sweeper', 'Arn'] },
          RoleArn: 'arn:aws:iam::000000000000:role/x',
          Input: '{"mode":"nightly"}',
        },
      },
    },
    OnEvent: { Type: 'AWS::Events::Rule', Properties: { EventPattern: { source: ['x'] }, Targets: [] } },
  },
};

describe('ScheduleRunner', () => {
  const handlerDir = useHandlerDirs();
  let runner: ScheduleRunner | undefined;
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runner?.stop();
    await runtime?.stop();
  });

  function registry(): LocalResourceRegistry {
    const r = new LocalResourceRegistry();
    r.register({
      logicalId: 'Sweeper',
      type: 'AWS::Lambda::Function',
      ref: 'sweeper',
      attributes: { Arn: 'arn:aws:lambda:us-east-1:000000000000:function:sweeper' },
    });
    r.register({
      logicalId: 'SweepRule',
      type: 'AWS::Events::Rule',
      ref: 'sweep',
      attributes: { Arn: 'arn:aws:events:us-east-1:000000000000:rule/sweep' },
    });
    return r;
  }

  it('reads rule and Scheduler schedules with Lambda targets from the template', () => {
    const { schedules, notes } = schedulesFromTemplate({
      template: TEMPLATE,
      registry: registry(),
      pseudo: localPseudoParameters('s'),
    });
    expect(
      schedules.map((s) => [s.logicalId, s.kind, s.expression, s.targets.map((t) => t.functionName)]),
    ).toEqual([
      ['SweepRule', 'events-rule', 'rate(1 minute)', ['sweeper']],
      ['Nightly', 'scheduler', 'cron(0 2 * * ? *)', ['sweeper']],
    ]);
    expect(notes).toEqual([
      { logicalId: 'SweepRule', note: expect.stringContaining('is not a Lambda function') },
    ]);
  });

  it('fires on a manual clock with the scheduled event or the Scheduler input', async () => {
    const clock = new ManualClock(at('2030-01-01T01:59:30Z'));
    const calls: { name: string; event: unknown; now: number }[] = [];
    const invoker: FunctionInvoker = {
      functionArn: (name) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
      invoke: async (name, event) => {
        calls.push({ name, event, now: clock.now() });
        return { requestId: 'r', result: null, durationMs: 0 };
      },
    };
    const { schedules } = schedulesFromTemplate({
      template: TEMPLATE,
      registry: registry(),
      pseudo: localPseudoParameters('s'),
    });
    runner = new ScheduleRunner(schedules, { invoker, clock, log: () => {} });
    runner.start();

    await clock.advance(60_000);
    await runner.settled();

    expect(calls.map((c) => [c.name, new Date(c.now).toISOString()])).toEqual([
      ['sweeper', '2030-01-01T02:00:00.000Z'],
      ['sweeper', '2030-01-01T02:00:30.000Z'],
    ]);
    expect(calls[0]?.event).toEqual({ mode: 'nightly' });
    expect(calls[1]?.event).toEqual({
      version: '0',
      id: expect.any(String),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      time: '2030-01-01T02:00:30Z',
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:000000000000:rule/sweep'],
      detail: {},
    });
  });

  it('invokes the real function through the Lambda runtime', async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'sweeper',
      codeDir: await handlerDir({
        'index.mjs': 'export const handler = async (e) => ({ got: e["detail-type"] ?? e.mode });',
      }),
      handler: 'index.handler',
    });
    const clock = new ManualClock(at('2030-01-01T00:00:00Z'));
    const { schedules } = schedulesFromTemplate({
      template: TEMPLATE,
      registry: registry(),
      pseudo: localPseudoParameters('s'),
    });
    runner = new ScheduleRunner(schedules, { invoker: runtime, clock, log: () => {} });
    runner.start();

    await clock.advance(3 * 60_000);
    await runner.settled();

    expect(runner.fired.map((f) => [f.logicalId, f.result.result])).toEqual([
      ['SweepRule', { got: 'Scheduled Event' }],
      ['SweepRule', { got: 'Scheduled Event' }],
      ['SweepRule', { got: 'Scheduled Event' }],
    ]);
  });
});
