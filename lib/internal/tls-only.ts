import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';

/**
 * Denies every SNS action on the topic over plain HTTP. `enforceSSL` on `sns.Topic` denies only `sns:Publish`;
 * subscribing, reading attributes or changing the policy without TLS would still be allowed.
 */
export function denyInsecureTransport(topic: sns.Topic): void {
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyInsecureTransport',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['sns:*'],
      resources: [topic.topicArn],
      conditions: { Bool: { 'aws:SecureTransport': 'false' } },
    }),
  );
}
