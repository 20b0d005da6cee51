/**
 * One start of the offline demo stack, for `npm run bench -- offline`: run as its own process (so "from process
 * start" includes Node's start-up and every import, as `npm start` does), it places one order as soon as the stack
 * is ready and prints, as one JSON line, how long after process start the first effect was applied.
 *
 * Usage: node --conditions=serverless-outbox-source bench/offline-startup.ts <workDir> <synthCacheDir> [--prewarm]
 * (`--prewarm`: every function starts one environment once the stack is provisioned, to compare with the default).
 */
const processStart = Date.now() - Math.round(process.uptime() * 1000);
const [workDir, synthCacheDir, flag] = process.argv.slice(2);
if (!workDir || !synthCacheDir) throw new Error('usage: offline-startup.ts <workDir> <synthCacheDir>');

// As `npm start` does: DynamoDB Local's JVM boots while the offline runtime and the demo load.
const { startDynamoDbLocal, startFauxqs } = await import('../local/services/index.ts');
const dynamodb = startDynamoDbLocal();
const fauxqs = startFauxqs();
dynamodb.catch(() => undefined);
fauxqs.catch(() => undefined);
const { startOfflineStack } = await import('../local/offline.ts');
const { metricSum } = await import('../examples/orders/observe.ts');
const { DEMO_SYNTH_SCRIPT } = await import('../examples/orders/synth.ts');
const { BILLING_CONSUMER_NAME } = await import('../examples/orders/contract.ts');
type DemoResources = import('../examples/orders/synth.ts').DemoResources;

const importedAt = Date.now();
const stack = await startOfflineStack<DemoResources>({
  workDir,
  synthScript: DEMO_SYNTH_SCRIPT,
  synthCacheDir,
  prewarmFunctions: flag === '--prewarm',
  dynamodb,
  fauxqs,
  log: () => {},
});
try {
  const readyAt = Date.now();
  const relayName = stack.ref(stack.resources.relay);
  const billingName = stack.ref(stack.resources.billingConsumer);
  const invoked = (functionName: string) =>
    metricSum(stack.runtime.metrics, 'AWS/Lambda', 'Invocations', { FunctionName: functionName }) >= 1;
  let relayInvokedAt = 0;
  let consumerInvokedAt = 0;
  const outcome = await stack.runtime.invoke(stack.resources.producer, {
    action: 'place',
    orderId: `startup-${process.pid}`,
    commandId: `startup-${process.pid}`,
    customerId: 'c-1',
    amountCents: 1000,
  });
  if (!(outcome.result as { ok?: boolean } | undefined)?.ok)
    throw new Error(`placing the order failed: ${JSON.stringify(outcome.result)}`);
  const committedAt = Date.now();
  const deadline = Date.now() + 60_000;
  while (
    metricSum(stack.runtime.metrics, 'ServerlessOutbox', 'EventsProcessed', {
      consumer: BILLING_CONSUMER_NAME,
    }) < 1
  ) {
    if (Date.now() > deadline) throw new Error('no effect applied within 60 s of the order');
    if (!relayInvokedAt && invoked(relayName)) relayInvokedAt = Date.now();
    if (!consumerInvokedAt && invoked(billingName)) consumerInvokedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const appliedAt = Date.now();
  const fromStart = (at: number) => (at ? at - processStart : -1);
  const phase = (name: string) =>
    name in stack.timings ? importedAt - processStart + (stack.timings[name] ?? 0) : -1;
  console.log(
    JSON.stringify({
      first_effect_ms_from_process_start: appliedAt - processStart,
      ready_ms_from_process_start: readyAt - processStart,
      imports_ms_from_process_start: importedAt - processStart,
      synth_ms: stack.timings.synthMs ?? 0,
      services_ms: stack.timings.servicesMs ?? 0,
      runtime_ready_ms: stack.timings.readyMs ?? 0,
      synth_cache_hit: stack.timings.synthCacheHit ?? 0,
      // Every phase in ms from process start (-1: not reached), in the order they end.
      phases_ms_from_process_start: {
        imports: importedAt - processStart,
        synth: phase('synthMs'),
        fauxqs: phase('fauxqsMs'),
        dynamodb_local: phase('dynamodbMs'),
        services: phase('servicesMs'),
        runtime: phase('runtimeMs'),
        ready: readyAt - processStart,
        order_committed: committedAt - processStart,
        relay_invoked: fromStart(relayInvokedAt),
        consumer_invoked: fromStart(consumerInvokedAt),
        first_effect: appliedAt - processStart,
      },
      provision_ms: stack.timings.provisionMs ?? 0,
      pollers_ms: stack.timings.pollersMs ?? 0,
    }),
  );
} finally {
  await stack.stop();
}
process.exit(0);
