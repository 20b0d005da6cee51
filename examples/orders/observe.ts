/**
 * Reads what actually happened from the local tables and metrics: committed outbox events, the effects
 * each demo subscriber applied, and what the consumers suppressed.
 */

import { readFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { MetricStore } from 'serverless-outbox/local';
import { scanTable } from 'serverless-outbox/local/services';
import { envelopeJsonOf } from 'serverless-outbox/writer';
import type { LedgerEntry } from './contract.ts';
import type { AppliedEffect, CommittedEvent, TracedEvent } from './report.ts';

export function documentClient(endpoint: string): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
  );
}

export interface OutboxSnapshot {
  readonly committed: CommittedEvent[];
  readonly byStatus: Readonly<Record<string, number>>;
  readonly quarantinedIds: string[];
  /** Commit → marked published, per published event (ms). */
  readonly publishDelaysMs: number[];
  /** Each event's status and the `traceparent` of its stored envelope. */
  readonly traced: (TracedEvent & { readonly committedAt: number })[];
}

/** The `traceparent` of an outbox record's envelope (stored as JSON text, or gzipped when large). */
export function envelopeTraceparent(item: Record<string, unknown>): string | undefined {
  try {
    const json = envelopeJsonOf(item);
    if (json === undefined) return undefined;
    const traceparent = (JSON.parse(json) as { traceparent?: unknown }).traceparent;
    return typeof traceparent === 'string' ? traceparent : undefined;
  } catch {
    return undefined;
  }
}

export async function readOutbox(client: DynamoDBDocumentClient, tableName: string): Promise<OutboxSnapshot> {
  const items = await scanTable(client, tableName);
  const committed: CommittedEvent[] = [];
  const byStatus: Record<string, number> = {};
  const quarantinedIds: string[] = [];
  const publishDelaysMs: number[] = [];
  const traced: OutboxSnapshot['traced'] = [];
  for (const item of items) {
    if (!String(item.sk).startsWith('EVT#')) continue;
    const status = String(item.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status === 'QUARANTINED') quarantinedIds.push(String(item.id));
    if (typeof item.publishedAt === 'number') publishDelaysMs.push(item.publishedAt - Number(item.createdAt));
    committed.push({
      id: String(item.id),
      aggregateKey: String(item.pk),
      sequence: Number(item.sequence),
      type: String(item.type),
      committedAt: Number(item.createdAt),
    });
    const traceparent = envelopeTraceparent(item);
    traced.push({
      id: String(item.id),
      status,
      committedAt: Number(item.createdAt),
      ...(traceparent === undefined ? {} : { traceparent }),
    });
  }
  return { committed, byStatus, quarantinedIds, publishDelaysMs, traced };
}

/** A tracked subscriber's acknowledgement of one event (an `ACK#…` item of the outbox table). */
export interface AckItem {
  readonly eventId: string;
  readonly subscriber: string;
  /** PENDING, DONE or FAILED. */
  readonly status: string;
  readonly ackedAt?: number;
}

/**
 * The ack items of the outbox table: found by the `ACK#` partition prefix, named by their `id` and `subscriber`
 * attributes (falling back to the key), so a change of the key layout does not break the report.
 */
export async function readAcks(client: DynamoDBDocumentClient, tableName: string): Promise<AckItem[]> {
  const acks: AckItem[] = [];
  for (const item of await scanTable(client, tableName)) {
    const pk = String(item.pk);
    if (!pk.startsWith('ACK#')) continue;
    acks.push({
      eventId: String(item.id ?? pk.slice('ACK#'.length).split('#')[0]),
      subscriber: String(item.subscriber ?? item.sk),
      status: String(item.status),
      ...(typeof item.ackedAt === 'number' ? { ackedAt: item.ackedAt } : {}),
    });
  }
  return acks;
}

/** billing's effects: every entry of every charge's ledger (a duplicate application is a second entry). */
export async function readBillingEffects(
  client: DynamoDBDocumentClient,
  tableName: string,
): Promise<AppliedEffect[]> {
  const effects: AppliedEffect[] = [];
  for (const item of await scanTable(client, tableName)) {
    for (const entry of (item.ledger as LedgerEntry[] | undefined) ?? []) {
      effects.push({
        subscriber: 'billing',
        eventId: entry.eventId,
        aggregateKey: `order#${String(item.orderId)}`,
        sequence: entry.sequence,
        appliedAt: entry.appliedAt,
      });
    }
  }
  return effects;
}

export interface NotificationEffects {
  readonly effects: AppliedEffect[];
  /** Side-effect calls beyond the first per event: absorbed by the provider's idempotency key. */
  readonly repeatedCalls: number;
}

/** notifications' effects: one delivered notification per sink item (the sink dedups on the event id). */
export async function readNotificationEffects(
  client: DynamoDBDocumentClient,
  tableName: string,
  committed: ReadonlyMap<string, CommittedEvent>,
): Promise<NotificationEffects> {
  const effects: AppliedEffect[] = [];
  let repeatedCalls = 0;
  for (const item of await scanTable(client, tableName)) {
    const eventId = String(item.idempotencyKey);
    const event = committed.get(eventId);
    repeatedCalls += Math.max(0, Number(item.calls ?? 1) - 1);
    effects.push({
      subscriber: 'notifications',
      eventId,
      aggregateKey: event?.aggregateKey ?? '',
      sequence: event?.sequence ?? 0,
      appliedAt: Number(item.firstCallAt),
    });
  }
  return { effects, repeatedCalls };
}

/** Sum of a metric over every datapoint whose dimensions include `dimensions`. */
export function metricSum(
  metrics: MetricStore,
  namespace: string,
  metricName: string,
  dimensions: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  for (const datum of metrics.all()) {
    if (datum.namespace !== namespace || datum.metricName !== metricName) continue;
    if (Object.entries(dimensions).some(([k, v]) => datum.dimensions[k] !== v)) continue;
    sum += datum.value;
  }
  return sum;
}

/** Peak resident memory (VmHWM) of a process, in bytes; 0 when unknown. */
export async function peakRss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
