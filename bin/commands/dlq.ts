/**
 * `outbox dlq list <subscription>` peeks at a subscription's dead-letter queue without consuming it;
 * `outbox dlq redrive <subscription>` moves DLQ messages back to the subscription queue, after showing a summary
 * and asking (or `--yes`), at most `--max` at `--rate` per second. `--aggregate <key>` moves one aggregate's
 * messages only, in sequence order, and leaves the others in the DLQ.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { POISON_REASON_ATTRIBUTE } from '../../functions/consumer/consumer.ts';
import { isOutboxEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';
import {
  type CliIo,
  CliUsageError,
  type CommandContext,
  type CommandDefinition,
  confirmAction,
  DEFAULT_RATE,
  defaultSleep,
  describeError,
  ExitCode,
  expectPositionals,
  formatJson,
  formatTable,
  GUARD_OPTIONS,
  GUARD_OPTIONS_USAGE,
  type Guard,
  guardOf,
  integerOption,
  Pacer,
  runCommand,
  stringOption,
  truncate,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import { findSubscription, queueNameOf, type SubscriptionQueues } from './deployment.ts';
import { queueDepth } from './status.ts';

/** How the message body carried the event. */
export type BodyFormat = 'envelope' | 'sns-notification' | 'eventbridge-event' | 'unrecognised';

/** What `dlq list` shows of one message. Never the event's `data`. */
export interface DlqMessageSummary {
  readonly messageId: string;
  readonly format: BodyFormat;
  readonly eventId?: string;
  readonly type?: string;
  readonly partitionkey?: string;
  readonly sequence?: number;
  readonly messageGroupId?: string;
  /** ApproximateReceiveCount, including this peek. */
  readonly receiveCount?: number;
  /** SentTimestamp as ISO time. */
  readonly sentAt?: string;
  readonly bodyBytes: number;
  /** Why the consumer dead-lettered it: the `outbox.poison-reason` message attribute, when set. */
  readonly error?: string;
}

/** One aggregate (partitionkey) of a `dlq list`. */
export interface DlqAggregateSummary {
  /** The envelope's partitionkey; `(not an outbox envelope)` for bodies that are not one. */
  readonly aggregate: string;
  /** Messages of this aggregate among the peeked ones. */
  readonly count: number;
  /** The lowest sequence seen: where an ordered consumer got stuck. */
  readonly firstSequence?: number;
  readonly firstMessageId: string;
  readonly firstEventId?: string;
  /** The first message's poison reason, or `received N time(s)` when the consumer set none. */
  readonly error: string;
}

export interface DlqListResult {
  readonly subscription: string;
  readonly deadLetterQueueUrl: string;
  /** DLQ depth before peeking (visible + in flight + delayed). */
  readonly depth: number;
  readonly messages: readonly DlqMessageSummary[];
  /** The peeked messages grouped by aggregate, in order of their first appearance. */
  readonly aggregates: readonly DlqAggregateSummary[];
  /** Messages whose visibility could not be reset: they reappear when the peek's visibility timeout ends. */
  readonly notReset: number;
}

export interface RedriveResult {
  readonly subscription: string;
  readonly from: string;
  readonly to: string;
  /** Sent to the subscription queue and deleted from the DLQ. */
  readonly moved: number;
  /** Sent but not deleted from the DLQ (a re-run sends them again; consumers dedup on event id). */
  readonly sentNotDeleted: number;
  /** Could not be sent; left in the DLQ. */
  readonly failed: number;
  /** Messages this run had moved that failed again and came back to the DLQ; left there. */
  readonly returned: number;
  readonly errors: readonly string[];
  /** DLQ depth after the run. */
  readonly remaining?: number;
}

/** What `dlq redrive --aggregate` did. */
export interface AggregateRedriveResult extends RedriveResult {
  readonly aggregate: string;
  /** The sequences sent to the subscription queue, in the order they were sent. */
  readonly sequences: readonly number[];
  /** Other aggregates' messages the scan received and left in the DLQ. */
  readonly skipped: number;
  /** Messages whose visibility could not be reset to 0: they reappear when the scan's visibility timeout ends. */
  readonly notReset: number;
  /** The scan stopped at AGGREGATE_SCAN_LIMIT held messages: the aggregate may have more behind them. */
  readonly scanLimited: boolean;
}

/** Visibility timeout while peeking: if the CLI dies, messages reappear after this. */
export const PEEK_VISIBILITY_SECONDS = 30;
/** Visibility timeout while redriving: long enough to send and delete one batch. */
export const REDRIVE_VISIBILITY_SECONDS = 60;
/**
 * Visibility timeout of the messages a per-aggregate redrive receives while it scans the DLQ: it holds the other
 * aggregates' messages until the run ends, then sets their visibility back to 0. If the CLI dies, they reappear
 * after this.
 */
export const AGGREGATE_SCAN_VISIBILITY_SECONDS = 300;
/** Most messages a per-aggregate redrive holds (received, not its aggregate) during one run. */
export const AGGREGATE_SCAN_LIMIT = 10_000;
/** The `dlq list` aggregate of a message whose body is not an outbox envelope. */
export const NOT_AN_ENVELOPE = '(not an outbox envelope)';
/** Keep a send batch under 256 KiB (the limit of queues that did not raise MaximumMessageSize). */
const MAX_BATCH_BYTES = 262_144;

/** Reads the event identity from a message body: a raw envelope, an SNS notification, or an EventBridge event. */
export function describeBody(
  body: string | undefined,
): Omit<DlqMessageSummary, 'messageId' | 'receiveCount' | 'sentAt' | 'messageGroupId'> {
  const bodyBytes = Buffer.byteLength(body ?? '', 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(body ?? '');
  } catch {
    return { format: 'unrecognised', bodyBytes };
  }
  let format: BodyFormat = 'envelope';
  let envelope: unknown = value;
  const v = value as Record<string, unknown> | null;
  if (v && typeof v === 'object' && !isOutboxEnvelope(v)) {
    if (v.Type === 'Notification' && typeof v.Message === 'string') {
      format = 'sns-notification';
      try {
        envelope = JSON.parse(v.Message);
      } catch {
        return { format: 'unrecognised', bodyBytes };
      }
    } else if (typeof v['detail-type'] === 'string' && v.detail && typeof v.detail === 'object') {
      format = 'eventbridge-event';
      envelope = v.detail;
    }
  }
  if (!isOutboxEnvelope(envelope)) return { format: 'unrecognised', bodyBytes };
  const e = envelope as OutboxEnvelope;
  return {
    format,
    eventId: e.id,
    type: e.type,
    partitionkey: e.partitionkey,
    sequence: e.sequence,
    bodyBytes,
  };
}

export function summarizeMessage(message: Message): DlqMessageSummary {
  const attributes = message.Attributes ?? {};
  const receiveCount = Number(attributes.ApproximateReceiveCount);
  const sent = Number(attributes.SentTimestamp);
  const reason = message.MessageAttributes?.[POISON_REASON_ATTRIBUTE]?.StringValue;
  return {
    messageId: message.MessageId ?? '',
    ...describeBody(message.Body),
    ...(attributes.MessageGroupId ? { messageGroupId: attributes.MessageGroupId } : {}),
    ...(Number.isFinite(receiveCount) && attributes.ApproximateReceiveCount ? { receiveCount } : {}),
    ...(Number.isFinite(sent) && attributes.SentTimestamp ? { sentAt: new Date(sent).toISOString() } : {}),
    ...(reason ? { error: reason } : {}),
  };
}

/**
 * Groups DLQ messages by aggregate (the envelope's partitionkey), in order of first appearance. Per aggregate:
 * the count, and the message with the lowest sequence — the first failed event of an ordered consumer — with its
 * poison reason or, when the consumer set none (the queue's redrive policy moved it), its receive count.
 */
export function groupByAggregate(messages: readonly DlqMessageSummary[]): DlqAggregateSummary[] {
  const groups = new Map<string, DlqMessageSummary[]>();
  for (const m of messages) {
    const key = m.partitionkey ?? NOT_AN_ENVELOPE;
    const group = groups.get(key);
    if (group) group.push(m);
    else groups.set(key, [m]);
  }
  return [...groups].map(([aggregate, group]) => {
    const first = group.reduce((a, b) =>
      (b.sequence ?? Number.POSITIVE_INFINITY) < (a.sequence ?? Number.POSITIVE_INFINITY) ? b : a,
    );
    return {
      aggregate,
      count: group.length,
      ...(first.sequence === undefined ? {} : { firstSequence: first.sequence }),
      firstMessageId: first.messageId,
      ...(first.eventId === undefined ? {} : { firstEventId: first.eventId }),
      error:
        first.error ??
        (first.receiveCount === undefined ? 'no reason recorded' : `received ${first.receiveCount} time(s)`),
    };
  });
}

/** Makes messages visible again at once (newest first, so a FIFO group keeps its order on emulators too). */
async function resetVisibility(
  clients: OutboxClients,
  queueUrl: string,
  messages: readonly Message[],
): Promise<number> {
  let failed = 0;
  const reversed = [...messages].reverse();
  for (let i = 0; i < reversed.length; i += 10) {
    const batch = reversed.slice(i, i + 10);
    try {
      const response = await clients.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((m, j) => ({
            Id: String(j),
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: 0,
          })),
        }),
      );
      failed += response.Failed?.length ?? 0;
    } catch {
      failed += batch.length;
    }
  }
  return failed;
}

async function receiveBatch(
  clients: OutboxClients,
  queueUrl: string,
  max: number,
  visibilityTimeout: number,
): Promise<Message[]> {
  const response = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
      VisibilityTimeout: visibilityTimeout,
      // Long polling asks every SQS server; a short poll may answer "empty" while messages remain.
      WaitTimeSeconds: 1,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return response.Messages ?? [];
}

/**
 * Peeks at up to `max` DLQ messages: receives them with a short visibility timeout, then makes them visible
 * again at once. Nothing is deleted; each message's receive count goes up by one. In a FIFO DLQ only the first
 * messages of each message group are visible to a peek (SQS hides the rest of a group while its head is in flight).
 */
export async function listDlq(
  clients: OutboxClients,
  subscription: SubscriptionQueues,
  max: number,
): Promise<DlqListResult> {
  const before = await queueDepth(clients, subscription.deadLetterQueueUrl);
  const received: Message[] = [];
  let notReset = 0;
  try {
    while (received.length < max) {
      const batch = await receiveBatch(
        clients,
        subscription.deadLetterQueueUrl,
        max - received.length,
        PEEK_VISIBILITY_SECONDS,
      );
      if (batch.length === 0) break;
      received.push(...batch);
    }
  } finally {
    notReset = await resetVisibility(clients, subscription.deadLetterQueueUrl, received);
  }
  const messages = received.map(summarizeMessage);
  return {
    subscription: subscription.name,
    deadLetterQueueUrl: subscription.deadLetterQueueUrl,
    depth: before.visible + before.inFlight + before.delayed,
    messages,
    aggregates: groupByAggregate(messages),
    notReset,
  };
}

function cleanAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): Record<string, MessageAttributeValue> | undefined {
  if (!attributes) return undefined;
  const cleaned: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (!value.DataType) continue;
    cleaned[name] = {
      DataType: value.DataType,
      ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
      ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
    };
  }
  return Object.keys(cleaned).length > 0 ? cleaned : undefined;
}

/** The dedup id of a redriven message: fresh (not the original's), and the same if a re-run sends it again. */
export function redriveDeduplicationId(messageId: string): string {
  return `redrive.${messageId}`.slice(0, 128);
}

/** The SendMessageBatch entry that puts a DLQ message back on its source queue. */
export function redriveEntry(message: Message, index: number, fifo: boolean): SendMessageBatchRequestEntry {
  const attributes = cleanAttributes(message.MessageAttributes);
  const groupId = message.Attributes?.MessageGroupId ?? describeBody(message.Body).partitionkey ?? 'redrive';
  return {
    Id: String(index),
    MessageBody: message.Body ?? '',
    ...(attributes ? { MessageAttributes: attributes } : {}),
    ...(fifo
      ? {
          MessageGroupId: groupId,
          MessageDeduplicationId: redriveDeduplicationId(message.MessageId ?? String(index)),
        }
      : {}),
  };
}

/** Splits messages into send batches of ≤ 10 entries and ≤ 256 KiB (a larger message goes alone). */
export function sendBatches(messages: readonly Message[]): Message[][] {
  const batches: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = Buffer.byteLength(message.Body ?? '', 'utf8');
    if (current.length > 0 && (current.length === 10 || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** What both redrives take: how many messages at most, how fast, and (for tests) the clock. */
export interface RedriveOptions {
  max?: number;
  /** Messages per second. @default DEFAULT_RATE */
  rate?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

function pacerOf(options: RedriveOptions): Pacer {
  return new Pacer(options.rate ?? DEFAULT_RATE, options.now ?? Date.now, options.sleep ?? defaultSleep);
}

/**
 * Moves DLQ messages back to the subscription queue: receive → send → delete, batch by batch, at most `max`
 * messages and `rate` per second (a receive takes at most one batch, so memory holds one batch).
 * FIFO: keeps the MessageGroupId and uses `redrive.<message id>` as dedup id, so the 5-minute dedup window of
 * the original send does not drop it, and a re-run after a crash does not send it twice within 5 minutes.
 * Stops at the first failed send (so a FIFO group never overtakes a failed message) and when a message it
 * moved comes back to the DLQ (the consumer still fails it). Safe to re-run: consumers dedup on event id.
 */
export async function redriveDlq(
  clients: OutboxClients,
  subscription: SubscriptionQueues,
  options: RedriveOptions = {},
): Promise<RedriveResult> {
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const pacer = pacerOf(options);
  const from = subscription.deadLetterQueueUrl;
  const to = subscription.queueUrl;
  const sentIds = new Set<string>();
  const errors: string[] = [];
  let moved = 0;
  let sentNotDeleted = 0;
  let failed = 0;
  let returned = 0;
  let stop = false;
  while (!stop && moved + sentNotDeleted < max) {
    // One receive per rate step: at most `chunk` messages, so a batch never waits long while invisible.
    const received = await receiveBatch(
      clients,
      from,
      Math.min(pacer.chunk, max - moved - sentNotDeleted),
      REDRIVE_VISIBILITY_SECONDS,
    );
    if (received.length === 0) break;
    const back = received.filter((m) => sentIds.has(m.MessageId ?? ''));
    const toSend = received.filter((m) => !sentIds.has(m.MessageId ?? ''));
    if (back.length > 0) {
      returned += back.length;
      stop = true;
      await resetVisibility(clients, from, back);
    }
    const unsent: Message[] = [];
    for (const batch of sendBatches(toSend)) {
      if (stop) {
        unsent.push(...batch);
        continue;
      }
      await pacer.take(batch.length);
      const outcome = await moveBatch(
        clients,
        { from, to },
        batch,
        (m, i) => redriveEntry(m, i, subscription.fifo),
        sentIds,
        errors,
      );
      failed += outcome.failed;
      unsent.push(...outcome.unsent);
      if (outcome.unsent.length > 0) stop = true;
      moved += outcome.deleted;
      sentNotDeleted += outcome.sent.length - outcome.deleted;
    }
    if (unsent.length > 0) await resetVisibility(clients, from, unsent);
  }
  const remaining = await remainingDepth(clients, from, errors);
  return {
    subscription: subscription.name,
    from,
    to,
    moved,
    sentNotDeleted,
    failed,
    returned,
    errors,
    ...(remaining === undefined ? {} : { remaining }),
  };
}

function sequenceOf(message: Message): number {
  return describeBody(message.Body).sequence ?? Number.POSITIVE_INFINITY;
}

/**
 * Sends one batch back to the subscription queue and deletes from the DLQ only what was sent. A failed call or
 * entry is counted and returned unsent (the caller stops there, so a FIFO group never overtakes it).
 */
async function moveBatch(
  clients: OutboxClients,
  queues: { readonly from: string; readonly to: string },
  batch: readonly Message[],
  entry: (message: Message, index: number) => SendMessageBatchRequestEntry,
  sentIds: Set<string>,
  errors: string[],
): Promise<{ sent: Message[]; unsent: Message[]; deleted: number; failed: number }> {
  let response: SendMessageBatchCommandOutput;
  try {
    response = await clients.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queues.to, Entries: batch.map((m, i) => entry(m, i)) }),
    );
  } catch (error) {
    errors.push(`send to ${queueNameOf(queues.to)} failed: ${describeError(error)}`);
    return { sent: [], unsent: [...batch], deleted: 0, failed: batch.length };
  }
  const failedIds = new Set((response.Failed ?? []).map((f) => f.Id));
  for (const f of response.Failed ?? [])
    errors.push(`message ${batch[Number(f.Id)]?.MessageId}: ${f.Code} ${f.Message ?? ''}`.trim());
  for (const s of response.Successful ?? []) if (s.MessageId) sentIds.add(s.MessageId);
  const sent = batch.filter((_, i) => !failedIds.has(String(i)));
  const unsent = batch.filter((_, i) => failedIds.has(String(i)));
  const deleted = await deleteMessages(clients, queues.from, sent, errors);
  return { sent, unsent, deleted, failed: failedIds.size };
}

/** Messages left in the DLQ (visible, in flight, delayed), or undefined (with an error) when unreadable. */
async function remainingDepth(
  clients: OutboxClients,
  queueUrl: string,
  errors: string[],
): Promise<number | undefined> {
  try {
    const depth = await queueDepth(clients, queueUrl);
    return depth.visible + depth.inFlight + depth.delayed;
  } catch (error) {
    errors.push(`cannot read the DLQ depth: ${describeError(error)}`);
    return undefined;
  }
}

/**
 * Moves one aggregate's DLQ messages (envelope partitionkey = `aggregate`) back to the subscription queue, in
 * sequence order, and leaves every other message in the DLQ.
 *
 * Each round scans the DLQ — receives until nothing is visible, with a AGGREGATE_SCAN_VISIBILITY_SECONDS
 * visibility timeout — keeps the aggregate's messages and holds the others (in flight, so the scan ends), sorts
 * the aggregate's by sequence and sends them (MessageGroupId = the aggregate; dedup id `redrive.<DLQ message
 * id>`), deleting each from the DLQ only after its send succeeded. Rounds repeat because a FIFO DLQ shows only
 * the first messages of a group while they are in flight; deleting them shows the next. At the end (also after
 * an error) the held messages' visibility is set back to 0, so they are visible again at once.
 * Stops at the first failed send and when a message it moved comes back to the DLQ, as `redriveDlq` does.
 */
export async function redriveAggregate(
  clients: OutboxClients,
  subscription: SubscriptionQueues,
  aggregate: string,
  options: RedriveOptions = {},
): Promise<AggregateRedriveResult> {
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const pacer = pacerOf(options);
  const from = subscription.deadLetterQueueUrl;
  const to = subscription.queueUrl;
  /** Other aggregates' messages, by message id (a re-received one replaces its receipt handle). */
  const held = new Map<string, Message>();
  /** The aggregate's messages not sent (after a stop, beyond --max, or came back): made visible again. */
  const putBack = new Map<string, Message>();
  const sentIds = new Set<string>();
  const sequences: number[] = [];
  const errors: string[] = [];
  let moved = 0;
  let sentNotDeleted = 0;
  let failed = 0;
  let returned = 0;
  let scanLimited = false;
  let notReset = 0;
  let stop = false;
  try {
    while (!stop && moved + sentNotDeleted < max) {
      const mine = new Map<string, Message>();
      for (;;) {
        if (held.size + mine.size + putBack.size >= AGGREGATE_SCAN_LIMIT) {
          scanLimited = true;
          break;
        }
        const batch = await receiveBatch(clients, from, 10, AGGREGATE_SCAN_VISIBILITY_SECONDS);
        if (batch.length === 0) break;
        for (const m of batch) {
          const id = m.MessageId ?? '';
          if (describeBody(m.Body).partitionkey !== aggregate) held.set(id, m);
          else if (sentIds.has(id)) {
            returned++;
            stop = true;
            putBack.set(id, m);
          } else mine.set(id, m);
        }
      }
      if (mine.size === 0) break;
      const ordered = [...mine.values()].sort((a, b) => sequenceOf(a) - sequenceOf(b));
      if (stop) {
        for (const m of ordered) putBack.set(m.MessageId ?? '', m);
        break;
      }
      const room = max - moved - sentNotDeleted;
      for (const m of ordered.slice(room)) putBack.set(m.MessageId ?? '', m);
      const toSend = ordered.slice(0, room);
      for (let i = 0; i < toSend.length; i += pacer.chunk) {
        for (const batch of sendBatches(toSend.slice(i, i + pacer.chunk))) {
          if (stop) {
            for (const m of batch) putBack.set(m.MessageId ?? '', m);
            continue;
          }
          await pacer.take(batch.length);
          const outcome = await moveBatch(
            clients,
            { from, to },
            batch,
            (m, j) => ({
              ...redriveEntry(m, j, subscription.fifo),
              ...(subscription.fifo ? { MessageGroupId: aggregate } : {}),
            }),
            sentIds,
            errors,
          );
          failed += outcome.failed;
          for (const m of outcome.unsent) putBack.set(m.MessageId ?? '', m);
          if (outcome.unsent.length > 0) stop = true;
          for (const m of outcome.sent) sequences.push(sequenceOf(m));
          moved += outcome.deleted;
          sentNotDeleted += outcome.sent.length - outcome.deleted;
        }
      }
    }
  } finally {
    notReset = await resetVisibility(clients, from, [...held.values(), ...putBack.values()]);
  }
  const remaining = await remainingDepth(clients, from, errors);
  if (notReset > 0)
    errors.push(
      `${notReset} message(s) could not be made visible again; they reappear within ${AGGREGATE_SCAN_VISIBILITY_SECONDS}s.`,
    );
  return {
    subscription: subscription.name,
    aggregate,
    from,
    to,
    moved,
    sentNotDeleted,
    failed,
    returned,
    sequences,
    skipped: held.size,
    notReset,
    scanLimited,
    errors,
    ...(remaining === undefined ? {} : { remaining }),
  };
}

async function deleteMessages(
  clients: OutboxClients,
  queueUrl: string,
  messages: readonly Message[],
  errors: string[],
): Promise<number> {
  if (messages.length === 0) return 0;
  try {
    const response = await clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    for (const f of response.Failed ?? [])
      errors.push(`delete of ${messages[Number(f.Id)]?.MessageId} failed: ${f.Code}`);
    return messages.length - (response.Failed?.length ?? 0);
  } catch (error) {
    errors.push(`delete from the DLQ failed: ${describeError(error)}`);
    return 0;
  }
}

export function formatDlqList(result: DlqListResult): string {
  const header = `DLQ of ${result.subscription} (${queueNameOf(result.deadLetterQueueUrl)}): ${result.depth} message(s); showing ${result.messages.length}`;
  if (result.messages.length === 0) return `${header}\n`;
  const aggregates = formatTable(
    ['aggregate', 'messages', 'first failed seq', 'error of the first'],
    result.aggregates.map((a) => [
      truncate(a.aggregate, 40),
      a.count,
      a.firstSequence ?? '-',
      truncate(a.error.replace(/\s+/g, ' '), 100),
    ]),
  );
  const rows = result.messages.map((m) => [
    m.messageId,
    m.eventId ?? `(${m.format}, ${m.bodyBytes} bytes)`,
    m.type ? truncate(m.type, 48) : '-',
    m.partitionkey ? truncate(m.partitionkey, 32) : '-',
    m.sequence ?? '-',
    m.receiveCount ?? '-',
    m.sentAt ?? '-',
  ]);
  const notes = [
    'peeked, not consumed: the messages are visible again; their receive count went up by one.',
    ...(result.messages.length < result.depth
      ? [
          'not every message is shown: the --max limit, or (FIFO) messages behind the first ones of their message group, which SQS hides while the group is being read.',
        ]
      : []),
    ...(result.notReset > 0
      ? [
          `${result.notReset} message(s) could not be made visible again; they reappear within ${PEEK_VISIBILITY_SECONDS}s.`,
        ]
      : []),
  ];
  return `${header}\nby aggregate (ordered subscriptions: fix, then \`dlq redrive ${result.subscription} --aggregate <key>\` from its first failed event):\n${aggregates}\nmessages:\n${formatTable(['message id', 'event id', 'type', 'partitionkey', 'seq', 'receives', 'sent'], rows)}${notes.join('\n')}\n`;
}

export function formatRedrive(result: RedriveResult): string {
  const lines = [
    `redrive ${result.subscription}: moved ${result.moved} message(s) from ${queueNameOf(result.from)} to ${queueNameOf(result.to)}` +
      `; failed ${result.failed}; sent but not deleted ${result.sentNotDeleted}; came back ${result.returned}` +
      (result.remaining === undefined ? '' : `; ${result.remaining} left in the DLQ`),
  ];
  if (result.returned > 0) {
    lines.push(
      `${result.returned} redriven message(s) failed again and returned to the DLQ: the consumer still fails them. Fix it, then redrive again.`,
    );
  }
  if (result.failed > 0 || result.sentNotDeleted > 0) {
    lines.push('re-run `outbox dlq redrive` to finish; it is safe (consumers dedup on event id).');
  }
  for (const error of result.errors) lines.push(`  ${error}`);
  return `${lines.join('\n')}\n`;
}

export function formatAggregateRedrive(result: AggregateRedriveResult): string {
  const lines = [
    `redrive ${result.subscription} --aggregate ${result.aggregate}: moved ${result.moved} message(s) from ${queueNameOf(result.from)} to ${queueNameOf(result.to)}` +
      (result.sequences.length > 0 ? ` (sequences ${result.sequences.join(', ')})` : '') +
      `; failed ${result.failed}; sent but not deleted ${result.sentNotDeleted}; came back ${result.returned}`,
    `other aggregates: ${result.skipped} message(s) left in the DLQ (visible again)` +
      (result.remaining === undefined ? '' : `; ${result.remaining} left in the DLQ in all`),
  ];
  if (result.scanLimited) {
    lines.push(
      `the scan stopped after holding ${AGGREGATE_SCAN_LIMIT} other messages: ${result.aggregate} may have more in the DLQ; run it again.`,
    );
  }
  if (result.returned > 0) {
    lines.push(
      `${result.returned} redriven message(s) of ${result.aggregate} failed again and returned to the DLQ: the consumer still fails them. Fix it, then redrive again.`,
    );
  }
  if (result.failed > 0 || result.sentNotDeleted > 0) {
    lines.push(
      `re-run \`outbox dlq redrive ${result.subscription} --aggregate ${result.aggregate}\` to finish; it is safe (consumers dedup on event id).`,
    );
  }
  for (const error of result.errors) lines.push(`  ${error}`);
  return `${lines.join('\n')}\n`;
}

function subscriptionArgument(positionals: readonly string[], usage: string): string {
  const name = positionals[1];
  if (name === undefined) throw new CliUsageError(`missing <subscription>: ${usage}`);
  return name;
}

export const dlqListCommand: CommandDefinition = {
  usage: 'outbox dlq list <subscription> [--max N] [--json] [deployment options]',
  options: { max: { type: 'string' } },
  prepare: (args) => {
    const name = subscriptionArgument(args.positionals, 'outbox dlq list <subscription>');
    expectPositionals(args, 2);
    const max = integerOption(args.values, 'max', 20, 1, 1000);
    return async ({ deployment, clients, io, json }: CommandContext) => {
      const result = await listDlq(clients, findSubscription(deployment, name), max);
      io.stdout(json ? formatJson(result) : formatDlqList(result));
      return result.notReset > 0 ? ExitCode.failure : ExitCode.ok;
    };
  },
};

/** What `dlq redrive` will do, shown before it asks. */
export function redriveSummary(
  subscription: SubscriptionQueues,
  depth: number,
  guard: Pick<Guard, 'max' | 'rate'>,
  aggregate?: string,
): string {
  const most = guard.max === undefined ? depth : Math.min(depth, guard.max);
  if (aggregate !== undefined) {
    return [
      `dlq redrive ${subscription.name} --aggregate ${aggregate}: move the messages of aggregate ${aggregate} (and only those) from ${queueNameOf(subscription.deadLetterQueueUrl)} back to ${queueNameOf(subscription.queueUrl)}, in sequence order`,
      `  in the DLQ: ${depth} message(s) now, of every aggregate; the others stay there`,
      `  at most:    ${guard.max === undefined ? `every message of ${aggregate} (--max N moves fewer)` : `${guard.max} message(s) of ${aggregate} (--max ${guard.max})`}`,
      `  rate:       ${guard.rate} message(s) per second (--rate)`,
      `  the scan holds the other messages for up to ${AGGREGATE_SCAN_VISIBILITY_SECONDS}s and makes them visible again when it ends.`,
      "  the consumer receives them again; it deduplicates on the event id. Fix the consumer's failure first.",
      '',
    ].join('\n');
  }
  return [
    `dlq redrive ${subscription.name}: move messages from ${queueNameOf(subscription.deadLetterQueueUrl)} back to ${queueNameOf(subscription.queueUrl)}`,
    `  in the DLQ: ${depth} message(s) now`,
    `  at most:    ${most} message(s)${guard.max === undefined ? ' (every message; --max N moves fewer)' : ` (--max ${guard.max})`}`,
    `  rate:       ${guard.rate} message(s) per second (--rate)`,
    "  the consumer receives them again; it deduplicates on the event id. Fix the consumer's failure first.",
    '',
  ].join('\n');
}

export const dlqRedriveCommand: CommandDefinition = {
  usage:
    'outbox dlq redrive <subscription> [--aggregate KEY] [--max N] [--rate N] [--yes] [--json] [deployment options]',
  optionsUsage: `  --aggregate <key>     move only this aggregate's messages (envelope partitionkey), in sequence order\n${GUARD_OPTIONS_USAGE}`,
  options: { ...GUARD_OPTIONS, aggregate: { type: 'string' } },
  prepare: (args, setup) => {
    const name = subscriptionArgument(args.positionals, 'outbox dlq redrive <subscription>');
    expectPositionals(args, 2);
    const aggregate = stringOption(args.values, 'aggregate');
    const action = `dlq redrive ${name}${aggregate === undefined ? '' : ` --aggregate ${aggregate}`}`;
    const guard = guardOf(args, setup, action);
    return async ({ deployment, clients, io, now, sleep, json }: CommandContext) => {
      const subscription = findSubscription(deployment, name);
      const depth = await queueDepth(clients, subscription.deadLetterQueueUrl);
      await confirmAction(
        io,
        guard,
        `dlq redrive ${subscription.name}${aggregate === undefined ? '' : ` --aggregate ${aggregate}`}`,
        redriveSummary(subscription, depth.visible + depth.inFlight + depth.delayed, guard, aggregate),
      );
      if (aggregate !== undefined) {
        const result = await redriveAggregate(clients, subscription, aggregate, {
          ...(guard.max === undefined ? {} : { max: guard.max }),
          rate: guard.rate,
          now,
          sleep,
        });
        io.stdout(json ? formatJson(result) : formatAggregateRedrive(result));
        return result.failed + result.sentNotDeleted + result.returned + result.notReset > 0 ||
          result.scanLimited
          ? ExitCode.failure
          : ExitCode.ok;
      }
      const result = await redriveDlq(clients, subscription, {
        ...(guard.max === undefined ? {} : { max: guard.max }),
        rate: guard.rate,
        now,
        sleep,
      });
      io.stdout(json ? formatJson(result) : formatRedrive(result));
      return result.failed + result.sentNotDeleted + result.returned > 0 ? ExitCode.failure : ExitCode.ok;
    };
  },
};

const DLQ_USAGE = 'outbox dlq <list|redrive> <subscription> [options]';

/** `outbox dlq list|redrive ...` */
export function runDlqCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  if (sub === 'list') return runCommand(dlqListCommand, argv, io);
  if (sub === 'redrive') return runCommand(dlqRedriveCommand, argv, io);
  if (sub === '--help' || sub === '-h') {
    io.stdout(`usage: ${DLQ_USAGE}\n  ${dlqListCommand.usage}\n  ${dlqRedriveCommand.usage}\n`);
    return Promise.resolve(ExitCode.ok);
  }
  io.stderr(
    `error: ${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\nusage: ${DLQ_USAGE}\n  ${dlqListCommand.usage}\n  ${dlqRedriveCommand.usage}\n`,
  );
  return Promise.resolve(ExitCode.usage);
}
