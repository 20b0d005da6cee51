import type { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  DEDUP_CURSOR_PREFIX,
  DEDUP_EVENT_PREFIX,
  DEDUP_EXPIRES_AT,
  DEDUP_PARTITION_KEY,
} from '../functions/consumer/dedup-format.ts';
import { type DurableTableProps, durableTableSettings } from './durable-table.ts';

export interface DedupTableProps extends DurableTableProps {
  /**
   * What happens to the table when it leaves the stack. It remembers which events were applied: losing it
   * lets redeliveries apply events twice.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** The dedup table as consumers see it: created here (`DedupTable`) or imported (`DedupTable.fromTableArn`). */
export interface IDedupTable {
  readonly tableName: string;
  readonly tableArn: string;
  /** Grants one consumer what it needs on its own keys only (see `DedupTable.grantConsumer`). */
  grantConsumer(grantee: iam.IGrantable, consumerName: string): iam.Grant;
}

/**
 * PutItem, UpdateItem and DeleteItem on the consumer's own keys (`E#<name>#…`, `S#<name>#…`): a consumer cannot
 * advance, complete or release another consumer's records. No reads: a refused condition returns only the old
 * item of the consumer's own key.
 */
function grantConsumerKeys(grantee: iam.IGrantable, tableArn: string, consumerName: string): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
    resourceArns: [tableArn],
    conditions: {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': [
          `${DEDUP_EVENT_PREFIX}${consumerName}#*`,
          `${DEDUP_CURSOR_PREFIX}${consumerName}#*`,
        ],
      },
    },
  });
}

/**
 * The dedup table shared by every idempotent consumer: partition key `pk` (string) only, TTL on `expiresAt`
 * (storage reclaim only — consumers compare `expiresAt` in their conditions), on-demand, encrypted, PITR.
 * Items: `E#<consumer>#<eventId>` per applied event, `S#<consumer>#<partitionkey>` per ordered aggregate.
 *
 * The construct id is part of the contract: changing it replaces the table and forgets what was applied.
 */
export class DedupTable extends Construct implements IDedupTable {
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

  /** A dedup table created elsewhere (another app, or an Outbox's parameters). */
  static fromTableArn(scope: Construct, id: string, tableArn: string): IDedupTable {
    const table = dynamodb.Table.fromTableArn(scope, id, tableArn);
    return {
      tableName: table.tableName,
      tableArn: table.tableArn,
      grantConsumer: (grantee, consumerName) => grantConsumerKeys(grantee, table.tableArn, consumerName),
    };
  }

  /**
   * Grants exactly what the idempotent consumer `consumerName` needs: PutItem (claims, dedup records, also inside
   * TransactWriteItems), UpdateItem (completion, cursors), DeleteItem (lease release), each only on keys of its
   * own (`dynamodb:LeadingKeys` `E#<name>#*`, `S#<name>#*`), and KMS use when encrypted with a customer key. No
   * reads: a refused condition returns the old item without GetItem.
   */
  grantConsumer(grantee: iam.IGrantable, consumerName: string): iam.Grant {
    this.encryptionKey?.grantEncryptDecrypt(grantee);
    return grantConsumerKeys(grantee, this.table.tableArn, consumerName);
  }
}
