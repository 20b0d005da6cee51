import { type MessageAttributeValue, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { messageGroupId } from '../relay/publishers.ts';

/**
 * Sends an event again to one subscriber's queue (tracked mode). FIFO: the aggregate is the group (hashed the
 * relay's way when the key is not a valid group id) and the dedup id names the attempt, so the 5-minute dedup
 * window does not swallow the redelivery; the consumer's dedup on event id keeps the effect single. The message
 * carries the attributes the relay's messages carry (`type`, `source`, `partitionkey`, `sequence`, `subject`).
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
      sequence?: unknown;
      subject?: unknown;
    };
    const attributes: Record<string, MessageAttributeValue> = {
      type: { DataType: 'String', StringValue: envelope.type },
      source: { DataType: 'String', StringValue: envelope.source },
      partitionkey: { DataType: 'String', StringValue: envelope.partitionkey },
    };
    if (typeof envelope.sequence === 'number') {
      attributes.sequence = { DataType: 'Number', StringValue: String(envelope.sequence) };
    }
    if (typeof envelope.subject === 'string' && envelope.subject !== '') {
      attributes.subject = { DataType: 'String', StringValue: envelope.subject };
    }
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: target.queueUrl,
        MessageBody: envelopeJson,
        MessageAttributes: attributes,
        ...(target.fifo
          ? {
              MessageGroupId: messageGroupId(envelope.partitionkey),
              MessageDeduplicationId: `${envelope.id}.redeliver.${target.attempt}`,
            }
          : {}),
      }),
    );
  };
}
