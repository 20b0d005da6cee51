import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/**
 * Sends an event again to one subscriber's queue (tracked mode). FIFO: the aggregate is the group and the
 * dedup id names the attempt, so the 5-minute dedup window does not swallow the redelivery; the consumer's
 * dedup on event id keeps the effect single.
 */
export function sqsRedeliverer(sqs: SQSClient) {
  return async (
    target: { queueUrl: string; fifo: boolean; attempt: number },
    envelopeJson: string,
  ): Promise<void> => {
    const envelope = JSON.parse(envelopeJson) as {
      id: string;
      partitionkey: string;
      type: string;
      source: string;
    };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: target.queueUrl,
        MessageBody: envelopeJson,
        MessageAttributes: {
          type: { DataType: 'String', StringValue: envelope.type },
          source: { DataType: 'String', StringValue: envelope.source },
          partitionkey: { DataType: 'String', StringValue: envelope.partitionkey },
        },
        ...(target.fifo
          ? {
              MessageGroupId: envelope.partitionkey,
              MessageDeduplicationId: `${envelope.id}.redeliver.${target.attempt}`,
            }
          : {}),
      }),
    );
  };
}
