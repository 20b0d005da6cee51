import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { localAwsConfig, useDynamoDbLocal, useFauxqs } from '../support/services.ts';

describe('local services', () => {
  const dynamoEndpoint = useDynamoDbLocal();
  const fauxqsEndpoint = useFauxqs();

  it('DynamoDB Local: a put appears on the table stream with both images requested', async () => {
    const dynamodb = new DynamoDBClient(localAwsConfig(dynamoEndpoint()));
    const streams = new DynamoDBStreamsClient(localAwsConfig(dynamoEndpoint()));
    const created = await dynamodb.send(
      new CreateTableCommand({
        TableName: 'services-test',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    const streamArn = created.TableDescription?.LatestStreamArn;
    expect(streamArn).toMatch(/^arn:aws:dynamodb:/);

    await dynamodb.send(
      new PutItemCommand({ TableName: 'services-test', Item: { pk: { S: 'a' }, n: { N: '1' } } }),
    );

    const stream = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const shardId = stream.StreamDescription?.Shards?.[0]?.ShardId;
    const iterator = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: streamArn,
        ShardId: shardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const records = await streams.send(new GetRecordsCommand({ ShardIterator: iterator.ShardIterator }));
    expect(records.Records).toHaveLength(1);
    expect(records.Records?.[0]?.eventName).toBe('INSERT');
    expect(records.Records?.[0]?.dynamodb?.NewImage).toEqual({ pk: { S: 'a' }, n: { N: '1' } });
    expect(records.Records?.[0]?.dynamodb?.StreamViewType).toBe('NEW_AND_OLD_IMAGES');
    dynamodb.destroy();
    streams.destroy();
  });

  it('fauxqs: SNS FIFO topic delivers raw messages to a subscribed SQS FIFO queue', async () => {
    const sns = new SNSClient(localAwsConfig(fauxqsEndpoint()));
    const sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'services-test.fifo',
        Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
      }),
    );
    const queueArn = (
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes?.QueueArn;
    const topic = await sns.send(
      new CreateTopicCommand({
        Name: 'services-test.fifo',
        Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'true' },
      }),
    );
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );

    await sns.send(
      new PublishCommand({ TopicArn: topic.TopicArn, Message: '{"hello":1}', MessageGroupId: 'g1' }),
    );

    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.QueueUrl,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    expect(received.Messages).toHaveLength(1);
    expect(received.Messages?.[0]?.Body).toBe('{"hello":1}');
    expect(received.Messages?.[0]?.Attributes?.MessageGroupId).toBe('g1');
    sns.destroy();
    sqs.destroy();
  });
});
