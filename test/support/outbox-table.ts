import {
  type AttributeValue,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import {
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_INDEX_NAME,
  PENDING_SHARD,
  SORT_KEY,
} from '../../functions/runtime/record-format.ts';
import { localAwsConfig } from './services.ts';

let tableCounter = 0;

export interface LocalOutbox {
  readonly tableName: string;
  readonly streamArn: string;
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
}

/** Creates a fresh outbox table in DynamoDB Local with the same keys, index and stream as OutboxTable. */
export async function createLocalOutboxTable(endpoint: string, prefix = 'outbox'): Promise<LocalOutbox> {
  const client = new DynamoDBClient(localAwsConfig(endpoint));
  const tableName = `${prefix}-${process.pid}-${++tableCounter}`;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: PARTITION_KEY, AttributeType: 'S' },
        { AttributeName: SORT_KEY, AttributeType: 'S' },
        { AttributeName: PENDING_SHARD, AttributeType: 'S' },
        { AttributeName: PENDING_DUE_AT, AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
        { AttributeName: SORT_KEY, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: PENDING_INDEX_NAME,
          KeySchema: [
            { AttributeName: PENDING_SHARD, KeyType: 'HASH' },
            { AttributeName: PENDING_DUE_AT, KeyType: 'RANGE' },
          ],
          Projection: {
            ProjectionType: 'INCLUDE',
            NonKeyAttributes: ['id', 'status', 'attempts', 'sequence', 'createdAt'],
          },
        },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  const described = await client.send(new DescribeTableCommand({ TableName: tableName }));
  const streamArn = described.Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`DynamoDB Local created ${tableName} without a stream`);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { tableName, streamArn, client, doc };
}

/** Reads every record currently on a table's stream, in shard order, shaped like Lambda's DynamoDB event records. */
export async function readStream(endpoint: string, streamArn: string): Promise<DynamoDBRecord[]> {
  const streams = new DynamoDBStreamsClient(localAwsConfig(endpoint));
  const description = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const records: DynamoDBRecord[] = [];
  for (const shard of description.StreamDescription?.Shards ?? []) {
    let iterator = (
      await streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const r of page.Records ?? []) {
        records.push({
          eventID: r.eventID,
          eventName: r.eventName as DynamoDBRecord['eventName'],
          eventSource: 'aws:dynamodb',
          eventVersion: r.eventVersion,
          awsRegion: 'us-east-1',
          eventSourceARN: streamArn,
          dynamodb: {
            Keys: r.dynamodb?.Keys as Record<string, AttributeValue> as never,
            NewImage: r.dynamodb?.NewImage as never,
            OldImage: r.dynamodb?.OldImage as never,
            SequenceNumber: r.dynamodb?.SequenceNumber,
            SizeBytes: r.dynamodb?.SizeBytes,
            StreamViewType: r.dynamodb?.StreamViewType as never,
          },
        });
      }
      if (!page.Records?.length) break;
      iterator = page.NextShardIterator;
    }
  }
  return records;
}
