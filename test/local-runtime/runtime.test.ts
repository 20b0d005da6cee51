// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, not JS templates
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DescribeTableCommand, DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStartupReport, type LocalRuntime, startLocalRuntime } from '../../local/runtime/runtime.ts';
import type { CfnTemplate } from '../../local/runtime/template.ts';
import { localAwsConfig, useDynamoDbLocal, useFauxqsService } from '../support/services.ts';
import { eventually } from './fixtures.ts';

// A hand-written template shaped like CDK's output: outbox table with a stream -> relay function ->
// SNS FIFO topic -> (raw, filtered) SQS FIFO queue -> consumer function -> ledger table.
const RELAY = `
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
const sns = new SNSClient({});
export const handler = async (event) => {
  for (const r of event.Records) {
    const item = r.dynamodb.NewImage;
    await sns.send(new PublishCommand({
      TopicArn: process.env.TOPIC_ARN,
      Message: JSON.stringify({ id: item.id.S, type: item.type.S, aggregate: item.pk.S }),
      MessageGroupId: item.pk.S,
      MessageDeduplicationId: item.id.S,
      MessageAttributes: { type: { DataType: 'String', StringValue: item.type.S } },
    }));
  }
  console.log(JSON.stringify({ _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'Outbox', Dimensions: [['service']], Metrics: [{ Name: 'Relayed', Unit: 'Count' }] }] }, service: 'relay', Relayed: event.Records.length }));
  return { batchItemFailures: [] };
};`;

const CONSUMER = `
"use strict";
const { DynamoDBClient, PutItemCommand } = require('@aws-sdk/client-dynamodb');
const ddb = new DynamoDBClient({});
exports.handler = async (event) => {
  for (const r of event.Records) {
    const e = JSON.parse(r.body);
    await ddb.send(new PutItemCommand({
      TableName: process.env.LEDGER_TABLE,
      Item: { id: { S: e.id }, type: { S: e.type }, group: { S: r.attributes.MessageGroupId } },
    }));
  }
  return { batchItemFailures: [] };
};`;

const role = (id: string) => ({
  Type: 'AWS::IAM::Role',
  Properties: { AssumeRolePolicyDocument: {} },
  Metadata: { 'aws:cdk:path': `Stack/${id}` },
});

const TEMPLATE: CfnTemplate = {
  Resources: {
    OutboxTable: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'shard', AttributeType: 'S' },
          { AttributeName: 'dueAt', AttributeType: 'N' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: { SSEEnabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: 'pending',
            KeySchema: [
              { AttributeName: 'shard', KeyType: 'HASH' },
              { AttributeName: 'dueAt', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['id'] },
          },
        ],
      },
    },
    LedgerTable: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      },
    },
    EventsTopic: {
      Type: 'AWS::SNS::Topic',
      Properties: { FifoTopic: true, ContentBasedDeduplication: false, KmsMasterKeyId: 'alias/aws/sns' },
    },
    ConsumerDlq: {
      Type: 'AWS::SQS::Queue',
      Properties: { FifoQueue: true, MessageRetentionPeriod: 1209600 },
    },
    ConsumerQueue: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        FifoQueue: true,
        VisibilityTimeout: 180,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': ['ConsumerDlq', 'Arn'] }, maxReceiveCount: 5 },
      },
    },
    ConsumerQueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: { Queues: [{ Ref: 'ConsumerQueue' }], PolicyDocument: {} },
    },
    Subscription: {
      Type: 'AWS::SNS::Subscription',
      Properties: {
        Protocol: 'sqs',
        TopicArn: { Ref: 'EventsTopic' },
        Endpoint: { 'Fn::GetAtt': ['ConsumerQueue', 'Arn'] },
        RawMessageDelivery: true,
        FilterPolicy: { type: ['OrderPlaced'] },
      },
      DependsOn: ['ConsumerQueuePolicy'],
    },
    EmailSubscription: {
      Type: 'AWS::SNS::Subscription',
      Properties: { Protocol: 'email', TopicArn: { Ref: 'EventsTopic' }, Endpoint: 'a@b.c' },
    },
    Archive: { Type: 'AWS::S3::Bucket', Properties: {} },
    RelayRole: role('RelayRole'),
    Relay: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        Code: {
          S3Bucket: { 'Fn::Sub': 'cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}' },
          S3Key: 'abc.zip',
        },
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        Role: { 'Fn::GetAtt': ['RelayRole', 'Arn'] },
        Timeout: 30,
        MemorySize: 256,
        Environment: {
          Variables: { TOPIC_ARN: { Ref: 'EventsTopic' }, NODE_OPTIONS: '--enable-source-maps' },
        },
      },
      DependsOn: ['RelayRole'],
      Metadata: {
        'aws:asset:path': 'asset.relay',
        'aws:asset:is-bundled': true,
        'aws:asset:property': 'Code',
      },
    },
    RelayStream: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'Relay' },
        EventSourceArn: { 'Fn::GetAtt': ['OutboxTable', 'StreamArn'] },
        StartingPosition: 'LATEST',
        BatchSize: 10,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 3,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        FilterCriteria: {
          Filters: [
            { Pattern: '{"eventName":["INSERT"],"dynamodb":{"Keys":{"sk":{"S":[{"prefix":"EVT#"}]}}}}' },
          ],
        },
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ConsumerDlq', 'Arn'] } } },
      },
    },
    ConsumerRole: role('ConsumerRole'),
    Consumer: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        Code: { S3Bucket: 'assets', S3Key: 'def.zip' },
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        Role: { 'Fn::GetAtt': ['ConsumerRole', 'Arn'] },
        Timeout: 30,
        ReservedConcurrentExecutions: 2,
        Environment: { Variables: { LEDGER_TABLE: { Ref: 'LedgerTable' } } },
      },
      Metadata: { 'aws:asset:path': 'asset.consumer' },
    },
    ConsumerQueueMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'Consumer' },
        EventSourceArn: { 'Fn::GetAtt': ['ConsumerQueue', 'Arn'] },
        BatchSize: 10,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
      },
    },
    ConsumerErrors: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'Consumer' } }],
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      },
    },
  },
};

describe('startLocalRuntime', () => {
  const dynamoEndpoint = useDynamoDbLocal();
  const fauxqs = useFauxqsService();
  let cdkOut: string;
  let runtime: LocalRuntime;
  let startupMs: number;

  beforeAll(async () => {
    cdkOut = await mkdtemp(path.join(tmpdir(), 'cdk-out-'));
    // Bundles import the AWS SDK: resolve it from this repository, as a real bundle would contain it.
    await symlink(path.resolve('node_modules'), path.join(cdkOut, 'node_modules'), 'dir');
    await mkdir(path.join(cdkOut, 'asset.relay'));
    await writeFile(path.join(cdkOut, 'asset.relay', 'index.mjs'), RELAY);
    await mkdir(path.join(cdkOut, 'asset.consumer'));
    await writeFile(path.join(cdkOut, 'asset.consumer', 'index.js'), CONSUMER);
    const started = performance.now();
    runtime = await startLocalRuntime({
      template: TEMPLATE,
      assetRoot: cdkOut,
      stackName: 'OutboxTest',
      dynamodbEndpoint: dynamoEndpoint(),
      fauxqsEndpoint: fauxqs().endpoint,
      inspectQueue: (name) => fauxqs().inspectQueue(name),
      functionLog: () => {},
      log: () => {},
      pollIntervalMs: 50,
    });
    startupMs = performance.now() - started;
  });
  afterAll(async () => {
    await runtime?.stop();
    await rm(cdkOut, { recursive: true, force: true });
  });

  it('provisions tables, FIFO queues with redrive, the FIFO topic and its filtered raw subscription', async () => {
    const ddb = new DynamoDBClient(localAwsConfig(dynamoEndpoint()));
    const sqs = new SQSClient(localAwsConfig(fauxqs().endpoint));
    const sns = new SNSClient(localAwsConfig(fauxqs().endpoint));
    const outbox = (await ddb.send(new DescribeTableCommand({ TableName: 'OutboxTest-OutboxTable' }))).Table;
    expect(outbox?.StreamSpecification?.StreamViewType).toBe('NEW_AND_OLD_IMAGES');
    expect(outbox?.GlobalSecondaryIndexes?.[0]?.IndexName).toBe('pending');
    expect(runtime.registry.getAtt('OutboxTable', 'StreamArn')).toBe(outbox?.LatestStreamArn);

    const queueUrl = runtime.registry.ref('ConsumerQueue') as string;
    expect(queueUrl).toMatch(/OutboxTest-ConsumerQueue\.fifo$/);
    const attributes = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))
    ).Attributes;
    expect(attributes).toMatchObject({ FifoQueue: 'true', VisibilityTimeout: '180' });
    expect(JSON.parse(attributes?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: runtime.registry.getAtt('ConsumerDlq', 'Arn'),
      maxReceiveCount: 5,
    });

    const topicArn = runtime.registry.ref('EventsTopic') as string;
    expect(topicArn).toMatch(/:OutboxTest-EventsTopic\.fifo$/);
    const [subscription] =
      (await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }))).Subscriptions ?? [];
    const subAttributes = (
      await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: subscription?.SubscriptionArn }))
    ).Attributes;
    expect(subAttributes).toMatchObject({
      RawMessageDelivery: 'true',
      FilterPolicy: '{"type":["OrderPlaced"]}',
    });
    for (const client of [ddb, sqs, sns]) client.destroy();
  });

  it('reports what it ignores and what it does not emulate', () => {
    const { provision, notes, functions, eventSourceMappings } = runtime.report;
    expect(provision.unsupported.map((r) => r.logicalId).sort()).toEqual(['EmailSubscription']);
    // fauxqs emulates S3: the bucket is created there (claim-check payloads of large events).
    expect(provision.provisioned).toContainEqual(
      expect.objectContaining({ logicalId: 'Archive', type: 'AWS::S3::Bucket' }),
    );
    expect(provision.ignored.map((r) => r.logicalId).sort()).toEqual([
      'ConsumerQueuePolicy',
      'ConsumerRole',
      'RelayRole',
    ]);
    expect(functions.map((f) => f.functionName).sort()).toEqual(['OutboxTest-Consumer', 'OutboxTest-Relay']);
    expect(eventSourceMappings.map((m) => m.kind).sort()).toEqual(['dynamodb-stream', 'sqs']);
    expect(notes).toContainEqual({
      logicalId: 'OutboxTable',
      note: expect.stringContaining('TimeToLiveSpecification ignored'),
    });
    const text = formatStartupReport(runtime.report);
    expect(text).toContain('UNSUPPORTED (not emulated):');
    expect(text).toContain('  EmailSubscription (AWS::SNS::Subscription)');
  });

  it('carries an outbox event from the table stream through SNS FIFO and SQS FIFO to the consumer', async () => {
    const ddb = new DynamoDBClient(localAwsConfig(dynamoEndpoint()));
    const put = (pk: string, sk: string, id: string, type: string) =>
      ddb.send(
        new PutItemCommand({
          TableName: runtime.registry.ref('OutboxTable'),
          Item: { pk: { S: pk }, sk: { S: sk }, id: { S: id }, type: { S: type } },
        }),
      );
    await put('order#1', 'HEAD', 'head-1', 'Head');
    await put('order#1', 'EVT#0001', 'e-1', 'OrderPlaced');
    await put('order#2', 'EVT#0001', 'e-2', 'OrderPlaced');
    await put('order#1', 'EVT#0002', 'e-3', 'InternalNote');

    const ledger = await eventually(async () => {
      const items =
        (await ddb.send(new ScanCommand({ TableName: runtime.registry.ref('LedgerTable') }))).Items ?? [];
      return items.length >= 2 ? items : undefined;
    }, 20_000);

    expect(ledger.map((i) => [i.id?.S, i.group?.S]).sort()).toEqual([
      ['e-1', 'order#1'],
      ['e-2', 'order#2'],
    ]);
    const relayed = runtime.metrics.query({
      namespace: 'Outbox',
      metricName: 'Relayed',
      dimensions: { service: 'relay' },
      startTime: 0,
      endTime: Date.now() + 1,
    });
    expect(relayed.reduce((sum, d) => sum + d.value, 0)).toBe(3);
    expect(runtime.streamPollers.get('RelayStream')?.stats.recordsFiltered).toBe(1);
    ddb.destroy();
    // The start-up time, for the record (provisioning + workers + pollers; emulators excluded).
    expect(startupMs).toBeLessThan(10_000);
  });
});
