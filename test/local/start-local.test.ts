import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalApp,
  LocalInvokeError,
  NoCdkAppError,
  NoSuchStackError,
  SynthesisFailedError,
  startLocal,
  UnknownResourceError,
} from '../../local/index.ts';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const APP_DIR = path.join(FIXTURES, 'two-stack-app');

/** Processes whose environment carries `marker` (everything a child started inherits its environment). */
async function processesWithMarker(marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = await readFile(`/proc/${entry}/environ`, 'utf8');
      if (environ.includes(`OUTBOX_LOCAL_TEST_MARKER=${marker}`)) {
        const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
        found.push(`${entry} ${cmdline}`);
      }
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('startLocal() on a two-stack CDK app (cdk.json, real DynamoDB Local and fauxqs)', () => {
  let local: LocalApp;

  beforeAll(async () => {
    local = await startLocal({ cwd: APP_DIR, log: () => {} });
  });
  afterAll(async () => {
    await local?.stop();
  });

  it('runs every stack, exporter first, and lists what it cannot run', () => {
    expect(local.stacks.map((s) => s.stackName)).toEqual(['Platform', 'Shop']);
    expect(local.startupReport).toMatch(/UNSUPPORTED[\s\S]*Shop\/Api \(AWS::AppSync::GraphQLApi\)/);
    expect(local.timings.readyMs).toBeGreaterThan(0);
  });

  it('resolves outputs, construct paths and logical ids to local physical names', () => {
    const table = local.outputs.Platform?.ItemsTableName;
    expect(table).toMatch(/^Platform-Items/);
    expect(local.physicalName('Platform/Items')).toBe(table);
    expect(local.physicalName('Platform/Items/Resource')).toBe(table);
    expect(local.physicalName('Shop/Greeter')).toBe(local.outputs.Shop?.GreeterName);
    expect(local.physicalName('Platform/Jobs')).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/000000000000\/Platform-Jobs/,
    );
    expect(() => local.physicalName('Platform/Nope')).toThrow(UnknownResourceError);
    expect(() => local.physicalName('Platform/Nope')).toThrow(/Platform\/Items/);
  });

  it('invokes by construct path with imports and SSM parameters resolved; a function error is typed', async () => {
    const result = await local.invoke<Record<string, string>>('Shop/Greeter', {});
    expect(result).toEqual({
      table: local.outputs.Platform?.ItemsTableName,
      greeting: 'hello from ssm', // AWS::SSM::Parameter::Value<String> template parameter
      pinned: 'hello from ssm', // {{resolve:ssm:/shop/greeting:1}}
      // Functions reach the Lambda endpoint and S3 (large events) through the IAM gateway.
      lambdaEndpoint: local.services.functionEndpoints.lambda,
      s3Endpoint: local.services.functionEndpoints.fauxqs,
    });
    const error = await local.invoke('Shop/Greeter', { fail: 'now' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalInvokeError);
    expect(error).toMatchObject({ errorType: 'GreetingRefused', errorMessage: 'refusing now' });
    await expect(local.invoke('Shop/Nope')).rejects.toThrow(UnknownResourceError);
  });

  it('serves the Lambda Invoke API at env.AWS_ENDPOINT_URL_LAMBDA, by physical name', async () => {
    const client = new LambdaClient({
      region: local.env.AWS_REGION,
      endpoint: local.env.AWS_ENDPOINT_URL_LAMBDA,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const out = await client.send(
        new InvokeCommand({ FunctionName: local.physicalName('Shop/Greeter'), Payload: '{}' }),
      );
      expect(JSON.parse(Buffer.from(out.Payload ?? []).toString())).toMatchObject({
        greeting: 'hello from ssm',
      });
      const failed = await client.send(
        new InvokeCommand({ FunctionName: local.physicalName('Shop/Greeter'), Payload: '{"fail":"x"}' }),
      );
      expect(failed.FunctionError).toBe('Unhandled');
    } finally {
      client.destroy();
    }
  });

  it('delivers a message on one stack’s queue to the other stack’s consumer, which writes the imported table', async () => {
    const config = {
      region: local.env.AWS_REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    };
    const sqs = new SQSClient({ ...config, endpoint: local.env.AWS_ENDPOINT_URL_SQS });
    const ddb = new DynamoDBClient({ ...config, endpoint: local.env.AWS_ENDPOINT_URL_DYNAMODB });
    try {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: local.physicalName('Platform/Jobs'), MessageBody: '42' }),
      );
      const item = await eventually(async () => {
        const out = await ddb.send(
          new GetItemCommand({
            TableName: local.physicalName('Platform/Items'),
            Key: { pk: { S: 'job#42' } },
          }),
        );
        return out.Item;
      });
      expect(item.greeting?.S).toBe('hello from ssm');
    } finally {
      sqs.destroy();
      ddb.destroy();
    }
  });
});

describe('startLocal() errors and isolation', () => {
  let empty: string;
  beforeAll(async () => {
    empty = await mkdtemp(path.join(tmpdir(), 'outbox-local-empty-'));
  });
  afterAll(async () => {
    await rm(empty, { recursive: true, force: true });
  });

  it('without cdk.json and without `app`, says how to name the app, and leaves no DynamoDB Local behind', async () => {
    const error = await startLocal({ cwd: empty, log: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoCdkAppError);
    expect((error as Error).message).toMatch(
      /no cdk\.json[\s\S]*startLocal\(\{ app: 'node bin\/app\.ts' \}\)/,
    );
    const children = await childrenOf(process.pid);
    expect(children.filter((c) => c.includes('DynamoDBLocal'))).toEqual([]);
  });

  it('reports a failing app with its output, and an unknown stack with the known ones', async () => {
    await writeFile(
      path.join(empty, 'cdk.json'),
      JSON.stringify({ app: 'node -e "console.error(42); process.exit(3)"' }),
    );
    const failed = await startLocal({ cwd: empty, log: () => {} }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(SynthesisFailedError);
    expect((failed as SynthesisFailedError).exitCode).toBe(3);
    expect((failed as Error).message).toMatch(/npx cdk synth[\s\S]*42/);
    // DynamoDB Local was starting while the app ran: it and its watchdog are stopped.
    const children = await childrenOf(process.pid);
    expect(children.filter((c) => c.includes('DynamoDBLocal') || c.includes('read _ignored'))).toEqual([]);

    const unknown = await startLocal({ cwd: APP_DIR, stacks: ['Nope'], log: () => {} }).catch(
      (e: unknown) => e,
    );
    expect(unknown).toBeInstanceOf(NoSuchStackError);
    expect((unknown as Error).message).toContain('Platform, Shop');
  });

  it('reuses the synth of an unchanged app from its synth cache', async () => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'outbox-local-synth-test-'));
    try {
      const first = await startLocal({
        cwd: APP_DIR,
        stacks: ['Platform'],
        synthCacheDir: cacheDir,
        log: () => {},
      });
      await first.stop();
      const second = await startLocal({
        cwd: APP_DIR,
        stacks: ['Platform'],
        synthCacheDir: cacheDir,
        log: () => {},
      });
      try {
        expect(first.timings.synthCacheHit).toBe(0);
        expect(second.timings.synthCacheHit).toBe(1);
        expect(second.stacks[0]?.assetRoot.startsWith(cacheDir)).toBe(true);
        expect(second.outputs.Platform?.ItemsTableName).toMatch(/^Platform-Items/);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('two startLocal() in one process use their own ports and work folders; stop() removes the folder', async () => {
    const [a, b] = await Promise.all([
      startLocal({ cwd: APP_DIR, stacks: ['Platform'], log: () => {} }),
      startLocal({ cwd: APP_DIR, stacks: ['Platform'], log: () => {} }),
    ]);
    try {
      expect(a.workDir).not.toBe(b.workDir);
      for (const key of ['AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_LAMBDA']) {
        expect(a.env[key]).not.toBe(b.env[key]);
      }
      expect(a.stacks.map((s) => s.stackName)).toEqual(['Platform']);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(existsSync(a.workDir)).toBe(false);
    expect(existsSync(b.workDir)).toBe(false);
  });
});

async function childrenOf(pid: number): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push((await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' '));
    } catch {
      // gone
    }
  }
  return out;
}

describe('startLocal() in a process that is interrupted', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'outbox-local-signals-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  /** The work folders startLocal() made in the child's TMPDIR. */
  const workFolders = async () => (await readdir(tmp)).filter((name) => name.startsWith('outbox-local-'));

  const start = (marker: string): { child: ChildProcess; output: () => string } => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', path.join(FIXTURES, 'start-and-wait.ts')],
      {
        env: { ...process.env, OUTBOX_LOCAL_TEST_MARKER: marker, TMPDIR: tmp },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    return { child, output: () => output };
  };
  const exited = (child: ChildProcess) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );

  it('SIGTERM after start-up stops DynamoDB Local and every child, and the process ends by the signal', async () => {
    const marker = randomUUID();
    const { child, output } = start(marker);
    const done = exited(child);
    await eventually(async () => (output().includes('READY') ? true : undefined), 90_000);
    expect((await processesWithMarker(marker)).some((p) => p.includes('DynamoDBLocal'))).toBe(true);
    child.kill('SIGTERM');
    expect(await done).toEqual({ code: null, signal: 'SIGTERM' });
    await eventually(
      async () => ((await processesWithMarker(marker)).length === 0 ? true : undefined),
      10_000,
    );
    expect(await workFolders()).toEqual([]);
  });

  it('SIGINT while the app synthesizes stops what had started', async () => {
    const marker = randomUUID();
    const { child } = start(marker);
    const done = exited(child);
    // The JVM and the synth are both running by now.
    await eventually(async () => {
      const running = await processesWithMarker(marker);
      return running.some((p) => p.includes('DynamoDBLocal')) && running.some((p) => p.includes('app.ts'))
        ? true
        : undefined;
    }, 30_000);
    expect(await workFolders()).toHaveLength(1); // made before the synth started
    child.kill('SIGINT');
    expect((await done).signal).toBe('SIGINT');
    await eventually(
      async () => ((await processesWithMarker(marker)).length === 0 ? true : undefined),
      10_000,
    );
    expect(await workFolders()).toEqual([]);
  });
});
