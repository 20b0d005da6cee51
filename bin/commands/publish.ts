/**
 * Re-sending stored envelopes for `outbox replay`, through the relay's own publishing code
 * (functions/relay: `publishInOrder` and its SNS FIFO / EventBridge / SQS FIFO publishers), so a replayed
 * message carries exactly what the relay sends: the same body, message group, message attributes and
 * EventBridge fields, per-aggregate order, partial-failure checks and retries.
 *
 * The one difference is the FIFO dedup id: the relay uses the event id, which would make SNS/SQS drop a replay
 * of an event published in the last 5 minutes. A replay record carries `<event id>.replay.<run id>` in the
 * field the publishers use as `MessageDeduplicationId` (the envelope, and so the event id consumers dedup on,
 * is unchanged).
 */
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import { type PublishOutcome, publishInOrder } from '../../functions/relay/publish.ts';
import {
  classifyCallError,
  classifyEntryError,
  type EntryResult,
  eventBridgePublisher,
  MAX_ENTRIES_PER_CALL,
  type Publisher,
  snsFifoPublisher,
  sqsFifoPublisher,
} from '../../functions/relay/publishers.ts';
import type { OutboxClients } from './clients.ts';

/** A stored event to re-send: identity, order key and the exact envelope JSON that was published. */
export interface StoredEvent {
  readonly aggregateKey: string;
  readonly sk: string;
  readonly sequence: number;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly subject?: string;
  readonly createdAt: number;
  /** The envelope JSON, byte for byte as stored and published. */
  readonly envelope: string;
}

/** Where a replay goes. */
export type ReplayTarget =
  | {
      readonly kind: 'subscription';
      readonly name: string;
      readonly queueUrl: string;
      readonly fifo: boolean;
    }
  | { readonly kind: 'topic'; readonly topicArn: string }
  | { readonly kind: 'bus'; readonly busName: string };

export interface DeliveryReport {
  /** Per target: entries it accepted and API calls made (retries included). */
  readonly targets: readonly { readonly target: string; readonly accepted: number; readonly calls: number }[];
  /** Events every target accepted. */
  readonly sent: number;
  /** Events that failed for good (retries exhausted, or refused as invalid / too large). */
  readonly failed: readonly { readonly id: string; readonly reason: string }[];
  /** Events not sent because an earlier event of the same aggregate failed (FIFO order is never broken). */
  readonly skipped: readonly string[];
}

/** Replay dedup ids are fresh per run, so the 5-minute FIFO dedup window never drops a replayed event. */
export function replayDeduplicationId(eventId: string, runId: string): string {
  return `${eventId}.replay.${runId}`.slice(0, 128);
}

/**
 * A standard SQS queue (a rule-based subscription): SendMessageBatch with the envelope as body and no
 * attributes, which is what its EventBridge rule delivers (`$.detail`). Implements the relay's Publisher.
 */
export function sqsStandardPublisher(
  client: OutboxClients['sqs'],
  queueUrl: string,
  maxMessageBytes = 1_048_576,
): Publisher {
  const queueName = queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
  const publisher: Publisher = {
    name: `sqs:${queueName}`,
    maxBatchBytes: 262_144,
    recordsPerGroupPerCall: MAX_ENTRIES_PER_CALL,
    entryBytes: (record) => record.envelopeBytes,
    problem: (record) =>
      record.envelopeBytes > maxMessageBytes
        ? `the SQS message is ${record.envelopeBytes} bytes, over the ${maxMessageBytes}-byte limit`
        : undefined,
    async send(records, signal): Promise<EntryResult[]> {
      try {
        const response = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: records.map((r, i) => ({ Id: String(i), MessageBody: r.envelope })),
          }),
          signal ? { abortSignal: signal } : {},
        );
        const failed = new Map((response.Failed ?? []).map((f) => [f.Id, f]));
        const ok = new Set((response.Successful ?? []).map((s) => s.Id));
        return records.map((_, i): EntryResult => {
          const f = failed.get(String(i));
          if (f) {
            return {
              ok: false,
              kind: classifyEntryError(f.Code, f.SenderFault),
              code: f.Code ?? 'Unknown',
              message: f.Message ?? '',
            };
          }
          return ok.has(String(i))
            ? { ok: true }
            : { ok: false, kind: 'retryable', code: 'MissingResult', message: 'no result for this entry' };
        });
      } catch (error) {
        const { kind, code, message } = classifyCallError(error);
        if (kind === 'split' && records.length > 1) {
          // One entry may cause it (too long, invalid): send halves so only that entry fails.
          const half = Math.ceil(records.length / 2);
          return [
            ...(await publisher.send(records.slice(0, half), signal)),
            ...(await publisher.send(records.slice(half), signal)),
          ];
        }
        const failure: EntryResult = { ok: false, kind: kind === 'split' ? 'rejected' : kind, code, message };
        return records.map(() => failure);
      }
    },
  };
  return publisher;
}

/** The relay publisher for a target. SDK clients keep their own retries; publishInOrder adds entry retries. */
export function publisherFor(clients: OutboxClients, target: ReplayTarget): Publisher {
  switch (target.kind) {
    case 'subscription':
      return target.fifo
        ? sqsFifoPublisher({ client: clients.sqs, queueUrl: target.queueUrl })
        : sqsStandardPublisher(clients.sqs, target.queueUrl);
    case 'topic':
      return snsFifoPublisher({ client: clients.sns, topicArn: target.topicArn });
    case 'bus':
      return eventBridgePublisher({ client: clients.eventBridge, eventBusName: target.busName });
  }
}

/** The record the relay's publishers take; `id` is the replay dedup id (see the module comment). */
export function replayRecord(event: StoredEvent, runId: string): OutboxRecord {
  return {
    pk: event.aggregateKey,
    sk: event.sk,
    id: replayDeduplicationId(event.id, runId),
    type: event.type,
    source: event.source,
    sequence: event.sequence,
    envelope: event.envelope,
    envelopeBytes: Buffer.byteLength(event.envelope, 'utf8'),
    createdAt: event.createdAt,
    ...(event.subject === undefined ? {} : { subject: event.subject }),
  };
}

export interface DeliverOptions {
  /** Suffix of the replay dedup ids. */
  readonly runId: string;
  /** No call starts after this many ms. @default 3_600_000 */
  readonly timeoutMs?: number;
  /** For tests. */
  readonly publishers?: readonly Publisher[];
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Sends the events to every target, per aggregate in sequence order; an event counts as sent once all accepted it. */
export async function deliver(
  clients: OutboxClients,
  targets: readonly ReplayTarget[],
  events: readonly StoredEvent[],
  options: DeliverOptions,
): Promise<DeliveryReport> {
  const publishers = options.publishers ?? targets.map((t) => publisherFor(clients, t));
  const records = events.map((e) => replayRecord(e, options.runId));
  const { outcomes, stats } = await publishInOrder(records, publishers, {
    deadline: Date.now() + (options.timeoutMs ?? 3_600_000),
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  return summarizeOutcomes(events, outcomes, publishers, stats);
}

export function summarizeOutcomes(
  events: readonly StoredEvent[],
  outcomes: readonly PublishOutcome[],
  publishers: readonly Pick<Publisher, 'name'>[],
  stats: { readonly calls: Record<string, number>; readonly accepted: Record<string, number> },
): DeliveryReport {
  let sent = 0;
  const failed: { id: string; reason: string }[] = [];
  const skipped: string[] = [];
  outcomes.forEach((outcome, i) => {
    const id = (events[i] as StoredEvent).id;
    switch (outcome.status) {
      case 'published':
        sent++;
        break;
      case 'rejected':
        failed.push({ id, reason: `${outcome.target} refused it: ${outcome.reason}` });
        break;
      case 'failed':
        failed.push({
          id,
          reason:
            `${outcome.target}: ${outcome.code} ${outcome.message} (after ${outcome.attempts} attempt(s))`.trim(),
        });
        break;
      case 'blocked':
        skipped.push(id);
        break;
    }
  });
  return {
    targets: publishers.map((p) => ({
      target: p.name,
      accepted: stats.accepted[p.name] ?? 0,
      calls: stats.calls[p.name] ?? 0,
    })),
    sent,
    failed,
    skipped,
  };
}
