import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OrdersStack } from '../../examples/orders/stack.ts';
import { OutboxTable } from '../../lib/outbox-table.ts';
import { logicalId, nagErrors, roleStatements, synthOrdersStack } from './stack-fixture.ts';

describe('OutboxTable', () => {
  let template: Template;
  let stack: OrdersStack;
  beforeAll(() => {
    ({ template, stack } = synthOrdersStack());
  });

  it('streams new and old images, expires by TTL, keeps PITR and encryption, bills on demand', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('has the sharded sparse index the sweeper queries instead of scanning', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'pending-by-due-time',
          KeySchema: [
            { AttributeName: 'pendingShard', KeyType: 'HASH' },
            { AttributeName: 'pendingDueAt', KeyType: 'RANGE' },
          ],
          Projection: Match.objectLike({ ProjectionType: 'INCLUDE' }),
        }),
      ],
    });
  });

  it('is retained and deletion-protected by default', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        StreamSpecification: Match.anyValue(),
        DeletionProtectionEnabled: true,
      }),
    });
  });

  it('grants the producer exactly the writer actions on the table, and nothing on its indexes', () => {
    const statements = roleStatements(template, stack.orderProducer.role);
    const tableId = logicalId(stack.outbox.table.table);
    const outboxStatement = statements.find((s) => JSON.stringify(s.Resource).includes(tableId));
    expect(outboxStatement?.Action).toEqual([
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem',
      'dynamodb:GetItem',
    ]);
    expect(JSON.stringify(outboxStatement?.Resource)).not.toContain('index');
    expect(JSON.stringify(statements)).not.toMatch(/dynamodb:\*|Scan|DeleteItem/);
  });

  it('runs the producer on Node.js 22+ arm64 with the table name in its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: Match.stringLikeRegexp('nodejs(2[2-9]|[3-9]\\d)\\.x'),
      Architectures: ['arm64'],
      Environment: { Variables: Match.objectLike({ OUTBOX_TABLE_NAME: Match.anyValue() }) },
    });
  });

  it('passes the cdk-nag AwsSolutions pack with no unsuppressed errors', () => {
    expect(nagErrors(stack)).toEqual([]);
  });

  it('honours a customer-managed key, granting the writer use of it', () => {
    const app = new App();
    const s = new Stack(app, 'Kms');
    const key = new kms.Key(s, 'Key', { enableKeyRotation: true });
    const table = new OutboxTable(s, 'Outbox', { encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(s, 'Writer', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    table.grantWrite(role);
    const t = Template.fromStack(s);
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
      DeletionProtectionEnabled: false,
    });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['kms:Decrypt', 'kms:Encrypt']) }),
        ]),
      },
    });
  });
});
