import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../local/fault-proxy.ts';

/** The fault proxy on a real HTTP upstream that counts what reached it. */
describe('fault proxy', () => {
  let upstream: Server;
  let upstreamUrl = '';
  const applied: string[] = [];
  const proxies: FaultProxy[] = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', () => {
        applied.push(body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: body }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const address = upstream.address();
    upstreamUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  async function call(proxy: FaultProxy, body: string, target = 'DynamoDB_20120810.PutItem') {
    const response = await fetch(proxy.url, { method: 'POST', body, headers: { 'x-amz-target': target } });
    return { status: response.status, body: await response.text() };
  }

  it('answers instead of forwarding (before), and reports what went back (after)', async () => {
    const seen: string[] = [];
    const proxy = await startFaultProxy(() => upstreamUrl, {
      before: (c) => (c.body === 'refuse' ? { status: 400, headers: {}, body: 'Throttling' } : undefined),
      after: (c, status, responseBody) => seen.push(`${c.operation} ${status} ${responseBody}`),
    });
    proxies.push(proxy);
    expect(await call(proxy, 'refuse')).toEqual({ status: 400, body: 'Throttling' });
    expect(applied).not.toContain('refuse');
    expect(await call(proxy, 'pass')).toEqual({ status: 200, body: '{"ok":"pass"}' });
    expect(seen).toEqual(['DynamoDB_20120810.PutItem 200 {"ok":"pass"}']);
  });

  it('replaces an answer after the upstream applied the call, and holds a call (around)', async () => {
    let released = false;
    const proxy = await startFaultProxy(() => upstreamUrl, {
      async around(c, forward) {
        if (c.body === 'hold') {
          await new Promise((resolve) => setTimeout(resolve, 50));
          released = true;
          return forward();
        }
        const reply = await forward();
        return c.body === 'lose' ? { status: 500, headers: {}, body: 'lost after commit' } : reply;
      },
    });
    proxies.push(proxy);
    expect(await call(proxy, 'lose')).toEqual({ status: 500, body: 'lost after commit' });
    expect(applied).toContain('lose'); // the upstream applied it; only the answer was lost
    expect(await call(proxy, 'hold')).toEqual({ status: 200, body: '{"ok":"hold"}' });
    expect(released).toBe(true);
  });
});
