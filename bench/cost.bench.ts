/**
 * Cost per event (issue 16): a fixed workload of ~1 KB events run through three designs on DynamoDB Local and
 * fauxqs with the real code, billing what AWS would (bench/cost/meter.ts) at us-east-1 list prices
 * (bench/prices.ts):
 * - ours: writer → relay → SNS FIFO → SQS FIFO → our consumer (one ordered subscriber; then two subscribers;
 *   `ours_large_only`: one subscriber, the writer's `compressEnvelopes: 'large-only'` (the default before
 *   'when-cheaper'); `ours_single_item`: one subscriber in mode 'single-item', its cursor on the effect's item;
 *   `ours_floor`: that, the writer's `aggregate.versionOn` (the version on the order item, no head item), and the
 *   producer passing the version it read (`aggregate.expectedVersion`, as a handler that loaded the order does));
 * - `baseline_sample`: the serverless-patterns outbox sample's design (stream on the business table → Lambda →
 *   PutEvents → SQS → consumer), which loses events on a failed put, orders nothing and deduplicates nothing;
 * - `baseline_powertools`: our writer and relay, with a consumer made idempotent by Powertools.
 *
 * Workload shapes: 1 event per aggregate per relay batch (steady state: most events have their predecessor in
 * an earlier batch) and 10 per batch. The headline figures (`usd_per_million_events`, `*_per_event`) are the
 * first shape with one ordered subscriber; everything counts the order item and the effect (business writes)
 * except `dynamodb_wcu_per_event`, which excludes them as the issue's target does.
 */
import { startDynamoDbLocal } from '../local/services/dynamodb-local.ts';
import { startFauxqs } from '../local/services/fauxqs.ts';
import { BillingMeter, priceUsage, type Usage } from './cost/meter.ts';
import {
  type PipelineRun,
  runOutboxPipeline,
  runSamplePipeline,
  type Services,
  type WorkloadShape,
} from './cost/pipelines.ts';
import { PRICES_CHECKED_ON } from './prices.ts';
import { round } from './stats.ts';

const SHAPES: readonly WorkloadShape[] = [
  {
    name: 'one-per-batch',
    aggregates: 40,
    eventsPerAggregate: 6,
    eventsPerAggregatePerBatch: 1,
    aggregatesPerBatch: 40,
  },
  {
    name: 'ten-per-batch',
    aggregates: 24,
    eventsPerAggregate: 10,
    eventsPerAggregatePerBatch: 10,
    aggregatesPerBatch: 8,
  },
];

const isBusinessTable = (table: string) =>
  table.startsWith('cost-orders') || table.startsWith('cost-effects') || table.startsWith('cost-sample-');

interface Measured {
  readonly run: PipelineRun;
  readonly usage: Usage;
  readonly byLabel: Record<string, Usage>;
  /** Write units and requests per event for each `part · operation · table[/index]`. */
  readonly writesByCall: Record<string, { requests: number; wcu: number }>;
}

async function measure(pipeline: (meter: BillingMeter) => Promise<PipelineRun>): Promise<Measured> {
  const meter = new BillingMeter(isBusinessTable);
  const run = await pipeline(meter);
  if (run.effectsApplied !== run.effectsExpected)
    throw new Error(`expected ${run.effectsExpected} effects, ${run.effectsApplied} were applied`);
  const byLabel: Record<string, Usage> = {};
  for (const label of meter.labels()) byLabel[label] = meter.of(label);
  const writesByCall: Measured['writesByCall'] = {};
  for (const [call, { requests, writeUnits }] of meter.writesByCall())
    writesByCall[call] = {
      requests: round(requests / run.events, 3),
      wcu: round(writeUnits / run.events, 3),
    };
  return { run, usage: meter.total(), byLabel, writesByCall };
}

const perEvent = (value: number, m: Measured) => value / m.run.events;
const usdPerMillion = (m: Measured) =>
  (Object.values(priceUsage(m.usage)).reduce((a, b) => a + b, 0) / m.run.events) * 1e6;

function summary(m: Measured) {
  const u = m.usage;
  const dollars = priceUsage(u);
  return {
    usd_per_million_events: round(usdPerMillion(m), 3),
    dynamodb_wcu_per_event: round(perEvent(u.dynamodbWriteUnits - u.dynamodbBusinessWriteUnits, m), 2),
    dynamodb_wcu_per_event_with_business: round(perEvent(u.dynamodbWriteUnits, m), 2),
    dynamodb_rcu_per_event: round(perEvent(u.dynamodbReadUnits, m), 2),
    dynamodb_requests_per_event: round(perEvent(u.dynamodbRequests, m), 2),
    dynamodb_queries_per_event: round(perEvent(u.dynamodbQueries, m), 2),
    lambda_invocations_per_event: round(perEvent(u.lambdaInvocations, m), 3),
    sns_requests_per_event: round(perEvent(u.snsRequests, m), 3),
    sqs_requests_per_event: round(perEvent(u.sqsFifoRequests + u.sqsStandardRequests, m), 3),
    eventbridge_events_per_event: round(perEvent(u.eventBridgeEvents, m), 3),
    breakdown_usd_per_million: Object.entries(dollars)
      .map(([service, usd]) => `${service} ${round((usd / m.run.events) * 1e6, 3)}`)
      .join(', '),
  };
}

export async function run(): Promise<Record<string, number | string>> {
  const [dynamodb, fauxqs] = await Promise.all([startDynamoDbLocal(), startFauxqs()]);
  const services: Services = { dynamodb: dynamodb.endpoint, fauxqs: fauxqs.endpoint };
  try {
    const figures: Record<string, number | string> = { prices_checked_on: PRICES_CHECKED_ON };
    const table: Record<string, Record<string, number | string>> = {};
    const headline: Record<string, Measured> = {};
    for (const shape of SHAPES) {
      const cases: [string, (meter: BillingMeter) => Promise<PipelineRun>][] = [
        ['ours', (meter) => runOutboxPipeline(meter, services, shape, { subscribers: 1, consumer: 'ours' })],
        [
          'ours_2_subscribers',
          (meter) => runOutboxPipeline(meter, services, shape, { subscribers: 2, consumer: 'ours' }),
        ],
        [
          'ours_large_only',
          (meter) =>
            runOutboxPipeline(meter, services, shape, {
              subscribers: 1,
              consumer: 'ours',
              compressEnvelopes: 'large-only',
            }),
        ],
        [
          'ours_single_item',
          (meter) => runOutboxPipeline(meter, services, shape, { subscribers: 1, consumer: 'single-item' }),
        ],
        [
          'ours_floor',
          (meter) =>
            runOutboxPipeline(meter, services, shape, {
              subscribers: 1,
              consumer: 'single-item',
              versionOnOrder: true,
              callerKnowsVersion: true,
            }),
        ],
        [
          'powertools',
          (meter) => runOutboxPipeline(meter, services, shape, { subscribers: 1, consumer: 'powertools' }),
        ],
        ['sample', (meter) => runSamplePipeline(meter, services, shape)],
      ];
      for (const [name, pipeline] of cases) {
        const measured = await measure(pipeline);
        const s = summary(measured);
        table[`${name} / ${shape.name}`] = {
          'usd/M events': s.usd_per_million_events,
          'WCU/event (excl. business)': s.dynamodb_wcu_per_event,
          'WCU/event': s.dynamodb_wcu_per_event_with_business,
          'RCU/event': s.dynamodb_rcu_per_event,
          'DDB req/event': s.dynamodb_requests_per_event,
          'Lambda inv/event': s.lambda_invocations_per_event,
        };
        const prefix = name === 'ours' ? '' : `${name.startsWith('ours_') ? name : `baseline_${name}`}_`;
        const suffix = shape === SHAPES[0] ? '' : `_${shape.name.replaceAll('-', '_')}`;
        for (const [key, value] of Object.entries(s)) figures[`${prefix}${key}${suffix}`] = value;
        for (const [label, usage] of Object.entries(measured.byLabel)) {
          const dollars = Object.values(priceUsage(usage)).reduce((a, b) => a + b, 0);
          figures[`${prefix}part_${label}_usd_per_million${suffix}`] = round(
            (dollars / measured.run.events) * 1e6,
            3,
          );
        }
        if (shape === SHAPES[0]) headline[name] = measured;
        if (shape === SHAPES[0] && name.startsWith('ours') && name !== 'ours_2_subscribers') {
          console.log(`\nWrite units per event by call, ${name} / ${shape.name}:`);
          console.table(measured.writesByCall);
          figures[`${prefix}wcu_per_event_by_call`] = Object.entries(measured.writesByCall)
            .filter(([, c]) => c.wcu > 0)
            .map(([call, c]) => `${call} ${c.wcu}`)
            .join('; ');
        }
      }
    }
    console.table(table);
    const ours = usdPerMillion(headline.ours as Measured);
    const sample = usdPerMillion(headline.sample as Measured);
    const powertools = usdPerMillion(headline.powertools as Measured);
    const singleItem = usdPerMillion(headline.ours_single_item as Measured);
    const floor = usdPerMillion(headline.ours_floor as Measured);
    figures.ratio_to_sample = round(ours / sample, 2);
    figures.ratio_to_powertools = round(ours / powertools, 2);
    figures.ours_single_item_ratio_to_sample = round(singleItem / sample, 2);
    figures.ours_single_item_ratio_to_powertools = round(singleItem / powertools, 2);
    figures.ours_floor_ratio_to_sample = round(floor / sample, 2);
    figures.ours_floor_ratio_to_powertools = round(floor / powertools, 2);
    console.log(`ours / sample (stream → PutEvents, no outbox, no dedup): ${round(ours / sample, 2)}×`);
    console.log(`ours / our relay + Powertools idempotency consumer: ${round(ours / powertools, 2)}×`);
    console.log(
      `ours, single-item consumer / sample: ${round(singleItem / sample, 2)}×; / Powertools: ${round(singleItem / powertools, 2)}×`,
    );
    console.log(
      `ours, single-item consumer + version on the order item, passed by the caller / sample: ${round(floor / sample, 2)}×; / Powertools: ${round(floor / powertools, 2)}×`,
    );
    return figures;
  } finally {
    await Promise.allSettled([dynamodb.stop(), fauxqs.stop()]);
  }
}
