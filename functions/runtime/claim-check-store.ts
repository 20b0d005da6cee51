import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { LargeEventPayload, LargeEventSettings } from './claim-check.ts';
import { OutboxError, OutboxRetryableError } from './errors.ts';

/**
 * The S3 side of claim-check, apart from claim-check.ts so that code which never stores a payload (the relay, the
 * recovery sweeper's confirm) loads the S3 client only when a large event is actually written.
 */

let sharedS3: S3Client | undefined;

/**
 * One S3 client per Lambda container. With a custom endpoint (the offline runtime sets AWS_ENDPOINT_URL_S3) it
 * uses path-style URLs, which emulators on `localhost` answer without wildcard DNS.
 */
export function sharedS3Client(): S3Client {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  sharedS3 ??= new S3Client(endpoint ? { forcePathStyle: true } : {});
  return sharedS3;
}

/** Puts the payloads (before the transaction that references them). */
export async function putPayloads(
  settings: LargeEventSettings,
  payloads: readonly LargeEventPayload[],
): Promise<void> {
  for (const payload of payloads) {
    try {
      await (settings.client ?? sharedS3Client()).send(
        new PutObjectCommand({
          Bucket: payload.bucket,
          Key: payload.key,
          Body: payload.body,
          ContentType: 'application/json',
        }),
      );
    } catch (error) {
      const e = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
      const status = e?.$metadata?.httpStatusCode ?? 0;
      const message = `Storing the data of large event ${payload.eventId} as s3://${payload.bucket}/${payload.key} failed (${e?.name ?? 'Error'}); nothing was committed`;
      if (e?.$retryable || status >= 500 || status === 0 || e?.name === 'SlowDown') {
        throw new OutboxRetryableError(message, error);
      }
      throw new OutboxError(
        `${message}. Check the producer's grant (outbox.grantWrite) allows s3:PutObject on the bucket's prefix.`,
        { cause: error },
      );
    }
  }
}
