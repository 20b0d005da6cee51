import { App, Aspects, type CfnElement, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct, IConstruct } from 'constructs';
import { OrdersStack } from '../../examples/orders/stack.ts';
import { type IOutbox, Subscription } from '../../lib/index.ts';

/** CDK context that skips asset bundling: for stacks whose tests check the template, not the code. */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/**
 * Synthesizes the demo `OrdersStack` (examples/orders) once per test file, with the cdk-nag AwsSolutions pack and
 * without bundling its functions: these tests read the template (the offline-stack integration tests run the bundles).
 */
export function synthOrdersStack(): { stack: OrdersStack; template: Template } {
  const app = new App({ context: NO_BUNDLING });
  const stack = new OrdersStack(app, 'Test');
  Aspects.of(app).add(new AwsSolutionsChecks());
  const template = Template.fromStack(stack);
  return { stack, template };
}

/** Every unsuppressed AwsSolutions error, as "rule at path" lines (empty when the stack is clean). */
export function nagErrors(stack: Stack): string[] {
  return Annotations.fromStack(stack)
    .findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))
    .map((m) => `${String(m.entry.data).split(':')[0]} at ${m.id}`);
}

/** The logical id of a construct's CloudFormation resource (its default child), as its stack names it. */
export function logicalId(construct: IConstruct | undefined): string {
  if (!construct) throw new Error('no construct to look the logical id up for');
  const resource = construct.node.defaultChild as CfnElement | undefined;
  if (!resource) throw new Error(`${construct.node.path} has no CloudFormation resource of its own`);
  return Stack.of(construct).getLogicalId(resource);
}

export type Statement = {
  Effect?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};
type PolicyResource = { Properties: { Roles?: unknown[]; PolicyDocument: { Statement: Statement[] } } };

/** Every statement of the identity policies attached to a role. */
export function roleStatements(template: Template, role: iam.IRole | undefined): Statement[] {
  const ref = JSON.stringify({ Ref: logicalId(role) });
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as PolicyResource[];
  return policies
    .filter((p) => (p.Properties.Roles ?? []).some((r) => JSON.stringify(r) === ref))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

/** A consumer-shaped Lambda with inline code: no bundling, no asset. */
export function inlineFunction(scope: Construct, id: string): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
  });
}

/**
 * GIVEN another team's stack ('Analytics') that imports an outbox and subscribes a consumer to it with a rule on
 * `sources`: the imported outbox, the consumer function and the stack's template.
 */
export function importedRuleConsumer(importOutbox: (stack: Stack) => IOutbox, sources: string[]) {
  const stack = new Stack(new App({ context: NO_BUNDLING }), 'Analytics');
  const outbox = importOutbox(stack);
  const fn = inlineFunction(stack, 'Consumer');
  new Subscription(stack, 'Analytics', {
    outbox,
    name: 'analytics',
    kind: 'rule',
    sources,
    consumer: { function: fn },
  });
  return { outbox, fn, template: Template.fromStack(stack) };
}
