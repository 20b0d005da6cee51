import { App, Aspects, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import {
  LARGE_EVENTS_BUCKET_ENV,
  LARGE_EVENTS_MAX_BYTES_ENV,
  LARGE_EVENTS_PREFIX_ENV,
} from '../../functions/contract/large-events.ts';
import { Outbox, type OutboxProps } from '../../lib/outbox.ts';
import {
  importedRuleConsumer,
  inlineFunction,
  logicalId,
  NO_BUNDLING,
  nagErrors,
  roleStatements,
  type Statement,
} from './stack-fixture.ts';

/** GIVEN an app (no bundling, cdk-nag) with one stack holding an Outbox. */
function outboxStack(props: OutboxProps | ((stack: Stack) => OutboxProps) = {}) {
  const app = new App({ context: NO_BUNDLING });
  const stack = new Stack(app, 'Platform');
  Aspects.of(app).add(new AwsSolutionsChecks());
  const outbox = new Outbox(stack, 'Outbox', typeof props === 'function' ? props(stack) : props);
  return { app, stack, outbox };
}

const s3Statements = (statements: Statement[]) =>
  statements.filter((s) => [s.Action].flat().some((a) => String(a).startsWith('s3:')));

const role = (stack: Stack, id: string) =>
  new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });

describe('Outbox largeEvents (claim-check)', () => {
  it('creates by default an encrypted, TLS-only, private, unversioned bucket whose objects expire after the retention', () => {
    const { stack, outbox } = outboxStack({ retention: Duration.days(9) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: Match.absent(),
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({ Prefix: 'outbox-large-events/', ExpirationInDays: 9, Status: 'Enabled' }),
          ],
        },
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    expect(outbox.largeEvents?.maxEventBytes).toBe(10 * 1024 * 1024);
    expect(nagErrors(stack)).toEqual([]);
  });

  it('follows the table: DESTROY removal policy and its customer-managed KMS key', () => {
    const { stack } = outboxStack((s) => ({
      table: {
        removalPolicy: RemovalPolicy.DESTROY,
        encryptionKey: new kms.Key(s, 'Key', { enableKeyRotation: true }),
      },
    }));
    Template.fromStack(stack).hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Delete',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            Match.objectLike({
              ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }),
            }),
          ],
        },
      },
    });
  });

  it('largeEvents: false creates no bucket, grants no S3 and sets no large-event environment', () => {
    const { stack, outbox } = outboxStack({ largeEvents: false });
    const producer = role(stack, 'Producer');
    outbox.grantWrite(producer);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(s3Statements(roleStatements(template, producer))).toEqual([]);
    expect(Object.keys(outbox.producerEnvironment)).not.toContain(LARGE_EVENTS_BUCKET_ENV);
  });

  it('takes the user bucket and prefix; the producer may only PutObject below the prefix', () => {
    const { stack, outbox } = outboxStack((s) => ({
      largeEvents: {
        bucket: s3.Bucket.fromBucketName(s, 'Shared', 'shared-payloads'),
        prefix: 'orders/',
        maxEventBytes: 2 * 1024 * 1024,
      },
    }));
    const producer = role(stack, 'Producer');
    outbox.grantWrite(producer);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(s3Statements(roleStatements(template, producer))).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::shared-payloads/orders/*']],
        },
      },
    ]);
    expect(stack.resolve(outbox.producerEnvironment)).toMatchObject({
      [LARGE_EVENTS_BUCKET_ENV]: 'shared-payloads',
      [LARGE_EVENTS_PREFIX_ENV]: 'orders/',
      [LARGE_EVENTS_MAX_BYTES_ENV]: String(2 * 1024 * 1024),
    });
  });

  it('consumers ({entry} or {function}) may only GetObject below the prefix; the relay and recovery get nothing from S3', () => {
    const { stack, outbox } = outboxStack({ eventBus: true });
    const fn = inlineFunction(stack, 'Audit');
    const byFunction = outbox.subscribe('audit', {
      kind: 'rule',
      sources: ['/orders'],
      consumer: { function: fn },
    });
    const template = Template.fromStack(stack);
    const bucketObjects = {
      'Fn::Join': [
        '',
        [{ 'Fn::GetAtt': [logicalId(outbox.largeEvents?.bucket), 'Arn'] }, '/outbox-large-events/*'],
      ],
    };
    expect(s3Statements(roleStatements(template, byFunction.consumer?.role))).toEqual([
      { Effect: 'Allow', Action: 's3:GetObject', Resource: bucketObjects },
    ]);
    expect(s3Statements(roleStatements(template, outbox.relay.fn.role))).toEqual([]);
    expect(s3Statements(roleStatements(template, outbox.recovery.fn.role))).toEqual([]);
    // IAM4 is the inline test function's own managed policy, not the outbox's.
    expect(nagErrors(stack).filter((e) => !e.startsWith('AwsSolutions-IAM4['))).toEqual([]);
  });

  it('rejects a prefix that does not end in "/"', () => {
    expect(() => outboxStack({ largeEvents: { prefix: 'orders' } })).toThrow(/prefix must .* ending in "\/"/);
  });
});

describe('imported outboxes and large events', () => {
  it('fromParameters reads the bucket and prefix parameters for a consumer grant', () => {
    const { fn, template } = importedRuleConsumer(
      (stack) => Outbox.fromParameters(stack, 'Shop', '/shop/outbox'),
      ['/shop'],
    );
    const defaults = Object.values(template.toJSON().Parameters ?? {}).map(
      (p) => (p as { Default?: string }).Default,
    );
    expect(defaults).toEqual(
      expect.arrayContaining(['/shop/outbox/large-events-bucket-arn', '/shop/outbox/large-events-prefix']),
    );
    expect(s3Statements(roleStatements(template, fn.role))).toEqual([
      expect.objectContaining({ Action: 's3:GetObject' }),
    ]);
  });

  it('fromParameters with largeEvents: false reads no large-event parameter', () => {
    const { fn, template } = importedRuleConsumer(
      (stack) => Outbox.fromParameters(stack, 'Shop', '/shop/outbox', { largeEvents: false }),
      ['/shop'],
    );
    expect(JSON.stringify(template.toJSON().Parameters)).not.toContain('large-events');
    expect(s3Statements(roleStatements(template, fn.role))).toEqual([]);
  });

  it('fromOutboxAttributes grants PutObject below the given prefix to a producer', () => {
    const stack = new Stack(new App({ context: NO_BUNDLING }), 'Producer');
    const outbox = Outbox.fromOutboxAttributes(stack, 'Shop', {
      tableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/shop-outbox',
      dedupTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/shop-dedup',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
      largeEventsBucketArn: 'arn:aws:s3:::shop-payloads',
      largeEventsPrefix: 'shop/',
    });
    const producer = role(stack, 'Writer');
    outbox.grantWrite(producer);
    expect(s3Statements(roleStatements(Template.fromStack(stack), producer))).toEqual([
      { Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::shop-payloads/shop/*' },
    ]);
  });
});
