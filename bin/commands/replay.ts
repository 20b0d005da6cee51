/**
 * `outbox replay --from <time> --to <time> (--subscription <name> | --all-subscribers) [--dry-run]`: re-sends
 * retained (PUBLISHED, not yet expired by TTL) outbox events whose `createdAt` is in [from, to).
 *
 * Finding them takes a parallel Scan of the whole table with a FilterExpression: the table has no index by
 * creation time (the sparse index holds only records that still need work). The Scan reads every item,
 * whatever the filter keeps; for this rare operator action that is acceptable, and the command prints the
 * read units it consumed.
 *
 * Guard rails: a target must be chosen (one subscription, or explicitly every subscriber), the window must make
 * sense (within the retention, not in the future), the operator confirms a summary (or passes `--yes`), at most
 * `--max` events are sent at `--rate` per second, and the Scan is streamed: each page's events are sent before
 * the segment reads its next page, so memory holds one page per segment plus the batch in flight.
 */

import { scanEventWindow } from '../../functions/audit/window-scan.ts';
import type { Publisher } from '../../functions/relay/publishers.ts';
import {
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
  confirmAction,
  DEFAULT_RATE,
  defaultSleep,
  ExitCode,
  expectPositionals,
  formatJson,
  formatTable,
  GUARD_OPTIONS,
  GUARD_OPTIONS_USAGE,
  guardOf,
  integerOption,
  Pacer,
  runCommand,
  stringOption,
  truncate,
  windowOption,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import { type Deployment, findSubscription, queueNameOf } from './deployment.ts';
import { envelopeJsonOf, parseEnvelope } from './outbox-index.ts';
import {
  type DeliveryReport,
  deliver,
  publisherFor,
  type ReplayTarget,
  type StoredEvent,
} from './publish.ts';

export interface ReplayWindow {
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
}

export type { ReplayTarget };

/** Published records live this many days after publishing unless the relay's `retention` says otherwise. */
export const DEFAULT_RETENTION_DAYS = 7;
/** DynamoDB TTL deletes an expired item within about two days (often sooner): it may outlive its expiry that long. */
export const TTL_DELETION_LAG_MS = 2 * 86_400_000;
/** How far `--to` may be in the future (clock skew between machines); later than that nothing can be committed. */
export const MAX_FUTURE_MS = 5 * 60_000;
/** Events listed in a result; more are counted, not kept (memory stays bounded on a large replay). */
export const MAX_LISTED_EVENTS = 1000;

/**
 * Refuses windows that cannot be meant: empty or reversed, reaching more than a few minutes into the future, or
 * starting before anything the outbox can still hold (retention + TTL deletion lag).
 */
export function checkReplayWindow(window: ReplayWindow, now: number, retentionDays: number): void {
  const iso = (ms: number) => new Date(ms).toISOString();
  if (window.from >= window.to) {
    throw new CliUsageError(
      `--from (${iso(window.from)}) must be earlier than --to (${iso(window.to)}): the window is [from, to)`,
    );
  }
  if (window.to > now + MAX_FUTURE_MS) {
    throw new CliUsageError(
      `--to ${iso(window.to)} is more than ${MAX_FUTURE_MS / 60_000} minutes in the future: nothing was committed then. ` +
        `Use --to ${iso(now)} (now) or earlier`,
    );
  }
  const oldest = now - retentionDays * 86_400_000 - TTL_DELETION_LAG_MS;
  if (window.from < oldest) {
    throw new CliUsageError(
      `--from ${iso(window.from)} is before anything the outbox still holds: published records expire ` +
        `${retentionDays} day(s) after publishing (the relay's \`retention\`) and TTL deletes them within about 2 days. ` +
        `Use --from ${iso(oldest)} or later, or pass --retention-days <days> if your relay keeps records longer`,
    );
  }
}

type ListedEvent = {
  aggregateKey: string;
  sequence: number;
  id: string;
  type: string;
  createdAt: string;
};

export interface ReplayResult {
  readonly window: { readonly from: string; readonly to: string };
  readonly dryRun: boolean;
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly segments: number;
  /** Scan pages read. */
  readonly pages: number;
  /** Published events of the window the Scan found (counted up to where it stopped, see `stoppedAtMax`). */
  readonly matched: number;
  /** Set when `--max` was reached: the Scan stopped there, so more events of the window may exist. */
  readonly stoppedAtMax?: number;
  readonly unreadable: readonly { readonly aggregateKey: string; readonly sk: string }[];
  /** The first events found (at most MAX_LISTED_EVENTS), in Scan order, without data. */
  readonly events: readonly ListedEvent[];
  /** The targets, described for people. */
  readonly targets: readonly string[];
  /** Items per second. */
  readonly rate: number;
  /** Absent on a dry run or when nothing matched. */
  readonly delivery?: DeliveryReport;
}

/** One Scan page's worth of the window: what it read and the events it found, in Scan order. */
export interface ReplayPage {
  readonly segment: number;
  /** 1-based, over all segments, in the order pages arrived. */
  readonly page: number;
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly events: StoredEvent[];
  readonly unreadable: { readonly aggregateKey: string; readonly sk: string }[];
}

export interface ScanOptions {
  readonly segments: number;
  /** Items read per Scan page (DynamoDB `Limit`, counted before the filter). @default 1 MB pages */
  readonly pageSize?: number;
}

function eventsOf(items: readonly Record<string, unknown>[]): Pick<ReplayPage, 'events' | 'unreadable'> {
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
  return { events, unreadable };
}

/**
 * Parallel Scan for PUBLISHED `EVT#` records with `from <= createdAt < to`, streamed: `onPage` gets each page as
 * it arrives and the segment reads its next page only after `onPage` resolved, so memory holds one page per
 * segment. Returning false stops every segment. A partition's items come in sort-key order within one segment,
 * so an aggregate's events arrive in sequence order.
 */
export async function scanReplayable(
  clients: OutboxClients,
  tableName: string,
  window: ReplayWindow,
  options: ScanOptions,
  onPage: (page: ReplayPage) => Promise<boolean>,
): Promise<void> {
  await scanEventWindow(
    clients,
    tableName,
    window,
    {
      ...options,
      statuses: [OutboxStatus.Published],
      projection: [
        PARTITION_KEY,
        SORT_KEY,
        RecordAttribute.id,
        RecordAttribute.type,
        RecordAttribute.source,
        RecordAttribute.sequence,
        RecordAttribute.envelope,
        RecordAttribute.envelopeGzip,
        RecordAttribute.createdAt,
      ],
    },
    (page) =>
      onPage({
        segment: page.segment,
        page: page.page,
        scannedCount: page.scannedCount,
        readUnits: page.readUnits,
        ...eventsOf([...page.items]),
      }),
  );
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
  /** One subscription's queue; without it, every subscriber (the topic and/or bus, or `target` only). */
  readonly subscription?: string;
  readonly target?: 'topic' | 'bus';
  readonly dryRun: boolean;
  /** Parallel Scan segments. @default 4 */
  readonly segments?: number;
  /** Items read per Scan page. @default DynamoDB's 1 MB pages */
  readonly pageSize?: number;
  /** Most events sent (on a dry run: listed); the Scan stops once reached. @default no cap */
  readonly max?: number;
  /** Events per second. @default DEFAULT_RATE */
  readonly rate?: number;
  /** Suffix of FIFO dedup ids (`<id>.replay.<suffix>`). @default the current time in ms */
  readonly runId?: string;
  /** Clock and wait of the rate limit. @default Date.now, setTimeout */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Called after each Scan page with events in the window, before they are sent. */
  readonly onPage?: (page: ReplayPage, sentSoFar: number) => void;
  /** For tests: the publishers (one per target). */
  readonly publishers?: readonly Publisher[];
}

/** Adds up the delivery of one batch into the running report. */
class DeliveryTotals {
  readonly accepted = new Map<string, { accepted: number; calls: number }>();
  sent = 0;
  readonly failed: { id: string; reason: string }[] = [];
  readonly skipped: string[] = [];
  add(report: DeliveryReport): void {
    for (const t of report.targets) {
      const total = this.accepted.get(t.target) ?? { accepted: 0, calls: 0 };
      this.accepted.set(t.target, { accepted: total.accepted + t.accepted, calls: total.calls + t.calls });
    }
    this.sent += report.sent;
    this.failed.push(...report.failed);
    this.skipped.push(...report.skipped);
  }
  report(): DeliveryReport {
    return {
      targets: [...this.accepted].map(([target, t]) => ({ target, ...t })),
      sent: this.sent,
      failed: this.failed,
      skipped: this.skipped,
    };
  }
}

/**
 * Finds the window's events with a streamed parallel Scan and sends each page's events as it arrives, in batches
 * of at most 10 (and at most `rate`), keeping to `rate` events per second and stopping after `max`. When an event
 * fails for good, the later events of its aggregate are skipped, on later pages too.
 */
export async function replay(
  clients: OutboxClients,
  deployment: Deployment,
  options: ReplayOptions,
): Promise<ReplayResult> {
  // Resolve targets first: a wrong --subscription must fail before the Scan is paid for.
  const targets = replayTargets(deployment, options.subscription, options.target);
  const segments = options.segments ?? 4;
  const rate = options.rate ?? DEFAULT_RATE;
  const pacer = new Pacer(rate, options.now ?? Date.now, options.sleep ?? defaultSleep);
  const publishers = options.publishers ?? targets.map((t) => publisherFor(clients, t));
  const runId = options.runId ?? String(Date.now());
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const totals = new DeliveryTotals();
  const blocked = new Set<string>();
  const listed: ListedEvent[] = [];
  const unreadable: { aggregateKey: string; sk: string }[] = [];
  let scannedCount = 0;
  let readUnits = 0;
  let pages = 0;
  let matched = 0;
  let claimed = 0;
  let reachedMax = false;

  const send = async (events: readonly StoredEvent[]) => {
    for (let i = 0; i < events.length; i += pacer.chunk) {
      const chunk = events.slice(i, i + pacer.chunk);
      const open = chunk.filter((e) => !blocked.has(e.aggregateKey));
      for (const e of chunk) if (blocked.has(e.aggregateKey)) totals.skipped.push(e.id);
      if (open.length === 0) continue;
      await pacer.take(open.length);
      const report = await deliver(clients, targets, open, { runId, publishers });
      totals.add(report);
      const stopped = new Set([...report.failed.map((f) => f.id), ...report.skipped]);
      for (const e of open) if (stopped.has(e.id)) blocked.add(e.aggregateKey);
    }
  };

  await scanReplayable(
    clients,
    deployment.outboxTableName,
    options.window,
    { segments, ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }) },
    async (page) => {
      pages++;
      scannedCount += page.scannedCount;
      readUnits += page.readUnits;
      unreadable.push(...page.unreadable.slice(0, Math.max(0, MAX_LISTED_EVENTS - unreadable.length)));
      // Claimed synchronously, so parallel segments never exceed --max together.
      const take = page.events.slice(0, Math.max(0, max - claimed));
      claimed += take.length;
      matched += take.length;
      if (take.length < page.events.length || claimed >= max) reachedMax = true;
      for (const e of take.slice(0, Math.max(0, MAX_LISTED_EVENTS - listed.length))) {
        listed.push({
          aggregateKey: e.aggregateKey,
          sequence: e.sequence,
          id: e.id,
          type: e.type,
          createdAt: new Date(e.createdAt).toISOString(),
        });
      }
      if (take.length > 0) options.onPage?.({ ...page, events: take }, totals.sent);
      if (!options.dryRun && take.length > 0) await send(take);
      return !reachedMax;
    },
  );
  return {
    window: {
      from: new Date(options.window.from).toISOString(),
      to: new Date(options.window.to).toISOString(),
    },
    dryRun: options.dryRun,
    scannedCount,
    readUnits,
    segments,
    pages,
    matched,
    ...(reachedMax && options.max !== undefined ? { stoppedAtMax: options.max } : {}),
    unreadable,
    events: listed,
    targets: targets.map(describeTarget),
    rate,
    ...(options.dryRun || matched === 0 ? {} : { delivery: totals.report() }),
  };
}

/** What `replay` will do, shown before it asks. */
export function replaySummary(options: {
  readonly window: ReplayWindow;
  readonly targets: readonly string[];
  readonly max: number | undefined;
  readonly rate: number;
  readonly segments: number;
  readonly allSubscribers: boolean;
}): string {
  const lines = [
    `replay: re-send the PUBLISHED events committed from ${new Date(options.window.from).toISOString()} to ${new Date(options.window.to).toISOString()} (exclusive)`,
    `  to:      ${options.targets.join(' and ')}${options.allSubscribers ? ' — every subscriber receives them again' : ''}`,
    `  at most: ${options.max === undefined ? 'every event in the window (no --max)' : `${options.max} event(s) (--max)`}`,
    `  rate:    ${options.rate} event(s) per second (--rate)`,
    `  cost:    a parallel Scan of the WHOLE table in ${options.segments} segment(s), 0.5 read unit per 4 KB read whatever the window; the read units used are printed after`,
    '  consumers deduplicate on the event id: events they already applied are skipped.',
  ];
  return `${lines.join('\n')}\n`;
}

const SHOWN_EVENTS = 20;

export function formatReplay(result: ReplayResult): string {
  const lines = [
    `replay ${result.window.from} → ${result.window.to}: ${result.matched} published event(s) in the window` +
      (result.stoppedAtMax === undefined
        ? ''
        : ` (stopped at --max ${result.stoppedAtMax}: the window may hold more)`),
    `  read cost: a parallel Scan of the whole table in ${result.segments} segment(s) read ${result.scannedCount} item(s) in ${result.pages} page(s), ${result.readUnits} read units`,
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
    if (result.matched > SHOWN_EVENTS)
      lines.push(
        `  … and ${result.matched - SHOWN_EVENTS} more (--json lists the first ${MAX_LISTED_EVENTS})`,
      );
  }
  if (result.dryRun) {
    lines.push(`dry run: nothing was sent (would send to ${result.targets.join(' and ')}).`);
  } else if (result.delivery) {
    const d = result.delivery;
    lines.push(
      `sent ${d.sent} of ${result.matched} to ${result.targets.join(' and ')} at most ${result.rate}/s; failed ${d.failed.length}; skipped ${d.skipped.length} (later events of a failed aggregate)`,
    );
    for (const t of d.targets) lines.push(`  ${t.target}: accepted ${t.accepted} in ${t.calls} call(s)`);
    for (const f of d.failed.slice(0, SHOWN_EVENTS)) lines.push(`  failed ${f.id}: ${f.reason}`);
    lines.push('consumers deduplicate on event id, so events they already applied are skipped.');
  }
  return `${lines.join('\n')}\n`;
}

export const replayCommand: CommandDefinition = {
  usage:
    'outbox replay --from <ISO time> --to <ISO time> (--subscription <name> | --all-subscribers [--target topic|bus]) [--dry-run] [--max N] [--rate N] [--yes] [--segments N] [--page-size N] [--retention-days N] [--json] [deployment options]',
  optionsUsage: `  --subscription <name> send to this subscription's queue only
  --all-subscribers     republish to the topic and/or bus: every subscriber receives the events again
  --target topic|bus    with --all-subscribers: only the topic, or only the bus
  --dry-run             Scan and list the events, send nothing (no confirmation needed)
${GUARD_OPTIONS_USAGE}
  --segments <n>        parallel Scan segments (default 4, 1–64)
  --page-size <n>       items read per Scan page (default: DynamoDB's 1 MB pages)
  --retention-days <n>  the relay's retention, to check --from (default ${DEFAULT_RETENTION_DAYS})`,
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    subscription: { type: 'string' },
    'all-subscribers': { type: 'boolean' },
    target: { type: 'string' },
    'dry-run': { type: 'boolean' },
    segments: { type: 'string' },
    'page-size': { type: 'string' },
    'retention-days': { type: 'string' },
    ...GUARD_OPTIONS,
  },
  prepare: (args, setup) => {
    expectPositionals(args, 0);
    const { from, to } = windowOption(args.values);
    const subscription = stringOption(args.values, 'subscription');
    const allSubscribers = args.values['all-subscribers'] === true;
    const target = stringOption(args.values, 'target');
    if (target !== undefined && target !== 'topic' && target !== 'bus') {
      throw new CliUsageError(`--target must be "topic" or "bus", got "${target}"`);
    }
    if (target !== undefined && subscription !== undefined) {
      throw new CliUsageError('use either --subscription (one queue) or --target (topic or bus), not both');
    }
    if (subscription !== undefined && allSubscribers) {
      throw new CliUsageError(
        'use either --subscription <name> (one queue) or --all-subscribers (the topic/bus), not both',
      );
    }
    if (subscription === undefined && !allSubscribers) {
      throw new CliUsageError(
        target === undefined
          ? "say where to send: --subscription <name> for one subscription's queue, or --all-subscribers to republish to the topic/bus so every subscriber receives the events again"
          : `--target ${target} republishes to every subscriber of the ${target}: add --all-subscribers to confirm that is meant, or use --subscription <name>`,
      );
    }
    const segments = integerOption(args.values, 'segments', 4, 1, 64);
    const pageSize =
      stringOption(args.values, 'page-size') === undefined
        ? undefined
        : integerOption(args.values, 'page-size', 0, 1, 100_000);
    const retentionDays = integerOption(args.values, 'retention-days', DEFAULT_RETENTION_DAYS, 1, 3650);
    checkReplayWindow({ from, to }, setup.now(), retentionDays);
    const dryRun = args.values['dry-run'] === true;
    const action = `replay to ${subscription === undefined ? `every subscriber (${target ?? 'topic and bus'})` : `subscription ${subscription}`}`;
    // A dry run sends nothing: no confirmation, so no --yes needed without a terminal.
    const guard = guardOf(args, { ...setup, interactive: setup.interactive || dryRun }, action);
    return async ({ deployment, clients, io, now, sleep, json }: CommandContext) => {
      const targets = replayTargets(deployment, subscription, target as 'topic' | 'bus' | undefined);
      if (!dryRun) {
        await confirmAction(
          io,
          guard,
          action,
          replaySummary({
            window: { from, to },
            targets: targets.map(describeTarget),
            max: guard.max,
            rate: guard.rate,
            segments,
            allSubscribers,
          }),
        );
      }
      const result = await replay(clients, deployment, {
        window: { from, to },
        dryRun,
        segments,
        rate: guard.rate,
        now,
        sleep,
        ...(guard.max === undefined ? {} : { max: guard.max }),
        ...(pageSize === undefined ? {} : { pageSize }),
        ...(subscription === undefined ? {} : { subscription }),
        ...(target === undefined ? {} : { target: target as 'topic' | 'bus' }),
        onPage: (page, sentSoFar) =>
          io.stderr(
            `scan page ${page.page} (segment ${page.segment}): read ${page.scannedCount} item(s), ${page.events.length} event(s) in the window; ${dryRun ? 'listing' : `sent ${sentSoFar} so far`}\n`,
          ),
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
