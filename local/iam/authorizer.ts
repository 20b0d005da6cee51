/**
 * Decides offline what AWS would: calls a function makes (as its execution role) and deliveries AWS services make
 * (SNS → SQS, EventBridge → SQS, CloudWatch → SNS) against the policies of the running stacks. Remembers every
 * denied call and dropped delivery for the run report. Decisions are cached per (principal, action, resource,
 * context): policies do not change while the runtime runs.
 */
import { type Decision, deniedMessage, evaluate } from './evaluator.ts';
import type { AuthorizationRequest, ContextValues, RequestPrincipal } from './policy-language.ts';
import type { MappedRequest } from './requests.ts';
import type { IamModel } from './template-policies.ts';

export interface DeniedCall {
  readonly at: string;
  /** The assumed-role ARN of the function (or the service principal of a delivery). */
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly message: string;
}

export interface DroppedDelivery extends DeniedCall {
  /** e.g. `sns -> sqs`, `events -> sqs`, `cloudwatch -> sns`. */
  readonly path: string;
  /** The topic, rule or alarm whose delivery was dropped. */
  readonly source: string;
}

export interface CallDecision {
  readonly allowed: boolean;
  /** AWS's message for the first denied request. */
  readonly message?: string;
  readonly denied?: MappedRequest;
}

const MAX_RECORDS = 1000;
/**
 * Decisions kept for reuse, least recently used dropped first. Item-level requests carry their keys
 * (`dynamodb:LeadingKeys`), so most keys are seen once; the reusable ones (queues, topics, table-wide calls) are a
 * few hundred. The cap bounds memory over a long run (the soak) at a few MB.
 */
export const DECISION_CACHE_ENTRIES = 5_000;

export class IamAuthorizer {
  readonly #model: IamModel;
  readonly #region: string;
  readonly #accountId: string;
  readonly #cache = new Map<string, { decision: Decision; message?: string }>();
  readonly deniedCalls: DeniedCall[] = [];
  readonly droppedDeliveries: DroppedDelivery[] = [];
  /** Counts beyond MAX_RECORDS are kept, the records are not. */
  deniedCount = 0;
  droppedCount = 0;

  constructor(model: IamModel, opts: { region: string; accountId: string }) {
    this.#model = model;
    this.#region = opts.region;
    this.#accountId = opts.accountId;
  }

  /** Decisions cached for reuse (at most DECISION_CACHE_ENTRIES). */
  get cachedDecisions(): number {
    return this.#cache.size;
  }

  get model(): IamModel {
    return this.#model;
  }

  /**
   * The role a function runs as, or undefined when its calls are not checked: the function is not in the stacks,
   * or its role is not defined in them (an imported role, whose policies are unknown here).
   */
  roleOf(functionName: string): string | undefined {
    const role = this.#model.functionRoles.get(functionName);
    return role !== undefined && this.#model.rolePolicies.has(role) ? role : undefined;
  }

  /** `arn:aws:sts::<account>:assumed-role/<role>/<function>`: who AWS names in a Lambda function's denials. */
  sessionArn(functionName: string): string {
    const role = this.#model.functionRoles.get(functionName)?.split('/').pop() ?? 'unknown-role';
    return `arn:aws:sts::${this.#accountId}:assumed-role/${role}/${functionName}`;
  }

  /** Authorizes every request of one call of `functionName`; the first denial answers for the call. */
  authorizeCall(functionName: string, requests: readonly MappedRequest[]): CallDecision {
    const roleArn = this.roleOf(functionName);
    if (!roleArn) return { allowed: true };
    for (const request of requests) {
      for (const checked of this.#withEncryptionKey(request)) {
        const { decision, message } = this.#decide(
          { kind: 'AWS', id: roleArn, accountId: this.#accountId },
          this.sessionArn(functionName),
          checked,
          this.#callerContext(roleArn),
        );
        if (decision !== 'Allow') {
          this.#recordCall({
            at: new Date().toISOString(),
            principal: this.sessionArn(functionName),
            action: checked.action,
            resource: checked.resource,
            message: message ?? '',
          });
          return { allowed: false, message: message ?? '', denied: checked };
        }
      }
    }
    return { allowed: true };
  }

  /**
   * Whether `service` (e.g. `sns.amazonaws.com`) may perform `action` on `resource` for `sourceArn`: the resource
   * policy (and the key policy of an encrypted target) must allow it. A denied delivery is recorded as dropped.
   */
  authorizeDelivery(opts: {
    service: string;
    action: string;
    resource: string;
    sourceArn: string;
    path: string;
    record?: boolean;
  }): CallDecision {
    const request: MappedRequest = { action: opts.action, resource: opts.resource, context: {} };
    const context = {
      'aws:SourceArn': opts.sourceArn,
      'aws:SourceAccount': this.#accountId,
      'aws:SecureTransport': 'true',
      'aws:PrincipalIsAWSService': 'true',
      'aws:RequestedRegion': this.#region,
    };
    for (const checked of this.#withEncryptionKey(request)) {
      const { decision, message } = this.#decide(
        { kind: 'Service', id: opts.service },
        opts.service,
        checked,
        context,
      );
      if (decision !== 'Allow') {
        if (opts.record !== false) {
          this.droppedCount += 1;
          if (this.droppedDeliveries.length < MAX_RECORDS)
            this.droppedDeliveries.push({
              at: new Date().toISOString(),
              principal: opts.service,
              action: checked.action,
              resource: checked.resource,
              message: message ?? '',
              path: opts.path,
              source: opts.sourceArn,
            });
        }
        return { allowed: false, message: message ?? '', denied: checked };
      }
    }
    return { allowed: true };
  }

  /** Records a delivery dropped by a decision taken earlier (e.g. a subscription refused at start-up). */
  recordDropped(entry: Omit<DroppedDelivery, 'at'>): void {
    this.droppedCount += 1;
    if (this.droppedDeliveries.length < MAX_RECORDS)
      this.droppedDeliveries.push({ at: new Date().toISOString(), ...entry });
  }

  #recordCall(entry: DeniedCall): void {
    this.deniedCount += 1;
    if (this.deniedCalls.length < MAX_RECORDS) this.deniedCalls.push(entry);
  }

  #callerContext(roleArn: string): ContextValues {
    return {
      // The local endpoints stand in for AWS's TLS endpoints: `aws:SecureTransport` holds as it would on AWS.
      'aws:SecureTransport': 'true',
      'aws:PrincipalArn': roleArn,
      'aws:PrincipalAccount': this.#accountId,
      'aws:PrincipalType': 'AssumedRole',
      'aws:PrincipalIsAWSService': 'false',
      'aws:RequestedRegion': this.#region,
    };
  }

  /** Writing to a KMS-encrypted topic or queue also needs kms:GenerateDataKey and kms:Decrypt on its key. */
  #withEncryptionKey(request: MappedRequest): MappedRequest[] {
    const writes =
      request.action.toLowerCase() === 'sns:publish' || request.action.toLowerCase() === 'sqs:sendmessage';
    const key = writes ? this.#model.encryptionKeys.get(request.resource) : undefined;
    if (!key) return [request];
    return [
      request,
      { action: 'kms:GenerateDataKey', resource: key, context: {} },
      { action: 'kms:Decrypt', resource: key, context: {} },
    ];
  }

  #decide(
    principal: RequestPrincipal,
    principalName: string,
    request: MappedRequest,
    base: ContextValues,
  ): { decision: Decision; message?: string } {
    const cacheKey = JSON.stringify([
      principal.id,
      request.action,
      request.resource,
      request.context,
      base['aws:SourceArn'] ?? '',
    ]);
    const cached = this.#cache.get(cacheKey);
    if (cached) {
      // Most recently used last: Map keeps insertion order.
      this.#cache.delete(cacheKey);
      this.#cache.set(cacheKey, cached);
      return cached;
    }
    const full: AuthorizationRequest = {
      principal,
      action: request.action,
      resource: request.resource,
      context: { ...base, ...request.context },
    };
    const resourcePolicy = this.#resourcePolicyOf(request.resource);
    const evaluation = evaluate(
      {
        identity: principal.kind === 'AWS' ? (this.#model.rolePolicies.get(principal.id) ?? []) : [],
        resource: resourcePolicy?.policy,
        keyPolicy: resourcePolicy?.keyPolicy ?? request.resource.startsWith('arn:aws:kms:'),
      },
      full,
    );
    const result =
      evaluation.decision === 'Allow'
        ? { decision: evaluation.decision }
        : { decision: evaluation.decision, message: deniedMessage(full, evaluation, principalName) };
    this.#cache.set(cacheKey, result);
    if (this.#cache.size > DECISION_CACHE_ENTRIES) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    return result;
  }

  #resourcePolicyOf(resource: string) {
    const direct = this.#model.resourcePolicies.get(resource);
    if (direct) return direct;
    // `alias/aws/<service>`: AWS-managed keys allow only principals of the account acting through that service.
    return undefined;
  }
}
