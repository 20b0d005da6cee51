/**
 * The writer's `aggregate.versionOn`: the aggregate's version lives on the caller's own business item (attribute
 * `outboxVersion`) instead of a separate head item in the outbox table. The caller's write of that item — which
 * the transaction makes anyway — gets the version condition and the new version: the head's 2 write units per
 * commit go (the version read stays, now of the business item).
 *
 * Every commit for an aggregate must then use the same `versionOn` (prepare/confirm and head-based calls do not
 * see this version); the event records are conditioned on not existing, so a mix is refused, never overwrites.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { OutboxValidationError } from './errors.ts';
import { withSetAssignments } from './update-expression.ts';
import type { BusinessWrite } from './writer.ts';

export const BUSINESS_VERSION_ATTRIBUTE = 'outboxVersion';

/** The business item holding the aggregate's version: the table and key of one of the caller's writes. */
export interface VersionItemRef {
  readonly TableName: string;
  readonly Key: Readonly<Record<string, unknown>>;
}

const sameKey = (
  key: Readonly<Record<string, unknown>>,
  other: Readonly<Record<string, unknown>> | undefined,
) =>
  other !== undefined &&
  Object.keys(key).length === Object.keys(other).length &&
  Object.entries(key).every(([name, value]) => other[name] === value);

/** The index of the caller's Put or Update of the version item; a typed error if there is none. */
export function versionWriteIndex(writes: readonly BusinessWrite[], versionOn: VersionItemRef): number {
  if (
    versionOn === null ||
    typeof versionOn !== 'object' ||
    typeof versionOn.TableName !== 'string' ||
    versionOn.Key === null ||
    typeof versionOn.Key !== 'object'
  )
    throw new OutboxValidationError('aggregate.versionOn', 'must be { TableName, Key } of one of the writes');
  const index = writes.findIndex((write) => {
    if (write.Put)
      return (
        write.Put.TableName === versionOn.TableName &&
        Object.entries(versionOn.Key).every(([name, value]) => write.Put?.Item?.[name] === value)
      );
    const target = write.Update ?? write.Delete ?? write.ConditionCheck;
    return target?.TableName === versionOn.TableName && sameKey(versionOn.Key, target?.Key);
  });
  const write = writes[index];
  if (!write || !(write.Put || write.Update))
    throw new OutboxValidationError(
      'aggregate.versionOn',
      `must name an item the writes Put or Update (${index < 0 ? 'none does' : 'it is a Delete or ConditionCheck'}); the version is stored on it`,
    );
  const body = write.Put ?? write.Update;
  const placeholders = [
    ...Object.keys(body?.ExpressionAttributeNames ?? {}),
    ...Object.keys(body?.ExpressionAttributeValues ?? {}),
  ];
  const names = [
    ...Object.keys(write.Put?.Item ?? {}),
    ...Object.values(body?.ExpressionAttributeNames ?? {}),
  ];
  if (placeholders.some((p) => /^[#:]outboxVersion/.test(p)) || names.includes(BUSINESS_VERSION_ATTRIBUTE))
    throw new OutboxValidationError(
      `writes[${index}]`,
      `must leave ${BUSINESS_VERSION_ATTRIBUTE} (and placeholders #outboxVersion*, :outboxVersion*) to the writer`,
    );
  return index;
}

/** The caller's write with the version condition (`expected`) and the new version (`next`) added. */
export function withVersion(write: BusinessWrite, expected: number, next: number): BusinessWrite {
  const condition =
    expected === 0 ? 'attribute_not_exists(#outboxVersion)' : '#outboxVersion = :outboxVersionExpected';
  const combine = (theirs: string | undefined) => (theirs ? `(${condition}) AND (${theirs})` : condition);
  const names = { '#outboxVersion': BUSINESS_VERSION_ATTRIBUTE };
  const expectedValue = expected === 0 ? {} : { ':outboxVersionExpected': expected };
  if (write.Put) {
    const values = { ...write.Put.ExpressionAttributeValues, ...expectedValue };
    return {
      Put: {
        ...write.Put,
        Item: { ...write.Put.Item, [BUSINESS_VERSION_ATTRIBUTE]: next },
        ConditionExpression: combine(write.Put.ConditionExpression),
        ExpressionAttributeNames: { ...write.Put.ExpressionAttributeNames, ...names },
        ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
  }
  const update = write.Update as NonNullable<BusinessWrite['Update']>;
  return {
    Update: {
      ...update,
      UpdateExpression: withSetAssignments(update.UpdateExpression, '#outboxVersion = :outboxVersionNext'),
      ConditionExpression: combine(update.ConditionExpression),
      ExpressionAttributeNames: { ...update.ExpressionAttributeNames, ...names },
      ExpressionAttributeValues: {
        ...update.ExpressionAttributeValues,
        ...expectedValue,
        ':outboxVersionNext': next,
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    },
  };
}

/** The version an old item (as a cancellation reason returns it, marshalled or not) carried; 0 without one. */
export function versionOf(item: Readonly<Record<string, unknown>> | undefined): number {
  const value = item?.[BUSINESS_VERSION_ATTRIBUTE];
  if (typeof value === 'number') return value;
  const marshalled = (value as { N?: string } | undefined)?.N;
  return marshalled === undefined ? 0 : Number(marshalled);
}

/** The aggregate's current version, read from the business item with strong consistency. */
export async function readBusinessVersion(
  client: DynamoDBDocumentClient,
  versionOn: VersionItemRef,
): Promise<number> {
  const { Item } = await client.send(
    new GetCommand({
      TableName: versionOn.TableName,
      Key: versionOn.Key,
      ConsistentRead: true,
      ProjectionExpression: '#outboxVersion',
      ExpressionAttributeNames: { '#outboxVersion': BUSINESS_VERSION_ATTRIBUTE },
    }),
  );
  return versionOf(Item);
}
