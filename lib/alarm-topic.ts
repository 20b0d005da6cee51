import { Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { limitGrantsToAwsServices } from './internal/compliance.ts';
import { denyInsecureTransport } from './internal/tls-only.ts';

export interface AlarmTopicProps {
  /**
   * Use this topic instead of creating one (e.g. the team's existing paging topic). Its policy is yours: it must
   * let `cloudwatch.amazonaws.com` publish (and use its key, when encrypted), or no alarm notifies anyone.
   * `emails` and `pagerUrl` still subscribe to it.
   * @default - a new topic, encrypted with a new customer-managed key, TLS-only, that CloudWatch alarms of this
   * account may publish to
   */
  readonly topic?: sns.ITopic;
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

/** The one SNS topic every alarm of the outbox notifies (and clears) through. */
export class AlarmTopic extends Construct {
  readonly topic: sns.ITopic;
  readonly action: cloudwatchActions.SnsAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    this.topic = props.topic ?? this.#createTopic();
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

  /**
   * A topic policy replaces SNS's default one, so CloudWatch may publish only because this policy says so;
   * the conditions keep other accounts' alarms out (confused deputy).
   */
  #createTopic(): sns.Topic {
    const stack = Stack.of(this);
    const fromThisAccountsAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: {
        'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*`,
      },
    };
    const cloudwatchPrincipal = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
    const key = new kms.Key(this, 'Key', {
      description: 'Encrypts the outbox alarm topic',
      enableKeyRotation: true,
    });
    limitGrantsToAwsServices(key);
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountEncrypt',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        principals: [cloudwatchPrincipal],
        resources: ['*'],
        conditions: fromThisAccountsAlarms,
      }),
    );
    const topic = new sns.Topic(this, 'Topic', {
      masterKey: key,
      displayName: 'Outbox alarms',
    });
    denyInsecureTransport(topic);
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountPublish',
        actions: ['sns:Publish'],
        principals: [cloudwatchPrincipal],
        resources: [topic.topicArn],
        conditions: fromThisAccountsAlarms,
      }),
    );
    return topic;
  }

  /** Sends the alarm's ALARM and OK transitions to the topic. */
  watch(alarm: cloudwatch.Alarm): cloudwatch.Alarm {
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    return alarm;
  }
}
