/**
 * A small HTTP proxy in front of a local service, for fault injection at the network boundary: a function
 * routed through it talks the real protocol, and the proxy may answer an AWS error instead of forwarding, act after
 * a response (e.g. crash the caller right after a call succeeded), hold a call, or replace an answer after the
 * upstream applied the call (a response lost after commit).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
} from 'node:http';

export interface ProxiedCall {
  /** `X-Amz-Target` (JSON protocols) or the query `Action` (SNS/SQS query protocol). */
  readonly operation: string;
  readonly body: string;
  readonly method?: string;
  /** Path and query of the request (REST protocols such as Lambda Invoke). */
  readonly path?: string;
  readonly headers?: IncomingHttpHeaders;
}

export interface ProxyReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders | Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

export interface FaultProxyHooks {
  /** Return a reply to answer it without forwarding. */
  before?(call: ProxiedCall): ProxyReply | undefined;
  /**
   * Decides the answer when `before` gave none: `forward()` sends the call upstream (at most once) and returns its
   * answer, so a fault can hold the call first or replace the answer after the upstream applied it.
   * @default forward the call and return the upstream's answer
   */
  around?(call: ProxiedCall, forward: () => Promise<ProxyReply>): Promise<ProxyReply>;
  /** The headers sent upstream (e.g. an IAM gateway swaps the caller's credentials for the service's). */
  upstreamHeaders?(call: ProxiedCall): IncomingHttpHeaders;
  /** Called after the answer went back to the caller. */
  after?(call: ProxiedCall, status: number, responseBody: string): void;
}

export interface FaultProxy {
  readonly url: string;
  stop(): Promise<void>;
}

function operationOf(req: IncomingMessage, body: string): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target;
  return new URLSearchParams(body).get('Action') ?? '';
}

/** The error an AWS query-protocol service (SNS) returns, e.g. Throttling. */
export function queryProtocolError(code: string, message: string, status = 400): ProxyReply {
  return {
    status,
    headers: { 'content-type': 'text/xml' },
    body: `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-injection</RequestId></ErrorResponse>`,
  };
}

/** Sends the call to the upstream once; a connection failure is a 502 answer. */
function forwardOnce(
  upstream: () => string,
  req: IncomingMessage,
  raw: Buffer,
  headers: IncomingHttpHeaders,
): Promise<ProxyReply> {
  return new Promise<ProxyReply>((resolve) => {
    const target = new URL(upstream());
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...headers, host: `${target.hostname}:${target.port}` },
      },
      (upstreamRes) => {
        const body: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => body.push(chunk));
        upstreamRes.on('end', () =>
          resolve({
            status: upstreamRes.statusCode ?? 502,
            headers: upstreamRes.headers,
            body: Buffer.concat(body),
          }),
        );
      },
    );
    forward.on('error', (error) =>
      resolve({ status: 502, headers: { 'content-type': 'text/plain' }, body: String(error) }),
    );
    forward.end(raw);
  });
}

/** `upstream` is read per request, so the proxy can start before the service it fronts. */
export async function startFaultProxy(upstream: () => string, hooks: FaultProxyHooks): Promise<FaultProxy> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const call: ProxiedCall = {
        operation: operationOf(req, raw.toString('utf8')),
        body: raw.toString('utf8'),
        ...(req.method ? { method: req.method } : {}),
        ...(req.url ? { path: req.url } : {}),
        headers: req.headers,
      };
      const answer = (reply: ProxyReply, afterwards?: () => void) => {
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body, afterwards);
      };
      const early = hooks.before?.(call);
      if (early) {
        answer(early);
        return;
      }
      const forward = () => forwardOnce(upstream, req, raw, hooks.upstreamHeaders?.(call) ?? req.headers);
      (hooks.around ? hooks.around(call, forward) : forward()).then(
        (reply) => answer(reply, () => hooks.after?.(call, reply.status, reply.body.toString())),
        (error: unknown) =>
          answer({ status: 502, headers: { 'content-type': 'text/plain' }, body: String(error) }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
