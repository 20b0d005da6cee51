// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub strings, not JS templates
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type CfnTemplate,
  dependencyOrder,
  LocalResourceRegistry,
  loadTemplate,
  localPseudoParameters,
  type ResolveContext,
  resolveIntrinsics,
  TemplateError,
  UnresolvedReferenceError,
} from '../../local/runtime/template.ts';

const TEMPLATE: CfnTemplate = {
  Parameters: {
    BootstrapVersion: {
      Type: 'AWS::SSM::Parameter::Value<String>',
      Default: '/cdk-bootstrap/hnb659fds/version',
    },
  },
  Conditions: { IsLocalRegion: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] } },
  Mappings: { Sizes: { small: { memory: 256 } } },
  Resources: {
    Table: { Type: 'AWS::DynamoDB::Table', Properties: {} },
    Queue: {
      Type: 'AWS::SQS::Queue',
      Properties: { RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': ['Dlq', 'Arn'] } } },
    },
    Dlq: { Type: 'AWS::SQS::Queue', Properties: {} },
    Fn: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        Environment: { Variables: { T: { Ref: 'Table' }, S: { 'Fn::Sub': '${Table.StreamArn}' } } },
      },
      DependsOn: ['Queue'],
    },
  },
};

function context(): ResolveContext {
  const registry = new LocalResourceRegistry();
  registry.register({
    logicalId: 'Table',
    type: 'AWS::DynamoDB::Table',
    ref: 'stack-Table',
    attributes: {
      Arn: 'arn:aws:dynamodb:ddblocal:000000000000:table/stack-Table',
      StreamArn: 'arn:stream/1',
    },
  });
  registry.register({
    logicalId: 'Queue',
    type: 'AWS::SQS::Queue',
    ref: 'http://127.0.0.1:1/000000000000/q',
    attributes: { Arn: 'arn:aws:sqs:us-east-1:000000000000:q', QueueName: 'q' },
  });
  return { template: TEMPLATE, registry, pseudo: localPseudoParameters('stack') };
}

describe('resolveIntrinsics', () => {
  it.each([
    ['Ref to a table', { Ref: 'Table' }, 'stack-Table'],
    ['Ref to a queue', { Ref: 'Queue' }, 'http://127.0.0.1:1/000000000000/q'],
    ['GetAtt list form', { 'Fn::GetAtt': ['Table', 'StreamArn'] }, 'arn:stream/1'],
    ['GetAtt dotted form', { 'Fn::GetAtt': 'Queue.Arn' }, 'arn:aws:sqs:us-east-1:000000000000:q'],
    [
      'pseudo parameters',
      {
        'Fn::Join': [
          ':',
          [
            { Ref: 'AWS::Partition' },
            { Ref: 'AWS::Region' },
            { Ref: 'AWS::AccountId' },
            { Ref: 'AWS::URLSuffix' },
            { Ref: 'AWS::StackName' },
          ],
        ],
      },
      'aws:us-east-1:000000000000:amazonaws.com:stack',
    ],
    [
      'Sub string form with refs, attributes and escapes',
      { 'Fn::Sub': 'arn:${AWS::Partition}:x:${Table}/${Queue.QueueName}/${!Literal}' },
      'arn:aws:x:stack-Table/q/${Literal}',
    ],
    [
      'Sub list form with variables',
      { 'Fn::Sub': ['${A}-${Table}', { A: { Ref: 'AWS::Region' } }] },
      'us-east-1-stack-Table',
    ],
    ['Select of Split', { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] }, 'b'],
    ['GetAZs', { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] }, 'us-east-1a'],
    ['If with a condition', { 'Fn::If': ['IsLocalRegion', 'yes', 'no'] }, 'yes'],
    ['FindInMap', { 'Fn::FindInMap': ['Sizes', 'small', 'memory'] }, 256],
    ['parameter default', { Ref: 'BootstrapVersion' }, '/cdk-bootstrap/hnb659fds/version'],
    ['Base64', { 'Fn::Base64': 'hi' }, 'aGk='],
  ])('%s', (_name, value, expected) => {
    expect(resolveIntrinsics(value, context())).toEqual(expected);
  });

  it('drops properties set to AWS::NoValue', () => {
    expect(
      resolveIntrinsics({ a: 1, b: { 'Fn::If': ['IsLocalRegion', { Ref: 'AWS::NoValue' }, 2] } }, context()),
    ).toEqual({ a: 1 });
  });

  it('names the resource and reference it cannot resolve', () => {
    const ctx = { ...context(), resourceId: 'Fn' };
    expect(() => resolveIntrinsics({ 'Fn::GetAtt': ['Dlq', 'Arn'] }, ctx)).toThrow(UnresolvedReferenceError);
    expect(() => resolveIntrinsics({ Ref: 'Nope' }, ctx)).toThrow(
      /Fn: cannot resolve Ref Nope: no such parameter or resource/,
    );
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'x' }, ctx)).toThrow(/cross-stack imports/);
  });
});

describe('dependencyOrder', () => {
  it('puts every resource after what it references or depends on', () => {
    const order = dependencyOrder(TEMPLATE);
    expect(order.indexOf('Dlq')).toBeLessThan(order.indexOf('Queue'));
    expect(order.indexOf('Queue')).toBeLessThan(order.indexOf('Fn'));
    expect(order.indexOf('Table')).toBeLessThan(order.indexOf('Fn'));
  });

  it('rejects a cycle', () => {
    const cyclic: CfnTemplate = {
      Resources: {
        A: { Type: 'X', Properties: { p: { Ref: 'B' } } },
        B: { Type: 'X', Properties: { p: { 'Fn::GetAtt': ['A', 'Arn'] } } },
      },
    };
    expect(() => dependencyOrder(cyclic)).toThrow(/dependency cycle: A -> B -> A/);
  });
});

describe('loadTemplate', () => {
  it('reads a synthesized template and derives the stack name and asset root', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cdk-out-'));
    const file = path.join(dir, 'OutboxStack.template.json');
    await writeFile(file, JSON.stringify(TEMPLATE));
    const loaded = await loadTemplate(file);
    expect(loaded).toMatchObject({ stackName: 'OutboxStack', assetRoot: dir, file });
    expect(Object.keys(loaded.template.Resources)).toHaveLength(4);
  });

  it('says to run cdk synth when the template is missing', async () => {
    await expect(loadTemplate('/nonexistent/cdk.out/X.template.json')).rejects.toThrow(TemplateError);
    await expect(loadTemplate('/nonexistent/cdk.out/X.template.json')).rejects.toThrow(/cdk synth/);
  });
});
