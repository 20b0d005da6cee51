import type { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  EXPIRES_AT,
  HEAD_SORT_KEY,
  PARTITION_KEY,
  PENDING_DUE_AT,
  PENDING_INDEX_NAME,
  PENDING_SHARD,
  RESERVED_PARTITION_KEY_PREFIXES,
  SORT_KEY,
} from '../functions/runtime/record-format.ts';
import { type DurableTableProps, durableTableSettings } from './durable-table.ts';

/**
 * What `OutboxWriter` does on the outbox table: TransactWriteItems' PutItem/UpdateItem/ConditionCheckItem and GetItem
 * for the aggregate head, on aggregate keys only: never the reserved key space (`ACK#…` acknowledgements and the
 * other prefixes of `isReservedPartitionKey`). Table ARN only: the writer never touches the index, so no `index/*`.
 */
export function grantWriterActions(grantee: iam.IGrantable, tableArn: string): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:GetItem'],
    resourceArns: [tableArn],
    conditions: {
      'ForAllValues:StringNotLike': {
        'dynamodb:LeadingKeys': [
          HEAD_SORT_KEY,
          ...RESERVED_PARTITION_KEY_PREFIXES.map((prefix) => `${prefix}*`),
        ],
      },
    },
  });
}

export interface OutboxTableProps extends DurableTableProps {
  /**
   * What happens to the table when it leaves the stack. The outbox holds undelivered events: keep it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The outbox table: one item per event (`pk` = aggregate key, `sk` = `EVT#<sequence>`) plus one head item
 * per aggregate, a NEW_AND_OLD_IMAGES stream for the relay, TTL on `expiresAt`, and the sparse
 * `pending-by-due-time` index (16 shards) the recovery sweeper queries instead of scanning.
 *
 * The construct id is part of the contract: changing it replaces the table and its events.
 */
export class OutboxTable extends Construct {
  readonly table: dynamodb.Table;
  readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: OutboxTableProps = {}) {
    super(scope, id);
    if (props.encryptionKey) this.encryptionKey = props.encryptionKey;
    this.table = new dynamodb.Table(this, 'Table', {
      ...durableTableSettings(props),
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      sortKey: { name: SORT_KEY, type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: EXPIRES_AT,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: PENDING_INDEX_NAME,
      partitionKey: { name: PENDING_SHARD, type: dynamodb.AttributeType.STRING },
      sortKey: { name: PENDING_DUE_AT, type: dynamodb.AttributeType.NUMBER },
      // Small projection: the sweeper fetches the envelope only for the few records that are stuck.
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: ['id', 'status', 'attempts', 'sequence', 'createdAt'],
    });
  }

  get tableName(): string {
    return this.table.tableName;
  }

  get tableArn(): string {
    return this.table.tableArn;
  }

  /**
   * Grants exactly what the writer needs: TransactWriteItems' PutItem/UpdateItem/ConditionCheckItem on the
   * table, GetItem for the aggregate head (append without an expected version), and KMS use when encrypted.
   */
  grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey?.grantEncryptDecrypt(grantee);
    return grantWriterActions(grantee, this.table.tableArn);
  }
}
