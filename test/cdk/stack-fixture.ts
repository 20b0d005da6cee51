import { App, Aspects, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OutboxStack } from '../../lib/outbox-stack.ts';

/** Synthesizes the demo stack once per test file, with the cdk-nag AwsSolutions pack applied. */
export function synthOutboxStack(): { stack: OutboxStack; template: Template } {
  const app = new App();
  const stack = new OutboxStack(app, 'Test');
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
