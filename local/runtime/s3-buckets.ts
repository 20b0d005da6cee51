import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PseudoParameters, RegisteredResource } from './template.ts';

/**
 * An `AWS::S3::Bucket` of the template, created in fauxqs (which emulates S3 on the SQS/SNS endpoint). Lifecycle
 * rules, encryption and the bucket policy are not emulated: objects stay until the local run ends.
 */
export async function createBucket(
  logicalId: string,
  props: Record<string, unknown>,
  pseudo: PseudoParameters,
  s3: S3Client,
  notes: string[],
): Promise<RegisteredResource> {
  const bucketName =
    typeof props.BucketName === 'string' ? props.BucketName : localBucketName(pseudo.stackName, logicalId);
  await s3.send(new CreateBucketCommand({ Bucket: bucketName })).catch((error: unknown) => {
    // A second stack run in the same emulator (or a restart) finds it already there.
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((error as Error).name)) throw error;
  });
  if (props.LifecycleConfiguration !== undefined) notes.push('lifecycle rules not emulated');
  if (props.BucketEncryption !== undefined) notes.push('encryption settings ignored');
  const arn = `arn:aws:s3:::${bucketName}`;
  return {
    logicalId,
    type: 'AWS::S3::Bucket',
    ref: bucketName,
    attributes: {
      Arn: arn,
      BucketName: bucketName,
      DomainName: `${bucketName}.s3.amazonaws.com`,
      RegionalDomainName: `${bucketName}.s3.${pseudo.region}.amazonaws.com`,
    },
  };
}

/** S3 bucket names: 3-63 lower-case letters, digits and hyphens, starting and ending alphanumeric. */
export function localBucketName(stackName: string, logicalId: string): string {
  const base = `${stackName}-${logicalId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '');
  return base.slice(0, 63).replace(/-+$/, '').padEnd(3, '0');
}
