import { MAX_EVENT_BYTES_LIMIT } from '../runtime/envelope.ts';
import { OutboxConfigurationError } from '../runtime/errors.ts';
import { type Env, integerFromEnv, jsonFromEnv } from '../shared/env.ts';
import { RecoveryDefaults, RecoveryEnv } from './contract.ts';
import type { SweeperOptions } from './sweeper.ts';

export interface RecoveryConfig {
  /** Sweeper options (the ack timeout comes from the relay's OUTBOX_ACK_TIMEOUT_SECONDS). */
  readonly sweeper: Omit<SweeperOptions, 'ackTimeoutMs'>;
  /** Event source → check-back function name or ARN. */
  readonly checkbackFunctions: Readonly<Record<string, string>>;
  readonly checkbackTimeoutMs: number;
  /** Largest envelope the recovery's writer accepts when it confirms a prepared message. */
  readonly maxEventBytes: number;
}

const DAY = 86_400;
/** The writer's own lower bound for maxEventBytes. */
const MIN_EVENT_BYTES = 1024;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  return integerFromEnv(env, name, { fallback, min, max }, 'the recovery function');
}

function checkbackFunctions(env: Env): Record<string, string> {
  const raw = env[RecoveryEnv.checkbackFunctions]?.trim();
  if (!raw) return {};
  const parsed = jsonFromEnv(
    raw,
    RecoveryEnv.checkbackFunctions,
    '{ "<event source>": "<function name or ARN>" }',
  );
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new OutboxConfigurationError(
      `${RecoveryEnv.checkbackFunctions} must be a JSON object { "<event source>": "<function name or ARN>" }.`,
    );
  }
  const functions: Record<string, string> = {};
  for (const [source, fn] of Object.entries(parsed)) {
    if (typeof fn !== 'string' || fn.trim() === '') {
      throw new OutboxConfigurationError(
        `${RecoveryEnv.checkbackFunctions}: the check-back function of source "${source}" must be a non-empty function name or ARN.`,
      );
    }
    functions[source] = fn;
  }
  return functions;
}

/**
 * Reads and validates the recovery settings. Throws OutboxConfigurationError naming the variable: a
 * misconfigured recovery function must fail loudly (its Errors alarm) rather than quarantine records early.
 */
export function readRecoveryConfig(env: Env = process.env): RecoveryConfig {
  const stuck = integer(env, RecoveryEnv.stuckAfterSeconds, RecoveryDefaults.stuckAfterSeconds, 10, 7 * DAY);
  const checkback = integer(
    env,
    RecoveryEnv.checkbackAfterSeconds,
    RecoveryDefaults.checkbackAfterSeconds,
    10,
    7 * DAY,
  );
  return {
    sweeper: {
      stuckAfterMs: stuck * 1000,
      checkbackAfterMs: checkback * 1000,
      maxAttempts: integer(env, RecoveryEnv.maxAttempts, RecoveryDefaults.maxAttempts, 1, 100),
      backoffBaseMs:
        integer(env, RecoveryEnv.backoffBaseSeconds, RecoveryDefaults.backoffBaseSeconds, 1, 3600) * 1000,
      maxEntriesPerRun: integer(
        env,
        RecoveryEnv.maxEntriesPerRun,
        RecoveryDefaults.maxEntriesPerRun,
        1,
        10_000,
      ),
      maxRedeliveries: integer(env, RecoveryEnv.maxRedeliveries, RecoveryDefaults.maxRedeliveries, 0, 100),
    },
    checkbackFunctions: checkbackFunctions(env),
    checkbackTimeoutMs:
      integer(env, RecoveryEnv.checkbackTimeoutSeconds, RecoveryDefaults.checkbackTimeoutSeconds, 1, 900) *
      1000,
    maxEventBytes: integer(
      env,
      RecoveryEnv.maxEventBytes,
      RecoveryDefaults.maxEventBytes,
      MIN_EVENT_BYTES,
      MAX_EVENT_BYTES_LIMIT,
    ),
  };
}
