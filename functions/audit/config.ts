import { parseSubscriptionFilter } from '../contract/audit-filter.ts';
import { OutboxConfigurationError } from '../runtime/errors.ts';
import { type Env, integerFromEnv, jsonFromEnv } from '../shared/env.ts';
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
  return integerFromEnv(env, name, { fallback, min, max }, 'the audit function');
}

function subscriptions(env: Env): AuditedSubscription[] {
  const raw = env[AuditEnv.subscriptions]?.trim();
  if (!raw) return [];
  const parsed = jsonFromEnv(raw, AuditEnv.subscriptions, '[{ "name": "<subscription>", "filter": {...} }]');
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
