/**
 * `npm start`: the whole system on one machine. Synthesizes the stack, starts it offline, drives the real
 * demo producer with a steady workload, watches the subscribers apply the effects and reports the invariants.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { startOfflineStack } from 'serverless-outbox/local';
import type { DynamoDbLocal, Fauxqs } from 'serverless-outbox/local/services';
import { closingAuditProblems, renderClosingAudit, runClosingAudit } from './closing-audit.ts';
import { NOTIFIED_EVENT_TYPES, ORDER_PAID, ORDER_PLACED, ORDER_SHIPPED } from './contract.ts';
import { createFaultPlan, type FaultPlan } from './faults.ts';
import { iamClean, renderIamReport } from './iam-report.ts';
import { largeAttachmentBytesFor, verifyLargeOrders } from './large-orders.ts';
import {
  documentClient,
  metricSum,
  peakRss,
  readBillingEffects,
  readNotificationEffects,
  readOutbox,
} from './observe.ts';
import { PAYMENT_ROLLED_BACK } from './prepared-payment.ts';
import {
  type AppliedEffect,
  buildReport,
  isClean,
  percentile,
  pickTraceSample,
  type RunReport,
  renderReport,
  renderTraceLine,
  resultLine,
  type SubscriberSpec,
  traceWarning,
} from './report.ts';
import { DEMO_SYNTH_SCRIPT, type DemoResources, type DemoStack } from './synth.ts';
import { type OrderCommand, runWorkload } from './workload.ts';

export interface DemoRunOptions {
  readonly workDir: string;
  readonly orders: number;
  readonly ratePerSecond: number;
  readonly concurrency: number;
  readonly faults: boolean;
  /** Enforce IAM offline (`--no-iam` turns it off). @default true */
  readonly iam?: boolean;
  /** A fault plan of the caller's (the chaos run's); takes the place of the fixed `--faults` list. */
  readonly faultPlan?: FaultPlan;
  /** Most time to wait for the last effects after the workload, in ms. */
  readonly settleTimeoutMs: number;
  readonly processStart: number;
  /** DynamoDB Local / fauxqs already starting (main.ts starts them before loading this module). */
  readonly dynamodb?: Promise<DynamoDbLocal>;
  readonly fauxqs?: Promise<Fauxqs>;
}

const SUBSCRIBERS: SubscriberSpec[] = [
  { name: 'billing', types: [ORDER_PLACED, ORDER_PAID, ORDER_SHIPPED], ordered: true },
  { name: 'notifications', types: [...NOTIFIED_EVENT_TYPES], ordered: false },
];

/**
 * The W3C traceparent the demo's caller sends with a command: the same on every retry of it within a run, another
 * in the next run. The offline Lambda runtime sets no `_X_AMZN_TRACE_ID`, so without it the producer would record
 * no trace context.
 */
export function commandTraceparent(commandId: string, run = ''): string {
  const hash = createHash('sha256').update(`${run}/${commandId}`).digest('hex');
  return `00-${hash.slice(0, 32)}-${hash.slice(32, 48)}-01`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Progress {
  readonly #tty = process.stdout.isTTY === true;
  #lastPrint = 0;
  update(line: string, force = false): void {
    const now = Date.now();
    if (this.#tty) {
      process.stdout.write(`\r${line.padEnd(110)}`);
    } else if (force || now - this.#lastPrint >= 2000) {
      process.stdout.write(`${line}\n`);
      this.#lastPrint = now;
    }
  }
  done(): void {
    if (this.#tty) process.stdout.write('\n');
  }
}

function bar(done: number, total: number, width = 24): string {
  const filled = total === 0 ? 0 : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

async function backlog(stack: DemoStack): Promise<number> {
  let total = 0;
  for (const id of [stack.resources.billingQueue, stack.resources.notificationsQueue]) {
    const name = stack.attribute(id, 'QueueName');
    const queue = await stack.fauxqs.inspectQueue(name);
    if (queue)
      total += queue.messages.ready.length + queue.messages.inflight.length + queue.messages.delayed.length;
  }
  return total;
}

async function queueDepth(stack: DemoStack, logicalId: string): Promise<number> {
  const queue = await stack.fauxqs.inspectQueue(stack.attribute(logicalId, 'QueueName'));
  return queue
    ? queue.messages.ready.length + queue.messages.inflight.length + queue.messages.delayed.length
    : 0;
}

export async function runDemo(options: DemoRunOptions): Promise<number> {
  await mkdir(options.workDir, { recursive: true });
  const logFile = path.join(options.workDir, 'functions.log');
  const log = createWriteStream(logFile);
  const faults: FaultPlan | undefined =
    options.faultPlan ?? (options.faults ? createFaultPlan({ orders: options.orders }) : undefined);
  await faults?.prepare();
  console.log(
    `serverless-outbox offline: synthesizing the CDK app and starting the stack (logs: ${logFile})`,
  );

  const stack = await startOfflineStack<DemoResources>({
    workDir: options.workDir,
    synthScript: DEMO_SYNTH_SCRIPT,
    log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
    iam: options.iam !== false,
    ...(options.dynamodb ? { dynamodb: options.dynamodb } : {}),
    ...(options.fauxqs ? { fauxqs: options.fauxqs } : {}),
    ...(faults
      ? {
          context: faults.context,
          endpointsFor: faults.endpointsFor,
          dropStreamRecord: faults.dropStreamRecord,
          ...(faults.duplicateStreamRecord ? { duplicateStreamRecord: faults.duplicateStreamRecord } : {}),
          ...(faults.clockSkewMs ? { clockSkewMs: faults.clockSkewMs } : {}),
        }
      : {}),
  });
  const { runtime, resources } = stack;
  console.log(
    `started in ${stack.timings.readyMs} ms (synth ${stack.timings.synthMs} ms${stack.timings.synthCacheHit ? ' from the cache' : ''}; ` +
      `fauxqs up at ${stack.timings.fauxqsMs} ms, DynamoDB Local at ${stack.timings.dynamodbMs} ms; ` +
      `resources provisioned in ${stack.timings.provisionMs} ms, stack running at ${stack.timings.runtimeMs} ms)`,
  );
  console.log(options.iam === false ? 'IAM: not enforced (--no-iam)' : 'IAM: enforced');
  for (const line of stack.iamReport().notChecked) log.write(`iam not checked: ${line}\n`);
  const startup = runtime.report;
  console.log(
    `running: ${startup.functions.length} functions, ${startup.eventSourceMappings.length} event source mappings, ` +
      `${stack.rules.rules.length} EventBridge rules, ${startup.schedules.length} schedules, ${startup.alarms.length} alarms`,
  );
  const unsupported = [
    ...startup.provision.unsupported.map((r) => `${r.logicalId} (${r.type})`),
    ...stack.rules.unsupportedTargets.map((t) => `${t.logicalId} (rule target ${t.arn})`),
  ];
  console.log(`not emulated: ${unsupported.length ? unsupported.join(', ') : 'nothing'}`);
  console.log('time compression: a failed SQS message returns after 5 s (AWS: after the visibility timeout)');
  for (const note of startup.notes) log.write(`note ${note.logicalId}: ${note.note}\n`);
  console.log(
    `ignored (no local effect): ${startup.provision.ignored.length} resources (KMS, logs...; IAM and resource policies are enforced unless --no-iam; see the log)`,
  );
  for (const r of startup.provision.ignored) log.write(`ignored ${r.logicalId} (${r.type})\n`);

  const doc = documentClient(stack.dynamodb.endpoint);
  const outboxTable = stack.ref(resources.outboxTable);
  const chargesTable = stack.ref(resources.chargesTable);
  const sinkTable = stack.ref(resources.sinkTable);
  await faults?.attach(stack, doc);

  let committedCommands = 0;
  let firstAppliedMs: number | undefined;
  let workloadDone = false;
  const progress = new Progress();
  const expectedPerOrder = SUBSCRIBERS.reduce((n, s) => n + s.types.length, 0);
  const watch = (async () => {
    while (!workloadDone) {
      const [billing, notified, depth] = await Promise.all([
        readBillingEffects(doc, chargesTable),
        readNotificationEffects(doc, sinkTable, new Map()),
        backlog(stack),
      ]);
      const applied = billing.length + notified.effects.length;
      if (applied > 0 && firstAppliedMs === undefined) firstAppliedMs = Date.now() - options.processStart;
      progress.update(
        `${bar(committedCommands, options.orders * 3)} events committed ${committedCommands}/${options.orders * 3}` +
          `  effects applied ${applied}/${options.orders * expectedPerOrder}  backlog ${depth}`,
      );
      await sleep(500);
    }
  })();

  // Large events (claim-check): the `--faults` run gives every 10th order an attachment over SNS's limit, a chaos
  // run the orders its seed drew.
  const largeOrderBytes = new Map<string, number>();
  const attachmentBytesFor = faults?.attachmentBytesFor ?? largeAttachmentBytesFor;
  const trackLargeOrder = (orderId: string) => {
    const bytes = attachmentBytesFor(orderId);
    if (bytes !== undefined) largeOrderBytes.set(orderId, bytes);
    return bytes;
  };
  const workloadStart = Date.now();
  const result = await runWorkload({
    orders: options.orders,
    ratePerSecond: options.ratePerSecond,
    concurrency: options.concurrency,
    ...(faults ? { delaySecondsFor: faults.delaySecondsFor, attachmentBytesFor: trackLargeOrder } : {}),
    ...(faults?.preparedPay ? { preparedPay: faults.preparedPay } : {}),
    invoke: async (command: OrderCommand) => {
      const outcome = await runtime.invoke(resources.producer, {
        ...command,
        traceparent: commandTraceparent(command.commandId, String(options.processStart)),
      });
      const answer = outcome.result as
        | { ok?: boolean; replayed?: boolean; error?: { name?: string } }
        | undefined;
      faults?.producerCalled(command, {
        ok: answer?.ok === true,
        ...(answer?.replayed ? { replayed: true } : {}),
        ...(outcome.error ? { errorType: outcome.error.errorType } : {}),
        durationMs: outcome.durationMs,
      });
      if (answer?.ok) return true;
      // A prepared payment check-back rolled back, or one the fault plan left to check-back: the order ends here.
      if (answer?.error?.name === PAYMENT_ROLLED_BACK || faults?.abandons?.(command)) return 'abandoned';
      // A retried `place` whose first attempt committed: the order exists, so the command is done.
      return command.action === 'place' && answer?.error?.name === 'OutboxConflictError';
    },
    onCommitted: () => {
      committedCommands++;
    },
  });
  // The settle loop below reports progress itself: stop the workload's watcher so tables are not scanned twice.
  workloadDone = true;
  await watch;
  await faults?.afterWorkload(stack, doc);

  // Wait until every committed event has its effects (or the settle timeout).
  const settleDeadline = Date.now() + options.settleTimeoutMs;
  let snapshot: Awaited<ReturnType<typeof readOutbox>>;
  for (;;) {
    snapshot = await readOutbox(doc, outboxTable);
    const excluded = new Set([...snapshot.quarantinedIds, ...(faults?.excludedEventIds ?? [])]);
    const expected = SUBSCRIBERS.reduce(
      (n, s) => n + snapshot.committed.filter((e) => s.types.includes(e.type) && !excluded.has(e.id)).length,
      0,
    );
    const billing = await readBillingEffects(doc, chargesTable);
    const notified = await readNotificationEffects(doc, sinkTable, new Map());
    const distinct = new Set([...billing, ...notified.effects].map((e) => `${e.subscriber}/${e.eventId}`))
      .size;
    if (firstAppliedMs === undefined && distinct > 0) firstAppliedMs = Date.now() - options.processStart;
    progress.update(
      `${bar(distinct, expected)} events committed ${snapshot.committed.length}  effects applied ${distinct}/${expected}` +
        `  backlog ${await backlog(stack)}`,
    );
    const faultsSettled = faults ? await faults.settled(stack, doc) : true;
    if ((distinct >= expected && faultsSettled) || Date.now() > settleDeadline) break;
    await faults?.tick(stack);
    await sleep(500);
  }
  progress.done();
  // Let the alarm evaluator see the final queue and metric state.
  await runtime.alarms.evaluate();
  const problems = (await faults?.verdict(stack, doc)) ?? [];
  // The delivery audit over the run's window, by the stack's own audit function: missing=0 per subscription.
  const audit = await runClosingAudit(stack, { from: workloadStart - 1000, to: Date.now() });
  const auditProblems = closingAuditProblems(audit);
  const largeOrders = await verifyLargeOrders(doc, chargesTable, largeOrderBytes);
  if (largeOrderBytes.size > 0) problems.push(...largeOrders.problems);

  const committedById = new Map(snapshot.committed.map((e) => [e.id, e]));
  const billingEffects = await readBillingEffects(doc, chargesTable);
  const notified = await readNotificationEffects(doc, sinkTable, committedById);
  const effects: AppliedEffect[] = [...billingEffects, ...notified.effects];
  const suppressed = (consumer: string) =>
    metricSum(runtime.metrics, 'ServerlessOutbox', 'DuplicatesSuppressed', { consumer }) +
    metricSum(runtime.metrics, 'ServerlessOutbox', 'StaleEventsSkipped', { consumer });
  const report: RunReport = buildReport({
    committed: snapshot.committed,
    effects,
    subscribers: SUBSCRIBERS,
    duplicatesSuppressed: { billing: suppressed('billing'), notifications: suppressed('notifications') },
    excluded: new Set([...snapshot.quarantinedIds, ...(faults?.excludedEventIds ?? [])]),
    alarmsFired: runtime.alarms.fired.map((t) => ({
      alarm: t.logicalId,
      at: new Date(t.at).toISOString(),
      reason: t.reason,
    })),
    quarantined: snapshot.byStatus.QUARANTINED ?? 0,
    deadLettered: {
      billing: await queueDepth(stack, resources.billingDlq),
      notifications: await queueDepth(stack, resources.notificationsDlq),
    },
    faults: [...(faults?.describe() ?? []), ...(largeOrderBytes.size > 0 ? [largeOrders.line] : [])],
    durationMs: Date.now() - workloadStart,
  });
  const iam = stack.iamReport();
  const alarmNotifications = runtime.alarms.notifications;
  const alarmPages = await stack.alarmNotificationsReceived();
  const peakMemory = (await peakRss(process.pid)) + (await peakRss(stack.dynamodb.pid));
  const details = {
    ...report,
    workload: {
      ...result,
      orders: options.orders,
      ratePerSecond: options.ratePerSecond,
      concurrency: options.concurrency,
    },
    sideEffectCallsAbsorbedByIdempotencyKey: notified.repeatedCalls,
    outboxByStatus: snapshot.byStatus,
    commitToPublishedMs: {
      p50: percentile(snapshot.publishDelaysMs, 50),
      p95: percentile(snapshot.publishDelaysMs, 95),
      p99: percentile(snapshot.publishDelaysMs, 99),
    },
    timings: { ...stack.timings, firstEventAppliedMs: firstAppliedMs ?? null },
    peakMemoryBytes: peakMemory,
    faultRunProblems: problems,
    audit,
    iam: { ...iam, alarmNotifications, alarmNotificationsReceived: alarmPages },
  };
  await stack.stop();
  await faults?.stop();
  await new Promise<void>((resolve) => log.end(resolve));

  // One event's trace, producer → relay → each consumer, from the outbox table and the functions log.
  const excludedIds = new Set([...snapshot.quarantinedIds, ...(faults?.excludedEventIds ?? [])]);
  const logLines = (await readFile(logFile, 'utf8')).split('\n');
  const trace = pickTraceSample(
    snapshot.traced.filter((e) => !excludedIds.has(e.id)),
    SUBSCRIBERS.map((s) => s.name),
    logLines,
  );

  console.log('');
  console.log(renderReport(report));
  console.log(renderClosingAudit(audit));
  for (const line of renderIamReport(iam, alarmNotifications, alarmPages)) console.log(line);
  console.log(
    `side-effect calls absorbed by the idempotency key: ${notified.repeatedCalls}   ` +
      `first effect applied ${firstAppliedMs ?? '-'} ms after start   peak memory ${(peakMemory / 2 ** 20).toFixed(0)} MiB   ` +
      `commit→published p50 ${details.commitToPublishedMs.p50} ms p99 ${details.commitToPublishedMs.p99} ms`,
  );
  const warning = trace ? traceWarning(trace) : 'warning: no committed event carries a traceparent';
  if (trace) console.log(renderTraceLine(trace));
  if (warning) console.log(warning);
  const reportFile = path.join(options.workDir, 'report.json');
  await writeFile(
    reportFile,
    `${JSON.stringify({ ...details, trace: trace ? { ...trace, line: renderTraceLine(trace) } : null }, null, 2)}\n`,
  );
  console.log(`report: ${reportFile}`);
  console.log(resultLine(report));
  for (const problem of problems) console.error(`fault run: ${problem}`);
  for (const problem of auditProblems) console.error(problem);
  if (problems.length > 0 || auditProblems.length > 0) return 1;
  if (result.commandsFailed > 0 || report.committed === 0) {
    console.error(
      `the workload did not complete: ${result.commandsFailed} producer commands failed (see ${logFile})`,
    );
    return 1;
  }
  if (!iamClean(iam)) {
    console.error(
      'IAM denied calls or dropped deliveries offline: AWS would refuse them too (see report.json "iam")',
    );
    return 1;
  }
  return isClean(report) ? 0 : 1;
}
