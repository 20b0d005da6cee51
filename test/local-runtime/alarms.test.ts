import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AlarmEvaluator,
  aggregate,
  alarmsFromTemplate,
  fauxqsQueueSampler,
} from '../../local/runtime/alarms.ts';
import { ManualClock } from '../../local/runtime/clock.ts';
import { MetricStore, parseEmf } from '../../local/runtime/metrics.ts';
import {
  type CfnTemplate,
  LocalResourceRegistry,
  localPseudoParameters,
} from '../../local/runtime/template.ts';
import { localAwsConfig, useFauxqsService } from '../support/services.ts';

const START = Date.UTC(2030, 0, 1);

function template(alarm: Record<string, unknown>): CfnTemplate {
  return {
    Resources: {
      Topic: { Type: 'AWS::SNS::Topic', Properties: {} },
      Alarm: {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: 'relay' }],
          Statistic: 'Sum',
          Period: 60,
          EvaluationPeriods: 1,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          AlarmActions: [{ Ref: 'Topic' }],
          OKActions: [{ Ref: 'Topic' }],
          ...alarm,
        },
      },
    },
  };
}

function definitions(t: CfnTemplate, topicArn = 'arn:aws:sns:us-east-1:000000000000:alarms') {
  const registry = new LocalResourceRegistry();
  registry.register({
    logicalId: 'Topic',
    type: 'AWS::SNS::Topic',
    ref: topicArn,
    attributes: { TopicArn: topicArn },
  });
  return alarmsFromTemplate({ template: t, registry, pseudo: localPseudoParameters('stack') });
}

function errorAt(metrics: MetricStore, timestamp: number, value = 1): void {
  metrics.put({
    namespace: 'AWS/Lambda',
    metricName: 'Errors',
    dimensions: { FunctionName: 'relay' },
    value,
    timestamp,
  });
}

describe('metric parsing and statistics', () => {
  it('reads every metric and dimension set of an EMF line', () => {
    const line = JSON.stringify({
      _aws: {
        Timestamp: START,
        CloudWatchMetrics: [
          {
            Namespace: 'Outbox',
            Dimensions: [['service'], ['service', 'type']],
            Metrics: [{ Name: 'Published', Unit: 'Count' }],
          },
        ],
      },
      service: 'relay',
      type: 'OrderPlaced',
      Published: [2, 3],
    });
    expect(parseEmf(line).map((d) => [d.dimensions, d.value])).toEqual([
      [{ service: 'relay' }, 2],
      [{ service: 'relay' }, 3],
      [{ service: 'relay', type: 'OrderPlaced' }, 2],
      [{ service: 'relay', type: 'OrderPlaced' }, 3],
    ]);
    expect(parseEmf('plain log line')).toEqual([]);
  });

  it.each([
    ['Sum', 10],
    ['Average', 2.5],
    ['Minimum', 1],
    ['Maximum', 4],
    ['SampleCount', 4],
    ['p50', 2],
    ['p99', 4],
  ])('%s', (statistic, expected) => {
    expect(aggregate(statistic, [3, 1, 4, 2])).toBe(expected);
  });
});

describe('AlarmEvaluator', () => {
  it('goes to ALARM when M of N periods breach and back to OK; missing data as configured', async () => {
    const clock = new ManualClock(START);
    const metrics = new MetricStore();
    const { alarms } = definitions(
      template({ EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'notBreaching' }),
    );
    const evaluator = new AlarmEvaluator(alarms, { metrics, clock, log: () => {} });

    expect((await evaluator.evaluate()).map((t) => t.to)).toEqual(['OK']);
    errorAt(metrics, START + 10_000);
    await clock.advance(60_000);
    expect(await evaluator.evaluate()).toEqual([]);
    errorAt(metrics, START + 70_000, 3);
    await clock.advance(60_000);
    const [alarm] = await evaluator.evaluate();
    expect(alarm).toMatchObject({ from: 'OK', to: 'ALARM', datapoints: [3, 1, undefined] });
    await clock.advance(120_000);
    expect((await evaluator.evaluate()).map((t) => t.to)).toEqual(['OK']);
    expect(evaluator.fired).toHaveLength(1);
  });

  it('stays in INSUFFICIENT_DATA without data by default, and treats missing data as breaching when told', async () => {
    const clock = new ManualClock(START);
    const metrics = new MetricStore();
    const missing = new AlarmEvaluator(definitions(template({})).alarms, { metrics, clock, log: () => {} });
    const breaching = new AlarmEvaluator(definitions(template({ TreatMissingData: 'breaching' })).alarms, {
      metrics,
      clock,
      log: () => {},
    });
    expect(await missing.evaluate()).toEqual([]);
    expect(missing.state('Alarm')).toBe('INSUFFICIENT_DATA');
    expect((await breaching.evaluate()).map((t) => t.to)).toEqual(['ALARM']);
  });

  it('reports metric-math alarms as unsupported', () => {
    const { alarms, unsupported } = definitions(
      template({ Metrics: [{ Id: 'm1', Expression: 'a+b' }], MetricName: undefined }),
    );
    expect(alarms).toEqual([]);
    expect(unsupported).toEqual([{ logicalId: 'Alarm', reason: expect.stringContaining('metric math') }]);
  });

  describe('with fauxqs', () => {
    const service = useFauxqsService();
    let sns: SNSClient;
    let sqs: SQSClient;
    let topicArn: string;
    let inboxUrl: string;

    beforeAll(async () => {
      sns = new SNSClient(localAwsConfig(service().endpoint));
      sqs = new SQSClient(localAwsConfig(service().endpoint));
      topicArn = (await sns.send(new CreateTopicCommand({ Name: 'alarms' }))).TopicArn as string;
      inboxUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'alarm-inbox' }))).QueueUrl as string;
      const inboxArn = (
        await sqs.send(new GetQueueAttributesCommand({ QueueUrl: inboxUrl, AttributeNames: ['QueueArn'] }))
      ).Attributes?.QueueArn;
      await sns.send(
        new SubscribeCommand({
          TopicArn: topicArn,
          Protocol: 'sqs',
          Endpoint: inboxArn,
          Attributes: { RawMessageDelivery: 'true' },
        }),
      );
    });

    it('samples queue age from fauxqs and publishes the CloudWatch notification to the alarm topic', async () => {
      const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'relay-dlq' }))).QueueUrl as string;
      await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: 'stuck' }));
      const { alarms } = definitions(
        template({
          Namespace: 'AWS/SQS',
          MetricName: 'ApproximateAgeOfOldestMessage',
          Dimensions: [{ Name: 'QueueName', Value: 'relay-dlq' }],
          Statistic: 'Maximum',
          Threshold: 0,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          AlarmName: 'relay-dlq-not-empty',
          AlarmDescription: 'Messages are waiting in the relay DLQ',
        }),
        topicArn,
      );
      const metrics = new MetricStore();
      const evaluator = new AlarmEvaluator(alarms, {
        metrics,
        sns,
        samplers: [fauxqsQueueSampler((name) => service().inspectQueue(name), ['relay-dlq'])],
        log: () => {},
      });

      const [transition] = await evaluator.evaluate();

      expect(transition?.to).toBe('ALARM');
      const visible = metrics.query({
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: 'relay-dlq' },
        startTime: 0,
        endTime: Date.now() + 1,
      });
      expect(visible.map((d) => d.value)).toEqual([1]);
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: inboxUrl, WaitTimeSeconds: 1 }));
      expect(JSON.parse(received.Messages?.[0]?.Body ?? '{}')).toMatchObject({
        AlarmName: 'relay-dlq-not-empty',
        AlarmDescription: 'Messages are waiting in the relay DLQ',
        NewStateValue: 'ALARM',
        OldStateValue: 'INSUFFICIENT_DATA',
        Trigger: {
          MetricName: 'ApproximateAgeOfOldestMessage',
          Namespace: 'AWS/SQS',
          Statistic: 'MAXIMUM',
          Threshold: 0,
        },
      });
    });
  });
});
