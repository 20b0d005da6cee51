import { Aspects, CfnOutput, type Duration, Lazy, Stack, Token } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IConstruct } from 'constructs';
import { DEDUP_TABLE_OUTPUT_KEY } from '../functions/contract/audit-filter.ts';
import { StackOutputKey } from '../functions/contract/outputs.ts';
import { outboxParameterPath } from '../functions/contract/parameters.ts';
import { TRACKED_SUBSCRIBER_NAMES_ENV } from '../functions/runtime/ack-format.ts';
import { PUBLISH_TARGETS_ENV } from '../functions/runtime/message-limits.ts';
import { OUTBOX_TABLE_ENV } from '../functions/runtime/record-format.ts';
import { AlarmTopic, type AlarmTopicProps } from './alarm-topic.ts';
import { DedupTable, type DedupTableProps, type IDedupTable } from './dedup-table.ts';
import {
  ImportedOutbox,
  type ImportedOutboxOptions,
  type OutboxAttributes,
  type OutboxParameter,
  SubscriptionRegistry,
} from './imported-outbox.ts';
import { type ILargeEventStore, LargeEventStore, type LargeEventsProps } from './large-event-store.ts';
import { OutboxAudit, type OutboxAuditOptions } from './outbox-audit.ts';
import { OutboxDashboard, type OutboxDashboardProps } from './outbox-dashboard.ts';
import { OutboxRecovery, type OutboxRecoveryProps } from './outbox-recovery.ts';
import {
  OutboxRelay,
  type OutboxRelayBusOptions,
  type OutboxRelayProps,
  type OutboxRelayQueueOptions,
  type OutboxRelayTopicOptions,
} from './outbox-relay.ts';
import { OutboxTable, type OutboxTableProps } from './outbox-table.ts';
import { OutboxReliabilityChecks } from './reliability/checks.ts';
import { Subscription, type SubscriptionProps } from './subscription.ts';

/** An outbox that subscriptions attach to: an `Outbox` of this app, or one imported from another app. */
export interface IOutbox extends IConstruct {
  /** Name of the outbox table (what producers write to). */
  readonly outboxTableName: string;
  readonly outboxTableArn: string;
  /** The SNS FIFO topic ordered subscriptions subscribe to (when the outbox has one). */
  readonly topic?: sns.ITopic;
  /** The EventBridge bus rule subscriptions put rules on (when the outbox has one). */
  readonly bus?: events.IEventBus;
  /** Where every alarm of the outbox and its subscriptions notifies. */
  readonly alarmTopic: sns.ITopic;
  /** The dedup table every idempotent consumer shares. */
  readonly dedupTable: IDedupTable;
  /**
   * The relay, which records pending acknowledgements for tracked subscriptions. Present on an `Outbox` of this
   * app; an imported outbox has none, so its subscriptions cannot be tracked.
   */
  readonly relay?: OutboxRelay;
  /**
   * Claim-check store of large event payloads: producers put below its prefix, consumers get. Absent when large
   * events are off (or an imported outbox was given no bucket).
   */
  readonly largeEvents?: ILargeEventStore;
  /** Grants what `OutboxWriter` needs on the outbox table (and the large-event prefix), nothing more. */
  grantWrite(grantee: iam.IGrantable): iam.Grant;
  /** Subscribes a queue (and optionally a consumer) in this outbox's scope. */
  subscribe(name: string, props: SubscriptionProps): Subscription;
  /** Called by every Subscription of this outbox (adds it to the dashboard when they share a stack). */
  registerSubscription(subscription: Subscription): void;
}

/** Fine-tuning of the relay (the targets are `Outbox`'s own `topic`, `eventBus` and `queues` props). */
export type OutboxRelayTuning = Omit<OutboxRelayProps, 'outbox' | 'alarms' | 'topic' | 'eventBus' | 'queues'>;

/** Fine-tuning of the recovery function and its schedule. */
export type OutboxRecoveryTuning = Omit<OutboxRecoveryProps, 'outbox' | 'relay' | 'alarms'>;

export interface OutboxProps {
  /**
   * SNS FIFO topic for ordered subscriptions (group = aggregate key, dedup id = event id). `false` for none.
   * @default true
   */
  readonly topic?: boolean | OutboxRelayTopicOptions;
  /**
   * Custom EventBridge bus for rule-based subscriptions (unordered). `true` or options to create it.
   * @default false
   */
  readonly eventBus?: boolean | OutboxRelayBusOptions;
  /**
   * Point-to-point SQS FIFO queues the relay sends every event to directly.
   * @default - none
   */
  readonly queues?: readonly OutboxRelayQueueOptions[];
  /** @default - the outbox table's defaults (on-demand, PITR, AWS-managed encryption, RETAIN) */
  readonly table?: OutboxTableProps;
  /** @default - the relay's defaults (see OutboxRelayProps) */
  readonly relay?: OutboxRelayTuning;
  /** @default - the recovery defaults (see OutboxRecoveryProps) */
  readonly recovery?: OutboxRecoveryTuning;
  /**
   * The scheduled delivery audit (every 5 minutes, `MissingEffects` per subscription with an alarm); `false`
   * turns it off.
   * @default - on, with OutboxAuditOptions' defaults
   */
  readonly audit?: boolean | OutboxAuditOptions;
  /**
   * How long finished records stay before TTL deletes them, whole days. Shortcut for `relay.retention`.
   * @default Duration.days(7)
   */
  readonly retention?: Duration;
  /**
   * Alarm notifications: an existing topic (`sns.ITopic`), or emails / a pager URL for a topic the outbox creates.
   * @default - a new encrypted topic; emails and pager URL from CDK context `outbox:alarmEmails` / `outbox:pagerUrl`
   */
  readonly alarmTopic?: sns.ITopic | Omit<AlarmTopicProps, 'topic'>;
  /** @default - the dedup table's defaults (on-demand, PITR, AWS-managed encryption, RETAIN) */
  readonly dedupTable?: DedupTableProps;
  /**
   * The CloudWatch dashboard. `false` for none.
   * @default true
   */
  readonly dashboard?: boolean | Pick<OutboxDashboardProps, 'dashboardName' | 'defaultRange' | 'extraAlarms'>;
  /**
   * Publish the outbox's coordinates as SSM parameters under this prefix (`<prefix>/table-arn`, `/topic-arn`,
   * `/bus-arn`, `/dedup-table-arn`, `/alarm-topic-arn`, and with large events `/large-events-bucket-arn`,
   * `/large-events-prefix`), so another app subscribes with
   * `Outbox.fromParameters(scope, id, prefix)`. Must start with `/`.
   * @default - no parameters
   */
  readonly parameterPrefix?: string;
  /**
   * Stack outputs the operator CLI (`outbox status`, `dlq`, `replay`, ...) finds the deployment by. One outbox per
   * stack may write them.
   * @default true
   */
  readonly outputs?: boolean;
  /**
   * Check this stack's resources against the outbox's reliability rules at synth (`OutboxReliabilityChecks`,
   * docs/reliability-rules.md): a violation is an error annotation that fails `cdk synth` / `cdk deploy`.
   * @default true
   */
  readonly reliabilityRules?: boolean;
  /**
   * Claim-check for large events: the writer stores the `data` of an event too large for a publish target (SNS
   * 256 KB with attributes) in S3 and the envelope carries a `dataref`; consumers fetch and verify it before the
   * handler runs. `false`: such events are refused at write time (OutboxLimitError).
   * @default true (a bucket the outbox creates; events up to 10 MiB)
   */
  readonly largeEvents?: boolean | LargeEventsProps;
}

function isTopic(value: OutboxProps['alarmTopic']): value is sns.ITopic {
  return value !== undefined && 'topicArn' in value;
}

/** Stacks whose operator-CLI outputs are taken (their logical ids are fixed). */
const stacksWithOutputs = new WeakSet<Stack>();

/**
 * The transactional outbox a platform team instantiates: outbox table + stream, relay to an SNS FIFO topic /
 * EventBridge bus / SQS FIFO queues, recovery function and schedule, dashboard, alarm topic, and the stack outputs
 * of the operator CLI. Teams subscribe with `outbox.subscribe(...)` or `new Subscription(theirStack, ...)`.
 *
 * Construct ids below this one (`Table`, `Relay`, `Recovery`, ...) are part of the contract: changing the id of
 * an Outbox replaces its table and loses undelivered events.
 */
export class Outbox extends Construct implements IOutbox {
  /**
   * An outbox of another app (or account-local stack) from the SSM parameters its `parameterPrefix` published.
   * Parameters are read at deploy time, and only those a subscription uses (`topic-arn` for ordered, `bus-arn` for
   * rule subscriptions). Its subscriptions cannot be tracked.
   */
  static fromParameters(
    scope: Construct,
    id: string,
    parameterPrefix: string,
    options: ImportedOutboxOptions = {},
  ): IOutbox {
    return ImportedOutbox.fromParameters(scope, id, parameterPrefix, options);
  }

  /** An outbox of another app from its ARNs. Its subscriptions cannot be tracked. */
  static fromOutboxAttributes(scope: Construct, id: string, attributes: OutboxAttributes): IOutbox {
    return new ImportedOutbox(scope, id, attributes);
  }

  readonly table: OutboxTable;
  readonly relay: OutboxRelay;
  readonly recovery: OutboxRecovery;
  /** The scheduled delivery audit (absent with `audit: false`). */
  readonly audit?: OutboxAudit;
  readonly alarms: AlarmTopic;
  readonly dashboard?: OutboxDashboard;
  readonly topic?: sns.ITopic;
  readonly bus?: events.IEventBus;
  readonly largeEvents?: LargeEventStore;
  readonly #dedupTableProps: DedupTableProps;
  readonly #subscriptions = new Map<string, Subscription>();
  #dedupTable: DedupTable | undefined;
  #subscriptionScope: Construct | undefined;
  readonly #subscriptionNames = new SubscriptionRegistry(this);
  readonly #outputs: boolean;

  constructor(scope: Construct, id: string, props: OutboxProps = {}) {
    super(scope, id);
    this.alarms = new AlarmTopic(
      this,
      'Alarms',
      isTopic(props.alarmTopic) ? { topic: props.alarmTopic } : (props.alarmTopic ?? {}),
    );
    this.table = new OutboxTable(this, 'Table', props.table);
    this.relay = new OutboxRelay(this, 'Relay', {
      ...props.relay,
      ...(props.retention ? { retention: props.retention } : {}),
      outbox: this.table,
      alarms: this.alarms,
      ...(props.topic === undefined ? {} : { topic: props.topic }),
      ...(props.eventBus === undefined ? {} : { eventBus: props.eventBus }),
      ...(props.queues ? { queues: props.queues } : {}),
    });
    if (this.relay.topic) this.topic = this.relay.topic;
    if (props.largeEvents !== false) {
      this.largeEvents = new LargeEventStore(this, 'LargeEvents', {
        ...(typeof props.largeEvents === 'object' ? props.largeEvents : {}),
        retention: this.relay.retention,
        ...(props.table?.removalPolicy ? { removalPolicy: props.table.removalPolicy } : {}),
        ...(this.table.encryptionKey ? { encryptionKey: this.table.encryptionKey } : {}),
      });
    }
    if (this.relay.bus) this.bus = this.relay.bus;
    this.recovery = new OutboxRecovery(this, 'Recovery', {
      ...props.recovery,
      outbox: this.table,
      relay: this.relay,
      alarms: this.alarms,
    });
    if (props.audit !== false) {
      this.audit = new OutboxAudit(this, 'Audit', {
        ...(typeof props.audit === 'object' ? props.audit : {}),
        outbox: this.table,
        alarms: this.alarms,
      });
    }
    if (props.dashboard !== false) {
      this.dashboard = new OutboxDashboard(this, 'Dashboard', {
        ...(typeof props.dashboard === 'object' ? props.dashboard : {}),
        relay: this.relay,
        recovery: this.recovery,
      });
    }
    this.#dedupTableProps = props.dedupTable ?? {};
    this.#outputs = props.outputs ?? true;
    if (this.#outputs) this.#addOutputs();
    if (props.parameterPrefix !== undefined) this.#addParameters(props.parameterPrefix);
    if (props.reliabilityRules ?? true) Aspects.of(Stack.of(this)).add(new OutboxReliabilityChecks());
  }

  get outboxTableName(): string {
    return this.table.tableName;
  }

  /**
   * The environment a producer's `OutboxWriter` reads: the outbox table, and the targets the relay publishes to, so
   * the writer refuses at write time what one of them would refuse (size, `type`, `source`).
   */
  get producerEnvironment(): Readonly<Record<string, string>> {
    const targets = [
      ...(this.relay.topic ? ['sns'] : []),
      ...(this.relay.queues.size > 0 ? ['sqs'] : []),
      ...(this.relay.bus ? ['eventbridge'] : []),
    ];
    return {
      [OUTBOX_TABLE_ENV]: this.table.tableName,
      [PUBLISH_TARGETS_ENV]: targets.join(','),
      ...this.largeEvents?.producerEnvironment,
      // Resolved at synth, so subscriptions tracked after this call are included (getStatus reads it).
      [TRACKED_SUBSCRIBER_NAMES_ENV]: Lazy.string({
        produce: () => this.relay.trackedDeliveries.map((t) => t.name).join(','),
      }),
    };
  }

  get outboxTableArn(): string {
    return this.table.tableArn;
  }

  /** The alarm topic every alarm notifies. */
  get alarmTopic(): sns.ITopic {
    return this.alarms.topic;
  }

  get dedupTable(): DedupTable {
    if (!this.#dedupTable) {
      this.#dedupTable = new DedupTable(this, 'DedupTable', this.#dedupTableProps);
      // The delivery audit (`outbox audit`) reads applied events from it.
      if (this.#outputs) {
        new CfnOutput(this, DEDUP_TABLE_OUTPUT_KEY, {
          value: this.#dedupTable.tableName,
          description: 'Dedup table of the consumers',
        }).overrideLogicalId(DEDUP_TABLE_OUTPUT_KEY);
      }
    }
    return this.#dedupTable;
  }

  /** Subscriptions made so far (in any stack), by name. */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.#subscriptions;
  }

  /**
   * Grants what `OutboxWriter` needs: Put/Update/ConditionCheck/GetItem on the outbox table (no index, no
   * delete), use of its key when it has a customer-managed one, and `s3:PutObject` below the large-event prefix.
   */
  grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.largeEvents?.grantPut(grantee);
    return this.table.grantWrite(grantee);
  }

  /**
   * Subscribes a queue (and optionally a consumer Lambda) to the outbox's events, in the outbox's stack. `name` is
   * the subscription's construct id and its consumer's name in every dedup key: keep it stable.
   */
  subscribe(name: string, props: SubscriptionProps & { readonly outputs?: boolean }): Subscription {
    this.#subscriptionNames.assertFree(name);
    this.#subscriptionScope ??= new Construct(this, 'Subscriptions');
    return new Subscription(this.#subscriptionScope, name, {
      // An outbox without CLI outputs lists no subscriptions either (another outbox's CLI would count them).
      outputs: this.#outputs,
      ...props,
      outbox: this,
    });
  }

  registerSubscription(subscription: Subscription): void {
    this.#subscriptionNames.add(subscription);
    this.#subscriptions.set(subscription.subscriptionName, subscription);
    // Only a consumer of this library leaves dedup records to check, and only a known filter says what it gets.
    // A single-item consumer keeps none: its cursor is on an item of the user's own table, which the audit may not
    // read and cannot locate, so it is not audited (rather than reported missing).
    if (this.audit && subscription.keepsDedupRecords && subscription.auditFilter) {
      const alarm = this.audit.addSubscription(
        subscription.subscriptionName,
        subscription.auditFilter,
        this.dedupTable,
      );
      this.dashboard?.addAlarm(alarm);
    }
    // A dashboard widget on a queue of another stack would make this stack depend on it (a cycle).
    if (this.dashboard && Stack.of(subscription) === Stack.of(this))
      this.dashboard.addSubscription(subscription);
  }

  /** Coordinates another app subscribes by (`Outbox.fromParameters`). */
  #addParameters(prefix: string): void {
    if (!Token.isUnresolved(prefix) && !/^\/[A-Za-z0-9_.\-/]+[^/]$/.test(prefix)) {
      throw new Error(
        `Outbox ${this.node.path}: parameterPrefix must start with "/" and hold only letters, digits, "_", ".", "-" and "/" (not ending in "/"), but "${prefix}" was provided`,
      );
    }
    const parameter = (name: OutboxParameter, value: string) =>
      new ssm.StringParameter(this, `Parameter-${name}`, {
        parameterName: outboxParameterPath(prefix, name),
        stringValue: value,
        description: `serverless-outbox ${this.node.path}: ${name}`,
      });
    parameter('table-arn', this.table.tableArn);
    parameter('dedup-table-arn', this.dedupTable.tableArn);
    parameter('alarm-topic-arn', this.alarmTopic.topicArn);
    if (this.topic) parameter('topic-arn', this.topic.topicArn);
    if (this.bus) parameter('bus-arn', this.bus.eventBusArn);
    if (this.largeEvents) {
      parameter('large-events-bucket-arn', this.largeEvents.bucket.bucketArn);
      parameter('large-events-prefix', this.largeEvents.prefix);
    }
  }

  /** The operator CLI finds the deployment by these output keys (logical ids fixed with overrideLogicalId). */
  #addOutputs(): void {
    const stack = Stack.of(this);
    if (stacksWithOutputs.has(stack)) {
      throw new Error(
        `Outbox ${this.node.path}: stack ${stack.stackName} already holds an Outbox with operator-CLI outputs; give this one \`outputs: false\` or put it in its own stack.`,
      );
    }
    stacksWithOutputs.add(stack);
    const output = (key: string, value: string, description: string) =>
      new CfnOutput(this, key, { value, description }).overrideLogicalId(key);
    output(StackOutputKey.tableName, this.table.tableName, 'Outbox table');
    if (this.relay.topic) output(StackOutputKey.topicArn, this.relay.topic.topicArn, 'SNS FIFO event topic');
    if (this.relay.bus) output(StackOutputKey.busName, this.relay.bus.eventBusName, 'EventBridge event bus');
    output(
      StackOutputKey.relayFailureQueueUrl,
      this.relay.failureQueue.queueUrl,
      'Relay on-failure destination (stream batch positions)',
    );
  }
}
