import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlarmTopicProps {
  /**
   * Email addresses subscribed to every alarm.
   * @default - CDK context `outbox:alarmEmails` (comma-separated), else none
   */
  readonly emails?: readonly string[];
  /**
   * HTTPS pager endpoint (e.g. PagerDuty / Opsgenie CloudWatch integration URL).
   * @default - CDK context `outbox:pagerUrl`, else none
   */
  readonly pagerUrl?: string;
}

/** The one SNS topic every alarm of the stack notifies (and clears) through; encrypted, TLS-only. */
export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;
  readonly action: cloudwatchActions.SnsAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      description: 'Encrypts the outbox alarm topic',
      enableKeyRotation: true,
    });
    // CloudWatch must be able to use the key to publish alarm notifications.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      masterKey: key,
      enforceSSL: true,
      displayName: 'Outbox alarms',
    });
    const contextEmails = scope.node.tryGetContext('outbox:alarmEmails') as string | undefined;
    const emails =
      props.emails ??
      (contextEmails
        ? contextEmails
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean)
        : []);
    for (const email of emails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    const pagerUrl = props.pagerUrl ?? (scope.node.tryGetContext('outbox:pagerUrl') as string | undefined);
    if (pagerUrl) this.topic.addSubscription(new subscriptions.UrlSubscription(pagerUrl));
    this.action = new cloudwatchActions.SnsAction(this.topic);
  }

  /** Sends the alarm's ALARM and OK transitions to the topic. */
  watch(alarm: cloudwatch.Alarm): cloudwatch.Alarm {
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    return alarm;
  }
}
