import { App, type AppProps, Aspects, RemovalPolicy } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OrdersStack } from './stack.ts';

export const DEMO_STACK_NAME = 'ServerlessOutbox';

/**
 * The demo's CDK app: one stack, checked by cdk-nag's AwsSolutions pack. Used by `bin/app.ts` (cdk synth/deploy)
 * and by the offline demo, which synthesizes the very same app.
 */
export function createOrdersApp(
  props: AppProps = {},
  options: { readonly nag?: boolean } = {},
): { app: App; stack: OrdersStack } {
  const app = new App(props);
  const stack = new OrdersStack(app, DEMO_STACK_NAME, {
    description: 'serverless-outbox demo: orders producer, billing and notifications subscribers',
    tableRemovalPolicy:
      app.node.tryGetContext('outbox:retainTables') === 'false'
        ? RemovalPolicy.DESTROY
        : RemovalPolicy.RETAIN,
  });
  // The offline runtime skips the checks (they only annotate; the template is the same) to start faster.
  if (options.nag ?? true) Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, stack };
}
