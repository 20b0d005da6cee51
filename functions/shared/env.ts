import { OutboxConfigurationError } from '../runtime/errors.ts';

/** A Lambda function's environment, as the handlers read it (process.env by default). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads an optional integer setting in [min, max]; `fallback` when unset or blank. Throws
 * OutboxConfigurationError naming the variable and `owner` (e.g. "the audit function") so the operator
 * knows which function's environment to fix.
 */
export function integerFromEnv(
  env: Env,
  name: string,
  range: { readonly fallback: number; readonly min: number; readonly max: number },
  owner: string,
): number {
  const raw = env[name]?.trim();
  if (!raw) return range.fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new OutboxConfigurationError(
      `${name} must be an integer from ${range.min} to ${range.max}, but "${raw}" was provided; fix ${owner}'s environment.`,
    );
  }
  return value;
}

/**
 * Parses a JSON setting; throws OutboxConfigurationError naming the variable and the `expected` shape when it
 * is not valid JSON. The caller checks the shape.
 */
export function jsonFromEnv(raw: string, name: string, expected: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new OutboxConfigurationError(`${name} is not valid JSON; it must be ${expected}.`, {
      cause: error,
    });
  }
}
