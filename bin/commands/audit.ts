/**
 * `outbox audit --from <time> --to <time> [--subscription <name>]`: per subscription, the events committed in
 * [from, to) that its filter selects, and what became of each: applied (the consumer's dedup record is
 * COMPLETED, or its ordered cursor is at or past the event's sequence), dead-lettered (in the subscription's
 * DLQ, peeked without consuming), quarantined (the outbox record is QUARANTINED, never published) or missing.
 * Exit 1 when any event is missing.
 *
 * Cost: one streamed parallel Scan of the whole outbox table (like `replay`), bounded by `--max` events, then
 * consistent BatchGetItem reads of the dedup table; the read units are printed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import {
  cursorKey,
  DEDUP_PARTITION_KEY,
  DedupStatus,
  eventDedupKey,
} from '../../functions/consumer/dedup-format.ts';
import {
  DEDUP_TABLE_OUTPUT_KEY,
  describeFilter,
  parseSubscriptionFilter,
  SUBSCRIPTION_FILTER_OUTPUT_PATTERN,
  type SubscriptionFilter,
  typeSelected,
} from '../../functions/contract/audit-filter.ts';
import { outputName } from '../../functions/contract/outputs.ts';
import {
  OutboxParameterName,
  outboxParameterPath,
  tableNameFromArn,
} from '../../functions/contract/parameters.ts';
import { snsSubscriptionFilter } from '../../functions/contract/sns-subscription-filter.ts';
import { compilePattern, eventBridgeEventOf } from '../../functions/patterns/event-pattern.ts';
import { OutboxStatus, PARTITION_KEY, RecordAttribute } from '../../functions/runtime/record-format.ts';
import {
  type CliIo,
  CliUsageError,
  type CommandContext,
  type CommandDefinition,
  DeploymentNotFoundError,
  ExitCode,
  expectPositionals,
  formatJson,
  formatTable,
  integerOption,
  type ParsedArgs,
  runCommand,
  stringOption,
  windowOption,
} from './cli-support.ts';
import type { OutboxClients } from './clients.ts';
import { type Deployment, findSubscription, LOCAL_DEPLOYMENT_FILE, stackNames } from './deployment.ts';
import { listDlq } from './dlq.ts';
import { envelopeJsonOf, parseEnvelope } from './outbox-index.ts';
import { scanEventWindow } from './window-scan.ts';

/** Statuses of a committed event record: everything but PREPARED/CONFIRMED/CANCELLED. */
export const COMMITTED_STATUSES = [
  OutboxStatus.Published,
  OutboxStatus.Ready,
  OutboxStatus.Scheduled,
  OutboxStatus.Quarantined,
] as const;

export const DEFAULT_AUDIT_MAX = 10_000;
export const DEFAULT_DLQ_PEEK = 1000;
/** Missing event ids kept per subscription in a result. */
export const MAX_LISTED_MISSING = 1000;

export interface AuditEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly aggregateKey: string;
  readonly sequence: number;
  readonly status: string;
  readonly createdAt: number;
  /** The parsed envelope, when readable (pattern filters match on it). */
  readonly envelope?: Readonly<Record<string, unknown>>;
}

export type Outcome = 'applied' | 'dead-lettered' | 'quarantined' | 'missing';

/** A filter as a predicate; no filter selects everything. */
export function selector(filter: SubscriptionFilter | undefined): (event: AuditEvent) => boolean {
  if (!filter) return () => true;
  if (filter.kind === 'event-types') return (event) => typeSelected(filter, event.type);
  if (filter.kind === 'sns-filter-policy') {
    const matches = snsSubscriptionFilter(filter.policy, filter.scope);
    return (event) => matches({ ...event, partitionKey: event.aggregateKey, envelope: event.envelope ?? {} });
  }
  const compiled = compilePattern(filter.pattern);
  // What EventBridge matches an outbox event as (the relay puts the envelope in `detail`).
  return (event) =>
    compiled.matches(
      eventBridgeEventOf({
        ...event,
        detail: event.envelope ?? {
          id: event.id,
          type: event.type,
          source: event.source,
          partitionkey: event.aggregateKey,
          sequence: event.sequence,
        },
      }),
    );
}

/** What the dedup table and the DLQ say about one subscription's events. */
export interface Evidence {
  /** Dedup items by key (`E#…` and `S#…`). */
  readonly dedup: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Event ids peeked in the subscription's DLQ. */
  readonly deadLettered: ReadonlySet<string>;
}

export function classify(consumer: string, event: AuditEvent, evidence: Evidence): Outcome {
  const record = evidence.dedup.get(eventDedupKey(consumer, event.id));
  if (record && record[RecordAttribute.status] === DedupStatus.Completed) return 'applied';
  const cursor = evidence.dedup.get(cursorKey(consumer, event.aggregateKey));
  const last = Number(cursor?.[RecordAttribute.lastSequence]);
  if (cursor && Number.isFinite(last) && last >= event.sequence) return 'applied';
  if (event.status === OutboxStatus.Quarantined) return 'quarantined';
  if (evidence.deadLettered.has(event.id)) return 'dead-lettered';
  return 'missing';
}

export interface AuditScan {
  readonly events: AuditEvent[];
  readonly scannedCount: number;
  readonly readUnits: number;
  readonly pages: number;
  readonly unreadable: number;
  readonly stoppedAtMax: boolean;
}

function eventOf(item: Record<string, unknown>): AuditEvent | undefined {
  let envelope: Record<string, unknown> | undefined;
  try {
    const json = envelopeJsonOf(item);
    envelope = json === undefined ? undefined : (parseEnvelope(json) as unknown as Record<string, unknown>);
  } catch {
    envelope = undefined;
  }
  const id = envelope?.id ?? item[RecordAttribute.id];
  const type = envelope?.type ?? item[RecordAttribute.type];
  const sequence = Number(envelope?.sequence ?? item[RecordAttribute.sequence]);
  if (typeof id !== 'string' || typeof type !== 'string' || !Number.isFinite(sequence)) return undefined;
  const source = envelope?.source ?? item[RecordAttribute.source];
  return {
    id,
    type,
    source: typeof source === 'string' ? source : '',
    aggregateKey: String(envelope?.partitionkey ?? item[PARTITION_KEY]),
    sequence,
    status: String(item[RecordAttribute.status]),
    createdAt: Number(item[RecordAttribute.createdAt]),
    ...(envelope ? { envelope } : {}),
  };
}

/** Parallel Scan for committed `EVT#` records with from <= createdAt < to; stops after `max` events. */
export async function scanCommitted(
  clients: OutboxClients,
  tableName: string,
  window: { from: number; to: number },
  options: { segments: number; max: number; pageSize?: number },
): Promise<AuditScan> {
  const events: AuditEvent[] = [];
  let scannedCount = 0;
  let readUnits = 0;
  let pages = 0;
  let unreadable = 0;
  let stop = false;
  await scanEventWindow(
    clients,
    tableName,
    window,
    {
      segments: options.segments,
      statuses: COMMITTED_STATUSES,
      ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    },
    (page) => {
      pages = page.page;
      scannedCount += page.scannedCount;
      readUnits += page.readUnits;
      for (const item of page.items) {
        if (events.length >= options.max) {
          stop = true;
          break;
        }
        const event = eventOf(item);
        if (event) events.push(event);
        else unreadable++;
      }
      return !stop;
    },
  );
  return { events, scannedCount, readUnits, pages, unreadable, stoppedAtMax: stop };
}

/** Consistent BatchGetItem of the given keys (100 per call), retrying unprocessed keys. */
export async function readDedup(
  clients: OutboxClients,
  tableName: string,
  keys: readonly string[],
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<{ items: Map<string, Record<string, unknown>>; readUnits: number }> {
  const items = new Map<string, Record<string, unknown>>();
  let readUnits = 0;
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += 100) {
    let pending: Record<string, unknown>[] = unique
      .slice(i, i + 100)
      .map((k) => ({ [DEDUP_PARTITION_KEY]: k }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(2000, 50 * 2 ** attempt));
      if (attempt > 8) throw new Error(`the dedup table ${tableName} kept throttling BatchGetItem`);
      const response = await clients.dynamodb.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      for (const c of response.ConsumedCapacity ?? []) readUnits += c.CapacityUnits ?? 0;
      for (const item of response.Responses?.[tableName] ?? []) {
        items.set(String(item[DEDUP_PARTITION_KEY]), item);
      }
      pending = (response.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
    }
  }
  return { items, readUnits };
}

export interface SubscriptionAudit {
  readonly subscription: string;
  readonly filter: string;
  readonly filterKnown: boolean;
  readonly expected: number;
  readonly applied: number;
  readonly deadLettered: number;
  readonly quarantined: number;
  readonly missing: number;
  /** Missing events (at most MAX_LISTED_MISSING). */
  readonly missingEvents: readonly {
    id: string;
    type: string;
    aggregateKey: string;
    sequence: number;
    status: string;
  }[];
  /** DLQ messages peeked (at most the DLQ peek limit). */
  readonly dlqPeeked: number;
}

export interface AuditResult {
  readonly window: { readonly from: string; readonly to: string };
  readonly dedupTableName: string;
  readonly scannedCount: number;
  readonly pages: number;
  readonly events: number;
  readonly unreadable: number;
  readonly stoppedAtMax?: number;
  readonly readUnits: { readonly scan: number; readonly dedup: number };
  readonly subscriptions: readonly SubscriptionAudit[];
}

/** Audit extras the Deployment type does not carry: the dedup table and per-subscription filters. */
export interface AuditExtras {
  readonly dedupTableName?: string;
  /** Filters by subscription name as written in the source. */
  readonly filters: ReadonlyMap<string, SubscriptionFilter>;
}

const normalize = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** The optional `dedupTableName` and `subscriptions[].filter` of a deployment file. */
export function auditExtrasFromJson(json: unknown, origin: string): AuditExtras {
  const filters = new Map<string, SubscriptionFilter>();
  const v = (json ?? {}) as Record<string, unknown>;
  let dedupTableName: string | undefined;
  if (v.dedupTableName !== undefined) {
    if (typeof v.dedupTableName !== 'string' || v.dedupTableName.trim() === '') {
      throw new DeploymentNotFoundError(`${origin}: dedupTableName must be a non-empty string`);
    }
    dedupTableName = v.dedupTableName;
  }
  const subs = Array.isArray(v.subscriptions) ? v.subscriptions : [];
  subs.forEach((s, i) => {
    const entry = (s ?? {}) as Record<string, unknown>;
    if (entry.filter === undefined || typeof entry.name !== 'string') return;
    const filter = parseSubscriptionFilter(entry.filter);
    if (typeof filter === 'string') {
      throw new DeploymentNotFoundError(`${origin}: subscriptions[${i}].filter ${filter}`);
    }
    filters.set(normalize(entry.name), filter);
  });
  return { ...(dedupTableName === undefined ? {} : { dedupTableName }), filters };
}

/** The optional `OutboxDedupTableName` and `Sub<Name>Filter` outputs of stacks. */
export function auditExtrasFromOutputs(
  outputs: readonly { OutputKey?: string | undefined; OutputValue?: string | undefined }[],
): AuditExtras {
  const filters = new Map<string, SubscriptionFilter>();
  let dedupTableName: string | undefined;
  for (const { OutputKey: key, OutputValue: value } of outputs) {
    if (!key || !value) continue;
    if (key === DEDUP_TABLE_OUTPUT_KEY) dedupTableName = value;
    const match = SUBSCRIPTION_FILTER_OUTPUT_PATTERN.exec(key);
    if (!match?.[1]) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new DeploymentNotFoundError(`stack output ${key} is not JSON`);
    }
    const filter = parseSubscriptionFilter(parsed);
    if (typeof filter === 'string')
      throw new DeploymentNotFoundError(`stack output ${key}: filter ${filter}`);
    filters.set(normalize(match[1]), filter);
  }
  return { ...(dedupTableName === undefined ? {} : { dedupTableName }), filters };
}

async function loadExtras(values: ParsedArgs['values']): Promise<AuditExtras> {
  const file =
    stringOption(values, 'deployment') ?? (values.local === true ? LOCAL_DEPLOYMENT_FILE : undefined);
  if (file !== undefined) {
    const path = resolve(process.cwd(), file);
    return auditExtrasFromJson(JSON.parse(await readFile(path, 'utf8')), path);
  }
  const region = stringOption(values, 'region');
  const outbox = stringOption(values, 'outbox');
  const stack = values.stack;
  let fromStacks: AuditExtras = { filters: new Map() };
  if (outbox === undefined || stack !== undefined) {
    const names = stackNames(
      stack === undefined || typeof stack === 'boolean' ? 'ServerlessOutbox' : (stack as string | string[]),
    );
    const client = new CloudFormationClient(region === undefined ? {} : { region });
    try {
      const outputs = await Promise.all(
        names.map(async (StackName) => {
          const response = await client.send(new DescribeStacksCommand({ StackName }));
          return response.Stacks?.[0]?.Outputs ?? [];
        }),
      );
      fromStacks = auditExtrasFromOutputs(outputs.flat());
    } finally {
      client.destroy();
    }
  }
  if (outbox === undefined || fromStacks.dedupTableName !== undefined) return fromStacks;
  // An Outbox with a parameterPrefix publishes its dedup table's ARN as `<prefix>/dedup-table-arn`.
  const name = outboxParameterPath(outbox.trim().replace(/\/+$/, ''), OutboxParameterName.dedupTableArn);
  const ssm = new SSMClient(region === undefined ? {} : { region });
  try {
    const response = await ssm.send(new GetParametersCommand({ Names: [name] }));
    const arn = response.Parameters?.find((p) => p.Name === name)?.Value;
    const dedupTableName = arn === undefined ? undefined : tableNameFromArn(arn);
    return dedupTableName === undefined ? fromStacks : { ...fromStacks, dedupTableName };
  } finally {
    ssm.destroy();
  }
}

export interface AuditOptions {
  readonly window: { from: number; to: number };
  readonly subscription?: string;
  readonly dedupTableName: string;
  /** Filters by normalized subscription name; `override` applies to every audited subscription. */
  readonly filters: ReadonlyMap<string, SubscriptionFilter>;
  readonly override?: SubscriptionFilter;
  readonly max?: number;
  readonly dlqPeek?: number;
  readonly segments?: number;
  readonly pageSize?: number;
}

export async function audit(
  clients: OutboxClients,
  deployment: Deployment,
  options: AuditOptions,
): Promise<AuditResult> {
  const subscriptions =
    options.subscription === undefined
      ? deployment.subscriptions
      : [findSubscription(deployment, options.subscription)];
  // Compile every filter first: an invalid pattern must fail before the Scan is paid for.
  const audited = subscriptions.map((sub) => {
    const filter = options.override ?? options.filters.get(normalize(sub.name));
    let selects: (event: AuditEvent) => boolean;
    try {
      selects = selector(filter);
    } catch (error) {
      throw new DeploymentNotFoundError(
        `the filter of subscription ${sub.name} is not a valid EventBridge pattern: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return { sub, filter, selects };
  });
  const max = options.max ?? DEFAULT_AUDIT_MAX;
  const scan = await scanCommitted(clients, deployment.outboxTableName, options.window, {
    segments: options.segments ?? 4,
    max,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  });
  let dedupUnits = 0;
  const results: SubscriptionAudit[] = [];
  for (const { sub, filter, selects } of audited) {
    const expected = scan.events.filter(selects);
    const keys = expected.flatMap((e) => [
      eventDedupKey(sub.name, e.id),
      cursorKey(sub.name, e.aggregateKey),
    ]);
    const dedup = await readDedup(clients, options.dedupTableName, keys);
    dedupUnits += dedup.readUnits;
    const peek = await listDlq(clients, sub, options.dlqPeek ?? DEFAULT_DLQ_PEEK);
    const deadLettered = new Set(peek.messages.flatMap((m) => (m.eventId ? [m.eventId] : [])));
    const counts = { applied: 0, 'dead-lettered': 0, quarantined: 0, missing: 0 };
    const missingEvents: SubscriptionAudit['missingEvents'][number][] = [];
    for (const event of expected) {
      const outcome = classify(sub.name, event, { dedup: dedup.items, deadLettered });
      counts[outcome]++;
      if (outcome === 'missing' && missingEvents.length < MAX_LISTED_MISSING) {
        missingEvents.push({
          id: event.id,
          type: event.type,
          aggregateKey: event.aggregateKey,
          sequence: event.sequence,
          status: event.status,
        });
      }
    }
    results.push({
      subscription: sub.name,
      filter: describeFilter(filter),
      filterKnown: filter !== undefined,
      expected: expected.length,
      applied: counts.applied,
      deadLettered: counts['dead-lettered'],
      quarantined: counts.quarantined,
      missing: counts.missing,
      missingEvents,
      dlqPeeked: peek.messages.length,
    });
  }
  return {
    window: {
      from: new Date(options.window.from).toISOString(),
      to: new Date(options.window.to).toISOString(),
    },
    dedupTableName: options.dedupTableName,
    scannedCount: scan.scannedCount,
    pages: scan.pages,
    events: scan.events.length,
    unreadable: scan.unreadable,
    ...(scan.stoppedAtMax ? { stoppedAtMax: max } : {}),
    readUnits: { scan: scan.readUnits, dedup: dedupUnits },
    subscriptions: results,
  };
}

const SHOWN_MISSING = 20;

export function formatAudit(result: AuditResult): string {
  const lines = [
    `audit ${result.window.from} → ${result.window.to}: ${result.events} committed event(s) in the window (PUBLISHED, READY, SCHEDULED, QUARANTINED)` +
      (result.stoppedAtMax === undefined
        ? ''
        : ` (stopped at --max ${result.stoppedAtMax}: the window may hold more)`),
    `  read cost: the Scan read ${result.scannedCount} item(s) in ${result.pages} page(s), ${result.readUnits.scan} read units; dedup table ${result.dedupTableName}: ${result.readUnits.dedup} read units`,
  ];
  if (result.unreadable > 0)
    lines.push(`  ${result.unreadable} record(s) had no readable id/type: not audited`);
  lines.push(
    formatTable(
      ['subscription', 'expected', 'applied', 'dead-lettered', 'quarantined', 'missing', 'filter'],
      result.subscriptions.map((s) => [
        s.subscription,
        s.expected,
        s.applied,
        s.deadLettered,
        s.quarantined,
        s.missing,
        s.filter,
      ]),
    ).trimEnd(),
  );
  for (const s of result.subscriptions) {
    if (s.missing === 0) continue;
    lines.push(`missing in ${s.subscription}:`);
    for (const m of s.missingEvents.slice(0, SHOWN_MISSING)) {
      lines.push(`  ${m.id}  ${m.type}  ${m.aggregateKey}#${m.sequence}  (${m.status})`);
    }
    if (s.missing > SHOWN_MISSING)
      lines.push(`  … and ${s.missing - SHOWN_MISSING} more (--json lists them)`);
  }
  return `${lines.join('\n')}\n`;
}

function listOption(values: ParsedArgs['values'], name: string): string[] {
  const raw = stringOption(values, name);
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export const auditCommand: CommandDefinition = {
  usage:
    'outbox audit --from <ISO time> --to <ISO time> [--subscription <name>] [--dedup-table <name>] [--types a,b] [--type-prefix p,q] [--max N] [--dlq-peek N] [--json] [deployment options]',
  optionsUsage: `  --subscription <name> audit this subscription only (default: every subscription)
  --dedup-table <name>  the consumers' dedup table (default: the deployment's dedupTableName / OutboxDedupTableName output)
  --types a,b           count only these event types as expected (overrides the deployment's filters)
  --type-prefix p,q     count only event types starting with these (overrides the deployment's filters)
  --max <n>             audit at most n events; the Scan stops there (default ${DEFAULT_AUDIT_MAX})
  --dlq-peek <n>        DLQ messages peeked per subscription, without consuming (default ${DEFAULT_DLQ_PEEK})
  --segments <n>        parallel Scan segments (default 4, 1–64)`,
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    subscription: { type: 'string' },
    'dedup-table': { type: 'string' },
    types: { type: 'string' },
    'type-prefix': { type: 'string' },
    max: { type: 'string' },
    'dlq-peek': { type: 'string' },
    segments: { type: 'string' },
  },
  prepare: (args) => {
    expectPositionals(args, 0);
    const { from, to } = windowOption(args.values);
    const subscription = stringOption(args.values, 'subscription');
    const dedupOption = stringOption(args.values, 'dedup-table');
    const types = listOption(args.values, 'types');
    const prefixes = listOption(args.values, 'type-prefix');
    const override: SubscriptionFilter | undefined =
      types.length + prefixes.length > 0 ? { kind: 'event-types', types, prefixes } : undefined;
    const max = integerOption(args.values, 'max', DEFAULT_AUDIT_MAX, 1, 1_000_000);
    const dlqPeek = integerOption(args.values, 'dlq-peek', DEFAULT_DLQ_PEEK, 0, 100_000);
    const segments = integerOption(args.values, 'segments', 4, 1, 64);
    return async ({ deployment, clients, io, json }: CommandContext) => {
      const extras = await loadExtras(args.values);
      const dedupTableName = dedupOption ?? extras.dedupTableName;
      if (dedupTableName === undefined) {
        throw new CliUsageError(
          `the deployment does not name the consumers' dedup table (no dedupTableName in the deployment file, no ${DEDUP_TABLE_OUTPUT_KEY} stack output): pass --dedup-table <name>`,
        );
      }
      const result = await audit(clients, deployment, {
        window: { from, to },
        dedupTableName,
        filters: extras.filters,
        max,
        dlqPeek,
        segments,
        ...(override === undefined ? {} : { override }),
        ...(subscription === undefined ? {} : { subscription }),
      });
      io.stdout(json ? formatJson(result) : formatAudit(result));
      return result.subscriptions.some((s) => s.missing > 0) ? ExitCode.failure : ExitCode.ok;
    };
  },
};

export function runAuditCommand(argv: readonly string[], io: CliIo): Promise<number> {
  return runCommand(auditCommand, argv, io);
}

/** `order-history` → the <Name> of `Sub<Name>Filter`. */
export const subscriptionFilterOutputKey = (subscription: string): string =>
  `Sub${outputName(subscription)}Filter`;
