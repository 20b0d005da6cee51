/**
 * `outbox replay --from <time> --to <time> [--subscription <name>] [--dry-run]`: re-sends retained
 * (PUBLISHED, not yet expired by TTL) outbox events whose `createdAt` is in [from, to).
 *
 * Finding them takes a parallel Scan of the whole table with a FilterExpression: the table has no index by
 * creation time (the sparse index holds only records that still need work). The Scan reads every item,
 * whatever the filter keeps; for this rare operator action that is acceptable, and the command prints the
 * read units it consumed.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  EVENT_SORT_KEY_PREFIX,
  OutboxStatus,
  PARTITION_KEY,
  RecordAttribute,
  SORT_KEY,
} from '../../functions/runtime/record-format.ts';
import {
  type CliIo,
  CliUsageError,
  type CommandContext,
  type CommandDefinition,
  ExitCode,
  expectPositionals,
  formatJson,
  formatTable,
  integerOption,
  runCommand,
  stringOption,
  timeOption,
  truncate,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import { type Deployment, findSubscription, queueNameOf } from './deployment.ts';
import { envelopeJsonOf, parseEnvelope } from './outbox-index.ts';
import { type DeliveryReport, deliver, type ReplayTarget, type StoredEvent } from './publish.ts';

export interface ReplayWindow {
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
}

export interface ReplayScan {
  /** Events in the window, ordered by aggregate key then sequence. */
  readonly events: StoredEvent[];
  /** Items the Scan read (the whole table). */
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly segments: number;
  /** Records in the window whose envelope could not be read (not sent; listed by key). */
  readonly unreadable: readonly { readonly aggregateKey: string; readonly sk: string }[];
}

export type { ReplayTarget };

export interface ReplayResult {
  readonly window: { readonly from: string; readonly to: string };
  readonly dryRun: boolean;
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly segments: number;
  readonly matched: number;
  readonly unreadable: readonly { readonly aggregateKey: string; readonly sk: string }[];
  /** First events of the window (all of them with --json), without data. */
  readonly events: readonly {
    aggregateKey: string;
    sequence: number;
    id: string;
    type: string;
    createdAt: string;
  }[];
  /** The targets, described for people. */
  readonly targets: readonly string[];
  /** Absent on a dry run or when nothing matched. */
  readonly delivery?: DeliveryReport;
}

/** Parallel Scan for PUBLISHED `EVT#` records with `from <= createdAt < to`. */
export async function findReplayable(
  clients: OutboxClients,
  tableName: string,
  window: ReplayWindow,
  segments: number,
): Promise<ReplayScan> {
  let scannedCount = 0;
  let readUnits = 0;
  const items: Record<string, unknown>[] = [];
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await clients.dynamodb.send(
          new ScanCommand({
            TableName: tableName,
            Segment: segment,
            TotalSegments: segments,
            FilterExpression:
              'begins_with(#sk, :evt) AND #status = :published AND #createdAt >= :from AND #createdAt < :to',
            ProjectionExpression:
              '#pk, #sk, #id, #type, #source, #sequence, #envelope, #envelopeGzip, #createdAt',
            ExpressionAttributeNames: {
              '#pk': PARTITION_KEY,
              '#sk': SORT_KEY,
              '#id': RecordAttribute.id,
              '#type': RecordAttribute.type,
              '#source': RecordAttribute.source,
              '#sequence': RecordAttribute.sequence,
              '#status': RecordAttribute.status,
              '#envelope': RecordAttribute.envelope,
              '#envelopeGzip': RecordAttribute.envelopeGzip,
              '#createdAt': RecordAttribute.createdAt,
            },
            ExpressionAttributeValues: {
              ':evt': EVENT_SORT_KEY_PREFIX,
              ':published': OutboxStatus.Published,
              ':from': window.from,
              ':to': window.to,
            },
            ReturnConsumedCapacity: 'TOTAL',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        );
        scannedCount += page.ScannedCount ?? 0;
        readUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
        items.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  const events: StoredEvent[] = [];
  const unreadable: { aggregateKey: string; sk: string }[] = [];
  for (const item of items) {
    const aggregateKey = String(item[PARTITION_KEY]);
    const sk = String(item[SORT_KEY]);
    let json: string | undefined;
    try {
      json = envelopeJsonOf(item);
    } catch {
      json = undefined;
    }
    const envelope = json === undefined ? undefined : parseEnvelope(json);
    if (json === undefined || envelope === undefined) {
      unreadable.push({ aggregateKey, sk });
      continue;
    }
    events.push({
      aggregateKey: envelope.partitionkey,
      sk,
      sequence: envelope.sequence,
      id: envelope.id,
      type: envelope.type,
      source: envelope.source,
      ...(typeof envelope.subject === 'string' && envelope.subject !== ''
        ? { subject: envelope.subject }
        : {}),
      createdAt: Number(item[RecordAttribute.createdAt]),
      envelope: json,
    });
  }
  events.sort((a, b) =>
    a.aggregateKey === b.aggregateKey ? a.sequence - b.sequence : a.aggregateKey < b.aggregateKey ? -1 : 1,
  );
  return { events, scannedCount, readUnits, segments, unreadable };
}

/** Where `replay` sends: the named subscription's queue, else the deployment's topic and/or bus. */
export function replayTargets(
  deployment: Deployment,
  subscription: string | undefined,
  only: 'topic' | 'bus' | undefined,
): ReplayTarget[] {
  if (subscription !== undefined) {
    const s = findSubscription(deployment, subscription);
    return [{ kind: 'subscription', name: s.name, queueUrl: s.queueUrl, fifo: s.fifo }];
  }
  const targets: ReplayTarget[] = [];
  if (deployment.topicArn && only !== 'bus') targets.push({ kind: 'topic', topicArn: deployment.topicArn });
  if (deployment.busName && only !== 'topic') targets.push({ kind: 'bus', busName: deployment.busName });
  if (targets.length === 0) {
    throw new CliUsageError(
      only === undefined
        ? 'this deployment has neither a topic nor a bus to republish to: name a queue with --subscription <name>'
        : `this deployment has no ${only}: drop --target or use --subscription <name>`,
    );
  }
  return targets;
}

function describeTarget(target: ReplayTarget): string {
  switch (target.kind) {
    case 'subscription':
      return `subscription ${target.name} (queue ${queueNameOf(target.queueUrl)})`;
    case 'topic':
      return `topic ${target.topicArn}`;
    case 'bus':
      return `bus ${target.busName}`;
  }
}

export interface ReplayOptions {
  readonly window: ReplayWindow;
  readonly subscription?: string;
  readonly target?: 'topic' | 'bus';
  readonly dryRun: boolean;
  /** Parallel Scan segments. @default 4 */
  readonly segments?: number;
  /** Suffix of FIFO dedup ids (`<id>.replay.<suffix>`). @default the current time in ms */
  readonly runId?: string;
}

export async function replay(
  clients: OutboxClients,
  deployment: Deployment,
  options: ReplayOptions,
): Promise<ReplayResult> {
  // Resolve targets first: a wrong --subscription must fail before the Scan is paid for.
  const targets = replayTargets(deployment, options.subscription, options.target);
  const scan = await findReplayable(
    clients,
    deployment.outboxTableName,
    options.window,
    options.segments ?? 4,
  );
  const runId = options.runId ?? String(Date.now());
  const delivery =
    options.dryRun || scan.events.length === 0
      ? undefined
      : await deliver(clients, targets, scan.events, { runId });
  return {
    window: {
      from: new Date(options.window.from).toISOString(),
      to: new Date(options.window.to).toISOString(),
    },
    dryRun: options.dryRun,
    scannedCount: scan.scannedCount,
    readUnits: scan.readUnits,
    segments: scan.segments,
    matched: scan.events.length,
    unreadable: scan.unreadable,
    events: scan.events.map((e) => ({
      aggregateKey: e.aggregateKey,
      sequence: e.sequence,
      id: e.id,
      type: e.type,
      createdAt: new Date(e.createdAt).toISOString(),
    })),
    targets: targets.map(describeTarget),
    ...(delivery === undefined ? {} : { delivery }),
  };
}

const SHOWN_EVENTS = 20;

export function formatReplay(result: ReplayResult): string {
  const lines = [
    `replay ${result.window.from} → ${result.window.to}: ${result.matched} published event(s) in the window`,
    `  read cost: a parallel Scan of the whole table in ${result.segments} segment(s) read ${result.scannedCount} item(s), ${result.readUnits} read units`,
  ];
  if (result.unreadable.length > 0) {
    lines.push(
      `  ${result.unreadable.length} record(s) in the window have no readable envelope and were not sent:`,
    );
    for (const u of result.unreadable.slice(0, SHOWN_EVENTS)) lines.push(`    ${u.aggregateKey} ${u.sk}`);
  }
  if (result.events.length > 0) {
    lines.push(
      formatTable(
        ['aggregate', 'seq', 'id', 'type', 'created'],
        result.events
          .slice(0, SHOWN_EVENTS)
          .map((e) => [truncate(e.aggregateKey, 32), e.sequence, e.id, truncate(e.type, 40), e.createdAt]),
      ).trimEnd(),
    );
    if (result.events.length > SHOWN_EVENTS)
      lines.push(`  … and ${result.events.length - SHOWN_EVENTS} more (--json lists all)`);
  }
  if (result.dryRun) {
    lines.push(`dry run: nothing was sent (would send to ${result.targets.join(' and ')}).`);
  } else if (result.delivery) {
    const d = result.delivery;
    lines.push(
      `sent ${d.sent} of ${result.matched} to ${result.targets.join(' and ')}; failed ${d.failed.length}; skipped ${d.skipped.length} (later events of a failed aggregate)`,
    );
    for (const t of d.targets) lines.push(`  ${t.target}: accepted ${t.accepted} in ${t.calls} call(s)`);
    for (const f of d.failed.slice(0, SHOWN_EVENTS)) lines.push(`  failed ${f.id}: ${f.reason}`);
    lines.push('consumers deduplicate on event id, so events they already applied are skipped.');
  }
  return `${lines.join('\n')}\n`;
}

export const replayCommand: CommandDefinition = {
  usage:
    'outbox replay --from <ISO time> --to <ISO time> [--subscription <name> | --target topic|bus] [--dry-run] [--segments N] [--json] [deployment options]',
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    subscription: { type: 'string' },
    target: { type: 'string' },
    'dry-run': { type: 'boolean' },
    segments: { type: 'string' },
  },
  prepare: (args) => {
    expectPositionals(args, 0);
    const from = timeOption(args.values, 'from');
    const to = timeOption(args.values, 'to');
    if (from === undefined || to === undefined) throw new CliUsageError('--from and --to are required');
    if (from >= to) throw new CliUsageError('--from must be earlier than --to');
    const subscription = stringOption(args.values, 'subscription');
    const target = stringOption(args.values, 'target');
    if (target !== undefined && target !== 'topic' && target !== 'bus') {
      throw new CliUsageError(`--target must be "topic" or "bus", got "${target}"`);
    }
    if (target !== undefined && subscription !== undefined) {
      throw new CliUsageError('use either --subscription (one queue) or --target (topic or bus), not both');
    }
    const segments = integerOption(args.values, 'segments', 4, 1, 64);
    const dryRun = args.values['dry-run'] === true;
    return async ({ deployment, clients, io, json }: CommandContext) => {
      const result = await replay(clients, deployment, {
        window: { from, to },
        dryRun,
        segments,
        ...(subscription === undefined ? {} : { subscription }),
        ...(target === undefined ? {} : { target }),
      });
      io.stdout(json ? formatJson(result) : formatReplay(result));
      const incomplete = (result.delivery?.failed.length ?? 0) + (result.delivery?.skipped.length ?? 0) > 0;
      return incomplete || result.unreadable.length > 0 ? ExitCode.failure : ExitCode.ok;
    };
  },
};

export function runReplayCommand(argv: readonly string[], io: CliIo): Promise<number> {
  return runCommand(replayCommand, argv, io);
}
