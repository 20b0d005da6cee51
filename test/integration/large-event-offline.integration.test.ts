import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentFor, sha256Hex } from '../../examples/orders/attachment.ts';
import { documentClient, readBillingEffects } from '../../examples/orders/observe.ts';
import { DEMO_SYNTH_SCRIPT, type DemoResources, type DemoStack } from '../../examples/orders/synth.ts';
import { parseDataRef } from '../../functions/contract/large-events.ts';
import { startOfflineStack } from '../../local/offline.ts';

const TWO_MB = 2 * 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Issue 14's proof: a 2 MB event is written through the real producer, its data stored in S3 (fauxqs) by the
 * writer, the small envelope published by the relay through SNS FIFO → SQS FIFO, and applied exactly once by the
 * billing consumer with `data` intact, all in the synthesized demo stack offline.
 */
describe('large event (claim-check) offline: written, published and applied once with data intact', () => {
  let stack: DemoStack;

  beforeAll(async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'outbox-large-'));
    stack = await startOfflineStack<DemoResources>({
      workDir,
      synthScript: DEMO_SYNTH_SCRIPT,
      log: () => {},
    });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('provisions the payload bucket in fauxqs', () => {
    const buckets = stack.runtime.report.provision.provisioned.filter((r) => r.type === 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(1);
    expect(stack.runtime.report.provision.unsupported).toEqual([]);
  });

  it('a 2 MB OrderPlaced is applied by billing exactly once, in order, with its attachment intact', async () => {
    const orderId = 'large-1';
    const attachment = attachmentFor(orderId, TWO_MB);
    for (const action of ['place', 'pay'] as const) {
      const result = await stack.runtime.invoke(stack.resources.producer, {
        action,
        orderId,
        customerId: 'c-large',
        amountCents: 4200,
        ...(action === 'place' ? { attachmentBytes: TWO_MB } : {}),
      });
      expect(result.error).toBeUndefined();
      expect((result.result as { ok: boolean }).ok).toBe(true);
    }

    const doc = documentClient(stack.dynamodb.endpoint);
    // The stored (and published) envelope is small: data is absent, a reference to S3 stands in for it.
    const { Item: record } = await doc.send(
      new GetCommand({
        TableName: stack.ref(stack.resources.outboxTable),
        Key: { pk: `order#${orderId}`, sk: 'EVT#000000000001' },
      }),
    );
    const envelope = JSON.parse(String(record?.envelope));
    expect(envelope).not.toHaveProperty('data');
    expect(Buffer.byteLength(String(record?.envelope))).toBeLessThan(4096);
    const placedData = JSON.stringify({
      orderId,
      customerId: 'c-large',
      amountCents: 4200,
      lines: [],
      attachment,
    });
    expect(envelope).toMatchObject({
      datasize: Buffer.byteLength(placedData),
      datasha256: sha256Hex(placedData),
    });
    const location = parseDataRef(envelope.dataref);
    expect(location?.key).toMatch(new RegExp(`${envelope.id}\\.json$`));
    const s3 = new S3Client({
      endpoint: stack.fauxqs.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const object = await s3.send(new GetObjectCommand({ Bucket: location?.bucket, Key: location?.key }));
    expect(sha256Hex(await (object.Body?.transformToString('utf-8') ?? ''))).toBe(envelope.datasha256);
    s3.destroy();

    // Billing applies both events once, in order, and got the 2 MB attachment intact.
    const charges = stack.ref(stack.resources.chargesTable);
    let applied: number[] = [];
    for (let i = 0; i < 240 && applied.length < 2; i++) {
      applied = (await readBillingEffects(doc, charges))
        .filter((e) => e.aggregateKey === `order#${orderId}`)
        .map((e) => e.sequence);
      if (applied.length < 2) await sleep(250);
    }
    await sleep(1000); // a duplicate application would show as a third ledger entry
    applied = (await readBillingEffects(doc, charges))
      .filter((e) => e.aggregateKey === `order#${orderId}`)
      .map((e) => e.sequence);
    expect(applied).toEqual([1, 2]);
    const { Item: charge } = await doc.send(new GetCommand({ TableName: charges, Key: { orderId } }));
    expect(charge).toMatchObject({
      attachmentBytes: TWO_MB,
      attachmentSha256: sha256Hex(attachment),
      status: 'CAPTURED',
    });
  }, 120_000);
});
