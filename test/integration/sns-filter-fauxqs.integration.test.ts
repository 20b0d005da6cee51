import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compileFilterPolicy,
  type FilterPolicyScope,
  type SnsMessageAttribute,
} from '../../functions/patterns/sns-filter-policy.ts';
import { localAwsConfig, useFauxqs } from '../support/services.ts';

// Publishes through fauxqs (the offline SNS) with a filter policy per case and compares what it delivers with
// the engine's verdict. `aws` is what the SNS guide says SNS does (the engine must agree); where fauxqs
// deviates, `fauxqs` records what it does instead and why, so a fauxqs change shows up here.

const fauxqsEndpoint = useFauxqs();

interface Case {
  readonly name: string;
  readonly policy: Record<string, unknown>;
  readonly scope: FilterPolicyScope;
  readonly attributes?: Record<string, SnsMessageAttribute>;
  readonly message?: string;
  readonly aws: boolean;
  readonly fauxqs?: { readonly delivers: boolean; readonly why: string };
}

const s = (v: string) => ({ DataType: 'String', StringValue: v });
const num = (v: number | string) => ({ DataType: 'Number', StringValue: String(v) });
const attrs = {
  store: s('example_corp'),
  event: s('order_placed'),
  price_usd: num(210.75),
  ip: s('10.0.0.7'),
};
const body = JSON.stringify({
  store: 'example_corp',
  interests: ['soccer', 'rugby'],
  customer: { city: 'Seattle' },
});

const cases: Case[] = [
  {
    name: 'exact string',
    policy: { store: ['example_corp'] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'exact string, other value',
    policy: { store: ['other'] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: false,
  },
  {
    name: 'prefix',
    policy: { event: [{ prefix: 'order_' }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'suffix',
    policy: { event: [{ suffix: '_placed' }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'equals-ignore-case',
    policy: { store: [{ 'equals-ignore-case': 'EXAMPLE_CORP' }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'anything-but list excludes',
    policy: { event: [{ 'anything-but': ['order_placed', 'x'] }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: false,
  },
  {
    name: 'anything-but prefix excludes',
    policy: { event: [{ 'anything-but': { prefix: 'order' } }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: false,
  },
  {
    name: 'numeric range on a Number',
    policy: { price_usd: [{ numeric: ['>', 100, '<=', 300] }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'exists false, attribute missing',
    policy: { coupon: [{ exists: false }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'exists true, attribute missing',
    policy: { coupon: [{ exists: true }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: false,
  },
  {
    name: 'cidr',
    policy: { ip: [{ cidr: '10.0.0.0/24' }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: '$or',
    policy: { $or: [{ store: ['other'] }, { event: ['order_placed'] }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
  },
  {
    name: 'String.Array: one element matches',
    policy: { interests: ['rugby'] },
    scope: 'MessageAttributes',
    attributes: { interests: { DataType: 'String.Array', StringValue: '["soccer","rugby"]' } },
    aws: true,
    fauxqs: { delivers: false, why: 'compares the whole String.Array text, not its elements' },
  },
  {
    name: 'numeric on a String attribute',
    policy: { store: [{ numeric: ['>', 0] }] },
    scope: 'MessageAttributes',
    attributes: { store: s('5') },
    aws: false,
    fauxqs: { delivers: true, why: 'parses String attributes as numbers' },
  },
  {
    name: 'five decimals of numeric precision',
    policy: { price_usd: [{ numeric: ['=', 210.750001] }] },
    scope: 'MessageAttributes',
    attributes: attrs,
    aws: true,
    fauxqs: { delivers: false, why: 'compares numbers exactly' },
  },
  {
    name: 'body: nested key',
    policy: { customer: { city: ['Seattle'] } },
    scope: 'MessageBody',
    message: body,
    aws: true,
  },
  {
    name: 'body: nested key, other value',
    policy: { customer: { city: ['Boston'] } },
    scope: 'MessageBody',
    message: body,
    aws: false,
  },
  {
    name: 'body: dotted key',
    policy: { 'customer.city': ['Seattle'] },
    scope: 'MessageBody',
    message: body,
    aws: true,
  },
  {
    name: 'body: array element',
    policy: { interests: ['rugby'] },
    scope: 'MessageBody',
    message: body,
    aws: true,
    fauxqs: { delivers: false, why: 'drops arrays when flattening the body' },
  },
];

describe('SNS filter policies: the engine against fauxqs', () => {
  let sns: SNSClient;
  let sqs: SQSClient;
  const delivered = new Map<string, boolean>();

  beforeAll(async () => {
    sns = new SNSClient(localAwsConfig(fauxqsEndpoint()));
    sqs = new SQSClient(localAwsConfig(fauxqsEndpoint()));
    for (const [i, c] of cases.entries()) {
      const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `filter-${i}` }));
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `filter-${i}` }));
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      await sns.send(
        new SubscribeCommand({
          TopicArn,
          Protocol: 'sqs',
          Endpoint: Attributes?.QueueArn,
          Attributes: {
            RawMessageDelivery: 'true',
            FilterPolicy: JSON.stringify(c.policy),
            FilterPolicyScope: c.scope,
          },
        }),
      );
      await sns.send(
        new PublishCommand({
          TopicArn,
          Message: c.message ?? 'hello',
          ...(c.attributes
            ? { MessageAttributes: c.attributes as NonNullable<PublishCommand['input']['MessageAttributes']> }
            : {}),
        }),
      );
      // fauxqs delivers before Publish returns, so nothing waits here.
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 0 }));
      delivered.set(c.name, (Messages ?? []).length > 0);
    }
  });

  it.each(cases)('$name', (c) => {
    const engine = compileFilterPolicy(c.policy, c.scope).matches({
      ...(c.attributes ? { attributes: c.attributes } : {}),
      message: c.message ?? 'hello',
    });
    expect(engine).toBe(c.aws);
    expect(delivered.get(c.name)).toBe(c.fauxqs ? c.fauxqs.delivers : c.aws);
  });
});
