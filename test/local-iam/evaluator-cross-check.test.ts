/**
 * The offline evaluator against @cloud-copilot/iam-simulate (AGPL: a devDependency used only here) on generated
 * policy/request pairs: actions, wildcards, NotAction/NotResource, every condition operator family with IfExists
 * and the set operators, resource policies naming the role, the account or everyone.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../local/iam/evaluator.ts';
import { compilePolicy, type PolicyDocument, type PolicyStatement } from '../../local/iam/policy-language.ts';

const ACCOUNT = '000000000000';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/orders-relay-role`;
const queue = (name: string) => `arn:aws:sqs:us-east-1:${ACCOUNT}:${name}`;
const ACTIONS = ['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'];
const RESOURCES = [queue('orders'), queue('billing'), queue('orders-dlq')];
const TOPIC = `arn:aws:sns:us-east-1:${ACCOUNT}:alarms`;

const actionPattern = fc.oneof(
  fc.constantFrom(...ACTIONS),
  fc.constantFrom(
    'sqs:*',
    '*',
    'sqs:Send*',
    'SQS:sendmessage',
    'sqs:?eceiveMessage',
    'sqs:*Message',
    'sns:Publish',
  ),
);
const resourcePattern = fc.oneof(
  fc.constantFrom(...RESOURCES),
  fc.constantFrom(
    '*',
    queue('*'),
    'arn:aws:sqs:*:*:orders*',
    queue('ORDERS'),
    queue('orde?s'),
    queue('billing-*'),
    'arn:aws:sqs:us-east-1:111111111111:orders',
  ),
);
const list = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: 1, maxLength: 3 });
const oneOrMany = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, list(arb));

const suffix = fc.constantFrom('', 'IfExists');
const stringCondition = fc.record({
  op: fc.tuple(
    fc.constantFrom(
      'StringEquals',
      'StringNotEquals',
      'StringEqualsIgnoreCase',
      'StringNotEqualsIgnoreCase',
      'StringLike',
      'StringNotLike',
    ),
    suffix,
  ),
  key: fc.constant('aws:PrincipalTag/team'),
  values: oneOrMany(fc.constantFrom('billing', 'Billing', 'ship*', 'b?lling', 'ops')),
});
const arnCondition = fc.record({
  op: fc.tuple(fc.constantFrom('ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike'), suffix),
  key: fc.constant('aws:SourceArn'),
  values: oneOrMany(
    fc.constantFrom(
      TOPIC,
      'arn:aws:sns:*:*:alarms',
      'arn:aws:sns:us-east-1:*:*',
      'arn:aws:sns:us-east-1:000000000000:other',
    ),
  ),
});
const numericCondition = fc.record({
  op: fc.tuple(
    fc.constantFrom(
      'NumericEquals',
      'NumericNotEquals',
      'NumericLessThan',
      'NumericLessThanEquals',
      'NumericGreaterThan',
      'NumericGreaterThanEquals',
    ),
    suffix,
  ),
  key: fc.constant('aws:MultiFactorAuthAge'),
  values: oneOrMany(fc.constantFrom('0', '300', '3600')),
});
const boolCondition = fc.record({
  op: fc.tuple(fc.constant('Bool'), suffix),
  key: fc.constant('aws:SecureTransport'),
  values: fc.constantFrom('true', 'false'),
});
const nullCondition = fc.record({
  op: fc.constant(['Null', ''] as [string, string]),
  key: fc.constantFrom('aws:SourceArn', 'aws:PrincipalTag/team', 'aws:TagKeys'),
  values: fc.constantFrom('true', 'false'),
});
const setCondition = fc.record({
  op: fc.tuple(
    fc.constantFrom(
      'ForAllValues:StringEquals',
      'ForAnyValue:StringEquals',
      'ForAllValues:StringLike',
      'ForAnyValue:StringLike',
      'ForAnyValue:StringNotEquals',
      'ForAllValues:StringNotLike',
    ),
    fc.constant(''),
  ),
  key: fc.constant('aws:TagKeys'),
  values: oneOrMany(fc.constantFrom('team', 'env', 'cost-*')),
});
const condition = fc.oneof(
  stringCondition,
  arnCondition,
  numericCondition,
  boolCondition,
  nullCondition,
  setCondition,
);

function toConditionBlock(conditions: { op: [string, string]; key: string; values: string | string[] }[]) {
  const block: Record<string, Record<string, string | string[]>> = {};
  for (const c of conditions) {
    const op = `${c.op[0]}${c.op[1]}`;
    block[op] = { ...(block[op] ?? {}), [c.key]: c.values };
  }
  return block;
}

const statement = (withPrincipal: boolean): fc.Arbitrary<PolicyStatement> =>
  fc
    .record({
      effect: fc.constantFrom('Allow', 'Allow', 'Deny'),
      notAction: fc.boolean(),
      actions: oneOrMany(actionPattern),
      notResource: fc.boolean(),
      resources: oneOrMany(resourcePattern),
      conditions: fc.array(condition, { maxLength: 2 }),
      principal: fc.constantFrom<PolicyStatement['Principal']>(
        '*',
        { AWS: ROLE },
        { AWS: ACCOUNT },
        { AWS: `arn:aws:iam::${ACCOUNT}:root` },
        { AWS: 'arn:aws:iam::000000000000:role/other-role' },
      ),
    })
    .map((s) => {
      const out: Record<string, unknown> = { Effect: s.effect };
      out[s.notAction && s.effect === 'Deny' ? 'NotAction' : 'Action'] = s.actions;
      out[s.notResource ? 'NotResource' : 'Resource'] = s.resources;
      if (s.conditions.length > 0) out.Condition = toConditionBlock(s.conditions as never);
      if (withPrincipal) out.Principal = s.principal;
      return out as unknown as PolicyStatement;
    });

const context = fc.record(
  {
    'aws:PrincipalTag/team': fc.constantFrom('billing', 'Billing', 'shipping', 'ops'),
    'aws:SourceArn': fc.constantFrom(TOPIC, 'arn:aws:sns:us-east-1:000000000000:other'),
    'aws:MultiFactorAuthAge': fc.constantFrom('0', '300', '7200'),
    'aws:SecureTransport': fc.constantFrom('true', 'false'),
    'aws:TagKeys': fc.array(fc.constantFrom('team', 'env', 'cost-center', 'owner'), { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

const doc = (statements: PolicyStatement[]): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: statements,
});

const EXPECTED = {
  Allow: 'Allowed',
  ExplicitDeny: 'ExplicitlyDenied',
  ImplicitDeny: 'ImplicitlyDenied',
} as const;

describe('offline IAM evaluator agrees with iam-simulate', () => {
  it('on 1500 generated identity/resource policy and request pairs', async () => {
    let compared = 0;
    const outcomes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(statement(false), { minLength: 0, maxLength: 3 }),
        fc.option(fc.array(statement(true), { minLength: 1, maxLength: 2 }), { nil: undefined }),
        fc.constantFrom(...ACTIONS),
        fc.constantFrom(...RESOURCES),
        context,
        async (identity, resourceStatements, action, resource, contextValues) => {
          const identityPolicies = identity.length > 0 ? [doc(identity)] : [];
          const resourcePolicy = resourceStatements ? doc(resourceStatements) : undefined;
          const simulated = await runSimulation(
            {
              request: {
                principal: ROLE,
                action,
                resource: { resource, accountId: ACCOUNT },
                contextVariables: contextValues as Record<string, string | string[]>,
              },
              identityPolicies: identityPolicies.map((policy, i) => ({ name: `p${i}`, policy })),
              serviceControlPolicies: [],
              resourceControlPolicies: [],
              ...(resourcePolicy ? { resourcePolicy } : {}),
            },
            {},
          );
          if (simulated.resultType === 'error') throw new Error(JSON.stringify(simulated.errors));
          const ours = evaluate(
            {
              identity: identityPolicies.map((p, i) => compilePolicy(`p${i}`, p)),
              resource: resourcePolicy ? compilePolicy('resource', resourcePolicy) : undefined,
            },
            {
              principal: { kind: 'AWS', id: ROLE, accountId: ACCOUNT },
              action,
              resource,
              context: contextValues,
            },
          );
          compared += 1;
          outcomes.add(ours.decision);
          expect(EXPECTED[ours.decision]).toBe(simulated.overallResult);
        },
      ),
      { numRuns: 1500, seed: 13 },
    );
    expect(compared).toBeGreaterThanOrEqual(1500);
    expect([...outcomes].sort()).toEqual(['Allow', 'ExplicitDeny', 'ImplicitDeny']);
  });
  it('on 400 single-condition policies (each operator decides alone)', async () => {
    await fc.assert(
      fc.asyncProperty(condition, fc.constantFrom(...ACTIONS), context, async (c, action, contextValues) => {
        const policy = doc([
          { Effect: 'Allow', Action: 'sqs:*', Resource: '*', Condition: toConditionBlock([c as never]) },
        ]);
        const simulated = await runSimulation(
          {
            request: {
              principal: ROLE,
              action,
              resource: { resource: RESOURCES[0] as string, accountId: ACCOUNT },
              contextVariables: contextValues as Record<string, string | string[]>,
            },
            identityPolicies: [{ name: 'p', policy }],
            serviceControlPolicies: [],
            resourceControlPolicies: [],
          },
          {},
        );
        if (simulated.resultType === 'error') throw new Error(JSON.stringify(simulated.errors));
        const ours = evaluate(
          { identity: [compilePolicy('p', policy)] },
          {
            principal: { kind: 'AWS', id: ROLE, accountId: ACCOUNT },
            action,
            resource: RESOURCES[0] as string,
            context: contextValues,
          },
        );
        expect(EXPECTED[ours.decision]).toBe(simulated.overallResult);
      }),
      { numRuns: 400, seed: 7 },
    );
  });
});
