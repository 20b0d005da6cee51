import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../functions/relay/decode.ts';
import { publishInOrder } from '../../functions/relay/publish.ts';
import { classifyCallError, snsFifoPublisher } from '../../functions/relay/publishers.ts';

const sns = mockClient(SNSClient);
afterEach(() => sns.reset());

function record(pk: string, envelope: string): OutboxRecord {
  return {
    pk,
    sk: 'EVT#000000000001',
    id: `${pk}-1`,
    type: 'T',
    source: '/s',
    sequence: 1,
    envelope,
    envelopeBytes: envelope.length,
    createdAt: 1,
  };
}

describe('client-side SDK errors are split to the entry that causes them (#11.4)', () => {
  it('classifies an error thrown before any request (no HTTP status) as splittable, a server one as it was', () => {
    expect(classifyCallError(new URIError('URI malformed')).kind).toBe('split');
    expect(
      classifyCallError(Object.assign(new TypeError('x'), { $metadata: { httpStatusCode: 400 } })).kind,
    ).toBe('fatal');
  });

  it('rejects only the entry the SDK cannot encode; the other aggregates in the batch are published', async () => {
    // Stands for any encoding failure the per-entry check does not foresee.
    sns
      .on(PublishBatchCommand)
      .callsFake((input: { PublishBatchRequestEntries: { Id: string; Message: string }[] }) => {
        if (input.PublishBatchRequestEntries.some((e) => e.Message === 'unencodable'))
          throw new URIError('URI malformed');
        return { Successful: input.PublishBatchRequestEntries.map((e) => ({ Id: e.Id, MessageId: 'm' })) };
      });
    const publisher = snsFifoPublisher({
      client: new SNSClient({ region: 'us-east-1' }),
      topicArn: 'arn:aws:sns:us-east-1:123456789012:t.fifo',
    });
    const { outcomes } = await publishInOrder(
      [record('a', '{}'), record('b', 'unencodable'), record('c', '{}')],
      [publisher],
      { deadline: Number.MAX_SAFE_INTEGER, random: () => 0 },
    );
    expect(outcomes.map((o) => o.status)).toEqual(['published', 'rejected', 'published']);
  });
});
