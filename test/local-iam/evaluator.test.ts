import { describe, expect, it } from 'vitest';
import { deniedMessage, evaluate } from '../../local/iam/evaluator.ts';
import {
  type AuthorizationRequest,
  compilePolicy,
  type PolicyStatement,
} from '../../local/iam/policy-language.ts';

const ROLE = 'arn:aws:iam::000000000000:role/consumer';
const QUEUE = 'arn:aws:sqs:us-east-1:000000000000:billing';
const TOPIC = 'arn:aws:sns:us-east-1:000000000000:events.fifo';
const policy = (...Statement: PolicyStatement[]) => compilePolicy('p', { Version: '2012-10-17', Statement });
const asRole = (action: string, resource: string, context = {}): AuthorizationRequest => ({
  principal: { kind: 'AWS', id: ROLE, accountId: '000000000000' },
  action,
  resource,
  context,
});

describe('offline IAM evaluation logic', () => {
  it('allows by identity policy, case-insensitively for actions, case-sensitively for ARNs', () => {
    const identity = [policy({ Effect: 'Allow', Action: 'SQS:receive*', Resource: QUEUE })];
    expect(evaluate({ identity }, asRole('sqs:ReceiveMessage', QUEUE)).decision).toBe('Allow');
    expect(evaluate({ identity }, asRole('sqs:ReceiveMessage', QUEUE.toUpperCase())).decision).toBe(
      'ImplicitDeny',
    );
  });

  it('lets an explicit Deny of a resource policy win over an identity Allow (TLS-only queue policies)', () => {
    const identity = [policy({ Effect: 'Allow', Action: 'sqs:*', Resource: '*' })];
    const resource = policy({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'sqs:*',
      Resource: QUEUE,
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    expect(
      evaluate({ identity, resource }, asRole('sqs:SendMessage', QUEUE, { 'aws:SecureTransport': 'true' }))
        .decision,
    ).toBe('Allow');
    expect(
      evaluate({ identity, resource }, asRole('sqs:SendMessage', QUEUE, { 'aws:SecureTransport': 'false' })),
    ).toEqual({
      decision: 'ExplicitDeny',
      reason: 'explicit deny in a resource-based policy',
    });
  });

  it('grants service principals only through the resource policy, for the source it names', () => {
    const resource = policy({
      Effect: 'Allow',
      Principal: { Service: 'sns.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: QUEUE,
      Condition: { ArnEquals: { 'aws:SourceArn': TOPIC } },
    });
    const fromTopic = (source: string): AuthorizationRequest => ({
      principal: { kind: 'Service', id: 'sns.amazonaws.com' },
      action: 'sqs:SendMessage',
      resource: QUEUE,
      context: { 'aws:SourceArn': source },
    });
    expect(evaluate({ identity: [], resource }, fromTopic(TOPIC)).decision).toBe('Allow');
    expect(evaluate({ identity: [], resource }, fromTopic(`${TOPIC}-other`))).toEqual({
      decision: 'ImplicitDeny',
      reason: 'no resource-based policy allows',
    });
  });

  it('requires a KMS key policy to allow, itself or by delegating to the account', () => {
    const KEY = 'arn:aws:kms:us-east-1:000000000000:key/k';
    const identity = [policy({ Effect: 'Allow', Action: 'kms:GenerateDataKey*', Resource: KEY })];
    const delegating = policy({
      Effect: 'Allow',
      Principal: { AWS: 'arn:aws:iam::000000000000:root' },
      Action: 'kms:*',
      Resource: '*',
    });
    const closed = policy({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'kms:Decrypt',
      Resource: '*',
    });
    expect(
      evaluate({ identity, resource: delegating, keyPolicy: true }, asRole('kms:GenerateDataKey', KEY))
        .decision,
    ).toBe('Allow');
    expect(
      evaluate({ identity, resource: closed, keyPolicy: true }, asRole('kms:GenerateDataKey', KEY)).decision,
    ).toBe('ImplicitDeny');
    expect(
      evaluate({ identity: [], resource: delegating, keyPolicy: true }, asRole('kms:GenerateDataKey', KEY))
        .decision,
    ).toBe('ImplicitDeny');
  });

  it('applies the fine-grained DynamoDB grants of the constructs (ForAllValues on LeadingKeys and Attributes)', () => {
    const TABLE = 'arn:aws:dynamodb:ddblocal:000000000000:table/Outbox';
    const identity = [
      policy({
        Effect: 'Allow',
        Action: 'dynamodb:UpdateItem',
        Resource: TABLE,
        Condition: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACK#*#billing'] },
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', 'sk', 'status'] },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
        },
      }),
    ];
    const ack = (leading: string, attributes: string[], extra = {}) =>
      evaluate(
        { identity },
        asRole('dynamodb:UpdateItem', TABLE, {
          'dynamodb:LeadingKeys': [leading],
          'dynamodb:Attributes': attributes,
          ...extra,
        }),
      ).decision;
    expect(ack('ACK#e1#billing', ['pk', 'sk', 'status'])).toBe('Allow');
    expect(ack('ACK#e1#notifications', ['pk', 'sk', 'status'])).toBe('ImplicitDeny');
    expect(ack('ACK#e1#billing', ['pk', 'sk', 'payload'])).toBe('ImplicitDeny');
    expect(ack('ACK#e1#billing', ['pk'], { 'dynamodb:ReturnValues': 'ALL_NEW' })).toBe('ImplicitDeny');
  });

  it('words the denial as AWS does', () => {
    const request = asRole('dynamodb:PutItem', 'arn:aws:dynamodb:us-east-1:000000000000:table/T');
    const evaluation = evaluate({ identity: [] }, request);
    expect(deniedMessage(request, evaluation, 'arn:aws:sts::000000000000:assumed-role/consumer/fn')).toBe(
      'User: arn:aws:sts::000000000000:assumed-role/consumer/fn is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T because no identity-based policy allows the dynamodb:PutItem action',
    );
    const denied = evaluate({ identity: [policy({ Effect: 'Deny', Action: '*', Resource: '*' })] }, request);
    expect(deniedMessage(request, denied, 'arn:x')).toBe(
      'User: arn:x is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/T with an explicit deny in an identity-based policy',
    );
  });
});
