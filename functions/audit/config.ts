import { parseSubscriptionFilter } from '../contract/audit-filter.ts';
import { OutboxConfigurationError } from '../runtime/errors.ts';
import type { AuditedSubscription } from './audit-core.ts';
import { AuditDefaults, AuditEnv } from './contract.ts';

export interface ScheduledAuditConfig {
  readonly outboxTableName: string;
  readonly dedupTableName: string;
  readonly subscriptions: readonly AuditedSubscription[];
  readonly lagMs: number;
  readonly windowMs: number;
  readonly maxItemsPerRun: number;
}

type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) {
    throw new OutboxConfigurationError(
      `${name} is not set; the audit function is deployed by the Outbox construct (audit prop), which sets it.`,
    );
  }
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutboxConfigurationError(
      `${name} must be an integer from ${min} to ${max}, but "${raw}" was provided; fix the audit function's environment.`,
    );
  }
  return value;
}

function subscriptions(env: Env): AuditedSubscription[] {
  const raw = env[AuditEnv.subscriptions]?.trim();
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new OutboxConfigurationError(
      `${AuditEnv.subscriptions} is not valid JSON; it must be [{ "name": "<subscription>", "filter": {...} }].`,
      { cause: error },
    );
  }
  if (!Array.isArray(parsed)) {
    throw new OutboxConfigurationError(`${AuditEnv.subscriptions} must be a JSON array of { name, filter }.`);
  }
  return parsed.map((entry: unknown, i) => {
    const { name, filter } = (entry ?? {}) as { name?: unknown; filter?: unknown };
    if (typeof name !== 'string' || name === '') {
      throw new OutboxConfigurationError(`${AuditEnv.subscriptions}[${i}].name must be a non-empty string.`);
    }
    const parsedFilter = parseSubscriptionFilter(filter);
    if (typeof parsedFilter === 'string') {
      throw new OutboxConfigurationError(`${AuditEnv.subscriptions}[${i}].filter ${parsedFilter}.`);
    }
    return { name, filter: parsedFilter };
  });
}

export function auditConfigFromEnv(env: Env = process.env): ScheduledAuditConfig {
  const subs = subscriptions(env);
  return {
    outboxTableName: required(env, AuditEnv.outboxTable),
    // No subscription with a consumer yet: nothing to audit, and no dedup table to name.
    dedupTableName: subs.length === 0 ? '' : required(env, AuditEnv.dedupTable),
    subscriptions: subs,
    lagMs: integer(env, AuditEnv.lagSeconds, AuditDefaults.lagSeconds, 60, 86_400) * 1000,
    windowMs: integer(env, AuditEnv.windowSeconds, AuditDefaults.windowSeconds, 60, 86_400) * 1000,
    maxItemsPerRun: integer(env, AuditEnv.maxItemsPerRun, AuditDefaults.maxItemsPerRun, 100, 10_000_000),
  };
}
