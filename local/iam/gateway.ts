/**
 * The IAM gateway: a proxy (the fault proxy's machinery) in front of each local service. It reads who calls from
 * the SigV4 credential (each function's access key id is its name), maps the call to IAM requests, and answers a
 * denied call with the error AWS returns for that protocol; allowed calls go upstream with the service's own
 * credentials. Callers with other keys (the runtime, tests, the CLI) are not checked: they stand for the operator.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { type FaultProxy, type ProxiedCall, type ProxyReply, startFaultProxy } from '../fault-proxy.ts';
import type { IamAuthorizer } from './authorizer.ts';
import {
  credentialOf,
  type MappedRequest,
  type MappingFacts,
  mapCall,
  UnmappedCallError,
} from './requests.ts';
import { StreamIterators } from './stream-iterators.ts';

export interface IamGatewayUpstreams {
  readonly dynamodb: () => string;
  readonly fauxqs: () => string;
  readonly eventbridge: () => string;
  readonly lambda: () => string;
}

export interface IamGateway {
  /** Gateway URL per upstream: hand these to functions (and fault proxies) instead of the services' own. */
  readonly urls: {
    readonly dynamodb: string;
    readonly fauxqs: string;
    readonly eventbridge: string;
    readonly lambda: string;
  };
  /** Calls the gateway could not map to IAM (passed through unchecked), by `service operation`. */
  readonly unmapped: ReadonlySet<string>;
  stop(): Promise<void>;
}

/** The error each protocol answers for a denied call. */
export function accessDeniedReply(service: string, operation: string, message: string): ProxyReply {
  if (service === 'sns') {
    return {
      status: 403,
      headers: { 'content-type': 'text/xml' },
      body: `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>${escapeXml(message)}</Message></Error><RequestId>iam-gateway</RequestId></ErrorResponse>`,
    };
  }
  if (service === 'sqs' && !operation.startsWith('AmazonSQS.')) {
    return {
      status: 403,
      headers: { 'content-type': 'text/xml' },
      body: `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${escapeXml(message)}</Message></Error><RequestId>iam-gateway</RequestId></ErrorResponse>`,
    };
  }
  if (service === 'sqs') {
    // SQS's JSON protocol: the query-compatible code travels in x-amzn-query-error.
    return {
      status: 403,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'AccessDenied;Sender' },
      body: JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }),
    };
  }
  if (service === 's3') {
    return {
      status: 403,
      headers: { 'content-type': 'application/xml' },
      body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${escapeXml(message)}</Message><RequestId>iam-gateway</RequestId></Error>`,
    };
  }
  if (service === 'lambda') {
    return {
      status: 403,
      headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' },
      body: JSON.stringify({ Type: 'User', Message: message }),
    };
  }
  const json = service === 'events' ? 'application/x-amz-json-1.1' : 'application/x-amz-json-1.0';
  return {
    status: 400,
    headers: { 'content-type': json },
    body: JSON.stringify({
      __type: 'com.amazon.coral.service#AccessDeniedException',
      Message: message,
      message,
    }),
  };
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const SERVICE_KEY = 'local';

/** The caller's headers with the service's credential (DynamoDB Local keeps one database per access key). */
function asService(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const authorization = headers.authorization;
  if (typeof authorization !== 'string') return headers;
  return {
    ...headers,
    authorization: authorization.replace(/Credential=[^/]+\//, `Credential=${SERVICE_KEY}/`),
  };
}

export async function startIamGateway(opts: {
  readonly upstreams: IamGatewayUpstreams;
  /** Undefined until the stacks' policies are known: calls pass unchecked until then. */
  readonly authorizer: () => IamAuthorizer | undefined;
  readonly facts: Omit<MappingFacts, 'streamOfIterator'>;
  readonly log?: (line: string) => void;
  /** Called with the IAM requests of every checked call that went upstream, and the upstream's status. */
  readonly onForwarded?: (requests: readonly MappedRequest[], status: number) => void;
}): Promise<IamGateway> {
  const iterators = new StreamIterators();
  const facts: MappingFacts = { ...opts.facts, streamOfIterator: (iterator) => iterators.streamOf(iterator) };
  const unmapped = new Set<string>();

  const forwarded = new WeakMap<ProxiedCall, readonly MappedRequest[]>();
  const before = (call: ProxiedCall): ProxyReply | undefined => {
    const authorizer = opts.authorizer();
    if (!authorizer) return undefined;
    const credential = credentialOf(call.headers?.authorization as string | undefined);
    if (!credential || !authorizer.roleOf(credential.accessKeyId)) return undefined;
    let requests: ReturnType<typeof mapCall>;
    try {
      requests = mapCall(
        {
          service: credential.service,
          operation: call.operation,
          body: call.body,
          ...(call.method ? { method: call.method } : {}),
          ...(call.path ? { path: call.path } : {}),
        },
        facts,
      );
    } catch (error) {
      if (!(error instanceof UnmappedCallError)) throw error;
      const key = `${credential.service} ${call.operation || call.path}`;
      if (!unmapped.has(key)) opts.log?.(error.message);
      unmapped.add(key);
      return undefined;
    }
    const decision = authorizer.authorizeCall(credential.accessKeyId, requests);
    if (decision.allowed) {
      forwarded.set(call, requests);
      return undefined;
    }
    return accessDeniedReply(credential.service, call.operation, decision.message ?? 'Access denied');
  };

  /** GetRecords carries only an iterator: remember which stream each iterator reads. */
  const after = (call: ProxiedCall, status: number, responseBody: string): void => {
    const requests = forwarded.get(call);
    if (requests) opts.onForwarded?.(requests, status);
    if (status !== 200 || !call.operation.startsWith('DynamoDBStreams_')) return;
    try {
      const request = JSON.parse(call.body) as { StreamArn?: string; ShardIterator?: string };
      const stream =
        request.StreamArn ?? (request.ShardIterator ? iterators.streamOf(request.ShardIterator) : undefined);
      if (!stream) return;
      if (request.ShardIterator) iterators.forget(request.ShardIterator);
      const response = JSON.parse(responseBody) as { ShardIterator?: string; NextShardIterator?: string };
      const next = response.ShardIterator ?? response.NextShardIterator;
      if (next) iterators.remember(next, stream);
    } catch {
      // Not JSON: nothing to remember.
    }
  };

  /** A call the gateway fails to check goes through, logged: the gateway must never hang or crash a caller. */
  const safeBefore = (call: ProxiedCall): ProxyReply | undefined => {
    try {
      return before(call);
    } catch (error) {
      opts.log?.(
        `could not check ${call.operation || call.path}: ${error instanceof Error ? error.message : String(error)}`,
      );
      return undefined;
    }
  };
  const hooks = {
    before: safeBefore,
    after,
    upstreamHeaders: (call: ProxiedCall) => asService(call.headers ?? {}),
  };
  const proxies: FaultProxy[] = [];
  try {
    for (const upstream of [
      opts.upstreams.dynamodb,
      opts.upstreams.fauxqs,
      opts.upstreams.eventbridge,
      opts.upstreams.lambda,
    ])
      proxies.push(await startFaultProxy(upstream, hooks));
  } catch (error) {
    await Promise.allSettled(proxies.map((p) => p.stop()));
    throw error;
  }
  const [dynamodb, fauxqs, eventbridge, lambda] = proxies as [FaultProxy, FaultProxy, FaultProxy, FaultProxy];
  return {
    urls: { dynamodb: dynamodb.url, fauxqs: fauxqs.url, eventbridge: eventbridge.url, lambda: lambda.url },
    unmapped,
    stop: async () => {
      await Promise.allSettled(proxies.map((p) => p.stop()));
    },
  };
}
