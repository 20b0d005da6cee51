import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OrdersStack } from '../../examples/orders/stack.ts';
import { NO_BUNDLING } from './stack-fixture.ts';

/**
 * CDK's built-in CloudFormation validation, which the rest of the suite turns off (vitest.config.ts sets
 * CDK_VALIDATION=false: it only warns by default and costs seconds per test file), run here once with its
 * findings as errors.
 */
describe("CDK's built-in CloudFormation template validation, findings as errors", () => {
  beforeEach(() => {
    vi.stubEnv('CDK_VALIDATION', undefined);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  function strictApp(): App {
    return new App({ context: { ...NO_BUNDLING, '@aws-cdk/core:validateAgainstDefaultRules': true } });
  }

  it('GIVEN a resource with a property CloudFormation does not know THEN synthesis fails (the check is live)', () => {
    const app = strictApp();
    new CfnResource(new Stack(app, 'Bad'), 'Queue', {
      type: 'AWS::SQS::Queue',
      properties: { NoSuchProperty: 1 },
    });
    expect(() => app.synth()).toThrow(/NoSuchProperty/);
  });

  it('GIVEN the demo app THEN its template has no finding', () => {
    const app = strictApp();
    new OrdersStack(app, 'Demo');
    expect(() => app.synth()).not.toThrow();
  });
});
