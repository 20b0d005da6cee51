/**
 * `outbox status`: per subscription, the queue backlog, messages in flight, the age of the oldest message and
 * the DLQ depth; for the outbox, unpublished records (count, by status, oldest age) and quarantined records.
 */
import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, type QueueAttributeName } from '@aws-sdk/client-sqs';
import {
  allPendingShards,
  allQuarantineShards,
  OutboxStatus,
} from '../../functions/runtime/record-format.ts';
import {
  type CliIo,
  type CommandContext,
  type CommandDefinition,
  describeError,
  ExitCode,
  expectPositionals,
  formatDuration,
  formatJson,
  formatTable,
  mapConcurrent,
  runCommand,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import { type Deployment, queueNameOf } from './deployment.ts';
import { type IndexEntry, readShards } from './outbox-index.ts';

export interface QueueDepth {
  /** ApproximateNumberOfMessages */
  readonly visible: number;
  /** ApproximateNumberOfMessagesNotVisible */
  readonly inFlight: number;
  /** ApproximateNumberOfMessagesDelayed */
  readonly delayed: number;
}

/** How the age of the oldest message was measured. */
export type AgeSource = 'cloudwatch' | 'fauxqs-inspection' | 'unavailable';

export interface SubscriptionStatus {
  readonly name: string;
  readonly fifo: boolean;
  readonly queue?: QueueDepth;
  /** Age of the oldest message in the subscription queue; null when empty or unknown. */
  readonly oldestAgeMs: number | null;
  /** Messages in the DLQ (visible + in flight + delayed). */
  readonly deadLetter?: number;
  readonly deadLetterOldestAgeMs: number | null;
  /** Set when a queue could not be read. */
  readonly error?: string;
}

export interface UnpublishedSummary {
  /** Records that still need work (READY, PREPARED, SCHEDULED), due or not. */
  readonly count: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /**
   * Age of the oldest record not yet published, since it became due (`now - pendingDueAt`: its commit, release,
   * confirm or retry), as the recovery sweeper and its alarm measure it; records due later do not count. null
   * when there is none.
   */
  readonly oldestAgeMs: number | null;
  readonly oldest?: { readonly id?: string; readonly aggregateKey: string; readonly status?: string };
}

export interface QuarantineSummary {
  /** QUARANTINED records: in `Q#` shards (sweeper) or still in their `P#` shard (relay). */
  readonly count: number;
  /** Since when the oldest quarantined record has been quarantined (its `pendingDueAt`). */
  readonly oldestQuarantinedForMs: number | null;
}

export interface StatusReport {
  readonly generatedAt: string;
  readonly outboxTableName: string;
  readonly unpublished: UnpublishedSummary;
  readonly quarantined: QuarantineSummary;
  /** Read units the 32 index Queries consumed (16 `P#` + 16 `Q#` shards). */
  readonly indexReadUnits: number;
  readonly subscriptions: readonly SubscriptionStatus[];
  readonly ageSource: AgeSource;
  /** One line saying how the queue ages were measured. */
  readonly ageSourceNote: string;
  readonly relayFailureQueue?: { readonly depth?: number; readonly error?: string };
}

const DEPTH_ATTRIBUTES: QueueAttributeName[] = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
];

export async function queueDepth(clients: OutboxClients, queueUrl: string): Promise<QueueDepth> {
  const response = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: DEPTH_ATTRIBUTES }),
  );
  const attr = (name: string) => Number(response.Attributes?.[name as QueueAttributeName] ?? 0);
  return {
    visible: attr('ApproximateNumberOfMessages'),
    inFlight: attr('ApproximateNumberOfMessagesNotVisible'),
    delayed: attr('ApproximateNumberOfMessagesDelayed'),
  };
}

/** Summarises the index entries of the `P#` shards. */
export function summarizeUnpublished(all: readonly IndexEntry[], now: number): UnpublishedSummary {
  // Pending delivery acknowledgements (tracked mode) share the P# shards but are not unpublished events.
  const entries = all.filter((entry) => !entry.pk.startsWith('ACK#'));
  const byStatus: Record<string, number> = {};
  let oldest: IndexEntry | undefined;
  let oldestAgeMs: number | null = null;
  for (const entry of entries) {
    const status = entry.status ?? 'UNKNOWN';
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    // Age since the record became due (commit, release, confirm, retry): what the sweeper and its alarm measure.
    const age = entry.pendingDueAt <= now ? now - entry.pendingDueAt : undefined;
    if (age !== undefined && (oldestAgeMs === null || age > oldestAgeMs)) {
      oldestAgeMs = Math.max(0, age);
      oldest = entry;
    }
  }
  return {
    count: entries.length,
    byStatus,
    oldestAgeMs,
    ...(oldest
      ? {
          oldest: {
            aggregateKey: oldest.pk,
            ...(oldest.id === undefined ? {} : { id: oldest.id }),
            ...(oldest.status === undefined ? {} : { status: oldest.status }),
          },
        }
      : {}),
  };
}

/** Reads the outbox side of the status: 32 Queries on the sparse index. */
export async function outboxStatus(
  clients: OutboxClients,
  deployment: Deployment,
  now: number,
): Promise<Pick<StatusReport, 'unpublished' | 'quarantined' | 'indexReadUnits'>> {
  const [pending, quarantined] = await Promise.all([
    readShards(clients.dynamodb, deployment.outboxTableName, allPendingShards()),
    readShards(clients.dynamodb, deployment.outboxTableName, allQuarantineShards()),
  ]);
  // The relay's quarantine leaves a record in its P# shard with status QUARANTINED; the sweeper moves it to Q#.
  const isQuarantined = (e: IndexEntry) => e.status === OutboxStatus.Quarantined;
  const allQuarantined = [...quarantined.entries, ...pending.entries.filter(isQuarantined)];
  const oldestDue = Math.min(...allQuarantined.map((e) => e.pendingDueAt));
  return {
    unpublished: summarizeUnpublished(
      pending.entries.filter((e) => !isQuarantined(e)),
      now,
    ),
    quarantined: {
      count: allQuarantined.length,
      oldestQuarantinedForMs: allQuarantined.length > 0 ? Math.max(0, now - oldestDue) : null,
    },
    indexReadUnits: pending.readUnits + quarantined.readUnits,
  };
}

interface QueueAges {
  readonly source: AgeSource;
  readonly note: string;
  /** Oldest message age by queue URL (ms); missing = empty or unknown. */
  readonly ages: Map<string, number>;
}

/**
 * Local: fauxqs' non-destructive inspection (`GET /_fauxqs/queues/<name>`), exact, consumes nothing.
 * AWS: CloudWatch `ApproximateAgeOfOldestMessage` (1-minute Maximum, the latest datapoint of the last 15 min).
 */
export async function oldestMessageAges(
  clients: OutboxClients,
  deployment: Deployment,
  queueUrls: readonly string[],
  now: number,
): Promise<QueueAges> {
  if (clients.local) {
    const endpoint = deployment.endpoints?.sqs;
    if (!endpoint)
      return {
        source: 'unavailable',
        note: 'oldest age: unavailable (no local sqs endpoint)',
        ages: new Map(),
      };
    const ages = new Map<string, number>();
    try {
      for (const url of queueUrls) {
        const age = await fauxqsOldestAge(endpoint, queueNameOf(url), now);
        if (age !== undefined) ages.set(url, age);
      }
    } catch (error) {
      return {
        source: 'unavailable',
        note: `oldest age: unavailable (the local SQS endpoint is not fauxqs or refused inspection: ${describeError(error)})`,
        ages: new Map(),
      };
    }
    return {
      source: 'fauxqs-inspection',
      note: 'oldest age: fauxqs queue inspection (exact SentTimestamp of the oldest message; nothing is received)',
      ages,
    };
  }
  const queries: MetricDataQuery[] = queueUrls.map((url, i) => ({
    Id: `q${i}`,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: queueNameOf(url) }],
      },
      Period: 60,
      Stat: 'Maximum',
    },
    ReturnData: true,
  }));
  const ages = new Map<string, number>();
  for (let i = 0; i < queries.length; i += 500) {
    let nextToken: string | undefined;
    do {
      const response = await clients.cloudWatch.send(
        new GetMetricDataCommand({
          MetricDataQueries: queries.slice(i, i + 500),
          StartTime: new Date(now - 15 * 60_000),
          EndTime: new Date(now),
          ScanBy: 'TimestampDescending',
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      for (const result of response.MetricDataResults ?? []) {
        const index = Number(result.Id?.slice(1));
        const url = queueUrls[index];
        const latest = result.Values?.[0];
        if (url !== undefined && latest !== undefined && !ages.has(url)) ages.set(url, latest * 1000);
      }
      nextToken = response.NextToken;
    } while (nextToken);
  }
  return {
    source: 'cloudwatch',
    note: 'oldest age: CloudWatch ApproximateAgeOfOldestMessage (1-minute maximum, lags by a few minutes; - = no datapoint in the last 15 min)',
    ages,
  };
}

async function fauxqsOldestAge(
  endpoint: string,
  queueName: string,
  now: number,
): Promise<number | undefined> {
  const response = await fetch(
    `${endpoint.replace(/\/$/, '')}/_fauxqs/queues/${encodeURIComponent(queueName)}`,
  );
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`HTTP ${response.status} inspecting ${queueName}`);
  const body = (await response.json()) as {
    messages?: {
      ready?: { sentTimestamp?: number }[];
      delayed?: { sentTimestamp?: number }[];
      inflight?: { message?: { sentTimestamp?: number } }[];
    };
  };
  const stamps = [
    ...(body.messages?.ready ?? []).map((m) => m.sentTimestamp),
    ...(body.messages?.delayed ?? []).map((m) => m.sentTimestamp),
    ...(body.messages?.inflight ?? []).map((m) => m.message?.sentTimestamp),
  ].filter((t): t is number => typeof t === 'number');
  if (stamps.length === 0) return undefined;
  return Math.max(0, now - Math.min(...stamps));
}

/** Everything `outbox status` shows. */
export async function collectStatus(
  clients: OutboxClients,
  deployment: Deployment,
  now: number,
): Promise<StatusReport> {
  const urls = deployment.subscriptions.flatMap((s) => [s.queueUrl, s.deadLetterQueueUrl]);
  const [outbox, depths, ages, relayFailure] = await Promise.all([
    outboxStatus(clients, deployment, now),
    mapConcurrent(urls, 8, async (url) => {
      try {
        return { depth: await queueDepth(clients, url) };
      } catch (error) {
        return { error: describeError(error) };
      }
    }),
    oldestMessageAges(clients, deployment, urls, now).catch(
      (error: unknown): QueueAges => ({
        source: 'unavailable',
        note: `oldest age: unavailable (${describeError(error)})`,
        ages: new Map(),
      }),
    ),
    deployment.relayFailureQueueUrl === undefined
      ? Promise.resolve(undefined)
      : queueDepth(clients, deployment.relayFailureQueueUrl).then(
          (d) => ({ depth: d.visible + d.inFlight + d.delayed }),
          (error: unknown) => ({ error: describeError(error) }),
        ),
  ]);
  const subscriptions = deployment.subscriptions.map((s, i): SubscriptionStatus => {
    const queue = depths[2 * i];
    const dlq = depths[2 * i + 1];
    const errors = [queue?.error && `queue: ${queue.error}`, dlq?.error && `DLQ: ${dlq.error}`].filter(
      Boolean,
    );
    const dlqDepth = dlq?.depth;
    return {
      name: s.name,
      fifo: s.fifo,
      ...(queue?.depth ? { queue: queue.depth } : {}),
      oldestAgeMs: ages.ages.get(s.queueUrl) ?? null,
      ...(dlqDepth ? { deadLetter: dlqDepth.visible + dlqDepth.inFlight + dlqDepth.delayed } : {}),
      deadLetterOldestAgeMs: ages.ages.get(s.deadLetterQueueUrl) ?? null,
      ...(errors.length > 0 ? { error: errors.join('; ') } : {}),
    };
  });
  return {
    generatedAt: new Date(now).toISOString(),
    outboxTableName: deployment.outboxTableName,
    ...outbox,
    subscriptions,
    ageSource: ages.source,
    ageSourceNote: ages.note,
    ...(relayFailure === undefined ? {} : { relayFailureQueue: relayFailure }),
  };
}

/** The human-readable status. */
export function formatStatus(report: StatusReport): string {
  const u = report.unpublished;
  const statuses = Object.entries(u.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  const lines = [
    `outbox table ${report.outboxTableName}  (${report.generatedAt})`,
    `  unpublished records: ${u.count}${statuses ? ` (${statuses})` : ''}` +
      (u.oldestAgeMs === null
        ? ''
        : `; oldest ${formatDuration(u.oldestAgeMs)}${u.oldest ? ` (${u.oldest.status ?? '?'} ${u.oldest.aggregateKey}${u.oldest.id ? ` ${u.oldest.id}` : ''})` : ''}`),
    `  quarantined records: ${report.quarantined.count}` +
      (report.quarantined.count > 0
        ? `; oldest quarantined ${formatDuration(report.quarantined.oldestQuarantinedForMs ?? undefined)} ago — see \`outbox quarantine list\``
        : ''),
    `  index reads: ${report.indexReadUnits} read units (32 Queries on the sparse index, no Scan)`,
  ];
  if (report.relayFailureQueue) {
    const r = report.relayFailureQueue;
    lines.push(
      `  relay failure queue: ${r.error ? `error: ${r.error}` : `${r.depth} message(s)${r.depth ? ' — stream batches the relay gave up on; the sweeper republishes their records' : ''}`}`,
    );
  }
  lines.push('');
  if (report.subscriptions.length === 0) {
    lines.push('no subscriptions in this deployment');
  } else {
    const age = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));
    lines.push(
      formatTable(
        ['subscription', 'kind', 'visible', 'in flight', 'delayed', 'oldest age', 'DLQ', 'DLQ oldest'],
        report.subscriptions.map((s) => [
          s.name,
          s.fifo ? 'fifo' : 'standard',
          s.queue?.visible ?? '-',
          s.queue?.inFlight ?? '-',
          s.queue?.delayed ?? '-',
          age(s.oldestAgeMs),
          s.deadLetter ?? '-',
          age(s.deadLetterOldestAgeMs),
        ]),
      ).trimEnd(),
    );
    for (const s of report.subscriptions) if (s.error) lines.push(`error in ${s.name}: ${s.error}`);
    lines.push(report.ageSourceNote);
  }
  return `${lines.join('\n')}\n`;
}

export const statusCommand: CommandDefinition = {
  usage: 'outbox status [--json] [deployment options]',
  options: {},
  prepare: (args) => {
    expectPositionals(args, 0);
    return async ({ deployment, clients, io, now, json }: CommandContext) => {
      const report = await collectStatus(clients, deployment, now());
      io.stdout(json ? formatJson(report) : formatStatus(report));
      const failed =
        report.subscriptions.some((s) => s.error) || report.relayFailureQueue?.error !== undefined;
      return failed ? ExitCode.failure : ExitCode.ok;
    };
  },
};

export function runStatusCommand(argv: readonly string[], io: CliIo): Promise<number> {
  return runCommand(statusCommand, argv, io);
}
