/**
 * `serverless-outbox/writer`: what a producer Lambda imports. `OutboxWriter` commits business writes and outbox
 * records in one DynamoDB transaction; the envelope is CloudEvents 1.0 with outbox extensions. No aws-cdk-lib here.
 */
export { type DeliveryStatus, getStatus } from '../runtime/acks.ts';
export type { LargeEventsOptions } from '../runtime/claim-check.ts';
export * from '../runtime/envelope.ts';
export * from '../runtime/errors.ts';
export { isUuidV7, uuidv7, uuidv7Time } from '../runtime/ids.ts';
export { envelopeJsonOf, storedEnvelopeOf } from '../runtime/record-envelope.ts';
export * from '../runtime/writer.ts';
