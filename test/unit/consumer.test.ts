import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BusinessConditionFailedError,
  ConsumerConfigurationError,
  ConsumerMetric,
  type ConsumerOptions,
  ConsumerRetryableError,
  CountingMetrics,
  createConsumer,
  type EventContext,
  EventInProgressError,
  IdempotentConsumer,
  InvalidWritesError,
  type LeaseEventContext,
  LeaseLostError,
  POISON_REASON_ATTRIBUTE,
  parseEnvelope,
  SequenceGapError,
} from '../../functions/consumer/index.ts';
import { buildEnvelope, type OutboxEnvelope } from '../../functions/runtime/envelope.ts';

const ddb = mockClient(DynamoDBDocumentClient);
const sqsMock = mockClient(SQSClient);
const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const sqsClient = new SQSClient({ region: 'us-east-1' });
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const NOW_SECONDS = Math.floor(NOW / 1000);
const TABLE = 'dedup';
const DLQ_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/billing-dlq';

interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  attributes: Record<string, unknown> | undefined;
}

function capturingLogger() {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (message: string, attributes?: Record<string, unknown>) =>
      lines.push({ level: 'info', message, attributes }),
    warn: (message: string, attributes?: Record<string, unknown>) =>
      lines.push({ level: 'warn', message, attributes }),
    error: (message: string, attributes?: Record<string, unknown>) =>
      lines.push({ level: 'error', message, attributes }),
  };
}

function envelope(
  sequence = 1,
  partitionKey = 'order#1',
  type = 'com.example.orders.OrderPlaced',
): OutboxEnvelope {
  return buildEnvelope(
    { type, source: '/orders', data: { orderId: '1', amountCents: 500 } },
    { partitionKey, sequence },
  ).envelope;
}

function lambdaContext(remainingMs: number): Context {
  return { getRemainingTimeInMillis: () => remainingMs } as unknown as Context;
}

function sqsRecord(body: string, messageId: string, groupId?: string): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(NOW),
      SenderId: 'sns',
      ApproximateFirstReceiveTimestamp: String(NOW),
      ...(groupId === undefined ? {} : { MessageGroupId: groupId, MessageDeduplicationId: messageId }),
    },
    messageAttributes: { type: { dataType: 'String', stringValue: 'com.example.orders.OrderPlaced' } },
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:us-east-1:123456789012:billing${groupId === undefined ? '' : '.fifo'}`,
    awsRegion: 'us-east-1',
  };
}

function cancelled(
  reasons: { Code: string; Item?: Record<string, unknown> }[],
): TransactionCanceledException {
  return new TransactionCanceledException({
    message: 'Transaction cancelled',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: reasons.map((r) => ({
      Code: r.Code,
      ...(r.Item ? { Item: marshall(r.Item) } : {}),
    })),
  });
}

function conditionFailed(item?: Record<string, unknown>): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: { httpStatusCode: 400 },
    ...(item ? { Item: marshall(item) } : {}),
  });
}

const chargeWrite = {
  Put: { TableName: 'charges', Item: { orderId: '1' }, ConditionExpression: 'attribute_not_exists(orderId)' },
};

let metrics: CountingMetrics;
let logger: ReturnType<typeof capturingLogger>;

beforeEach(() => {
  metrics = new CountingMetrics();
  logger = capturingLogger();
});

afterEach(() => {
  ddb.reset();
  sqsMock.reset();
});

type ModeOptions = Record<string, unknown>;

function consumer(options: ModeOptions): IdempotentConsumer {
  return createConsumer({
    name: 'billing',
    tableName: TABLE,
    client,
    sqsClient,
    metrics,
    logger,
    now: () => NOW,
    ...options,
  } as unknown as ConsumerOptions);
}

describe('configuration', () => {
  it.each([
    ['a name with #', { name: 'bill#ing' }, /consumer name must be 1-64 letters.*"bill#ing" was provided/],
    ['no name', { name: '' }, /OUTBOX_CONSUMER_NAME/],
    [
      'an unknown mode',
      { mode: 'exactly-once' },
      /mode must be 'transactional', 'lease', 'ordered' or 'single-item', but exactly-once was provided/,
    ],
    ['no handler', { handle: undefined }, /handle must be a function/],
    ['no table', { tableName: undefined }, /No dedup table configured.*DEDUP_TABLE_NAME/],
    ['concurrency 0', { concurrency: 0 }, /concurrency must be an integer from 1 to 100, but 0 was provided/],
    ['a tiny TTL', { dedupTtlSeconds: 5 }, /dedupTtlSeconds must be an integer from 60/],
    [
      'an unknown gap policy',
      { mode: 'ordered', onGap: 'skip' },
      /onGap must be 'retry' or 'accept', but skip was provided/,
    ],
    ['a zero lease', { mode: 'lease', leaseMs: 0 }, /leaseMs must be an integer from 1/],
  ])('rejects %s with a clear message', (_case, override, message) => {
    const previous = process.env.DEDUP_TABLE_NAME;
    delete process.env.DEDUP_TABLE_NAME;
    try {
      expect(() => consumer({ mode: 'transactional', handle: () => [], ...override } as ModeOptions)).toThrow(
        message,
      );
      expect(() => consumer({ mode: 'transactional', handle: () => [], ...override } as ModeOptions)).toThrow(
        ConsumerConfigurationError,
      );
    } finally {
      if (previous !== undefined) process.env.DEDUP_TABLE_NAME = previous;
    }
  });

  it('reads the table, consumer name and DLQ URL from the environment', async () => {
    process.env.DEDUP_TABLE_NAME = 'from-env';
    process.env.OUTBOX_CONSUMER_NAME = 'env-consumer';
    try {
      ddb.on(PutCommand).resolves({});
      const c = createConsumer({
        mode: 'transactional',
        handle: () => [],
        client,
        metrics,
        logger,
        now: () => NOW,
      });
      expect(c.name).toBe('env-consumer');
      await c.process(envelope());
      const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
      expect(input?.TableName).toBe('from-env');
      expect(input?.Item?.pk).toMatch(/^E#env-consumer#/);
    } finally {
      delete process.env.DEDUP_TABLE_NAME;
      delete process.env.OUTBOX_CONSUMER_NAME;
    }
  });
});

describe('transactional mode', () => {
  it('remembers an applied event for OUTBOX_DEDUP_TTL_SECONDS, the retention its Subscription derived (#10)', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const previous = process.env.OUTBOX_DEDUP_TTL_SECONDS;
    process.env.OUTBOX_DEDUP_TTL_SECONDS = String(18 * 86_400);
    try {
      const c = consumer({ mode: 'transactional', handle: () => [chargeWrite] });
      await c.process(envelope());
    } finally {
      if (previous === undefined) delete process.env.OUTBOX_DEDUP_TTL_SECONDS;
      else process.env.OUTBOX_DEDUP_TTL_SECONDS = previous;
    }
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[0]?.Put?.Item?.expiresAt).toBe(NOW_SECONDS + 18 * 86_400);
  });

  it('commits the handler writes and the dedup record in ONE TransactWriteItems keyed by consumer + event id', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const event = envelope();
    const seen: string[] = [];
    const c = consumer({
      mode: 'transactional',
      handle: (_e: OutboxEnvelope, ctx: EventContext) => {
        seen.push(ctx.idempotencyKey);
        return [chargeWrite];
      },
    });
    const outcome = await c.process(event, { record: sqsRecord(JSON.stringify(event), 'sqs-message-id') });
    expect(outcome).toEqual({ status: 'applied', eventId: event.id });
    expect(seen).toEqual([event.id]);
    const calls = ddb.commandCalls(TransactWriteCommand);
    expect(calls).toHaveLength(1);
    const items = calls[0]?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(2);
    expect(items[0]?.Put).toMatchObject({
      TableName: TABLE,
      Item: {
        pk: `E#billing#${event.id}`,
        status: 'COMPLETED',
        completedAt: NOW,
        expiresAt: NOW_SECONDS + 14 * 86_400,
      },
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :nowSeconds',
      ExpressionAttributeValues: { ':nowSeconds': NOW_SECONDS },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(JSON.stringify(items[0])).not.toContain('sqs-message-id');
    expect(items[1]).toEqual(chargeWrite);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(1);
  });

  it('uses a plain conditional PutItem when the handler has no writes', async () => {
    ddb.on(PutCommand).resolves({});
    await consumer({ mode: 'transactional', handle: () => [] }).process(envelope());
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.ConditionExpression).toBe(
      'attribute_not_exists(pk) OR expiresAt < :nowSeconds',
    );
  });

  it('treats a cancelled transaction on the dedup record as a duplicate, without any read', async () => {
    const event = envelope();
    ddb
      .on(TransactWriteCommand)
      .rejects(
        cancelled([
          { Code: 'ConditionalCheckFailed', Item: { pk: `E#billing#${event.id}`, status: 'COMPLETED' } },
          { Code: 'None' },
        ]),
      );
    const outcome = await consumer({ mode: 'transactional', handle: () => [chargeWrite] }).process(event);
    expect(outcome).toEqual({ status: 'duplicate', eventId: event.id });
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0);
    expect(metrics.get(ConsumerMetric.DuplicatesSuppressed)).toBe(1);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(0);
  });

  it('treats a refused plain put as a duplicate', async () => {
    ddb.on(PutCommand).rejects(conditionFailed({ pk: 'x', status: 'COMPLETED' }));
    const outcome = await consumer({ mode: 'transactional', handle: () => [] }).process(envelope());
    expect(outcome.status).toBe('duplicate');
  });

  it('names the handler write whose condition failed', async () => {
    ddb
      .on(TransactWriteCommand)
      .rejects(cancelled([{ Code: 'None' }, { Code: 'None' }, { Code: 'ConditionalCheckFailed' }]));
    const error = await consumer({ mode: 'transactional', handle: () => [chargeWrite, chargeWrite] })
      .process(envelope())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusinessConditionFailedError);
    expect((error as BusinessConditionFailedError).writeIndex).toBe(1);
    expect((error as BusinessConditionFailedError).retryable).toBe(false);
  });

  it('retries a transaction conflict in-process without calling the handler again', async () => {
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled([{ Code: 'TransactionConflict' }, { Code: 'None' }]))
      .resolves({});
    let calls = 0;
    const outcome = await consumer({
      mode: 'transactional',
      handle: () => {
        calls++;
        return [chargeWrite];
      },
    }).process(envelope());
    expect(outcome.status).toBe('applied');
    expect(calls).toBe(1);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(2);
  });

  it('gives up after three conflicts with a retryable error', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled([{ Code: 'TransactionConflict' }, { Code: 'None' }]));
    const error = await consumer({ mode: 'transactional', handle: () => [chargeWrite] })
      .process(envelope())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConsumerRetryableError);
    expect((error as ConsumerRetryableError).retryable).toBe(true);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(3);
  });

  it('reports a validation cancellation as invalid writes', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled([{ Code: 'None' }, { Code: 'ValidationError' }]));
    await expect(
      consumer({ mode: 'transactional', handle: () => [chargeWrite] }).process(envelope()),
    ).rejects.toThrow(InvalidWritesError);
  });

  it('turns throttling into a retryable consumer error', async () => {
    ddb.on(PutCommand).rejects(
      Object.assign(new Error('Rate exceeded'), {
        name: 'ThrottlingException',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(consumer({ mode: 'transactional', handle: () => [] }).process(envelope())).rejects.toThrow(
      ConsumerRetryableError,
    );
  });

  it.each([
    ['not an array', { Put: {} }, /expected an array/],
    ['too many writes', Array.from({ length: 100 }, () => chargeWrite), /at most 99 writes/],
    ['an entry with two operations', [{ Put: {}, Delete: {} }], /writes\[0\] must have exactly one of/],
  ])('rejects handler writes that are %s before writing anything', async (_case, writes, message) => {
    const c = consumer({ mode: 'transactional', handle: () => writes as never });
    await expect(c.process(envelope())).rejects.toThrow(message);
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('lease mode', () => {
  const leaseRecord = (overrides: Record<string, unknown>) => ({ pk: 'E#notifications#x', ...overrides });

  function leaseConsumer(
    handle: (e: OutboxEnvelope, ctx: LeaseEventContext) => Promise<void> | void,
    extra = {},
  ) {
    return consumer({ name: 'notifications', mode: 'lease', handle, ...extra } as ModeOptions);
  }

  it('claims with an owner token, runs the effect with the event id as idempotency key, completes on that token', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    const event = envelope();
    const contexts: LeaseEventContext[] = [];
    const outcome = await leaseConsumer((_e, ctx) => {
      contexts.push(ctx);
    }).process(event, { lambdaContext: lambdaContext(20_000) });
    expect(outcome).toEqual({ status: 'applied', eventId: event.id });
    const claim = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(claim?.Item).toMatchObject({
      pk: `E#notifications#${event.id}`,
      status: 'IN_PROGRESS',
      leaseExpiresAt: NOW + 20_000 + 1_000,
    });
    expect(claim?.ConditionExpression).toBe(
      'attribute_not_exists(pk) OR expiresAt < :nowSeconds OR (#status = :inProgress AND leaseExpiresAt < :now)',
    );
    const owner = claim?.Item?.leaseOwner as string;
    expect(owner).toMatch(/^[0-9a-f-]{36}$/);
    expect(contexts[0]).toMatchObject({
      idempotencyKey: event.id,
      leaseOwner: owner,
      leaseExpiresAt: NOW + 21_000,
    });
    expect(contexts[0]?.signal.aborted).toBe(false);
    const complete = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(complete?.ConditionExpression).toBe('leaseOwner = :owner');
    expect(complete?.ExpressionAttributeValues?.[':owner']).toBe(owner);
    expect(complete?.UpdateExpression).toMatch(/SET #status = :completed.*REMOVE leaseOwner, leaseExpiresAt/);
  });

  it('uses a fixed leaseMs when given, and 60 s outside Lambda', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    await leaseConsumer(() => {}, { leaseMs: 5_000 }).process(envelope());
    await leaseConsumer(() => {}).process(envelope());
    const expiries = ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item?.leaseExpiresAt);
    expect(expiries).toEqual([NOW + 5_000, NOW + 60_000]);
  });

  it('skips a completed event without running the side effect', async () => {
    ddb.on(PutCommand).rejects(conditionFailed(leaseRecord({ status: 'COMPLETED' })));
    let ran = false;
    const outcome = await leaseConsumer(() => {
      ran = true;
    }).process(envelope());
    expect(outcome.status).toBe('duplicate');
    expect(ran).toBe(false);
    expect(metrics.get(ConsumerMetric.DuplicatesSuppressed)).toBe(1);
  });

  it('refuses an event another worker holds a live lease on (retryable)', async () => {
    ddb
      .on(PutCommand)
      .rejects(conditionFailed(leaseRecord({ status: 'IN_PROGRESS', leaseExpiresAt: NOW + 9_000 })));
    const error = await leaseConsumer(() => {})
      .process(envelope())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventInProgressError);
    expect((error as EventInProgressError).leaseExpiresAt).toBe(NOW + 9_000);
    expect((error as EventInProgressError).retryable).toBe(true);
  });

  it('releases its own claim when the side effect fails, then rethrows', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(DeleteCommand).resolves({});
    const boom = new Error('provider down');
    await expect(
      leaseConsumer(() => {
        throw boom;
      }).process(envelope()),
    ).rejects.toBe(boom);
    const owner = ddb.commandCalls(PutCommand)[0]?.args[0].input.Item?.leaseOwner;
    const release = ddb.commandCalls(DeleteCommand)[0]?.args[0].input;
    expect(release?.ConditionExpression).toBe('leaseOwner = :owner');
    expect(release?.ExpressionAttributeValues?.[':owner']).toBe(owner);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('still rethrows the side effect error when the release finds the lease gone', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(DeleteCommand).rejects(conditionFailed());
    await expect(
      leaseConsumer(() => {
        throw new Error('provider down');
      }).process(envelope()),
    ).rejects.toThrow('provider down');
    expect(logger.lines.some((l) => /no longer ours/.test(l.message))).toBe(true);
  });

  it.each([
    ['taken-over', { status: 'IN_PROGRESS', leaseOwner: 'someone-else', leaseExpiresAt: NOW + 5_000 }],
    ['completed-by-other', { status: 'COMPLETED' }],
    ['released', undefined],
  ] as const)(
    'rejects a late completion after the lease was lost (%s) with LeaseLostError',
    async (state, old) => {
      ddb.on(PutCommand).resolves({});
      ddb.on(UpdateCommand).rejects(conditionFailed(old ? leaseRecord(old) : undefined));
      const error = await leaseConsumer(() => {})
        .process(envelope())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect((error as LeaseLostError).state).toBe(state);
      expect((error as LeaseLostError).message).toMatch(/must deduplicate on the idempotency key/);
      expect(metrics.get(ConsumerMetric.LeasesLost)).toBe(1);
      expect(metrics.get(ConsumerMetric.Processed)).toBe(0);
    },
  );
});

describe('ordered mode', () => {
  function ordered(writes: unknown[] = [chargeWrite], onGap?: 'retry' | 'accept') {
    return consumer({
      mode: 'ordered',
      handle: () => writes as never,
      ...(onGap ? { onGap } : {}),
    } as ModeOptions);
  }

  it('advances the aggregate cursor from sequence-1 in the same transaction as the writes', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const event = envelope(4);
    expect(await ordered().process(event)).toEqual({ status: 'applied', eventId: event.id });
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[0]?.Update).toMatchObject({
      Key: { pk: 'S#billing#order#1' },
      ConditionExpression: 'lastSequence = :expected',
      ExpressionAttributeValues: { ':sequence': 4, ':expected': 3, ':eventId': event.id },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(items[1]).toEqual(chargeWrite);
  });

  it('requires no cursor for the first event and uses a plain UpdateItem without writes', async () => {
    ddb.on(UpdateCommand).resolves({});
    await ordered([]).process(envelope(1));
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input.ConditionExpression).toBe(
      'attribute_not_exists(lastSequence)',
    );
  });

  it('skips and counts a stale event', async () => {
    ddb
      .on(TransactWriteCommand)
      .rejects(
        cancelled([{ Code: 'ConditionalCheckFailed', Item: { pk: 'S', lastSequence: 5 } }, { Code: 'None' }]),
      );
    const outcome = await ordered().process(envelope(3));
    expect(outcome).toMatchObject({ status: 'stale', lastSequence: 5 });
    expect(metrics.get(ConsumerMetric.StaleSkipped)).toBe(1);
  });

  it('recognises a repeated delivery of the last applied event as a duplicate', async () => {
    const event = envelope(3);
    ddb.on(UpdateCommand).rejects(conditionFailed({ pk: 'S', lastSequence: 3, lastEventId: event.id }));
    expect((await ordered([]).process(event)).status).toBe('duplicate');
    expect(metrics.get(ConsumerMetric.DuplicatesSuppressed)).toBe(1);
  });

  it('fails a gap by default so the FIFO queue redelivers it later', async () => {
    ddb
      .on(TransactWriteCommand)
      .rejects(
        cancelled([{ Code: 'ConditionalCheckFailed', Item: { pk: 'S', lastSequence: 1 } }, { Code: 'None' }]),
      );
    const error = await ordered()
      .process(envelope(4))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SequenceGapError);
    expect(error).toMatchObject({
      expectedSequence: 2,
      receivedSequence: 4,
      partitionKey: 'order#1',
      retryable: true,
    });
    expect(metrics.get(ConsumerMetric.SequenceGaps)).toBe(1);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it('treats a first event that is not sequence 1 as a gap', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    await expect(ordered([]).process(envelope(2))).rejects.toThrow(SequenceGapError);
  });

  it("with onGap: 'accept' applies the event past the gap and counts it", async () => {
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(
        cancelled([{ Code: 'ConditionalCheckFailed', Item: { pk: 'S', lastSequence: 1 } }, { Code: 'None' }]),
      )
      .resolves({});
    const outcome = await ordered([chargeWrite], 'accept').process(envelope(4));
    expect(outcome).toMatchObject({ status: 'applied', skippedSequences: 2 });
    const second = ddb.commandCalls(TransactWriteCommand)[1]?.args[0].input.TransactItems?.[0]?.Update;
    expect(second?.ExpressionAttributeValues).toMatchObject({ ':expected': 1, ':sequence': 4 });
    expect(metrics.get(ConsumerMetric.SequenceGaps)).toBe(1);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(1);
  });

  it("with onGap: 'accept' starts a new aggregate mid-history", async () => {
    ddb.on(UpdateCommand).rejectsOnce(conditionFailed()).resolves({});
    expect(await ordered([], 'accept').process(envelope(7))).toMatchObject({
      status: 'applied',
      skippedSequences: 6,
    });
    expect(ddb.commandCalls(UpdateCommand)[1]?.args[0].input.ConditionExpression).toBe(
      'attribute_not_exists(lastSequence)',
    );
  });

  it('reports a failed business condition, not a gap', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled([{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }]));
    await expect(ordered().process(envelope(1))).rejects.toThrow(BusinessConditionFailedError);
  });
});

describe('batches', () => {
  function deferred() {
    let resolve: () => void = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  }

  it('standard queue: reports failures one by one and runs at most `concurrency` messages at once', async () => {
    ddb.on(PutCommand).resolves({});
    let inFlight = 0;
    let maxInFlight = 0;
    const events = Array.from({ length: 6 }, (_, i) => envelope(i + 1, `order#${i}`));
    const c = consumer({
      mode: 'transactional',
      concurrency: 2,
      handle: async (e: OutboxEnvelope) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        if (e.partitionkey === 'order#2' || e.partitionkey === 'order#4') throw new Error('handler bug');
        return [];
      },
    });
    const event: SQSEvent = { Records: events.map((e, i) => sqsRecord(JSON.stringify(e), `m${i}`)) };
    const response = await c.handler(event, lambdaContext(60_000));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm2' }, { itemIdentifier: 'm4' }]);
    expect(maxInFlight).toBe(2);
    expect(metrics.get(ConsumerMetric.Processed)).toBe(4);
    expect(metrics.get(ConsumerMetric.Failed)).toBe(2);
    expect(metrics.published).toBe(1);
  });

  it('FIFO queue: a failure fails the rest of its group, other groups go on, groups run concurrently', async () => {
    ddb.on(UpdateCommand).resolves({});
    const order: string[] = [];
    const gate = deferred();
    const a = [1, 2, 3].map((s) => envelope(s, 'A'));
    const b = [1, 2].map((s) => envelope(s, 'B'));
    const c = consumer({
      mode: 'ordered',
      handle: async (e: OutboxEnvelope) => {
        order.push(`${e.partitionkey}${e.sequence}`);
        if (e.partitionkey === 'A' && e.sequence === 1) await gate.promise; // B must proceed meanwhile
        if (e.partitionkey === 'B' && e.sequence === 2) gate.resolve();
        if (e.partitionkey === 'A' && e.sequence === 2) throw new Error('cannot apply');
        return [];
      },
    } as ModeOptions);
    const records = [
      sqsRecord(JSON.stringify(a[0]), 'a1', 'A'),
      sqsRecord(JSON.stringify(b[0]), 'b1', 'B'),
      sqsRecord(JSON.stringify(a[1]), 'a2', 'A'),
      sqsRecord(JSON.stringify(b[1]), 'b2', 'B'),
      sqsRecord(JSON.stringify(a[2]), 'a3', 'A'),
    ];
    const response = await c.handler({ Records: records }, lambdaContext(60_000));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a2' }, { itemIdentifier: 'a3' }]);
    expect(order).toEqual(['A1', 'B1', 'B2', 'A2']);
  });

  it('reports not-yet-started messages as failed when the invocation is about to time out', async () => {
    const c = consumer({ mode: 'transactional', handle: () => [] });
    const response = await c.handler(
      { Records: [sqsRecord(JSON.stringify(envelope()), 'm1')] },
      lambdaContext(500),
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('logs a failed event with ids only, never its data', async () => {
    const c = consumer({
      mode: 'transactional',
      handle: () => {
        throw new Error('bug');
      },
    });
    const event = envelope();
    await c.handler({ Records: [sqsRecord(JSON.stringify(event), 'm1')] });
    const line = logger.lines.find((l) => l.level === 'error');
    expect(line?.attributes).toMatchObject({ messageId: 'm1', eventId: event.id, error: 'Error' });
    expect(JSON.stringify(logger.lines)).not.toContain('amountCents');
  });
});

describe('poison messages', () => {
  it.each([
    ['not JSON', '{"oops', /body is not JSON/],
    [
      'JSON that is not an envelope',
      JSON.stringify({ hello: 'world', secret: 'card-4111' }),
      /not an outbox envelope: specversion/,
    ],
  ])('sends a body that is %s straight to the DLQ and reports it processed', async (_case, body, reason) => {
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'dlq-1' });
    let handled = false;
    const c = consumer({
      mode: 'transactional',
      deadLetterQueueUrl: DLQ_URL,
      handle: () => {
        handled = true;
        return [];
      },
    });
    const response = await c.handler({ Records: [sqsRecord(body, 'p1')] });
    expect(response.batchItemFailures).toEqual([]);
    expect(handled).toBe(false);
    const sent = sqsMock.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(sent?.QueueUrl).toBe(DLQ_URL);
    expect(sent?.MessageBody).toBe(body);
    expect(sent?.MessageAttributes?.[POISON_REASON_ATTRIBUTE]?.StringValue).toMatch(reason);
    expect(sent?.MessageAttributes?.type?.StringValue).toBe('com.example.orders.OrderPlaced');
    expect(sent?.MessageGroupId).toBeUndefined();
    expect(metrics.get(ConsumerMetric.Poison)).toBe(1);
    const logged = JSON.stringify(logger.lines);
    expect(logged).toContain('p1');
    expect(logged).not.toContain('world');
    expect(logged).not.toContain('card-4111');
  });

  it('keeps group and deduplication ids when the DLQ is FIFO, and lets the rest of the group run', async () => {
    sqsMock.on(SendMessageCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    const c = consumer({
      mode: 'ordered',
      deadLetterQueueUrl: `${DLQ_URL}.fifo`,
      handle: () => [],
    } as ModeOptions);
    const good = envelope(1, 'G');
    const response = await c.handler({
      Records: [sqsRecord('not json', 'p1', 'G'), sqsRecord(JSON.stringify(good), 'g1', 'G')],
    });
    expect(response.batchItemFailures).toEqual([]);
    expect(sqsMock.commandCalls(SendMessageCommand)[0]?.args[0].input).toMatchObject({
      MessageGroupId: 'G',
      MessageDeduplicationId: 'p1',
    });
    expect(metrics.get(ConsumerMetric.Processed)).toBe(1);
  });

  it('without a DLQ URL, fails the poison message so the redrive policy moves it', async () => {
    const c = consumer({ mode: 'transactional', handle: () => [] });
    const response = await c.handler({ Records: [sqsRecord('[]', 'p1')] });
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'p1' }]);
    expect(sqsMock.calls()).toHaveLength(0);
    expect(metrics.get(ConsumerMetric.Poison)).toBe(1);
  });

  it('fails the poison message when the DLQ send fails, and with it the rest of a FIFO group', async () => {
    sqsMock.on(SendMessageCommand).rejects(new Error('AccessDenied'));
    const c = consumer({ mode: 'ordered', deadLetterQueueUrl: DLQ_URL, handle: () => [] } as ModeOptions);
    const response = await c.handler({
      Records: [sqsRecord('nope', 'p1', 'G'), sqsRecord(JSON.stringify(envelope(1, 'G')), 'g1', 'G')],
    });
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'p1' }, { itemIdentifier: 'g1' }]);
  });

  it('parseEnvelope lists the missing fields without quoting the payload', () => {
    const parsed = parseEnvelope(JSON.stringify({ specversion: '1.0', id: 'x', data: 'top secret' }));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.reason).toMatch(/source missing or not a string/);
      expect(parsed.reason).not.toContain('top secret');
    }
  });
});

describe('IdempotentConsumer instance', () => {
  it('is what createConsumer returns', () => {
    expect(consumer({ mode: 'transactional', handle: () => [] })).toBeInstanceOf(IdempotentConsumer);
  });
});
