/**
 * The demo's synth script for the offline runtime (`OfflineStackOptions.synthScript`): synthesizes the demo app
 * and names the resources the workload and fault injection use.
 */
import * as path from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { type OfflineStack, type SynthResult, writeSynthResult } from 'serverless-outbox/local';
import type { OrdersStack } from './stack.ts';

export const DEMO_SYNTH_SCRIPT = import.meta.filename;

/** Logical ids of the demo stack's parts, read from the constructs themselves (not guessed from names). */
export interface DemoResources extends Record<string, string> {
  readonly producer: string;
  readonly relay: string;
  readonly recovery: string;
  /** The scheduled delivery audit function (the demo invokes it once at the end on the run's window). */
  readonly audit: string;
  readonly outboxTable: string;
  readonly chargesTable: string;
  readonly sinkTable: string;
  readonly paymentsTable: string;
  readonly paymentCheckback: string;
  readonly billingQueue: string;
  readonly billingDlq: string;
  readonly notificationsQueue: string;
  readonly notificationsDlq: string;
  readonly billingConsumer: string;
  readonly notificationsConsumer: string;
}

/** The offline demo stack. */
export type DemoStack = OfflineStack<DemoResources>;

function logicalIdOf(stack: OrdersStack, construct: Construct | undefined, what: string): string {
  const element = construct?.node.defaultChild as CfnElement | undefined;
  if (!element) throw new Error(`the demo stack has no ${what}; the offline demo needs it`);
  return stack.getLogicalId(element);
}

function demoResources(stack: OrdersStack): DemoResources {
  const { billing, notifications, outbox } = stack;
  return {
    producer: logicalIdOf(stack, stack.orderProducer, 'order producer'),
    relay: logicalIdOf(stack, outbox.relay.fn, 'relay function'),
    recovery: logicalIdOf(stack, outbox.recovery.fn, 'recovery function'),
    audit: logicalIdOf(stack, outbox.audit?.fn, 'audit function'),
    outboxTable: logicalIdOf(stack, outbox.table.table, 'outbox table'),
    chargesTable: logicalIdOf(stack, stack.chargesTable, 'charges table'),
    sinkTable: logicalIdOf(stack, stack.notificationSinkTable, 'notification sink table'),
    paymentsTable: logicalIdOf(stack, stack.paymentsTable, 'payments table'),
    paymentCheckback: logicalIdOf(stack, stack.paymentCheckback, 'payment check-back function'),
    billingQueue: logicalIdOf(stack, billing.queue, 'billing subscription'),
    billingDlq: logicalIdOf(stack, billing.deadLetterQueue, 'billing DLQ'),
    notificationsQueue: logicalIdOf(stack, notifications.queue, 'notifications subscription'),
    notificationsDlq: logicalIdOf(stack, notifications.deadLetterQueue, 'notifications DLQ'),
    billingConsumer: logicalIdOf(stack, billing.consumer, 'billing consumer'),
    notificationsConsumer: logicalIdOf(stack, notifications.consumer, 'notifications consumer'),
  };
}

/** Synthesizes into `<workDir>/cdk.out` and writes what the runtime needs to `<workDir>/synth.json`. */
export async function synthesizeDemo(
  workDir: string,
  context: Readonly<Record<string, string>>,
): Promise<SynthResult<DemoResources>> {
  const { createOrdersApp } = await import('./app.ts');
  const outdir = path.join(workDir, 'cdk.out');
  // The CDK CLI sets this; the runtime finds each function's bundle through the asset metadata.
  const { app, stack } = createOrdersApp(
    { outdir, context: { 'aws:cdk:enable-asset-metadata': true, ...context } },
    { nag: false },
  );
  const assembly = app.synth();
  const artifact = assembly.getStackArtifact(stack.artifactId);
  const result: SynthResult<DemoResources> = {
    templateFile: artifact.templateFullPath,
    assetRoot: outdir,
    stackName: stack.stackName,
    resources: demoResources(stack),
  };
  await writeSynthResult(workDir, result);
  return result;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const [workDir, context] = process.argv.slice(2);
  if (!workDir) throw new Error('usage: node examples/orders/synth.ts <workDir> [<context JSON>]');
  await synthesizeDemo(workDir, JSON.parse(context ?? '{}') as Record<string, string>);
}
