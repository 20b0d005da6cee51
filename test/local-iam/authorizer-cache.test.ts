import { describe, expect, it, vi } from 'vitest';
import { DECISION_CACHE_ENTRIES, IamAuthorizer } from '../../local/iam/authorizer.ts';
import * as evaluator from '../../local/iam/evaluator.ts';
import { compilePolicy } from '../../local/iam/policy-language.ts';
import type { IamModel } from '../../local/iam/template-policies.ts';

// Counts policy evaluations (cache misses) while evaluating for real.
vi.mock('../../local/iam/evaluator.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../local/iam/evaluator.ts')>();
  return { ...actual, evaluate: vi.fn(actual.evaluate) };
});

const ACCOUNT = '000000000000';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/consumer-role`;
const TABLE_ARN = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/dedup`;

/** A consumer role that may touch only its own dedup items (`ACK#...`), as the library's grants scope them. */
function authorizer(): IamAuthorizer {
  const model: IamModel = {
    functionRoles: new Map([['consumer', ROLE_ARN]]),
    rolePolicies: new Map([
      [
        ROLE_ARN,
        [
          compilePolicy('dedup', {
            Version: '2012-10-17',
            Statement: {
              Effect: 'Allow',
              Action: 'dynamodb:PutItem',
              Resource: TABLE_ARN,
              Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['ACK#*'] } },
            },
          }),
        ],
      ],
    ]),
    resourcePolicies: new Map(),
    encryptionKeys: new Map(),
    notes: [],
  };
  return new IamAuthorizer(model, { region: 'us-east-1', accountId: ACCOUNT });
}

const put = (leadingKey: string) => ({
  action: 'dynamodb:PutItem',
  resource: TABLE_ARN,
  context: { 'dynamodb:LeadingKeys': [leadingKey] },
});

describe('IamAuthorizer decision cache over a long run', () => {
  it('stays bounded when every call carries a new item key (one per event), and keeps deciding right', () => {
    const iam = authorizer();
    const events = DECISION_CACHE_ENTRIES * 3;
    for (let i = 0; i < events; i++) {
      expect(iam.authorizeCall('consumer', [put(`ACK#event-${i}`)]).allowed).toBe(true);
    }
    // Before the bound, every key stayed until 50,000 entries (tens of MB of the soak's heap).
    expect(iam.cachedDecisions).toBe(DECISION_CACHE_ENTRIES);
    expect(iam.authorizeCall('consumer', [put('OTHER#1')]).allowed).toBe(false);
    expect(iam.authorizeCall('consumer', [put('ACK#event-0')]).allowed).toBe(true);
  });

  it('keeps a decision used all along while one-off keys come and go (least recently used goes first)', () => {
    const iam = authorizer();
    const hot = put('ACK#hot');
    iam.authorizeCall('consumer', [hot]);
    for (let i = 0; i < DECISION_CACHE_ENTRIES * 2; i++) {
      iam.authorizeCall('consumer', [put(`ACK#once-${i}`)]);
      if (i % 100 === 0) iam.authorizeCall('consumer', [hot]);
    }
    const evaluations = vi.mocked(evaluator.evaluate);
    evaluations.mockClear();
    iam.authorizeCall('consumer', [hot]);
    // Still cached although 10,000 newer keys passed: no evaluation.
    expect(evaluations).not.toHaveBeenCalled();
    iam.authorizeCall('consumer', [put('ACK#once-0')]);
    // The oldest one-off key was dropped: evaluated again.
    expect(evaluations).toHaveBeenCalledTimes(1);
  });
});
