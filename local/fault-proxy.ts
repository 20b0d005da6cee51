/**
 * A small HTTP proxy in front of a local service, for fault injection at the network boundary: a function
 * routed through it talks the real protocol, and the proxy may answer an AWS error instead of forwarding,
 * or act after a response (e.g. crash the caller right after a call succeeded).
 */
import { createServer, type IncomingMessage, request, type Server } from 'node:http';

export interface ProxiedCall {
  /** `X-Amz-Target` (JSON protocols) or the query `Action` (SNS/SQS query protocol). */
  readonly operation: string;
  readonly body: string;
}

export interface ProxyReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface FaultProxyHooks {
  /** Return a reply to answer it without forwarding. */
  before?(call: ProxiedCall): ProxyReply | undefined;
  /** Called after the upstream answered and the answer went back to the caller. */
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
      };
      const reply = hooks.before?.(call);
      if (reply) {
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
        return;
      }
      const target = new URL(upstream());
      const forward = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `${target.hostname}:${target.port}` },
        },
        (upstreamRes) => {
          const body: Buffer[] = [];
          upstreamRes.on('data', (chunk: Buffer) => body.push(chunk));
          upstreamRes.on('end', () => {
            const responseBody = Buffer.concat(body);
            res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
            res.end(responseBody, () =>
              hooks.after?.(call, upstreamRes.statusCode ?? 502, responseBody.toString('utf8')),
            );
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
      forward.end(raw);
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
