/**
 * AWS's policy evaluation logic for one account (everything offline runs in one account): an explicit Deny in any
 * policy wins; otherwise a request is allowed when an identity policy allows it or the resource's policy allows it
 * for that principal by name (a resource policy that names the account delegates to identity policies); otherwise
 * it is implicitly denied. Service principals (deliveries) have no identity policies: only the resource policy
 * grants. KMS key policies are the exception AWS makes: the key policy must allow (itself or by delegating to the
 * account). Not modelled: SCPs, RCPs, permission boundaries, session policies, KMS grants.
 */
import {
  type AuthorizationRequest,
  anyStatementApplies,
  type CompiledPolicy,
  type RequestPrincipal,
} from './policy-language.ts';

export type Decision = 'Allow' | 'ExplicitDeny' | 'ImplicitDeny';

export interface PolicySet {
  /** The principal's identity policies (none for service principals). */
  readonly identity: readonly CompiledPolicy[];
  /** The resource's policy (queue, topic, function, bus, key policy), when it has one. */
  readonly resource?: CompiledPolicy | undefined;
  /** KMS keys: identity policies count only when the key policy delegates to the account. */
  readonly keyPolicy?: boolean;
}

export interface Evaluation {
  readonly decision: Decision;
  /** What AWS's error message says about the denial. */
  readonly reason?:
    | 'explicit deny in an identity-based policy'
    | 'explicit deny in a resource-based policy'
    | 'no identity-based policy allows'
    | 'no resource-based policy allows';
}

const withoutAccount = (p: RequestPrincipal): RequestPrincipal => ({ kind: p.kind, id: p.id });

export function evaluate(policies: PolicySet, request: AuthorizationRequest): Evaluation {
  const { identity, resource } = policies;
  const isService = request.principal.kind === 'Service';
  if (!isService && anyStatementApplies(identity, 'Deny', request, false))
    return { decision: 'ExplicitDeny', reason: 'explicit deny in an identity-based policy' };
  if (resource && anyStatementApplies([resource], 'Deny', request, true))
    return { decision: 'ExplicitDeny', reason: 'explicit deny in a resource-based policy' };
  // A resource policy that names the principal itself (not just its account) allows on its own.
  const namesPrincipal =
    resource !== undefined &&
    anyStatementApplies(
      [resource],
      'Allow',
      { ...request, principal: withoutAccount(request.principal) },
      true,
    );
  if (policies.keyPolicy) {
    // The key policy must allow: by naming the principal, or by naming the account (then IAM policies decide).
    if (namesPrincipal) return { decision: 'Allow' };
    const delegates = resource !== undefined && anyStatementApplies([resource], 'Allow', request, true);
    if (delegates && !isService && anyStatementApplies(identity, 'Allow', request, false))
      return { decision: 'Allow' };
    return { decision: 'ImplicitDeny', reason: 'no resource-based policy allows' };
  }
  if (namesPrincipal) return { decision: 'Allow' };
  if (!isService && anyStatementApplies(identity, 'Allow', request, false)) return { decision: 'Allow' };
  return {
    decision: 'ImplicitDeny',
    reason: isService ? 'no resource-based policy allows' : 'no identity-based policy allows',
  };
}

/** AWS's access-denied message, e.g. "User: arn:... is not authorized to perform: sqs:SendMessage on resource: arn:... because no identity-based policy allows the sqs:SendMessage action". */
export function deniedMessage(
  request: AuthorizationRequest,
  evaluation: Evaluation,
  principalArn: string,
): string {
  const because =
    evaluation.reason === 'no identity-based policy allows' ||
    evaluation.reason === 'no resource-based policy allows'
      ? `because ${evaluation.reason} the ${request.action} action`
      : `with an ${evaluation.reason}`;
  return `User: ${principalArn} is not authorized to perform: ${request.action} on resource: ${request.resource} ${because}`;
}
