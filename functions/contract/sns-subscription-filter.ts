/**
 * What an SNS subscription's filter policy lets through of an outbox event, judged by the SNS engine on what
 * the relay publishes: the envelope as the body, and the attributes of functions/relay/publishers.ts
 * (`type`, `source`, `partitionkey` as String, `sequence` as Number, `subject` when set).
 */
import { compileFilterPolicy, type SnsMessageAttribute } from '../patterns/sns-filter-policy.ts';

export interface PublishedOutboxEvent {
  readonly type: string;
  readonly source: string;
  readonly partitionKey: string;
  readonly sequence: number;
  readonly subject?: string;
  readonly envelope: Record<string, unknown>;
}

/** `FilterPolicy` / `FilterPolicyScope` as the template holds them; throws `InvalidFilterPolicyError`. */
export function snsSubscriptionFilter(
  filterPolicy: unknown,
  filterPolicyScope: unknown,
): (event: PublishedOutboxEvent) => boolean {
  if (filterPolicy === undefined) return () => true;
  const scope = filterPolicyScope === 'MessageBody' ? 'MessageBody' : 'MessageAttributes';
  const policy = compileFilterPolicy(filterPolicy, scope);
  return (event) =>
    policy.matches(
      scope === 'MessageBody'
        ? { message: JSON.stringify(event.envelope) }
        : { attributes: attributesOf(event) },
    );
}

function attributesOf(event: PublishedOutboxEvent): Record<string, SnsMessageAttribute> {
  const text = (value: string): SnsMessageAttribute => ({ DataType: 'String', StringValue: value });
  return {
    type: text(event.type),
    source: text(event.source),
    partitionkey: text(event.partitionKey),
    sequence: { DataType: 'Number', StringValue: String(event.sequence) },
    ...(event.subject ? { subject: text(event.subject) } : {}),
  };
}
