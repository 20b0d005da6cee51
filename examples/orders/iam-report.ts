/**
 * The IAM part of the run's verdict: whether IAM was enforced, the calls it denied, the deliveries it dropped and
 * the alarm notifications published to (or dropped before) the alarm topic. Pure, so it is unit-tested.
 */

export interface IamEntry {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly message: string;
}

export interface IamRunReport {
  readonly enforced: boolean;
  readonly deniedCalls: readonly IamEntry[];
  readonly droppedDeliveries: readonly (IamEntry & { readonly path: string; readonly source: string })[];
  readonly deniedCount: number;
  readonly droppedCount: number;
}

export interface AlarmNotificationEntry {
  readonly alarmName: string;
  readonly state: string;
  readonly topicArn: string;
  readonly delivered: boolean;
  readonly reason?: string;
}

/** Distinct (principal, action, resource) with how often each was denied: a missing grant repeats per call. */
function grouped(entries: readonly IamEntry[]): { entry: IamEntry; count: number }[] {
  const groups = new Map<string, { entry: IamEntry; count: number }>();
  for (const e of entries) {
    const key = `${e.principal} ${e.action} ${e.resource}`;
    const g = groups.get(key);
    if (g) g.count += 1;
    else groups.set(key, { entry: e, count: 1 });
  }
  return [...groups.values()];
}

export interface ReceivedAlarmNotification {
  readonly alarmName: string;
  readonly state: string;
}

export function renderIamReport(
  iam: IamRunReport,
  notifications: readonly AlarmNotificationEntry[],
  received: readonly ReceivedAlarmNotification[],
): string[] {
  const out: string[] = [];
  if (!iam.enforced) out.push('IAM: not enforced (--no-iam): denials are not detected offline');
  else out.push(`IAM: enforced   denied calls: ${iam.deniedCount}   dropped deliveries: ${iam.droppedCount}`);
  for (const { entry, count } of grouped(iam.deniedCalls))
    out.push(`  denied ${count}x: ${entry.principal} ${entry.action} on ${entry.resource}`);
  for (const { entry, count } of grouped(iam.droppedDeliveries))
    out.push(`  dropped ${count}x: ${entry.principal} ${entry.action} on ${entry.resource}`);
  const published = notifications.filter((n) => n.delivered).length;
  const dropped = notifications.filter((n) => !n.delivered);
  const paged = [...new Set(received.filter((n) => n.state === 'ALARM').map((n) => n.alarmName))];
  out.push(
    `alarm notifications: ${published} published, ${received.length} received by the local subscriber` +
      `${dropped.length ? `, ${dropped.length} dropped` : ''}; ALARM pages: ${paged.length ? paged.join(', ') : 'none'}`,
  );
  for (const n of dropped)
    out.push(`  dropped: ${n.alarmName} ${n.state} -> ${n.topicArn}: ${n.reason ?? ''}`);
  return out;
}

/** Enforced runs must see no denial and no dropped delivery: each is a grant or a policy missing on AWS too. */
export function iamClean(iam: IamRunReport): boolean {
  return !iam.enforced || (iam.deniedCount === 0 && iam.droppedCount === 0);
}
