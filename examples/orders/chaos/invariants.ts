/**
 * What every chaos run must leave behind, whatever its faults: poison quarantined or dead-lettered and alarmed, no
 * outbox record left unpublished, no message left in a subscription queue, every ack DONE or FAILED-and-alarmed.
 * (Lost events, duplicate effects and order violations are the demo report's invariants.)
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readAcks, readOutbox } from '../observe.ts';
import type { DemoStack } from '../synth.ts';

export interface InvariantInput {
  /** Ids of the poison outbox records the run wrote. */
  readonly poisonIds: readonly string[];
  /** Poison messages sent to each subscription queue. */
  readonly poisonMessages: { readonly notifications: number; readonly billing: number };
}

export interface InvariantCheck {
  readonly problems: string[];
  readonly alarmsFired: readonly string[];
  readonly acks: number;
  readonly acksFailed: number;
}

export async function checkInvariants(
  stack: DemoStack,
  doc: DynamoDBDocumentClient,
  { poisonIds, poisonMessages }: InvariantInput,
): Promise<InvariantCheck> {
  const problems: string[] = [];
  const table = stack.ref(stack.resources.outboxTable);
  const snapshot = await readOutbox(doc, table);
  const fired = stack.runtime.alarms.fired.map((t) => t.logicalId);
  const alarmed = (pattern: RegExp) => fired.some((id) => pattern.test(id));

  const unquarantined = poisonIds.filter((id) => !snapshot.quarantinedIds.includes(id));
  if (unquarantined.length > 0) problems.push(`poison records not quarantined: ${unquarantined.join(', ')}`);
  if (snapshot.quarantinedIds.length > 0 && !alarmed(/Quarantined/))
    problems.push(`${snapshot.quarantinedIds.length} records quarantined but no quarantine alarm fired`);

  for (const [queue, dlq, sent] of [
    ['notifications', stack.resources.notificationsDlq, poisonMessages.notifications],
    ['billing', stack.resources.billingDlq, poisonMessages.billing],
  ] as const) {
    const depth = await stack.fauxqs.inspectQueue(stack.attribute(dlq, 'QueueName'));
    const dead = depth ? depth.messages.ready.length + depth.messages.inflight.length : 0;
    if (dead < sent) problems.push(`${queue}: ${sent} poison messages sent, ${dead} dead-lettered`);
    if (dead > 0 && !alarmed(/DeadLetter/))
      problems.push(`${queue}: ${dead} messages dead-lettered but no dead-letter alarm fired`);
  }

  const stuck =
    snapshot.committed.length - (snapshot.byStatus.PUBLISHED ?? 0) - snapshot.quarantinedIds.length;
  const cancelled = snapshot.byStatus.CANCELLED ?? 0;
  if (stuck - cancelled > 0) {
    const statuses = Object.entries(snapshot.byStatus)
      .filter(([s]) => !['PUBLISHED', 'QUARANTINED', 'CANCELLED'].includes(s))
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    problems.push(
      `${stuck - cancelled} outbox records never published (${statuses})` +
        (alarmed(/OldestUnpublished|Stuck/) ? ' (alarmed)' : ' and no alarm fired'),
    );
  }

  for (const queue of [stack.resources.billingQueue, stack.resources.notificationsQueue]) {
    const name = stack.attribute(queue, 'QueueName');
    const left = await stack.fauxqs.inspectQueue(name);
    const depth = left
      ? left.messages.ready.length + left.messages.inflight.length + left.messages.delayed.length
      : 0;
    if (depth > 0) problems.push(`${depth} messages still in ${name}`);
  }

  const acks = await readAcks(doc, table);
  const pending = acks.filter((a) => a.status !== 'DONE' && a.status !== 'FAILED');
  const failed = acks.filter((a) => a.status === 'FAILED');
  if (pending.length > 0)
    problems.push(`${pending.length} acks neither DONE nor FAILED (e.g. ${pending[0]?.eventId})`);
  if (failed.length > 0 && !alarmed(/AcksFailed/))
    problems.push(`${failed.length} acks FAILED but no acks alarm fired`);

  return { problems, alarmsFired: [...new Set(fired)], acks: acks.length, acksFailed: failed.length };
}
