// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation dynamic references, not JS templates
import { describe, expect, it } from 'vitest';
import {
  type CfnTemplate,
  LocalResourceRegistry,
  localPseudoParameters,
  type ResolveContext,
  resolveIntrinsics,
  UnresolvedReferenceError,
} from '../../local/runtime/template.ts';

const TEMPLATE: CfnTemplate = {
  Parameters: {
    Greeting: { Type: 'AWS::SSM::Parameter::Value<String>', Default: '/shop/greeting' },
    Zones: { Type: 'AWS::SSM::Parameter::Value<List<String>>', Default: '/shop/zones' },
    Plain: { Type: 'String', Default: 'plain' },
  },
  Resources: {},
};

function context(overrides: Partial<ResolveContext> = {}): ResolveContext {
  const exports = new Map([['shop-table', 'Platform-Items']]);
  const store = new Map([
    ['/shop/greeting', 'hello'],
    ['/shop/zones', 'a,b'],
  ]);
  return {
    template: TEMPLATE,
    registry: new LocalResourceRegistry(),
    pseudo: localPseudoParameters('Shop'),
    importValue: (name) => exports.get(name),
    ssmParameter: (name) => store.get(name),
    ...overrides,
  };
}

describe('cross-stack references and SSM parameters in templates', () => {
  it('resolves Fn::ImportValue (also of a computed name) from the exports', () => {
    expect(resolveIntrinsics({ 'Fn::ImportValue': 'shop-table' }, context())).toBe('Platform-Items');
    expect(
      resolveIntrinsics({ 'Fn::ImportValue': { 'Fn::Join': ['-', ['shop', 'table']] } }, context()),
    ).toBe('Platform-Items');
  });

  it('says which import no stack exports, and what to do', () => {
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'nope' }, context())).toThrow(
      UnresolvedReferenceError,
    );
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'nope' }, context())).toThrow(
      /"nope".*no stack started before this one exports it/,
    );
    const { importValue: _ignored, ...single } = context();
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'nope' }, single)).toThrow(/run the whole app/);
  });

  it('passes the value of an SSM parameter for AWS::SSM::Parameter::Value<...> parameters', () => {
    expect(resolveIntrinsics({ Ref: 'Greeting' }, context())).toBe('hello');
    expect(resolveIntrinsics({ Ref: 'Zones' }, context())).toEqual(['a', 'b']);
    expect(resolveIntrinsics({ Ref: 'Plain' }, context())).toBe('plain');
    expect(resolveIntrinsics({ Ref: 'Greeting' }, context({ parameters: { Greeting: 'given' } }))).toBe(
      'given',
    );
    expect(() => resolveIntrinsics({ Ref: 'Greeting' }, context({ ssmParameter: () => undefined }))).toThrow(
      /names SSM parameter \/shop\/greeting, which does not exist locally/,
    );
  });

  it('replaces {{resolve:ssm:...}} dynamic references, after the intrinsics, anywhere in a value', () => {
    expect(
      resolveIntrinsics(
        {
          Env: {
            A: '{{resolve:ssm:/shop/greeting}}',
            B: { 'Fn::Sub': 'x-{{resolve:ssm:/shop/greeting:3}}-${AWS::StackName}' },
          },
        },
        context(),
      ),
    ).toEqual({ Env: { A: 'hello', B: 'x-hello-Shop' } });
    expect(() => resolveIntrinsics('{{resolve:ssm:/missing}}', context())).toThrow(
      /no SSM parameter \/missing/,
    );
    expect(() => resolveIntrinsics('{{resolve:secretsmanager:db:SecretString:password}}', context())).toThrow(
      /secretsmanager dynamic references are not emulated locally/,
    );
  });
});
