import { describe, expect, it } from 'vitest';
import { versionOf, versionWriteIndex, withVersion } from '../../functions/runtime/business-version.ts';
import { OutboxValidationError } from '../../functions/runtime/errors.ts';

const ref = { TableName: 'orders', Key: { orderId: '1' } };

describe('writer aggregate.versionOn: the version merged into the caller’s write of the business item', () => {
  it('finds the Put or Update of the named item and adds the version to its SET clause and condition', () => {
    const writes = [
      { Put: { TableName: 'lines', Item: { orderId: '1', line: 1 } } },
      {
        Update: {
          TableName: 'orders',
          Key: { orderId: '1' },
          UpdateExpression: 'ADD total :t SET #s = :s',
          ConditionExpression: '#s = :placed',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: { ':t': 5, ':s': 'PAID', ':placed': 'PLACED' },
        },
      },
    ];
    expect(versionWriteIndex(writes, ref)).toBe(1);
    const merged = withVersion(writes[1] as (typeof writes)[number], 3, 4).Update;
    expect(merged?.UpdateExpression).toBe('ADD total :t SET #outboxVersion = :outboxVersionNext, #s = :s');
    expect(merged?.ConditionExpression).toBe('(#outboxVersion = :outboxVersionExpected) AND (#s = :placed)');
    expect(merged?.ExpressionAttributeValues).toMatchObject({
      ':outboxVersionExpected': 3,
      ':outboxVersionNext': 4,
    });
    expect(merged?.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
  });

  it('stores the version in a Put item, conditioned on no version for a new aggregate', () => {
    const put = withVersion({ Put: { TableName: 'orders', Item: { orderId: '1' } } }, 0, 1).Put;
    expect(put?.Item).toEqual({ orderId: '1', outboxVersion: 1 });
    expect(put?.ConditionExpression).toBe('attribute_not_exists(#outboxVersion)');
    expect(put?.ExpressionAttributeValues).toBeUndefined();
  });

  it.each([
    ['no write of the item', [{ Put: { TableName: 'orders', Item: { orderId: '2' } } }]],
    ['a Delete of it', [{ Delete: { TableName: 'orders', Key: { orderId: '1' } } }]],
    [
      'a write of outboxVersion itself',
      [{ Put: { TableName: 'orders', Item: { orderId: '1', outboxVersion: 9 } } }],
    ],
  ])('refuses %s with an OutboxValidationError', (_, writes) => {
    expect(() => versionWriteIndex(writes, ref)).toThrow(OutboxValidationError);
  });

  it('reads the version of an old item, marshalled (cancellation reasons) or not', () => {
    expect(versionOf({ outboxVersion: { N: '7' } })).toBe(7);
    expect(versionOf({ outboxVersion: 7 })).toBe(7);
    expect(versionOf(undefined)).toBe(0);
  });
});
