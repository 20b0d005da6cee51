/**
 * The publishers a relay configuration asks for. Shared by the relay handler and the recovery function, which
 * publishes through the same code.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { RelayConfig } from './config.ts';
import { eventBridgePublisher, type Publisher, snsFifoPublisher, sqsFifoPublisher } from './publishers.ts';

export interface RelayClients {
  readonly dynamodb?: DynamoDBClient;
  readonly sns?: SNSClient;
  readonly eventBridge?: EventBridgeClient;
  readonly sqs?: SQSClient;
}

/**
 * The publishers a configuration asks for. Clients default to one per container with SDK retries off
 * (`maxAttempts: 1`): the relay retries failed entries itself, bounded by the invocation's remaining time.
 */
export function createPublishers(config: RelayConfig, clients: RelayClients = {}): Publisher[] {
  const publishers: Publisher[] = [];
  if (config.snsTopicArn) {
    publishers.push(
      snsFifoPublisher({
        client: clients.sns ?? new SNSClient({ maxAttempts: 1 }),
        topicArn: config.snsTopicArn,
        maxMessageBytes: config.snsMaxMessageBytes,
      }),
    );
  }
  if (config.eventBusName) {
    publishers.push(
      eventBridgePublisher({
        client: clients.eventBridge ?? new EventBridgeClient({ maxAttempts: 1 }),
        eventBusName: config.eventBusName,
        maxEntryBytes: config.eventBridgeMaxEntryBytes,
      }),
    );
  }
  if (config.sqsQueueUrls.length > 0) {
    const sqs = clients.sqs ?? new SQSClient({ maxAttempts: 1 });
    for (const queueUrl of config.sqsQueueUrls) {
      publishers.push(
        sqsFifoPublisher({ client: sqs, queueUrl, maxMessageBytes: config.sqsMaxMessageBytes }),
      );
    }
  }
  return publishers;
}
