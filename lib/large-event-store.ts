import { type Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import {
  DEFAULT_LARGE_EVENT_MAX_BYTES,
  DEFAULT_LARGE_EVENTS_PREFIX,
  LARGE_EVENT_MAX_BYTES_LIMIT,
  LARGE_EVENTS_BUCKET_ENV,
  LARGE_EVENTS_MAX_BYTES_ENV,
  LARGE_EVENTS_PREFIX_ENV,
} from '../functions/contract/large-events.ts';
import { acknowledge, ControlTowerException } from './internal/compliance.ts';

/** `Outbox`'s `largeEvents` options (claim-check for events too large for a publish target). */
export interface LargeEventsProps {
  /**
   * The bucket of the payloads. Give it a lifecycle rule that expires objects under `prefix` after the outbox
   * retention, and keep it encrypted and TLS-only.
   * @default - a new bucket (S3-managed encryption, or the outbox table's KMS key; TLS only; no public access;
   *   no versioning; objects expire after the outbox retention)
   */
  readonly bucket?: s3.IBucket;
  /** Largest event (envelope with its data inline) producers may write. @default 10 MiB */
  readonly maxEventBytes?: number;
  /** Key prefix of the payload objects; producers may put and consumers get only below it. @default 'outbox-large-events/' */
  readonly prefix?: string;
}

/** Where a writer puts large payloads and consumers read them: what grants and environments need. */
export interface ILargeEventStore {
  readonly bucket: s3.IBucket;
  readonly prefix: string;
  /** Grants `s3:PutObject` under the prefix only (and encryption with the bucket's key, if any). */
  grantPut(grantee: iam.IGrantable): iam.Grant;
  /** Grants `s3:GetObject` under the prefix only (and decryption with the bucket's key, if any). */
  grantRead(grantee: iam.IGrantable): iam.Grant;
}

/** Grants on the payload objects of a bucket + prefix (shared by LargeEventStore and imported outboxes). */
export class LargeEventGrants implements ILargeEventStore {
  readonly bucket: s3.IBucket;
  readonly prefix: string;
  constructor(bucket: s3.IBucket, prefix: string) {
    this.bucket = bucket;
    this.prefix = prefix;
  }

  grantPut(grantee: iam.IGrantable): iam.Grant {
    this.bucket.encryptionKey?.grantEncrypt(grantee);
    this.#explainWildcards(grantee);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [this.bucket.arnForObjects(`${this.prefix}*`)],
    });
  }

  grantRead(grantee: iam.IGrantable): iam.Grant {
    this.bucket.encryptionKey?.grantDecrypt(grantee);
    this.#explainWildcards(grantee);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [this.bucket.arnForObjects(`${this.prefix}*`)],
    });
  }

  /** cdk-nag IAM5: the object wildcard is the payload prefix (one key per event id, unknown in advance). */
  #explainWildcards(grantee: iam.IGrantable): void {
    const role = grantee.grantPrincipal;
    if (!(role instanceof Construct) || Token.isUnresolved(this.prefix)) return;
    const prefix = this.prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Claim-check payloads are keyed by event id below the outbox prefix: the grant covers that prefix only (one action, s3:PutObject for producers or s3:GetObject for consumers).',
          appliesTo: [{ regex: `/^Resource::.*\\/${prefix}\\*$/g` }],
        },
        ...(this.bucket.encryptionKey
          ? [
              {
                id: 'AwsSolutions-IAM5',
                reason:
                  'S3 SSE-KMS on the payload bucket needs kms:GenerateDataKey*/ReEncrypt* (added by grantEncrypt/grantDecrypt); the resource is that one key.',
                appliesTo: ['Action::kms:GenerateDataKey*', 'Action::kms:ReEncrypt*'],
              },
            ]
          : []),
      ],
      true,
    );
  }
}

export interface LargeEventStoreProps extends LargeEventsProps {
  /** Payloads expire after this (the outbox retention): after it no record references them. */
  readonly retention: Duration;
  /** The outbox table's removal policy: the bucket follows it. */
  readonly removalPolicy?: RemovalPolicy;
  /** The outbox table's customer-managed key, which the bucket then uses too. */
  readonly encryptionKey?: kms.IKey;
}

/**
 * The claim-check store of an outbox: the bucket (created or given) and the key prefix of large event payloads.
 * Producers put below the prefix before their transaction; consumers get from it; the relay never touches it.
 */
export class LargeEventStore extends Construct implements ILargeEventStore {
  readonly bucket: s3.IBucket;
  readonly prefix: string;
  readonly maxEventBytes: number;
  readonly #grants: LargeEventGrants;

  constructor(scope: Construct, id: string, props: LargeEventStoreProps) {
    super(scope, id);
    const prefix = props.prefix ?? DEFAULT_LARGE_EVENTS_PREFIX;
    const maxEventBytes = props.maxEventBytes ?? DEFAULT_LARGE_EVENT_MAX_BYTES;
    if (!Token.isUnresolved(prefix) && !/^[A-Za-z0-9!_.*'()/-]+\/$/.test(prefix)) {
      throw new Error(
        `LargeEventStore ${this.node.path}: largeEvents.prefix must be safe S3 key characters ending in "/" (e.g. "outbox-large-events/"), but "${prefix}" was provided`,
      );
    }
    if (
      !Number.isInteger(maxEventBytes) ||
      maxEventBytes < 1024 ||
      maxEventBytes > LARGE_EVENT_MAX_BYTES_LIMIT
    ) {
      throw new Error(
        `LargeEventStore ${this.node.path}: largeEvents.maxEventBytes must be an integer from 1024 to ${LARGE_EVENT_MAX_BYTES_LIMIT}, but ${maxEventBytes} was provided`,
      );
    }
    this.prefix = prefix;
    this.maxEventBytes = maxEventBytes;
    this.bucket = props.bucket ?? this.#createBucket(props, prefix);
    this.#grants = new LargeEventGrants(this.bucket, prefix);
  }

  #createBucket(props: LargeEventStoreProps, prefix: string): s3.Bucket {
    const bucket = new s3.Bucket(this, 'Bucket', {
      ...(props.encryptionKey
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      // An aborted transaction leaves a payload nothing references; published ones are done after the retention.
      lifecycleRules: [
        { prefix, expiration: props.retention, abortIncompleteMultipartUploadAfter: props.retention },
      ],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    acknowledge(
      bucket,
      ...(props.encryptionKey ? [] : [ControlTowerException.payloadBucketKms]),
      ControlTowerException.payloadBucketVersioning,
      ControlTowerException.payloadBucketLogging,
      ControlTowerException.payloadBucketNotifications,
      ControlTowerException.payloadBucketObjectLock,
    );
    NagSuppressions.addResourceSuppressions(bucket, [
      {
        id: 'AwsSolutions-S1',
        reason: ControlTowerException.payloadBucketLogging.reason,
      },
    ]);
    return bucket;
  }

  /** The environment a producer's OutboxWriter reads (outbox.producerEnvironment includes it). */
  get producerEnvironment(): Readonly<Record<string, string>> {
    return {
      [LARGE_EVENTS_BUCKET_ENV]: this.bucket.bucketName,
      [LARGE_EVENTS_PREFIX_ENV]: this.prefix,
      [LARGE_EVENTS_MAX_BYTES_ENV]: String(this.maxEventBytes),
    };
  }

  grantPut(grantee: iam.IGrantable): iam.Grant {
    return this.#grants.grantPut(grantee);
  }

  grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.#grants.grantRead(grantee);
  }
}
