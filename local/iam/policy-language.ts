/**
 * The IAM policy language the templates use, compiled once per policy: Effect, Action/NotAction,
 * Resource/NotResource, Principal/NotPrincipal and Condition (operators, `...IfExists`, `ForAllValues:` /
 * `ForAnyValue:`). Follows AWS's documented matching rules: actions match case-insensitively, ARNs and condition
 * strings case-sensitively (unless the operator says IgnoreCase); several values of one key OR, several keys and
 * operators AND.
 */

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly NotResource?: string | readonly string[];
  readonly Principal?: PolicyPrincipal;
  readonly NotPrincipal?: PolicyPrincipal;
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export type PolicyPrincipal = '*' | Readonly<Record<string, string | readonly string[]>>;

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: PolicyStatement | readonly PolicyStatement[];
}

/** Request context values: a key is absent, single-valued or multivalued (e.g. `dynamodb:LeadingKeys`). */
export type ContextValues = Readonly<Record<string, string | readonly string[]>>;

/** Who makes a request: an IAM role (its ARN) or an AWS service principal (`sns.amazonaws.com`). */
export interface RequestPrincipal {
  readonly kind: 'AWS' | 'Service';
  readonly id: string;
  /** The principal's account (for `"AWS": "<account id>"` / `:root` principals). */
  readonly accountId?: string;
}

export interface AuthorizationRequest {
  readonly principal: RequestPrincipal;
  readonly action: string;
  readonly resource: string;
  readonly context: ContextValues;
}

export class PolicyLanguageError extends Error {
  constructor(message: string) {
    super(`${message}. Fix the policy (AWS would reject it too) or report the construct that produced it.`);
    this.name = 'PolicyLanguageError';
  }
}

const asList = (value: unknown): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];

/** A glob (`*` any run of characters, `?` one character) as an anchored RegExp. */
export function globToRegExp(glob: string, ignoreCase: boolean): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's');
}

type Matcher = (value: string) => boolean;

function anyGlob(patterns: readonly string[], ignoreCase: boolean): Matcher {
  if (patterns.includes('*')) return () => true;
  const regexps = patterns.map((p) => globToRegExp(p, ignoreCase));
  return (value) => regexps.some((r) => r.test(value));
}

/** One condition operator applied to one context value and the policy's values (OR over the policy values). */
type ValueTest = (contextValue: string, policyValues: readonly string[]) => boolean;

const numberOrNaN = (v: string): number => (v.trim() === '' ? Number.NaN : Number(v));
const dateOf = (v: string): number => (/^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v));

function numeric(compare: (a: number, b: number) => boolean, parse = numberOrNaN): ValueTest {
  return (value, policy) => {
    const a = parse(value);
    return policy.some((p) => {
      const b = parse(p);
      return !Number.isNaN(a) && !Number.isNaN(b) && compare(a, b);
    });
  };
}

/** ArnLike: the six colon-separated parts match one by one (the last may hold colons). */
function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6) return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function arnLike(value: string, pattern: string): boolean {
  const v = arnParts(value);
  const p = arnParts(pattern);
  if (!v || !p) return false;
  return p.every((part, i) => globToRegExp(part, false).test(v[i] as string));
}

/** Base operators (without IfExists / set prefixes); `negated` ones are true when no policy value matches. */
const OPERATORS: Readonly<Record<string, { test: ValueTest; negated: boolean }>> = {
  StringEquals: { test: (v, p) => p.includes(v), negated: false },
  StringNotEquals: { test: (v, p) => p.includes(v), negated: true },
  StringEqualsIgnoreCase: {
    test: (v, p) => p.some((x) => x.toLowerCase() === v.toLowerCase()),
    negated: false,
  },
  StringNotEqualsIgnoreCase: {
    test: (v, p) => p.some((x) => x.toLowerCase() === v.toLowerCase()),
    negated: true,
  },
  StringLike: { test: (v, p) => anyGlob(p, false)(v), negated: false },
  StringNotLike: { test: (v, p) => anyGlob(p, false)(v), negated: true },
  NumericEquals: { test: numeric((a, b) => a === b), negated: false },
  NumericNotEquals: { test: numeric((a, b) => a === b), negated: true },
  NumericLessThan: { test: numeric((a, b) => a < b), negated: false },
  NumericLessThanEquals: { test: numeric((a, b) => a <= b), negated: false },
  NumericGreaterThan: { test: numeric((a, b) => a > b), negated: false },
  NumericGreaterThanEquals: { test: numeric((a, b) => a >= b), negated: false },
  DateEquals: { test: numeric((a, b) => a === b, dateOf), negated: false },
  DateNotEquals: { test: numeric((a, b) => a === b, dateOf), negated: true },
  DateLessThan: { test: numeric((a, b) => a < b, dateOf), negated: false },
  DateLessThanEquals: { test: numeric((a, b) => a <= b, dateOf), negated: false },
  DateGreaterThan: { test: numeric((a, b) => a > b, dateOf), negated: false },
  DateGreaterThanEquals: { test: numeric((a, b) => a >= b, dateOf), negated: false },
  Bool: { test: (v, p) => p.some((x) => x.toLowerCase() === v.toLowerCase()), negated: false },
  ArnEquals: { test: (v, p) => p.some((x) => arnLike(v, x)), negated: false },
  ArnLike: { test: (v, p) => p.some((x) => arnLike(v, x)), negated: false },
  ArnNotEquals: { test: (v, p) => p.some((x) => arnLike(v, x)), negated: true },
  ArnNotLike: { test: (v, p) => p.some((x) => arnLike(v, x)), negated: true },
};

type ConditionTest = (context: ContextValues) => boolean;

function compileCondition(operatorName: string, key: string, rawValues: unknown): ConditionTest {
  const values = asList(rawValues);
  const lowerKey = key.toLowerCase();
  const lookup = (context: ContextValues): string | readonly string[] | undefined => {
    if (key in context) return context[key];
    // Condition keys are case-insensitive.
    for (const [k, v] of Object.entries(context)) if (k.toLowerCase() === lowerKey) return v;
    return undefined;
  };
  if (operatorName === 'Null') {
    // Several values OR: "true" holds when the key is absent, "false" when it is present.
    return (context) => {
      // A key given with no values is present (as iam-simulate decides; AWS documents no other rule).
      const absent = lookup(context) === undefined;
      return values.some((x) => (x.toLowerCase() === 'true' ? absent : !absent));
    };
  }
  let name = operatorName;
  let set: 'all' | 'any' | undefined;
  if (name.startsWith('ForAllValues:')) {
    set = 'all';
    name = name.slice('ForAllValues:'.length);
  } else if (name.startsWith('ForAnyValue:')) {
    set = 'any';
    name = name.slice('ForAnyValue:'.length);
  }
  const ifExists = name.endsWith('IfExists');
  if (ifExists) name = name.slice(0, -'IfExists'.length);
  const operator = OPERATORS[name];
  if (!operator) throw new PolicyLanguageError(`unsupported condition operator ${operatorName}`);
  const matches = (v: string): boolean => {
    const hit = operator.test(v, values);
    return operator.negated ? !hit : hit;
  };
  return (context) => {
    const raw = lookup(context);
    if (raw === undefined) {
      if (ifExists) return true;
      if (set === 'all') return true;
      if (set === 'any') return false;
      return operator.negated;
    }
    const list = typeof raw === 'string' ? [raw] : raw;
    if (set === 'all') return list.every(matches);
    if (set === 'any') return list.some(matches);
    if (list.length === 0) return ifExists || operator.negated;
    // A single-valued operator on a multivalued key: any value may satisfy it.
    return list.some(matches);
  };
}

export interface CompiledStatement {
  readonly effect: 'Allow' | 'Deny';
  readonly sid?: string;
  matchesAction(action: string): boolean;
  matchesResource(resource: string): boolean;
  /** True when the statement has no principal element (identity policies). */
  matchesPrincipal(principal: RequestPrincipal): boolean;
  matchesConditions(context: ContextValues): boolean;
}

function compilePrincipal(
  element: PolicyPrincipal | undefined,
): ((p: RequestPrincipal) => boolean) | undefined {
  if (element === undefined) return undefined;
  if (element === '*') return () => true;
  const byKind: Record<string, string[]> = {};
  for (const [kind, ids] of Object.entries(element)) byKind[kind] = asList(ids);
  return (p) =>
    (byKind[p.kind] ?? []).some((id) => {
      if (id === '*') return true;
      if (id === p.id) return true;
      // `"AWS": "<account>"` or `arn:aws:iam::<account>:root`: the account, whose principals its policies govern.
      if (p.kind === 'AWS' && p.accountId !== undefined)
        return id === p.accountId || id === `arn:aws:iam::${p.accountId}:root`;
      return false;
    });
}

export function compileStatement(statement: PolicyStatement): CompiledStatement {
  if (statement.Effect !== 'Allow' && statement.Effect !== 'Deny')
    throw new PolicyLanguageError(`statement ${statement.Sid ?? ''} has Effect ${String(statement.Effect)}`);
  const action = statement.Action !== undefined ? anyGlob(asList(statement.Action), true) : undefined;
  const notAction =
    statement.NotAction !== undefined ? anyGlob(asList(statement.NotAction), true) : undefined;
  const resource = statement.Resource !== undefined ? anyGlob(asList(statement.Resource), false) : undefined;
  const notResource =
    statement.NotResource !== undefined ? anyGlob(asList(statement.NotResource), false) : undefined;
  const principal = compilePrincipal(statement.Principal);
  const notPrincipal = compilePrincipal(statement.NotPrincipal);
  const conditions: ConditionTest[] = [];
  for (const [operator, keys] of Object.entries(statement.Condition ?? {}))
    for (const [key, values] of Object.entries(keys))
      conditions.push(compileCondition(operator, key, values));
  return {
    effect: statement.Effect,
    ...(statement.Sid ? { sid: statement.Sid } : {}),
    matchesAction: (a) => (action ? action(a) : notAction ? !notAction(a) : false),
    // A statement without Resource (resource policies may omit it) applies to the resource it is attached to.
    matchesResource: (r) => (resource ? resource(r) : notResource ? !notResource(r) : true),
    matchesPrincipal: (p) => (principal ? principal(p) : notPrincipal ? !notPrincipal(p) : true),
    matchesConditions: (context) => conditions.every((test) => test(context)),
  };
}

export interface CompiledPolicy {
  readonly name: string;
  readonly statements: readonly CompiledStatement[];
}

export function compilePolicy(name: string, document: PolicyDocument): CompiledPolicy {
  const statements = Array.isArray(document.Statement)
    ? (document.Statement as readonly PolicyStatement[])
    : [document.Statement as PolicyStatement];
  return { name, statements: statements.map(compileStatement) };
}

/** Whether any statement of the policies with `effect` applies to the request. */
export function anyStatementApplies(
  policies: readonly CompiledPolicy[],
  effect: 'Allow' | 'Deny',
  request: AuthorizationRequest,
  checkPrincipal: boolean,
): boolean {
  for (const policy of policies) {
    for (const s of policy.statements) {
      if (s.effect !== effect) continue;
      if (!s.matchesAction(request.action) || !s.matchesResource(request.resource)) continue;
      if (checkPrincipal && !s.matchesPrincipal(request.principal)) continue;
      if (s.matchesConditions(request.context)) return true;
    }
  }
  return false;
}
