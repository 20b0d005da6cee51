import { Fn } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { DEFAULT_LARGE_EVENTS_PREFIX } from '../functions/contract/large-events.ts';
import { type OutboxParameterName, outboxParameterPath } from '../functions/contract/parameters.ts';
import { DedupTable, type IDedupTable } from './dedup-table.ts';
import { type ILargeEventStore, LargeEventGrants } from './large-event-store.ts';
import type { IOutbox } from './outbox.ts';
import { grantWriterActions } from './outbox-table.ts';
import { Subscription, type SubscriptionProps } from './subscription.ts';

/** The SSM parameters an `Outbox` with `parameterPrefix` publishes, by name below the prefix. */
export type OutboxParameter = OutboxParameterName;

/** What another app needs to subscribe to (and write to) an outbox. */
export interface OutboxAttributes {
  /** ARN of the outbox table. */
  readonly tableArn: string;
  /** @default - no topic: no ordered subscriptions */
  readonly topicArn?: string;
  /** @default - no bus: no rule subscriptions */
  readonly eventBusArn?: string;
  /** ARN of the dedup table the outbox's consumers share. */
  readonly dedupTableArn: string;
  /** ARN of the topic alarms notify. */
  readonly alarmTopicArn: string;
  /**
   * Bucket of the outbox's large event payloads (claim-check): consumers get `s3:GetObject` and producers
   * `s3:PutObject` below `largeEventsPrefix`.
   * @default - none: large events are off for this outbox (a consumer cannot read claim-checked events)
   */
  readonly largeEventsBucketArn?: string;
  /** @default 'outbox-large-events/' */
  readonly largeEventsPrefix?: string;
}

/** Options of `Outbox.fromParameters`. */
export interface ImportedOutboxOptions {
  /**
   * Whether the outbox has large events on, so its `large-events-*` parameters exist and grants cover them. Set
   * `false` for an outbox created with `largeEvents: false` (its parameters do not exist).
   * @default true
   */
  readonly largeEvents?: boolean;
}

/** Subscription names are consumer names in dedup keys: one per outbox. */
export class SubscriptionRegistry {
  readonly #names = new Set<string>();
  readonly #owner: Construct;
  constructor(owner: Construct) {
    this.#owner = owner;
  }

  /** Throws when `name` is taken: call before creating the subscription, so the error is this one, not CDK's. */
  assertFree(name: string): void {
    if (this.#names.has(name)) {
      throw new Error(
        `Outbox ${this.#owner.node.path}: a subscription named "${name}" already exists; subscription names are consumer names in dedup keys and must be unique per outbox, but "${name}" was provided twice.`,
      );
    }
  }

  add(subscription: Subscription): void {
    this.assertFree(subscription.subscriptionName);
    this.#names.add(subscription.subscriptionName);
  }
}

type AttributeSource = { readonly [K in keyof OutboxAttributes]-?: () => string | undefined };

/**
 * An outbox of another app. Each attribute is resolved on first use, so an outbox imported from SSM parameters
 * reads only the parameters its subscriptions need.
 */
export class ImportedOutbox extends Construct implements IOutbox {
  static fromParameters(
    scope: Construct,
    id: string,
    parameterPrefix: string,
    options: ImportedOutboxOptions = {},
  ): ImportedOutbox {
    const read = (name: OutboxParameter) => () =>
      ssm.StringParameter.valueForStringParameter(scope, outboxParameterPath(parameterPrefix, name));
    const none = () => undefined;
    const largeEvents = options.largeEvents ?? true;
    return new ImportedOutbox(scope, id, {
      tableArn: read('table-arn'),
      topicArn: read('topic-arn'),
      eventBusArn: read('bus-arn'),
      dedupTableArn: read('dedup-table-arn'),
      alarmTopicArn: read('alarm-topic-arn'),
      largeEventsBucketArn: largeEvents ? read('large-events-bucket-arn') : none,
      largeEventsPrefix: largeEvents ? read('large-events-prefix') : none,
    });
  }

  readonly #source: AttributeSource;
  readonly #names = new SubscriptionRegistry(this);
  readonly #cache = new Map<string, unknown>();

  constructor(scope: Construct, id: string, attributes: OutboxAttributes | AttributeSource) {
    super(scope, id);
    this.#source =
      typeof attributes.tableArn === 'function'
        ? (attributes as AttributeSource)
        : {
            tableArn: () => (attributes as OutboxAttributes).tableArn,
            topicArn: () => (attributes as OutboxAttributes).topicArn,
            eventBusArn: () => (attributes as OutboxAttributes).eventBusArn,
            dedupTableArn: () => (attributes as OutboxAttributes).dedupTableArn,
            alarmTopicArn: () => (attributes as OutboxAttributes).alarmTopicArn,
            largeEventsBucketArn: () => (attributes as OutboxAttributes).largeEventsBucketArn,
            largeEventsPrefix: () => (attributes as OutboxAttributes).largeEventsPrefix,
          };
  }

  #once<T>(key: string, make: () => T): T {
    if (!this.#cache.has(key)) this.#cache.set(key, make());
    return this.#cache.get(key) as T;
  }

  #required(key: keyof OutboxAttributes): string {
    const value = this.#source[key]();
    if (value === undefined) throw new Error(`imported outbox ${this.node.path}: ${key} is required`);
    return value;
  }

  get outboxTableArn(): string {
    return this.#once('tableArn', () => this.#required('tableArn'));
  }

  get outboxTableName(): string {
    return this.#once('tableName', () => arnResourceName(this.outboxTableArn));
  }

  get topic(): sns.ITopic | undefined {
    return this.#once('topic', () => {
      const arn = this.#source.topicArn();
      return arn === undefined ? undefined : sns.Topic.fromTopicArn(this, 'Topic', arn);
    });
  }

  get bus(): events.IEventBus | undefined {
    return this.#once('bus', () => {
      const arn = this.#source.eventBusArn();
      return arn === undefined ? undefined : events.EventBus.fromEventBusArn(this, 'Bus', arn);
    });
  }

  get alarmTopic(): sns.ITopic {
    return this.#once('alarmTopic', () =>
      sns.Topic.fromTopicArn(this, 'AlarmTopic', this.#required('alarmTopicArn')),
    );
  }

  get dedupTable(): IDedupTable {
    return this.#once('dedupTable', () =>
      DedupTable.fromTableArn(this, 'DedupTable', this.#required('dedupTableArn')),
    );
  }

  /** The claim-check payloads' bucket and prefix, when the outbox has large events on. */
  get largeEvents(): ILargeEventStore | undefined {
    return this.#once('largeEvents', () => {
      const arn = this.#source.largeEventsBucketArn();
      if (arn === undefined) return undefined;
      const bucket = s3.Bucket.fromBucketArn(this, 'LargeEventsBucket', arn);
      return new LargeEventGrants(bucket, this.#source.largeEventsPrefix() ?? DEFAULT_LARGE_EVENTS_PREFIX);
    });
  }

  grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.largeEvents?.grantPut(grantee);
    return grantWriterActions(grantee, this.outboxTableArn);
  }

  subscribe(name: string, props: SubscriptionProps): Subscription {
    this.#names.assertFree(name);
    return new Subscription(this, name, { ...props, outbox: this });
  }

  registerSubscription(subscription: Subscription): void {
    this.#names.add(subscription);
  }
}

/** `arn:aws:dynamodb:region:account:table/Name` → `Name`, also for tokens (resolved by CloudFormation). */
function arnResourceName(arn: string): string {
  return Fn.select(1, Fn.split('/', arn));
}
