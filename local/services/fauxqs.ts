import { importOptionalPeer } from './optional-peer.ts';

export interface FauxqsOptions {
  /** @default 0 - a free port picked by the OS */
  readonly port?: number;
  /** Region used when a request carries no SigV4 region. @default 'us-east-1' */
  readonly region?: string;
  /** Log every request (fastify logger). @default false */
  readonly logger?: boolean;
}

/** State of one queue as fauxqs sees it (`GET /_fauxqs/queues/<name>`), without consuming anything. */
export interface FauxqsQueueInspection {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
  readonly attributes: Record<string, string>;
  readonly messages: {
    readonly ready: readonly FauxqsMessage[];
    readonly delayed: readonly FauxqsMessage[];
    readonly inflight: readonly {
      message: FauxqsMessage;
      receiptHandle: string;
      visibilityDeadline: number;
    }[];
  };
}

export interface FauxqsMessage {
  readonly messageId: string;
  readonly body: string;
  readonly sentTimestamp: number;
  readonly approximateReceiveCount: number;
  readonly messageGroupId?: string;
  readonly sequenceNumber?: string;
}

export interface Fauxqs {
  /** `http://127.0.0.1:<port>`: serves both SQS and SNS. */
  readonly endpoint: string;
  readonly port: number;
  /** Non-destructive view of a queue by name; undefined if it does not exist. */
  inspectQueue(queueName: string): Promise<FauxqsQueueInspection | undefined>;
  /** Closes the server and its open connections. Safe to call twice. */
  stop(): Promise<void>;
}

export class FauxqsStartError extends Error {
  readonly port: number;
  constructor(port: number, options?: { cause?: unknown }) {
    super(
      `Could not start fauxqs (SNS/SQS emulator) on 127.0.0.1:${port}. ` +
        'Pick another port or omit `port` to use a free one.',
      options,
    );
    this.name = 'FauxqsStartError';
    this.port = port;
  }
}

/**
 * Runs fauxqs in this process. Uses `buildApp` rather than fauxqs' own `startFauxqs` because the
 * latter always binds 0.0.0.0; the local runtime must not be reachable from the network.
 */
export async function startFauxqs(opts: FauxqsOptions = {}): Promise<Fauxqs> {
  const { buildApp } = await importOptionalPeer('fauxqs', () => import('fauxqs'));
  const app = buildApp({ logger: opts.logger ?? false, defaultRegion: opts.region ?? 'us-east-1' });
  const requested = opts.port ?? 0;
  let port: number;
  try {
    const address = await app.listen({ port: requested, host: '127.0.0.1' });
    port = Number(new URL(address).port);
  } catch (error) {
    await app.close().catch(() => {});
    throw new FauxqsStartError(requested, { cause: error });
  }
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    port,
    async inspectQueue(queueName) {
      // In-process request: no socket, same route as `GET /_fauxqs/queues/<name>`.
      const response = await app.inject({
        method: 'GET',
        url: `/_fauxqs/queues/${encodeURIComponent(queueName)}`,
      });
      if (response.statusCode === 404) return undefined;
      if (response.statusCode !== 200) {
        throw new Error(`fauxqs queue inspection of ${queueName} failed with HTTP ${response.statusCode}`);
      }
      return response.json() as FauxqsQueueInspection;
    },
    stop() {
      stopped ??= app.close().then(() => undefined);
      return stopped;
    },
  };
}
