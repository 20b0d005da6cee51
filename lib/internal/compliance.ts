import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type { IConstruct } from 'constructs';

/**
 * Only AWS services may create grants on the key (AWS Control Tower CT.KMS.PR.3): a principal that is allowed
 * `kms:*` through the account root still cannot hand the key to someone else by a grant.
 */
export function limitGrantsToAwsServices(key: kms.Key): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'GrantsOnlyForAwsServices',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: {
        BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
      },
    }),
  );
}

/** Control Tower proactive controls (cdk-validator-cfnguard) this library's design departs from, with why. */
export const ControlTowerException = {
  lambdaOutsideVpc: {
    id: 'cdk-validator-cfnguard::lambda_inside_vpc_check',
    reason:
      'The function calls only AWS APIs (DynamoDB, SNS, SQS, EventBridge) over TLS with IAM; a VPC adds NAT or endpoint cost and cold-start latency and protects nothing here. Teams that must run in a VPC can pass their own function as a consumer.',
  },
  logRetention: {
    id: 'cdk-validator-cfnguard::cloudwatch_log_group_retention_period_check',
    reason:
      'Function logs are operational (errors, metrics), never event payloads; 30 days bounds their cost. Audit data lives in the outbox table, its point-in-time recovery and the delivery metrics.',
  },
  logEncryption: {
    id: 'cdk-validator-cfnguard::cloudwatch_log_group_encrypted_check',
    reason:
      'CloudWatch Logs encrypts every log group at rest with a service key; the functions never log payloads, so a customer key per log group would add cost, not protection.',
  },
  deadLetterQueueHasNoDlq: {
    id: 'cdk-validator-cfnguard::sqs_dlq_check',
    reason:
      'This queue is itself the end of a redrive path (a dead-letter queue, or the relay on-failure destination that holds batch positions only); an alarm pages on its first message, and its retention is the maximum 14 days.',
  },
  payloadBucketKms: {
    id: 'cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check',
    reason:
      'The claim-check bucket uses S3-managed encryption unless the outbox table has a customer-managed key (then that key): the payloads get the same protection as the events in the table.',
  },
  payloadBucketVersioning: {
    id: 'cdk-validator-cfnguard::s3_bucket_versioning_enabled_check',
    reason:
      'Claim-check payloads are written once per event id and must be gone after the outbox retention; versions would keep expired payloads (and their data) beyond it.',
  },
  payloadBucketLogging: {
    id: 'cdk-validator-cfnguard::s3_bucket_logging_enabled_check',
    reason:
      'Short-lived claim-check payloads written only by the outbox producers and read only by its consumers (IAM grants on the prefix); access logs would need a second bucket per outbox. Use CloudTrail S3 data events to audit access.',
  },
  payloadBucketNotifications: {
    id: 'cdk-validator-cfnguard::s3_event_notifications_enabled_check',
    reason:
      'Nothing reacts to a payload write: the event that references it is delivered through the outbox, after its transaction commits.',
  },
  payloadBucketObjectLock: {
    id: 'cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check',
    reason:
      'Claim-check payloads must expire with the outbox retention (lifecycle rule); Object Lock would keep them, and the outbox table (PITR) is the record of what happened.',
  },
} as const;

export function acknowledge(
  scope: IConstruct,
  ...exceptions: (typeof ControlTowerException)[keyof typeof ControlTowerException][]
): void {
  Validations.of(scope).acknowledge(...exceptions.map((e) => ({ id: e.id, reason: e.reason })));
}
