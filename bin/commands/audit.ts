/**
 * `outbox audit --from <time> --to <time> [--subscription <name>]`: per subscription, the events committed in
 * [from, to) that its filter selects, and what became of each: applied (the consumer's dedup record is
 * COMPLETED, or its ordered cursor is at or past the event's sequence), dead-lettered (in the subscription's
 * DLQ, peeked without consuming), quarantined (the outbox record is QUARANTINED, never published) or missing.
 * Exit 1 when any event is missing. The counting is functions/audit/audit-core.ts, shared with the scheduled audit.
 *
 * Cost: one streamed parallel Scan of the whole outbox table (like `replay`), bounded by `--max` events, then
 * consistent BatchGetItem reads of the dedup table; the read units are printed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AuditFilterError, type AuditResult, auditWindow } from '../../functions/audit/audit-core.ts';
import {
  DEDUP_TABLE_OUTPUT_KEY,
  parseSubscriptionFilter,
  SUBSCRIPTION_CONSUMER_MODE_OUTPUT_PATTERN,
  SUBSCRIPTION_FILTER_OUTPUT_PATTERN,
  type SubscriptionFilter,
  UNAUDITED_CONSUMER_MODE,
} from '../../functions/contract/audit-filter.ts';
import { outputName } from '../../functions/contract/outputs.ts';
import {
  OutboxParameterName,
  outboxParameterPath,
  tableNameFromArn,
} from '../../functions/contract/parameters.ts';
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

export {
  type AuditEvent,
  type AuditResult,
  type AuditScan,
  COMMITTED_STATUSES,
  classify,
  type Evidence,
  MAX_LISTED_MISSING,
  type Outcome,
  readDedup,
  type SubscriptionAudit,
  scanCommitted,
  selector,
} from '../../functions/audit/audit-core.ts';

export const DEFAULT_AUDIT_MAX = 10_000;
export const DEFAULT_DLQ_PEEK = 1000;

/** Audit extras the Deployment type does not carry: the dedup table and per-subscription filters. */
export interface AuditExtras {
  readonly dedupTableName?: string;
  /** Filters by subscription name as written in the source. */
  readonly filters: ReadonlyMap<string, SubscriptionFilter>;
  /** Normalized names of subscriptions whose consumer keeps no dedup records (mode 'single-item'): not audited. */
  readonly unaudited?: ReadonlySet<string>;
}

const normalize = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '');

/** The optional `dedupTableName` and `subscriptions[].filter` of a deployment file. */
export function auditExtrasFromJson(json: unknown, origin: string): AuditExtras {
  const filters = new Map<string, SubscriptionFilter>();
  const unaudited = new Set<string>();
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
    if (typeof entry.name === 'string' && entry.consumerMode === UNAUDITED_CONSUMER_MODE)
      unaudited.add(normalize(entry.name));
    if (entry.filter === undefined || typeof entry.name !== 'string') return;
    const filter = parseSubscriptionFilter(entry.filter);
    if (typeof filter === 'string') {
      throw new DeploymentNotFoundError(`${origin}: subscriptions[${i}].filter ${filter}`);
    }
    filters.set(normalize(entry.name), filter);
  });
  return { ...(dedupTableName === undefined ? {} : { dedupTableName }), filters, unaudited };
}

/** The optional `OutboxDedupTableName` and `Sub<Name>Filter` outputs of stacks. */
export function auditExtrasFromOutputs(
  outputs: readonly { OutputKey?: string | undefined; OutputValue?: string | undefined }[],
): AuditExtras {
  const filters = new Map<string, SubscriptionFilter>();
  const unaudited = new Set<string>();
  let dedupTableName: string | undefined;
  for (const { OutputKey: key, OutputValue: value } of outputs) {
    if (!key || !value) continue;
    if (key === DEDUP_TABLE_OUTPUT_KEY) dedupTableName = value;
    const modeMatch = SUBSCRIPTION_CONSUMER_MODE_OUTPUT_PATTERN.exec(key);
    if (modeMatch?.[1] && value === UNAUDITED_CONSUMER_MODE) unaudited.add(normalize(modeMatch[1]));
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
  return { ...(dedupTableName === undefined ? {} : { dedupTableName }), filters, unaudited };
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
  /** Normalized names of subscriptions left out (single-item consumers: no dedup records to check). */
  readonly unaudited?: ReadonlySet<string>;
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
  const unaudited = options.unaudited ?? new Set<string>();
  const subscriptions =
    options.subscription === undefined
      ? deployment.subscriptions.filter((sub) => !unaudited.has(normalize(sub.name)))
      : [findSubscription(deployment, options.subscription)];
  const notAuditable = subscriptions.find((sub) => unaudited.has(normalize(sub.name)));
  if (notAuditable) {
    throw new CliUsageError(
      `subscription ${notAuditable.name} has a '${UNAUDITED_CONSUMER_MODE}' consumer: it keeps its cursor on its own effect item, not in the dedup table, so the audit cannot tell what it applied. Check its effect table instead.`,
    );
  }
  const byName = new Map(subscriptions.map((sub) => [sub.name, sub]));
  try {
    return await auditWindow(clients, {
      outboxTableName: deployment.outboxTableName,
      dedupTableName: options.dedupTableName,
      window: options.window,
      subscriptions: subscriptions.map((sub) => {
        const filter = options.override ?? options.filters.get(normalize(sub.name));
        return { name: sub.name, ...(filter === undefined ? {} : { filter }) };
      }),
      scan: {
        segments: options.segments ?? 4,
        maxEvents: options.max ?? DEFAULT_AUDIT_MAX,
        ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
      },
      deadLetters: async (name) => {
        const sub = byName.get(name);
        if (!sub) return { eventIds: new Set(), peeked: 0 };
        const peek = await listDlq(clients, sub, options.dlqPeek ?? DEFAULT_DLQ_PEEK);
        return {
          eventIds: new Set(peek.messages.flatMap((m) => (m.eventId ? [m.eventId] : []))),
          peeked: peek.messages.length,
        };
      },
    });
  } catch (error) {
    if (error instanceof AuditFilterError) throw new DeploymentNotFoundError(error.message, { cause: error });
    throw error;
  }
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
        ...(extras.unaudited ? { unaudited: extras.unaudited } : {}),
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
