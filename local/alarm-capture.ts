/**
 * A local subscriber on every alarm topic: an SQS queue subscribed to the topics the template's alarms notify,
 * standing in for the pager or e-mail endpoint. What arrives here went through the alarm topic (and, with offline
 * IAM, past its topic and key policies), so "the alarm pages" is observed, not assumed.
 */
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { LocalStackRuntime } from './runtime/runtime.ts';
import { isRecord, resolveIntrinsics } from './runtime/template.ts';

export interface CapturedAlarmNotification {
  readonly alarmName: string;
  readonly state: string;
  readonly topicArn: string;
  readonly receivedAt: string;
}

export interface AlarmCapture {
  /** Every notification received so far (drains the capture queue first). */
  received(): Promise<readonly CapturedAlarmNotification[]>;
  stop(): void;
}

/** SNS topics the stacks' alarms notify (AlarmActions, OKActions, InsufficientDataActions). */
export function alarmTopicArns(stacks: readonly LocalStackRuntime[]): string[] {
  const topics = new Set<string>();
  for (const stack of stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources)) {
      if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
      const props = resource.Properties ?? {};
      for (const key of ['AlarmActions', 'OKActions', 'InsufficientDataActions']) {
        try {
          const actions = resolveIntrinsics(props[key], { ...stack.ctx, resourceId: logicalId });
          for (const action of Array.isArray(actions) ? actions : [])
            if (typeof action === 'string' && /^arn:[^:]+:sns:/.test(action)) topics.add(action);
        } catch {
          // An action that does not resolve locally is reported by the alarm evaluator.
        }
      }
    }
  }
  return [...topics];
}

export async function startAlarmCapture(opts: {
  readonly endpoint: string;
  readonly region: string;
  readonly topicArns: readonly string[];
}): Promise<AlarmCapture> {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const sqs = new SQSClient({ endpoint: opts.endpoint, region: opts.region, credentials });
  const sns = new SNSClient({ endpoint: opts.endpoint, region: opts.region, credentials });
  const received: CapturedAlarmNotification[] = [];
  const topics = opts.topicArns.filter((arn) => !arn.endsWith('.fifo'));
  let queueUrl: string | undefined;
  if (topics.length > 0) {
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'local-alarm-capture' }))).QueueUrl;
    const queueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    for (const topicArn of topics)
      await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
  }
  return {
    async received() {
      while (queueUrl) {
        const page = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        const messages = page.Messages ?? [];
        if (messages.length === 0) break;
        for (const m of messages) {
          try {
            const envelope = JSON.parse(m.Body ?? '{}') as { TopicArn?: string; Message?: string };
            const alarm = JSON.parse(envelope.Message ?? '{}') as unknown;
            if (!isRecord(alarm)) continue;
            received.push({
              alarmName: String(alarm.AlarmName),
              state: String(alarm.NewStateValue),
              topicArn: String(envelope.TopicArn),
              receivedAt: new Date().toISOString(),
            });
          } catch {
            // Not an alarm notification: ignore.
          }
        }
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
          }),
        );
      }
      return [...received];
    },
    stop() {
      sqs.destroy();
      sns.destroy();
    },
  };
}
