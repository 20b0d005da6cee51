/**
 * `outbox quarantine list` and `outbox quarantine retry <id|--all>`. Quarantined records sit in the sparse
 * index under `Q#<last hex digit of id>` (or, quarantined by the relay, still under `P#<digit>` with status
 * QUARANTINED): both commands find them with Queries, never a Scan.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  allPendingShards,
  allQuarantineShards,
  EVENT_SORT_KEY_PREFIX,
  OutboxStatus,
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_SHARD,
  PENDING_SHARD_PREFIX,
  PREPARED_SORT_KEY_PREFIX,
  pendingShardOf,
  QUARANTINE_SHARD_PREFIX,
  quarantineShardOf,
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
  describeError,
  ExitCode,
  expectPositionals,
  formatDuration,
  formatJson,
  formatTable,
  GUARD_OPTIONS,
  GUARD_OPTIONS_USAGE,
  type Guard,
  guardOf,
  integerOption,
  mapConcurrent,
  Pacer,
  runCommand,
  stringOption,
  truncate,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import type { Deployment } from './deployment.ts';
import {
  countShards,
  type IndexEntry,
  itemKey,
  readItems,
  readShards,
  type ShardRead,
  shardPages,
} from './outbox-index.ts';

export interface QuarantinedRecord {
  readonly aggregateKey: string;
  readonly sk: string;
  /** `event` = an `EVT#` record the relay/sweeper could not publish; `prepared` = a `PRE#` message check-back could not resolve. */
  readonly kind: 'event' | 'prepared' | 'other';
  readonly id?: string;
  readonly sequence?: number;
  readonly type?: string;
  readonly attempts?: number;
  readonly lastError?: string;
  /** Commit time, ISO. */
  readonly createdAt?: string;
  /** now − createdAt */
  readonly ageMs?: number;
  /**
   * now − its `pendingDueAt`: the time it was quarantined when the sweeper did it (`Q#` shard); its last due
   * time when the relay did (it stays in its `P#` shard).
   */
  readonly quarantinedForMs: number;
}

export interface QuarantineListResult {
  readonly records: readonly QuarantinedRecord[];
  /** Read units of the 32 index Queries plus the BatchGetItem for `type` and `lastError`. */
  readonly readUnits: number;
}

export type RetryOutcome =
  | {
      readonly outcome: 'retried';
      readonly aggregateKey: string;
      readonly sk: string;
      readonly id?: string;
      readonly newStatus: string;
    }
  | {
      readonly outcome: 'skipped';
      readonly aggregateKey: string;
      readonly sk: string;
      readonly id?: string;
      readonly reason: string;
    }
  | {
      readonly outcome: 'error';
      readonly aggregateKey: string;
      readonly sk: string;
      readonly id?: string;
      readonly reason: string;
    };

export interface RetryResult {
  readonly retried: number;
  readonly skipped: number;
  readonly errors: number;
  /** Set when `retry <id>` found no quarantined record with that id. */
  readonly notFound?: string;
  /** `retry --all --max N` stopped at N: more quarantined records may remain. */
  readonly stoppedAtMax?: number;
  /** The outcomes (with `--all`, the first MAX_LISTED_OUTCOMES). */
  readonly records: readonly RetryOutcome[];
}

function kindOf(sk: string): QuarantinedRecord['kind'] {
  if (sk.startsWith(EVENT_SORT_KEY_PREFIX)) return 'event';
  if (sk.startsWith(PREPARED_SORT_KEY_PREFIX)) return 'prepared';
  return 'other';
}

/**
 * Quarantined index entries (of one event id, or all): the `Q#` shards, where the record format (and the sweeper)
 * puts them, plus QUARANTINED entries still in their `P#` shard (where the relay's own quarantine leaves them).
 * 32 Queries for all, 2 for one id; never a Scan.
 */
export async function findQuarantined(
  client: OutboxClients['dynamodb'],
  tableName: string,
  target: { readonly id: string } | { readonly all: true },
): Promise<ShardRead> {
  const byId = 'id' in target ? { id: target.id } : {};
  const [q, p] = await Promise.all([
    readShards(
      client,
      tableName,
      'id' in target ? [quarantineShardOf(target.id)] : allQuarantineShards(),
      byId,
    ),
    readShards(client, tableName, 'id' in target ? [pendingShardOf(target.id)] : allPendingShards(), {
      ...byId,
      status: OutboxStatus.Quarantined,
    }),
  ]);
  return {
    entries: [...q.entries, ...p.entries].sort((a, b) => a.pendingDueAt - b.pendingDueAt),
    readUnits: q.readUnits + p.readUnits,
  };
}

/** Every quarantined record, oldest first, with `type` and `lastError` read from the table. */
export async function listQuarantined(
  clients: OutboxClients,
  deployment: Deployment,
  now: number,
): Promise<QuarantineListResult> {
  const table = deployment.outboxTableName;
  const shards = await findQuarantined(clients.dynamodb, table, { all: true });
  const full = await readItems(
    clients.dynamodb,
    table,
    shards.entries.map((e) => ({ pk: e.pk, sk: e.sk })),
    [PARTITION_KEY, SORT_KEY, RecordAttribute.type, RecordAttribute.lastError, RecordAttribute.status],
  );
  const records = shards.entries
    .map((entry): QuarantinedRecord | undefined => {
      const item = full.items.get(itemKey(entry.pk, entry.sk));
      // The index is eventually consistent: skip an entry whose record was retried or deleted meanwhile.
      if (item && item[RecordAttribute.status] !== OutboxStatus.Quarantined) return undefined;
      const type = item?.[RecordAttribute.type];
      const lastError = item?.[RecordAttribute.lastError];
      return {
        aggregateKey: entry.pk,
        sk: entry.sk,
        kind: kindOf(entry.sk),
        ...(entry.id === undefined ? {} : { id: entry.id }),
        ...(entry.sequence === undefined ? {} : { sequence: entry.sequence }),
        ...(typeof type === 'string' ? { type } : {}),
        ...(entry.attempts === undefined ? {} : { attempts: entry.attempts }),
        ...(typeof lastError === 'string' ? { lastError } : {}),
        ...(entry.createdAt === undefined
          ? {}
          : {
              createdAt: new Date(entry.createdAt).toISOString(),
              ageMs: Math.max(0, now - entry.createdAt),
            }),
        quarantinedForMs: Math.max(0, now - entry.pendingDueAt),
      };
    })
    .filter((r): r is QuarantinedRecord => r !== undefined);
  return { records, readUnits: shards.readUnits + full.readUnits };
}

/**
 * Puts one quarantined record back to work with a conditional UpdateItem (status must still be QUARANTINED):
 * - an `EVT#` record becomes READY with attempts = 0, no lastError, back in its `P#` shard due now. That
 *   QUARANTINED → READY MODIFY passes the relay's stream filter, so the relay publishes it;
 * - a `PRE#` prepared message becomes PREPARED again (attempts and check-back attempts 0, due now): the
 *   sweeper asks the producer's check-back function again. (Making it READY would never publish it: only
 *   `EVT#` records are events.)
 */
export async function retryEntry(
  clients: OutboxClients,
  tableName: string,
  entry: Pick<IndexEntry, 'pk' | 'sk' | 'id' | 'pendingShard'>,
  now: number,
): Promise<RetryOutcome> {
  const base = { aggregateKey: entry.pk, sk: entry.sk, ...(entry.id === undefined ? {} : { id: entry.id }) };
  const kind = kindOf(entry.sk);
  if (kind === 'other') {
    return { outcome: 'skipped', ...base, reason: 'not an EVT# or PRE# record; inspect it in the table' };
  }
  const newStatus = kind === 'event' ? OutboxStatus.Ready : OutboxStatus.Prepared;
  const shard = PENDING_SHARD_PREFIX + entry.pendingShard.slice(QUARANTINE_SHARD_PREFIX.length);
  try {
    await clients.dynamodb.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { [PARTITION_KEY]: entry.pk, [SORT_KEY]: entry.sk },
        UpdateExpression:
          `SET #status = :next, #attempts = :zero, #shard = :shard, #due = :now` +
          (kind === 'prepared' ? ', #checkbacks = :zero' : '') +
          ' REMOVE #lastError',
        ConditionExpression: '#status = :quarantined',
        ExpressionAttributeNames: {
          '#status': RecordAttribute.status,
          '#attempts': RecordAttribute.attempts,
          '#shard': PENDING_SHARD,
          '#due': PENDING_DUE_AT,
          '#lastError': RecordAttribute.lastError,
          ...(kind === 'prepared' ? { '#checkbacks': RecordAttribute.checkbackAttempts } : {}),
        },
        ExpressionAttributeValues: {
          ':next': newStatus,
          ':zero': 0,
          ':shard': shard,
          ':now': now,
          ':quarantined': OutboxStatus.Quarantined,
        },
      }),
    );
    return { outcome: 'retried', ...base, newStatus };
  } catch (error) {
    if ((error as Error).name === 'ConditionalCheckFailedException') {
      return { outcome: 'skipped', ...base, reason: 'no longer QUARANTINED (retried or changed meanwhile)' };
    }
    return { outcome: 'error', ...base, reason: describeError(error) };
  }
}

/** `retry <id>`: finds the record through its `Q#` shard (one Query, filtered on id) and retries it. */
export async function retryQuarantined(
  clients: OutboxClients,
  deployment: Deployment,
  target: { readonly id: string } | { readonly all: true },
  now: number,
): Promise<RetryResult> {
  const table = deployment.outboxTableName;
  const found = await findQuarantined(clients.dynamodb, table, target);
  const records = await mapConcurrent(found.entries, 8, (entry) => retryEntry(clients, table, entry, now));
  const count = (outcome: RetryOutcome['outcome']) => records.filter((r) => r.outcome === outcome).length;
  return {
    retried: count('retried'),
    skipped: count('skipped'),
    errors: count('error'),
    ...('id' in target && found.entries.length === 0 ? { notFound: target.id } : {}),
    records,
  };
}

/** Outcomes kept in a `retry --all` result; more are counted, not kept (memory stays bounded). */
export const MAX_LISTED_OUTCOMES = 1000;

export interface RetryAllOptions {
  /** Most records retried; the index reads stop once reached. @default no cap */
  readonly max?: number;
  /** Records per second. @default DEFAULT_RATE */
  readonly rate?: number;
  /** Clock (also the new `pendingDueAt`) and wait of the rate limit. @default Date.now, setTimeout */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Index entries per Query page. @default DynamoDB's 1 MB pages */
  readonly pageSize?: number;
}

/**
 * `retry --all`, streamed: reads the `Q#` shards, then the QUARANTINED entries of the `P#` shards, page by page,
 * and retries each page's records as it arrives, at most `rate` per second and `max` in all. Memory holds one
 * page plus the batch in flight; `records` keeps the first MAX_LISTED_OUTCOMES outcomes.
 */
export async function retryAllQuarantined(
  clients: OutboxClients,
  deployment: Deployment,
  options: RetryAllOptions = {},
): Promise<RetryResult> {
  const table = deployment.outboxTableName;
  const clock = options.now ?? Date.now;
  const pacer = new Pacer(options.rate ?? DEFAULT_RATE, clock, options.sleep ?? defaultSleep);
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const pageSize = options.pageSize === undefined ? {} : { pageSize: options.pageSize };
  const records: RetryOutcome[] = [];
  const counts = { retried: 0, skipped: 0, error: 0 };
  let claimed = 0;
  const sources = [
    shardPages(clients.dynamodb, table, allQuarantineShards(), pageSize),
    shardPages(clients.dynamodb, table, allPendingShards(), {
      ...pageSize,
      status: OutboxStatus.Quarantined,
    }),
  ];
  read: for (const pages of sources) {
    for await (const page of pages) {
      const take = page.entries.slice(0, Math.max(0, max - claimed));
      claimed += take.length;
      for (let i = 0; i < take.length; i += pacer.chunk) {
        const chunk = take.slice(i, i + pacer.chunk);
        await pacer.take(chunk.length);
        const at = clock();
        for (const outcome of await mapConcurrent(chunk, 8, (entry) =>
          retryEntry(clients, table, entry, at),
        )) {
          counts[outcome.outcome]++;
          if (records.length < MAX_LISTED_OUTCOMES) records.push(outcome);
        }
      }
      if (claimed >= max) break read;
    }
  }
  return {
    retried: counts.retried,
    skipped: counts.skipped,
    errors: counts.error,
    records,
    ...(claimed >= max && options.max !== undefined ? { stoppedAtMax: options.max } : {}),
  };
}

/** What `quarantine retry --all` will do, shown before it asks. */
export function retryAllSummary(quarantined: number, guard: Pick<Guard, 'max' | 'rate'>): string {
  const most = guard.max === undefined ? quarantined : Math.min(quarantined, guard.max);
  return [
    'quarantine retry --all: put quarantined records back to work (events → READY: the relay publishes them; prepared messages → PREPARED: the check-back is asked again)',
    `  quarantined: ${quarantined} record(s) now (index count)`,
    `  at most:     ${most} record(s)${guard.max === undefined ? ' (all; --max N retries fewer)' : ` (--max ${guard.max})`}`,
    `  rate:        ${guard.rate} record(s) per second (--rate)`,
    '  a record whose cause is not fixed is quarantined again: check `outbox quarantine list` first.',
    '',
  ].join('\n');
}

export function formatQuarantineList(result: QuarantineListResult): string {
  if (result.records.length === 0) {
    return `no quarantined records (read ${result.readUnits} read units)\n`;
  }
  const rows = result.records.map((r) => [
    truncate(r.aggregateKey, 32),
    r.sequence ?? (r.kind === 'prepared' ? 'prepared' : '-'),
    r.id ?? '-',
    r.type ? truncate(r.type, 40) : '-',
    r.attempts ?? '-',
    formatDuration(r.ageMs),
    formatDuration(r.quarantinedForMs),
    r.lastError ? truncate(r.lastError, 60) : '-',
  ]);
  return (
    `${result.records.length} quarantined record(s) (read ${result.readUnits} read units; --json shows full errors)\n` +
    formatTable(['aggregate', 'seq', 'id', 'type', 'attempts', 'age', 'quarantined', 'last error'], rows) +
    'retry one with `outbox quarantine retry <id>`, or all with `outbox quarantine retry --all`\n'
  );
}

export function formatRetry(result: RetryResult): string {
  const lines: string[] = [];
  if (result.notFound !== undefined) {
    return `no quarantined record with id ${result.notFound}: it may have been retried already. List them with \`outbox quarantine list\`.\n`;
  }
  const ready = result.records.filter(
    (r) => r.outcome === 'retried' && r.newStatus === OutboxStatus.Ready,
  ).length;
  const prepared = result.records.filter(
    (r) => r.outcome === 'retried' && r.newStatus === OutboxStatus.Prepared,
  ).length;
  lines.push(
    `retried ${result.retried} record(s): ${ready} now READY (the relay publishes them through the stream)` +
      (prepared > 0 ? `, ${prepared} PREPARED again (the sweeper asks the producer's check-back)` : '') +
      `; skipped ${result.skipped}; errors ${result.errors}`,
  );
  if (result.stoppedAtMax !== undefined) {
    lines.push(
      `stopped at --max ${result.stoppedAtMax}: more may be quarantined (\`outbox quarantine list\`).`,
    );
  }
  for (const r of result.records) {
    if (r.outcome !== 'retried')
      lines.push(`  ${r.outcome} ${r.aggregateKey} ${r.sk}${r.id ? ` ${r.id}` : ''}: ${r.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

export const quarantineListCommand: CommandDefinition = {
  usage: 'outbox quarantine list [--json] [deployment options]',
  options: {},
  prepare: (args) => {
    expectPositionals(args, 1);
    return async ({ deployment, clients, io, now, json }: CommandContext) => {
      const result = await listQuarantined(clients, deployment, now());
      io.stdout(json ? formatJson(result) : formatQuarantineList(result));
      return ExitCode.ok;
    };
  },
};

export const quarantineRetryCommand: CommandDefinition = {
  usage:
    'outbox quarantine retry <id> | --all [--max N] [--rate N] [--yes] [--page-size N] [--json] [deployment options]',
  optionsUsage: `  --all                 retry every quarantined record (asks first)
${GUARD_OPTIONS_USAGE}
  --page-size <n>       index entries per Query page (default: DynamoDB's 1 MB pages)`,
  options: { all: { type: 'boolean' }, 'page-size': { type: 'string' }, ...GUARD_OPTIONS },
  prepare: (args, setup) => {
    const id = args.positionals[1];
    const all = args.values.all === true;
    if (all === (id !== undefined)) throw new CliUsageError('give either one event <id> or --all');
    expectPositionals(args, 2);
    if (id !== undefined && !/^[\w.:-]*[0-9a-fA-F]$/.test(id)) {
      throw new CliUsageError(`"${id}" is not an event id (a UUID, as shown by \`outbox quarantine list\`)`);
    }
    if (id !== undefined) {
      const extra = ['max', 'rate', 'page-size'].find((o) => args.values[o] !== undefined);
      if (extra !== undefined) {
        throw new CliUsageError(`--${extra} applies to --all; \`retry <id>\` retries that one record`);
      }
      return async ({ deployment, clients, io, now, json }: CommandContext) => {
        const result = await retryQuarantined(clients, deployment, { id }, now());
        io.stdout(json ? formatJson(result) : formatRetry(result));
        return result.notFound !== undefined || result.skipped + result.errors > 0
          ? ExitCode.failure
          : ExitCode.ok;
      };
    }
    const guard = guardOf(args, setup, 'quarantine retry --all');
    const pageSize =
      stringOption(args.values, 'page-size') === undefined
        ? undefined
        : integerOption(args.values, 'page-size', 0, 1, 100_000);
    return async ({ deployment, clients, io, now, sleep, json }: CommandContext) => {
      const table = deployment.outboxTableName;
      const [q, p] = await Promise.all([
        countShards(clients.dynamodb, table, allQuarantineShards()),
        countShards(clients.dynamodb, table, allPendingShards(), { status: OutboxStatus.Quarantined }),
      ]);
      await confirmAction(io, guard, 'quarantine retry --all', retryAllSummary(q.count + p.count, guard));
      const result = await retryAllQuarantined(clients, deployment, {
        rate: guard.rate,
        now,
        sleep,
        ...(guard.max === undefined ? {} : { max: guard.max }),
        ...(pageSize === undefined ? {} : { pageSize }),
      });
      io.stdout(json ? formatJson(result) : formatRetry(result));
      return result.notFound !== undefined || result.skipped + result.errors > 0
        ? ExitCode.failure
        : ExitCode.ok;
    };
  },
};

const QUARANTINE_USAGE = 'outbox quarantine <list|retry> [options]';

/** `outbox quarantine list|retry ...` */
export function runQuarantineCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  if (sub === 'list') return runCommand(quarantineListCommand, argv, io);
  if (sub === 'retry') return runCommand(quarantineRetryCommand, argv, io);
  const text = `usage: ${QUARANTINE_USAGE}\n  ${quarantineListCommand.usage}\n  ${quarantineRetryCommand.usage}\n`;
  if (sub === '--help' || sub === '-h') {
    io.stdout(text);
    return Promise.resolve(ExitCode.ok);
  }
  io.stderr(`error: ${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${text}`);
  return Promise.resolve(ExitCode.usage);
}
