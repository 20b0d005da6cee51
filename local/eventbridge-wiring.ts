/**
 * Wires the template's EventBridge buses and pattern rules into the local bus: each rule's SQS targets
 * (with their input, transformer, retry policy and DLQ) deliver through fauxqs.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LocalEventBridge } from './eventbridge/bus.ts';
import { type LocalResourceRegistry, type ResolveContext, resolveIntrinsics } from './runtime/template.ts';

export interface WiredRules {
  readonly rules: readonly { logicalId: string; name: string; bus: string; targets: number }[];
  /** Rule targets that are not SQS queues: listed at start-up, never silently dropped. */
  readonly unsupportedTargets: readonly { logicalId: string; arn: string }[];
}

/** The SQS queue URL of a queue ARN in the registry. */
export function queueUrlOf(registry: LocalResourceRegistry, arn: string): string | undefined {
  const queue = registry.ofType('AWS::SQS::Queue').find((q) => q.attributes.Arn === arn);
  return queue?.ref;
}

export function createSqsDelivery(registry: LocalResourceRegistry, sqs: SQSClient) {
  return async (arn: string, body: unknown, groupId?: string): Promise<void> => {
    const queueUrl = queueUrlOf(registry, arn);
    if (!queueUrl) throw new Error(`no local queue for target ${arn}`);
    const fifo = queueUrl.endsWith('.fifo');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
        ...(fifo ? { MessageGroupId: groupId ?? 'default' } : {}),
      }),
    );
  };
}

export function wireEventRules(
  ctx: ResolveContext,
  registry: LocalResourceRegistry,
  bus: LocalEventBridge,
): WiredRules {
  const rules: { logicalId: string; name: string; bus: string; targets: number }[] = [];
  const unsupportedTargets: { logicalId: string; arn: string }[] = [];
  for (const resource of registry.ofType('AWS::Events::EventBus')) bus.addBus(resource.ref);
  for (const [logicalId, resource] of Object.entries(ctx.template.Resources)) {
    if (resource.Type !== 'AWS::Events::Rule') continue;
    const props = resolveIntrinsics(resource.Properties ?? {}, { ...ctx, resourceId: logicalId }) as Record<
      string,
      unknown
    >;
    if (props.EventPattern === undefined) continue; // schedules run in the schedule runner
    if (props.State === 'DISABLED') continue;
    const busName =
      String(props.EventBusName ?? 'default')
        .split('/')
        .pop() ?? 'default';
    const name = registry.get(logicalId)?.ref ?? logicalId;
    const targets = ((props.Targets as Record<string, unknown>[] | undefined) ?? []).flatMap((target) => {
      const arn = String(target.Arn);
      if (!arn.includes(':sqs:')) {
        unsupportedTargets.push({ logicalId, arn });
        return [];
      }
      const retry = target.RetryPolicy as
        | { MaximumRetryAttempts?: number; MaximumEventAgeInSeconds?: number }
        | undefined;
      const dlq = (target.DeadLetterConfig as { Arn?: string } | undefined)?.Arn;
      const transformer = target.InputTransformer as
        | { InputPathsMap?: Record<string, string>; InputTemplate: string }
        | undefined;
      return [
        {
          id: String(target.Id),
          arn,
          ...(typeof target.Input === 'string' ? { input: target.Input } : {}),
          ...(typeof target.InputPath === 'string' ? { inputPath: target.InputPath } : {}),
          ...(transformer
            ? {
                inputTransformer: {
                  inputTemplate: transformer.InputTemplate,
                  ...(transformer.InputPathsMap ? { inputPathsMap: transformer.InputPathsMap } : {}),
                },
              }
            : {}),
          ...(retry
            ? {
                retryPolicy: {
                  ...(retry.MaximumRetryAttempts === undefined
                    ? {}
                    : { maximumRetryAttempts: Number(retry.MaximumRetryAttempts) }),
                  ...(retry.MaximumEventAgeInSeconds === undefined
                    ? {}
                    : { maximumEventAgeInSeconds: Number(retry.MaximumEventAgeInSeconds) }),
                },
              }
            : {}),
          ...(dlq ? { deadLetterArn: dlq } : {}),
        },
      ];
    });
    bus.addRule({ name, busName, eventPattern: props.EventPattern, targets });
    rules.push({ logicalId, name, bus: busName, targets: targets.length });
  }
  return { rules, unsupportedTargets };
}
