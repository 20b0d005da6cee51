import { describe, expect, it } from 'vitest';
import { auditConfigFromEnv } from '../../functions/audit/config.ts';
import { readRecoveryConfig } from '../../functions/recovery/config.ts';
import { OutboxConfigurationError } from '../../functions/runtime/errors.ts';
import { integerFromEnv, jsonFromEnv } from '../../functions/shared/env.ts';

describe('functions/shared/env', () => {
  const range = { fallback: 30, min: 10, max: 60 };

  it('reads an integer in range, and the fallback when unset or blank', () => {
    expect(integerFromEnv({ N: ' 45 ' }, 'N', range, 'the test function')).toBe(45);
    expect(integerFromEnv({}, 'N', range, 'the test function')).toBe(30);
    expect(integerFromEnv({ N: '  ' }, 'N', range, 'the test function')).toBe(30);
  });

  it.each(['9', '61', '1.5', 'ten'])(
    'refuses %j, naming the variable, the range and whose environment to fix',
    (raw) => {
      expect(() => integerFromEnv({ N: raw }, 'N', range, 'the test function')).toThrow(
        new OutboxConfigurationError(
          `N must be an integer from 10 to 60, but "${raw}" was provided; fix the test function's environment.`,
        ),
      );
    },
  );

  it('refuses text that is not JSON, saying what shape is expected', () => {
    expect(jsonFromEnv('[1]', 'J', '[...]')).toEqual([1]);
    expect(() => jsonFromEnv('{', 'J', '{ "a": 1 }')).toThrow(
      /J is not valid JSON; it must be \{ "a": 1 \}\./,
    );
  });

  it('the audit and recovery configs name their own function', () => {
    expect(() => auditConfigFromEnv({ OUTBOX_TABLE_NAME: 't', OUTBOX_AUDIT_LAG_SECONDS: '1' })).toThrow(
      /fix the audit function's environment/,
    );
    expect(() => readRecoveryConfig({ OUTBOX_RECOVERY_MAX_ATTEMPTS: '0' })).toThrow(
      /fix the recovery function's environment/,
    );
  });
});
