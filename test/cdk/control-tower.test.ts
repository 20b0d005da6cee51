import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { App, Stack } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { OrdersStack } from '../../examples/orders/stack.ts';
import { NO_BUNDLING } from './stack-fixture.ts';

/** The AWS Control Tower proactive controls, run by the CDK's policy validation at synth. */
async function appWithControlTower(): Promise<App> {
  return new App({
    outdir: await mkdtemp(path.join(tmpdir(), 'outbox-guard-')),
    context: NO_BUNDLING,
    policyValidationBeta1: [new CfnGuardValidator({ controlTowerRulesEnabled: true })],
  });
}

describe('AWS Control Tower proactive controls (cdk-validator-cfnguard)', () => {
  it('GIVEN a queue without a DLQ THEN validation fails synthesis (the check is live)', async () => {
    const app = await appWithControlTower();
    new sqs.Queue(new Stack(app, 'Bare'), 'NoDlq', { enforceSSL: true });
    expect(() => app.synth()).toThrow(/CT\.SQS\.PR\.1/);
  });

  it('GIVEN the demo app THEN every finding is fixed, or acknowledged with a reason in code', async () => {
    const app = await appWithControlTower();
    new OrdersStack(app, 'Demo');
    expect(() => app.synth()).not.toThrow();
  });
});
