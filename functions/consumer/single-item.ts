/**
 * Single-item mode: when an event's whole effect is one DynamoDB item, the aggregate's cursor lives on that item
 * and the effect is one conditional write (no dedup item, no transaction): 1 write per started KB of the item
 * instead of a transaction's 2 per KB of the cursor and of the effect.
 *
 * The consumer adds three attributes to the handler's Put or Update and conditions the write on them:
 * `outboxStream` (consumer + aggregate: one item follows one aggregate for one consumer), `outboxSequence` (the
 * last applied sequence) and `outboxEventId`. A refused write returns the old item (ReturnValuesOnConditionCheckFailure),
 * which tells duplicate, stale, gap, a foreign item and the handler's own condition apart without another read.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { OutboxEnvelope } from '../runtime/envelope.ts';
import { withSetAssignments } from '../runtime/update-expression.ts';
import { isRetryableAwsError } from './dedup-store.ts';
import {
  BusinessConditionFailedError,
  ConsumerRetryableError,
  InvalidWritesError,
  SequenceGapError,
  SingleItemConflictError,
} from './errors.ts';
import type { GapPolicy, SingleItemWrite } from './types.ts';

/** The attributes single-item mode keeps on the effect's item; handlers must not write them. */
export const SingleItemAttribute = {
  stream: 'outboxStream',
  sequence: 'outboxSequence',
  eventId: 'outboxEventId',
} as const;

const RESERVED = Object.values(SingleItemAttribute);
const RESERVED_PATTERN = new RegExp(`(^|[^#:\\w])(${RESERVED.join('|')})\\b`);
const NAMES = {
  '#outboxStream': 'outboxStream',
  '#outboxSequence': 'outboxSequence',
  '#outboxEventId': 'outboxEventId',
};

export type SingleItemResult =
  | { readonly status: 'applied'; readonly skippedSequences: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'stale'; readonly lastSequence: number };

type Put = NonNullable<SingleItemWrite['Put']>;
type Update = NonNullable<SingleItemWrite['Update']>;

/** The handler's one write, checked: exactly one Put or Update that leaves the consumer's attributes alone. */
export function validateSingleWrite(consumer: string, eventId: string, write: unknown): SingleItemWrite {
  const invalid = (problem: string) => new InvalidWritesError(consumer, eventId, problem);
  if (Array.isArray(write))
    throw invalid(
      "single-item mode takes one { Put } or { Update }, not a list (return the one write itself; for several items use mode 'ordered')",
    );
  if (write === null || typeof write !== 'object')
    throw invalid(
      'single-item mode needs exactly one { Put } or { Update } (to apply nothing, return { Update: { TableName, Key } })',
    );
  const kinds = Object.keys(write);
  const entry = write as SingleItemWrite;
  if (kinds.length !== 1 || !(entry.Put || entry.Update))
    throw invalid(
      `single-item mode needs exactly one of Put or Update, but got ${kinds.join(', ') || 'nothing'} (a Delete would remove the cursor; use mode 'ordered')`,
    );
  const body = (entry.Put ?? entry.Update) as Put | Update;
  if (typeof body.TableName !== 'string' || body.TableName === '')
    throw invalid('the write has no TableName');
  const touched = [
    ...(entry.Put ? Object.keys(entry.Put.Item ?? {}) : []),
    ...Object.values(body.ExpressionAttributeNames ?? {}),
  ];
  const expressions = [(body as Update).UpdateExpression ?? '', body.ConditionExpression ?? ''].join(' ');
  if (
    touched.some((name) => (RESERVED as readonly string[]).includes(name)) ||
    RESERVED_PATTERN.test(expressions)
  )
    throw invalid(`the write uses ${RESERVED.join(', ')}, which the consumer keeps on the item`);
  const placeholders = [
    ...Object.keys(body.ExpressionAttributeNames ?? {}),
    ...Object.keys(body.ExpressionAttributeValues ?? {}),
  ];
  if (placeholders.some((p) => /^[#:]outbox/.test(p)))
    throw invalid("placeholders starting with #outbox or :outbox are the consumer's; rename yours");
  if (entry.Update && !entry.Update.Key) throw invalid('the Update has no Key');
  if (entry.Put && !entry.Put.Item) throw invalid('the Put has no Item');
  return entry;
}

const CURSOR_ASSIGNMENTS =
  '#outboxStream = :outboxStream, #outboxSequence = :outboxSequence, #outboxEventId = :outboxEventId';

function cursorCondition(expected: number, onGap: GapPolicy): string {
  if (onGap === 'accept')
    return 'attribute_not_exists(#outboxSequence) OR (#outboxStream = :outboxStream AND #outboxSequence < :outboxSequence)';
  return expected === 0
    ? 'attribute_not_exists(#outboxSequence)'
    : '#outboxStream = :outboxStream AND #outboxSequence = :outboxExpected';
}

/** Old items come back marshalled even through the DocumentClient. */
function plain(item: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!item) return undefined;
  const sequence = item[SingleItemAttribute.sequence] ?? item[SingleItemAttribute.stream];
  if (sequence !== null && typeof sequence === 'object' && !(sequence instanceof Uint8Array))
    return unmarshall(item as Record<string, AttributeValue>);
  return item;
}

/** Applies the handler's write with the cursor condition; reads the outcome from the old item. */
export async function applySingleItem(
  client: DynamoDBDocumentClient,
  consumer: string,
  envelope: OutboxEnvelope,
  write: SingleItemWrite,
  onGap: GapPolicy,
): Promise<SingleItemResult> {
  const stream = `${consumer}#${envelope.partitionkey}`;
  const expected = envelope.sequence - 1;
  const body = (write.Put ?? write.Update) as Put | Update;
  const ours = cursorCondition(expected, onGap);
  const conditionExpression = body.ConditionExpression ? `(${ours}) AND (${body.ConditionExpression})` : ours;
  const updateExpression = write.Update
    ? withSetAssignments(write.Update.UpdateExpression, CURSOR_ASSIGNMENTS)
    : '';
  // DynamoDB refuses unused placeholders: pass only the cursor's that the expressions use.
  const used = `${conditionExpression} ${updateExpression}`;
  const pick = <T>(entries: Record<string, T>) =>
    Object.fromEntries(Object.entries(entries).filter(([placeholder]) => used.includes(placeholder)));
  const values = {
    ...body.ExpressionAttributeValues,
    ...pick({
      ':outboxStream': stream as string | number,
      ':outboxSequence': envelope.sequence,
      ':outboxExpected': expected,
      ':outboxEventId': envelope.id,
    }),
  };
  const common = {
    TableName: body.TableName,
    ConditionExpression: conditionExpression,
    ExpressionAttributeNames: { ...body.ExpressionAttributeNames, ...pick(NAMES) },
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
  let previous: Record<string, unknown> | undefined;
  try {
    if (write.Put) {
      const result = await client.send(
        new PutCommand({
          ...common,
          Item: {
            ...write.Put.Item,
            [SingleItemAttribute.stream]: stream,
            [SingleItemAttribute.sequence]: envelope.sequence,
            [SingleItemAttribute.eventId]: envelope.id,
          },
          ReturnValues: 'ALL_OLD',
        }),
      );
      previous = result.Attributes;
    } else {
      const update = write.Update as Update;
      const result = await client.send(
        new UpdateCommand({
          ...common,
          Key: update.Key,
          UpdateExpression: updateExpression,
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      previous = result.Attributes;
    }
  } catch (error) {
    if ((error as Error)?.name !== 'ConditionalCheckFailedException') {
      if (isRetryableAwsError(error))
        throw new ConsumerRetryableError(
          consumer,
          envelope.id,
          `DynamoDB call failed (${(error as Error).name})`,
          error,
        );
      throw error;
    }
    return refused(
      consumer,
      envelope,
      stream,
      expected,
      onGap,
      plain((error as { Item?: Record<string, unknown> }).Item),
      error,
    );
  }
  const last = previous?.[SingleItemAttribute.sequence];
  const skippedSequences =
    typeof last === 'number' ? Math.max(0, envelope.sequence - last - 1) : envelope.sequence - 1;
  return { status: 'applied', skippedSequences: onGap === 'accept' ? skippedSequences : 0 };
}

function refused(
  consumer: string,
  envelope: OutboxEnvelope,
  stream: string,
  expected: number,
  onGap: GapPolicy,
  old: Record<string, unknown> | undefined,
  cause: unknown,
): SingleItemResult {
  const oldStream = old?.[SingleItemAttribute.stream];
  const rawLast = old?.[SingleItemAttribute.sequence];
  if (rawLast !== undefined && oldStream !== stream)
    throw new SingleItemConflictError(consumer, envelope.id, envelope.partitionkey, String(oldStream));
  const last = typeof rawLast === 'number' ? rawLast : 0;
  if (last >= envelope.sequence)
    return last === envelope.sequence && old?.[SingleItemAttribute.eventId] === envelope.id
      ? { status: 'duplicate' }
      : { status: 'stale', lastSequence: last };
  if (onGap === 'retry' && last !== expected)
    throw new SequenceGapError(consumer, envelope.id, envelope.partitionkey, last + 1, envelope.sequence);
  // The cursor admitted the event: the handler's own condition refused it.
  throw new BusinessConditionFailedError(consumer, envelope.id, 0, cause);
}
