import { CreateTopicCommand, type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** An SNS FIFO topic with an SQS FIFO queue subscribed by raw delivery (an ordered subscription's path). */
export async function createFifoTopicWithQueue(
  sns: SNSClient,
  sqs: SQSClient,
  names: { topic: string; queue: string },
): Promise<{ topicArn: string; queueUrl: string }> {
  const topic = await sns.send(
    new CreateTopicCommand({
      Name: `${names.topic}.fifo`,
      Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
    }),
  );
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${names.queue}.fifo`,
      Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' },
    }),
  );
  const queueUrl = queue.QueueUrl ?? '';
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  await sns.send(
    new SubscribeCommand({
      TopicArn: topic.TopicArn,
      Protocol: 'sqs',
      Endpoint: queueArn,
      Attributes: { RawMessageDelivery: 'true' },
    }),
  );
  return { topicArn: topic.TopicArn ?? '', queueUrl };
}
