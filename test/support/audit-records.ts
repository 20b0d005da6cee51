/**
 * Outbox and dedup records as the audit reads them, for the audit tests and bench/audit.bench.ts: the events
 * are written straight to DynamoDB Local (no writer, no relay) so each test sets exactly the statuses it audits.
 */
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

export interface AuditedEvent {
  readonly id: string;
  readonly type: string;
  /** The aggregate (the record's pk and the envelope's partitionkey). */
  readonly pk: string;
  readonly sequence: number;
}

/** The CloudEvents envelope the writer would store for `event`, with `time` and `data` as given. */
export function auditedEnvelope(event: AuditedEvent, time: string, data: unknown) {
  return {
    specversion: '1.0',
    id: event.id,
    source: '/orders',
    type: event.type,
    time,
    datacontenttype: 'application/json',
    partitionkey: event.pk,
    sequence: event.sequence,
    data,
  };
}

/** An outbox event record (its envelope stored as JSON text) with `status` and its timestamps. */
export function auditedRecord(
  event: AuditedEvent,
  state: { status: string; createdAt: number; publishedAt?: number },
  envelope: { time: string; data: unknown },
): Record<string, unknown> {
  return {
    pk: event.pk,
    sk: `EVT#${String(event.sequence).padStart(12, '0')}`,
    id: event.id,
    type: event.type,
    source: '/orders',
    sequence: event.sequence,
    status: state.status,
    createdAt: state.createdAt,
    ...(state.publishedAt === undefined ? {} : { publishedAt: state.publishedAt }),
    envelope: JSON.stringify(auditedEnvelope(event, envelope.time, envelope.data)),
  };
}

/** Creates a dedup table in DynamoDB Local with the DedupTable's key (pk). */
export async function createLocalDedupTable(client: DynamoDBClient, tableName: string): Promise<string> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
  return tableName;
}
