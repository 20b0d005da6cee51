import { describe, expect, it } from 'vitest';
import { type IamRunReport, iamClean, renderIamReport } from '../../examples/orders/iam-report.ts';

const denied = {
  principal: 'arn:aws:sts::000000000000:assumed-role/r/fn',
  action: 'dynamodb:PutItem',
  resource: 'arn:aws:dynamodb:ddblocal:000000000000:table/Orders',
  message: 'User: ... is not authorized',
};
const enforced = (over: Partial<IamRunReport> = {}): IamRunReport => ({
  enforced: true,
  deniedCalls: [],
  droppedDeliveries: [],
  deniedCount: 0,
  droppedCount: 0,
  ...over,
});

describe('the IAM part of the run report', () => {
  it('groups denied calls by principal, action and resource, and is clean only without denials or drops', () => {
    const report = enforced({ deniedCalls: [denied, denied], deniedCount: 2 });
    const lines = renderIamReport(report, [], []);
    expect(lines[0]).toBe('IAM: enforced   denied calls: 2   dropped deliveries: 0');
    expect(lines[1]).toBe(`  denied 2x: ${denied.principal} dynamodb:PutItem on ${denied.resource}`);
    expect(iamClean(report)).toBe(false);
    expect(iamClean(enforced())).toBe(true);
    expect(iamClean(enforced({ droppedCount: 1 }))).toBe(false);
  });

  it('lists alarm notifications published, received (the ALARM pages) and dropped; says when IAM is off', () => {
    const lines = renderIamReport(
      { ...enforced(), enforced: false },
      [
        { alarmName: 'A', state: 'ALARM', topicArn: 't', delivered: true },
        {
          alarmName: 'B',
          state: 'OK',
          topicArn: 't',
          delivered: false,
          reason: 'denied by the topic or key policy',
        },
      ],
      [{ alarmName: 'A', state: 'ALARM' }],
    );
    expect(lines).toEqual([
      'IAM: not enforced (--no-iam): denials are not detected offline',
      'alarm notifications: 1 published, 1 received by the local subscriber, 1 dropped; ALARM pages: A',
      '  dropped: B OK -> t: denied by the topic or key policy',
    ]);
  });
});
