import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentFromOutputs } from '../../bin/commands/deployment.ts';
import { runQuarantineCommand } from '../../bin/commands/quarantine.ts';
import { runStatusCommand } from '../../bin/commands/status.ts';
import { documentClient, readBillingEffects, readOutbox } from '../../examples/orders/observe.ts';
import { DEMO_SYNTH_SCRIPT, type DemoResources, type DemoStack } from '../../examples/orders/synth.ts';
import { uuidv7 } from '../../functions/runtime/ids.ts';
import { startOfflineStack } from '../../local/offline.ts';

/**
 * The whole synthesized stack offline (the template `cdk deploy` would deploy), driven through the real producer,
 * and the operator CLI against it.
 */
describe('offline stack: producer → relay → subscriptions, and the operator CLI', () => {
  let stack: DemoStack;
  let deploymentFile: string;
  const lines: string[] = [];

  beforeAll(async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'outbox-offline-'));
    stack = await startOfflineStack<DemoResources>({
      workDir,
      synthScript: DEMO_SYNTH_SCRIPT,
      log: (line) => lines.push(line),
    });
    deploymentFile = path.join(workDir, 'deployment.json');
    const deployment = {
      ...deploymentFromOutputs(stack.outputs(), stack.stackName),
      endpoints: {
        dynamodb: stack.dynamodb.endpoint,
        sqs: stack.fauxqs.endpoint,
        sns: stack.fauxqs.endpoint,
        eventbridge: stack.bus.url,
      },
    };
    await writeFile(deploymentFile, JSON.stringify(deployment));
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  async function cli(
    run: (argv: string[], io: { stdout(t: string): void; stderr(t: string): void }) => Promise<number>,
    argv: string[],
  ) {
    let out = '';
    let err = '';
    const code = await run([...argv, '--deployment', deploymentFile, '--json'], {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        err += t;
      },
    });
    return { code, out, err };
  }

  it('runs every function of the template and lists what it does not emulate', () => {
    const names = stack.runtime.report.functions.map((f) => f.logicalId);
    expect(names).toEqual(
      expect.arrayContaining([
        stack.resources.producer,
        stack.resources.relay,
        stack.resources.billingConsumer,
        stack.resources.notificationsConsumer,
      ]),
    );
    expect(stack.runtime.report.provision.unsupported).toEqual([]);
    expect(stack.rules.rules.length).toBeGreaterThan(0);
  });

  it('delivers an order placed through the real producer to billing, in order, once', async () => {
    for (const action of ['place', 'pay', 'ship'] as const) {
      const result = await stack.runtime.invoke(stack.resources.producer, {
        action,
        orderId: 'it-1',
        customerId: 'c-1',
        amountCents: 500,
      });
      expect(result.error).toBeUndefined();
      expect((result.result as { ok: boolean }).ok).toBe(true);
    }
    const doc = documentClient(stack.dynamodb.endpoint);
    const charges = stack.ref(stack.resources.chargesTable);
    let applied: number[] = [];
    for (let i = 0; i < 120 && applied.length < 3; i++) {
      applied = (await readBillingEffects(doc, charges))
        .filter((e) => e.aggregateKey === 'order#it-1')
        .map((e) => e.sequence);
      if (applied.length < 3) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(applied).toEqual([1, 2, 3]);
    const outbox = await readOutbox(doc, stack.ref(stack.resources.outboxTable));
    expect(outbox.byStatus.PUBLISHED).toBeGreaterThanOrEqual(3);
  });

  it('runs the scheduled audit offline: MissingEffects per subscription in the metric store, 3 once the billing cursor is gone', async () => {
    expect(stack.runtime.report.functions.map((f) => f.logicalId)).toContain(stack.resources.audit);
    const doc = documentClient(stack.dynamodb.endpoint);
    const dedupTable = stack.outputs().find((o) => o.OutputKey === 'OutboxDedupTableName')?.OutputValue;
    expect(dedupTable).toBeDefined();
    const auditWindow = { from: Date.now() - 10 * 60_000, to: Date.now() };
    const run = async () => {
      const startedAt = Date.now();
      const outcome = await stack.runtime.invoke(stack.resources.audit, { auditWindow });
      expect(outcome.error).toBeUndefined();
      const result = (
        outcome.result as {
          result: { subscriptions: { subscription: string; applied: number; missing: number }[] };
        }
      ).result;
      const metric = (subscription: string) =>
        stack.runtime.metrics
          .all()
          .filter((d) => d.metricName === 'MissingEffects' && d.dimensions.subscription === subscription)
          .filter((d) => d.timestamp >= startedAt)
          .map((d) => d.value);
      return { billing: result.subscriptions.find((s) => s.subscription === 'billing'), metric };
    };
    const clean = await run();
    expect(clean.billing).toMatchObject({ missing: 0 });
    expect(clean.billing?.applied).toBeGreaterThanOrEqual(3);
    expect(clean.metric('billing')).toEqual([0]);
    expect(clean.metric('notifications')).toEqual([0]);

    // billing is ordered: its cursor of the aggregate says what it applied. Without it, those events are missing.
    const key = { pk: 'S#billing#order#it-1' };
    const cursor = await doc.send(new GetCommand({ TableName: dedupTable, Key: key, ConsistentRead: true }));
    expect(cursor.Item).toBeDefined();
    await doc.send(new DeleteCommand({ TableName: dedupTable, Key: key }));
    try {
      const broken = await run();
      expect(broken.billing?.missing).toBe(3);
      expect(broken.metric('billing')).toEqual([3]);
    } finally {
      await doc.send(new PutCommand({ TableName: dedupTable, Item: cursor.Item }));
    }
  });

  it('outbox status and quarantine list/retry work against the offline stack', async () => {
    const doc = documentClient(stack.dynamodb.endpoint);
    const id = uuidv7();
    // A foreign writer's record with a broken envelope: the relay quarantines it.
    await doc.send(
      new PutCommand({
        TableName: stack.ref(stack.resources.outboxTable),
        Item: {
          pk: 'order#broken',
          sk: 'EVT#000000000001',
          id,
          type: 'com.example.orders.OrderPlaced',
          source: '/demo/orders',
          sequence: 1,
          status: 'READY',
          envelope: 'not json',
          createdAt: Date.now(),
          attempts: 0,
          pendingShard: `P#${id.slice(-1)}`,
          pendingDueAt: Date.now(),
        },
      }),
    );
    let listed = { code: 1, out: '', err: '' };
    for (let i = 0; i < 80; i++) {
      listed = await cli(runQuarantineCommand, ['list']);
      if (listed.out.includes(id)) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(listed).toMatchObject({ code: 0, err: '' });
    expect(listed.out).toContain(id);
    expect(listed.out).toContain('not valid JSON');

    const status = await cli(runStatusCommand, []);
    expect(status).toMatchObject({ code: 0, err: '' });
    const parsed = JSON.parse(status.out) as { subscriptions: { name: string }[] };
    expect(parsed.subscriptions.map((s) => s.name).sort()).toEqual(['billing', 'notifications']);
    expect(status.out).toContain('"quarantined"');

    const retried = await cli(runQuarantineCommand, ['retry', id]);
    expect(retried).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse(retried.out)).toMatchObject({ retried: 1 });
  });
});
