/**
 * Synthesizes the CDK app for the offline runtime. Run as a script (`node local/synth.ts <workDir> <context>`)
 * by `synthesize()` in offline.ts, so aws-cdk-lib lives only in this short-lived process.
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { OutboxStack } from '../lib/outbox-stack.ts';

export const SYNTH_RESULT_FILE = 'synth.json';

/** Logical ids of the demo stack's parts, read from the constructs themselves (not guessed from names). */
export interface DemoResources {
  readonly producer: string;
  readonly relay: string;
  readonly outboxTable: string;
  readonly chargesTable: string;
  readonly sinkTable: string;
  readonly billingQueue: string;
  readonly billingDlq: string;
  readonly notificationsQueue: string;
  readonly notificationsDlq: string;
  readonly billingConsumer: string;
  readonly notificationsConsumer: string;
  readonly recovery?: string;
}

export interface SynthResult {
  readonly templateFile: string;
  readonly assetRoot: string;
  readonly stackName: string;
  readonly resources: DemoResources;
}

function logicalIdOf(stack: OutboxStack, construct: Construct | undefined, what: string): string {
  const element = construct?.node.defaultChild as CfnElement | undefined;
  if (!element) throw new Error(`the demo stack has no ${what}; the offline demo needs it`);
  return stack.getLogicalId(element);
}

function demoResources(stack: OutboxStack): DemoResources {
  const { billing, notifications, chargesTable, notificationSinkTable } = stack.subscriptions;
  const recovery = (stack as unknown as { recovery?: { fn?: Construct } }).recovery?.fn;
  return {
    producer: logicalIdOf(stack, stack.orderProducer as unknown as Construct, 'order producer'),
    relay: logicalIdOf(stack, stack.relay.fn, 'relay function'),
    outboxTable: logicalIdOf(stack, stack.outbox.table, 'outbox table'),
    chargesTable: logicalIdOf(stack, chargesTable, 'charges table'),
    sinkTable: logicalIdOf(stack, notificationSinkTable, 'notification sink table'),
    billingQueue: logicalIdOf(stack, billing?.queue, 'billing subscription'),
    billingDlq: logicalIdOf(stack, billing?.deadLetterQueue, 'billing DLQ'),
    notificationsQueue: logicalIdOf(stack, notifications?.queue, 'notifications subscription'),
    notificationsDlq: logicalIdOf(stack, notifications?.deadLetterQueue, 'notifications DLQ'),
    billingConsumer: logicalIdOf(stack, billing?.consumer, 'billing consumer'),
    notificationsConsumer: logicalIdOf(stack, notifications?.consumer, 'notifications consumer'),
    ...(recovery ? { recovery: logicalIdOf(stack, recovery, 'recovery function') } : {}),
  };
}

/** Synthesizes into `<workDir>/cdk.out` and writes what the runtime needs to `<workDir>/synth.json`. */
export async function synthesizeInProcess(
  workDir: string,
  context: Readonly<Record<string, string>>,
): Promise<SynthResult> {
  const { createOutboxApp } = await import('../lib/outbox-app.ts');
  const outdir = path.join(workDir, 'cdk.out');
  // The CDK CLI sets this; the runtime finds each function's bundle through the asset metadata.
  const { app, stack } = createOutboxApp(
    { outdir, context: { 'aws:cdk:enable-asset-metadata': true, ...context } },
    { nag: false },
  );
  const assembly = app.synth();
  const artifact = assembly.getStackArtifact(stack.artifactId);
  const result: SynthResult = {
    templateFile: artifact.templateFullPath,
    assetRoot: outdir,
    stackName: stack.stackName,
    resources: demoResources(stack),
  };
  await writeFile(path.join(workDir, SYNTH_RESULT_FILE), JSON.stringify(result));
  return result;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const [workDir, context] = process.argv.slice(2);
  if (!workDir) throw new Error('usage: node local/synth.ts <workDir> [<context JSON>]');
  await synthesizeInProcess(workDir, JSON.parse(context ?? '{}') as Record<string, string>);
}
