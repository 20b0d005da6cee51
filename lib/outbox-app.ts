import { App, type AppProps, Aspects, RemovalPolicy } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OutboxStack } from './outbox-stack.ts';

export const DEMO_STACK_NAME = 'ServerlessOutbox';

/**
 * The CDK app: one stack, checked by cdk-nag's AwsSolutions pack. Used by `bin/app.ts` (cdk synth/deploy)
 * and by the offline runtime, which synthesizes the very same app in-process.
 */
export function createOutboxApp(
  props: AppProps = {},
  options: { readonly nag?: boolean } = {},
): { app: App; stack: OutboxStack } {
  const app = new App(props);
  const stack = new OutboxStack(app, DEMO_STACK_NAME, {
    description: 'serverless-outbox: transactional outbox, relay, subscriptions and recovery',
    tableRemovalPolicy:
      app.node.tryGetContext('outbox:retainTables') === 'false'
        ? RemovalPolicy.DESTROY
        : RemovalPolicy.RETAIN,
  });
  // The offline runtime skips the checks (they only annotate; the template is the same) to start faster.
  if (options.nag ?? true) Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, stack };
}
