import type { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DEDUP_EXPIRES_AT, DEDUP_PARTITION_KEY } from '../functions/consumer/dedup-format.ts';
import { type DurableTableProps, durableTableSettings } from './durable-table.ts';

export interface DedupTableProps extends DurableTableProps {
  /**
   * What happens to the table when it leaves the stack. It remembers which events were applied: losing it
   * lets redeliveries apply events twice.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The dedup table shared by every idempotent consumer: partition key `pk` (string) only, TTL on `expiresAt`
 * (storage reclaim only — consumers compare `expiresAt` in their conditions), on-demand, encrypted, PITR.
 * Items: `E#<consumer>#<eventId>` per applied event, `S#<consumer>#<partitionkey>` per ordered aggregate.
 *
 * The construct id is part of the contract: changing it replaces the table and forgets what was applied.
 */
export class DedupTable extends Construct {
  readonly table: dynamodb.Table;
  readonly encryptionKey?: kms.IKey;

  constructor(scope: Construct, id: string, props: DedupTableProps = {}) {
    super(scope, id);
    if (props.encryptionKey) this.encryptionKey = props.encryptionKey;
    this.table = new dynamodb.Table(this, 'Table', {
      ...durableTableSettings(props),
      partitionKey: { name: DEDUP_PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: DEDUP_EXPIRES_AT,
    });
  }

  get tableName(): string {
    return this.table.tableName;
  }

  get tableArn(): string {
    return this.table.tableArn;
  }

  /**
   * Grants exactly what an idempotent consumer needs: PutItem (claims, dedup records, also inside
   * TransactWriteItems), UpdateItem (completion, cursors), DeleteItem (lease release), and KMS use when
   * encrypted with a customer key. No reads: a refused condition returns the old item without GetItem.
   */
  grantConsumer(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey?.grantEncryptDecrypt(grantee);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      resourceArns: [this.table.tableArn],
    });
  }
}
