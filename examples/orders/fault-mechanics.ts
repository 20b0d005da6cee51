/**
 * The fault mechanics the fixed fault run (faults.ts) and the chaos run (chaos/chaos-plan.ts) share: DynamoDB
 * error answers a proxy sends instead of the real one, a foreign writer's poison record, the stored envelope of
 * a committed event (to deliver it again), and one scheduled sweep of the recovery function.
 */

import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ProxyReply } from 'serverless-outbox/local';
import { envelopeJsonOf } from 'serverless-outbox/writer';
import { ORDER_PLACED } from './contract.ts';
import type { CommittedEvent } from './report.ts';
import type { DemoStack } from './synth.ts';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A DynamoDB error answer as the service sends it (`type` e.g. `InternalServerError`). */
export function dynamoErrorReply(type: string, status: number, message: string): ProxyReply {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }),
  };
}

/** The sort key of an aggregate's event `sequence`, as the writer stores it. */
export const eventSortKey = (sequence: number) => `EVT#${String(sequence).padStart(12, '0')}`;

/**
 * Writes what a buggy foreign writer would store: valid keys, status READY, an envelope that is not JSON. The
 * relay must quarantine it rather than stall its aggregate.
 */
export async function writePoisonRecord(
  doc: DynamoDBDocumentClient,
  tableName: string,
  record: { readonly pk: string; readonly id: string; readonly pendingShard: string },
): Promise<void> {
  await doc.send(
    new PutCommand({
      TableName: tableName,
      Item: {
        pk: record.pk,
        sk: eventSortKey(1),
        id: record.id,
        type: ORDER_PLACED,
        source: '/demo/orders',
        sequence: 1,
        status: 'READY',
        envelope: '{"specversion":"1.0", this is not JSON',
        createdAt: Date.now(),
        attempts: 0,
        pendingShard: record.pendingShard,
        pendingDueAt: Date.now(),
      },
    }),
  );
}

/** A committed event's envelope as the relay would publish it ('' when the record is gone). */
export async function storedEnvelope(
  doc: DynamoDBDocumentClient,
  tableName: string,
  event: Pick<CommittedEvent, 'aggregateKey' | 'sequence'>,
): Promise<string> {
  const { Item: stored = {} } = await doc.send(
    new GetCommand({
      TableName: tableName,
      Key: { pk: event.aggregateKey, sk: eventSortKey(event.sequence) },
    }),
  );
  // Text or gzipped (compressEnvelopes): read through the writer's own reader of its record format.
  return envelopeJsonOf(stored) ?? '';
}

/** Runs the recovery function once, as its schedule would. */
export async function invokeRecoverySweep(stack: DemoStack): Promise<void> {
  await stack.runtime.invoke(stack.resources.recovery, {
    version: '0',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    time: new Date().toISOString(),
    detail: {},
  });
}
