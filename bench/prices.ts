/**
 * us-east-1 list prices the cost bench (`npm run bench -- cost`) bills with. Checked 2026-11-30; each entry names its
 * source. Free tiers are ignored (a million-event workload is priced as if the account's free tier were used up).
 *
 * Not priced, in every design alike: deliveries from SNS and EventBridge into SQS queues (one per event per
 * subscriber in each design), DynamoDB Streams reads by Lambda triggers (free), storage, CloudWatch, and idle
 * polling by Lambda's SQS pollers (a fixed cost per queue, not per event).
 *
 * Where a figure could not be confirmed from an AWS page here, `verified` says so: the sources reachable from this
 * machine were third-party summaries of the AWS pricing pages (quoted below), not the pages themselves.
 */
export interface Price {
  readonly usd: number;
  /** What one unit is. */
  readonly per: string;
  readonly source: string;
  /** How the figure was checked. */
  readonly verified: string;
}

export const PRICES_CHECKED_ON = '2026-11-30';

export const PRICES = {
  /** On-demand write request unit (1 KB standard write; transactional writes cost 2 per KB). */
  dynamodbWriteRequestUnit: {
    usd: 0.625 / 1e6,
    per: 'write request unit (on-demand, Standard table class)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    verified:
      'third-party summaries of the AWS page after the Nov 2024 price cut (airbyte.com/data-engineering-resources/dynamodb-pricing, Jul 2025): $0.625 per million WRU',
  },
  /** On-demand read request unit (4 KB strongly consistent read; eventually consistent = 0.5). */
  dynamodbReadRequestUnit: {
    usd: 0.125 / 1e6,
    per: 'read request unit (on-demand, Standard table class)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    verified: 'same source as the write unit: $0.125 per million RRU',
  },
  /** Standard queue request (each 64 KB chunk of a request is one request). */
  sqsStandardRequest: {
    usd: 0.4 / 1e6,
    per: 'SQS standard request (per 64 KB chunk)',
    source: 'https://aws.amazon.com/sqs/pricing/',
    verified:
      'third-party summaries (cloudburn.io/blog/amazon-sqs-pricing, Mar 2026; factualminds.com, Jun 2026): $0.40 per million (first 100 billion a month)',
  },
  sqsFifoRequest: {
    usd: 0.5 / 1e6,
    per: 'SQS FIFO request (per 64 KB chunk)',
    source: 'https://aws.amazon.com/sqs/pricing/',
    verified: 'same sources: $0.50 per million FIFO requests',
  },
  /** Publish / PublishBatch to a FIFO topic (each 64 KB chunk of a request is one request). */
  snsFifoPublishRequest: {
    usd: 0.3 / 1e6,
    per: 'SNS FIFO publish API request (per 64 KB chunk)',
    source: 'https://aws.amazon.com/sns/pricing/',
    verified:
      'third-party summary (factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols, Jun 2026): $0.30 per million for FIFO. NOT verified here: the FIFO payload charge per GB published and per GB delivered, left out (a few cents per million 1 KB events)',
  },
  /** Custom event put on an event bus (each 64 KB chunk of an entry is one event). */
  eventBridgeCustomEvent: {
    usd: 1.0 / 1e6,
    per: 'EventBridge custom event (per 64 KB chunk of an entry)',
    source: 'https://aws.amazon.com/eventbridge/pricing/',
    verified:
      'third-party summaries (cloudburn.io/blog/amazon-eventbridge-pricing, Mar 2026): $1.00 per million',
  },
  lambdaRequest: {
    usd: 0.2 / 1e6,
    per: 'Lambda invocation',
    source: 'https://aws.amazon.com/lambda/pricing/',
    verified:
      'NOT verified here: the reachable copy of the AWS page gives no figures; $0.20 per million is the long-standing list price',
  },
  /** The library's functions run on arm64 (lib/outbox-function.ts). */
  lambdaArmGbSecond: {
    usd: 0.0000133334,
    per: 'Lambda GB-second, arm64, first 7.5 billion GB-s a month',
    source: 'https://aws.amazon.com/lambda/pricing/',
    verified:
      'NOT verified here (as the request price): $0.0000133334 per GB-s is the long-standing arm64 list price',
  },
} as const satisfies Record<string, Price>;
