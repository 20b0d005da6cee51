import { describe, expect, it } from 'vitest';
import { IamAuthorizer } from '../../local/iam/authorizer.ts';
import { iamModelFromStacks } from '../../local/iam/template-policies.ts';
import {
  type CfnTemplate,
  LocalResourceRegistry,
  localPseudoParameters,
  type ResolveContext,
} from '../../local/runtime/template.ts';

const ACCOUNT = '000000000000';
const FN_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:sweeper`;
const RULE_ARN = `arn:aws:events:us-east-1:${ACCOUNT}:rule/every-minute`;
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/sweeper-role`;
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:alarms`;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/alarms-key`;

function template(withPermission: boolean): CfnTemplate {
  return {
    Resources: {
      Role: {
        Type: 'AWS::IAM::Role',
        Properties: {
          ManagedPolicyArns: [
            {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
                ],
              ],
            },
            'arn:aws:iam::aws:policy/AmazonS3FullAccess',
          ],
        },
      },
      Grant: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'grant',
          Roles: [{ Ref: 'Role' }],
          PolicyDocument: {
            Statement: [{ Effect: 'Allow', Action: ['sns:Publish'], Resource: { Ref: 'Topic' } }],
          },
        },
      },
      Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['Role', 'Arn'] } } },
      Topic: { Type: 'AWS::SNS::Topic', Properties: { KmsMasterKeyId: { Ref: 'Key' } } },
      Key: {
        Type: 'AWS::KMS::Key',
        Properties: {
          KeyPolicy: {
            Statement: [
              {
                Effect: 'Allow',
                Principal: {
                  AWS: { 'Fn::Join': ['', ['arn:aws:iam::', { Ref: 'AWS::AccountId' }, ':root']] },
                },
                Action: 'kms:*',
                Resource: '*',
              },
            ],
          },
        },
      },
      ...(withPermission
        ? {
            Permission: {
              Type: 'AWS::Lambda::Permission',
              Properties: {
                Action: 'lambda:InvokeFunction',
                FunctionName: { 'Fn::GetAtt': ['Fn', 'Arn'] },
                Principal: 'events.amazonaws.com',
                SourceArn: { 'Fn::GetAtt': ['Rule', 'Arn'] },
              },
            },
          }
        : {}),
    },
  };
}

function authorizerFor(t: CfnTemplate) {
  const registry = new LocalResourceRegistry();
  registry.register({
    logicalId: 'Role',
    type: 'AWS::IAM::Role',
    ref: 'sweeper-role',
    attributes: { Arn: ROLE_ARN },
  });
  registry.register({
    logicalId: 'Fn',
    type: 'AWS::Lambda::Function',
    ref: 'sweeper',
    attributes: { Arn: FN_ARN },
  });
  registry.register({
    logicalId: 'Rule',
    type: 'AWS::Events::Rule',
    ref: 'every-minute',
    attributes: { Arn: RULE_ARN },
  });
  registry.register({
    logicalId: 'Topic',
    type: 'AWS::SNS::Topic',
    ref: TOPIC_ARN,
    attributes: { TopicArn: TOPIC_ARN },
  });
  registry.register({
    logicalId: 'Key',
    type: 'AWS::KMS::Key',
    ref: 'alarms-key',
    attributes: { Arn: KEY_ARN },
  });
  const ctx: ResolveContext = { template: t, registry, pseudo: localPseudoParameters('S') };
  const model = iamModelFromStacks([{ ctx, registry }]);
  return { model, authorizer: new IamAuthorizer(model, { region: 'us-east-1', accountId: ACCOUNT }) };
}

const invokeFromRule = (authorizer: IamAuthorizer, sourceArn = RULE_ARN) =>
  authorizer.authorizeDelivery({
    service: 'events.amazonaws.com',
    action: 'lambda:InvokeFunction',
    resource: FN_ARN,
    sourceArn,
    path: 'events -> lambda',
  }).allowed;

describe('IAM model from a template', () => {
  it('turns AWS::Lambda::Permission into the function policy: the rule it names may invoke, nothing else', () => {
    expect(invokeFromRule(authorizerFor(template(true)).authorizer)).toBe(true);
    expect(invokeFromRule(authorizerFor(template(true)).authorizer, `${RULE_ARN}-other`)).toBe(false);
    const { authorizer } = authorizerFor(template(false));
    expect(invokeFromRule(authorizer)).toBe(false);
    expect(authorizer.droppedDeliveries[0]).toMatchObject({ path: 'events -> lambda', resource: FN_ARN });
  });

  it('gives the role its attached policies and the modelled AWS-managed ones, and lists the others', () => {
    const { model, authorizer } = authorizerFor(template(true));
    expect(model.functionRoles.get('sweeper')).toBe(ROLE_ARN);
    const logs = {
      action: 'logs:PutLogEvents',
      resource: 'arn:aws:logs:us-east-1:0:log-group:x',
      context: {},
    };
    expect(authorizer.authorizeCall('sweeper', [logs]).allowed).toBe(true);
    expect(model.notes.map((n) => n.note)).toEqual([
      'managed policy arn:aws:iam::aws:policy/AmazonS3FullAccess is not modelled offline: it grants nothing here',
    ]);
  });

  it('requires kms:GenerateDataKey on the key of an encrypted topic for a publish, as AWS does', () => {
    const { model, authorizer } = authorizerFor(template(true));
    expect(model.encryptionKeys.get(TOPIC_ARN)).toBe(KEY_ARN);
    const publish = { action: 'sns:Publish', resource: TOPIC_ARN, context: {} };
    const decision = authorizer.authorizeCall('sweeper', [publish]);
    // The role has sns:Publish but no kms:GenerateDataKey: AWS refuses the publish to the encrypted topic.
    expect(decision).toMatchObject({
      allowed: false,
      denied: { action: 'kms:GenerateDataKey', resource: KEY_ARN },
    });
  });
});
