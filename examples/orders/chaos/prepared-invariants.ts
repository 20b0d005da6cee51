/**
 * What prepared payments (prepare → charge → confirm, check-back for a producer that died) must leave behind: every
 * prepared message CONFIRMED or CANCELLED; CONFIRMED exactly when its payment was charged, with its event committed;
 * CANCELLED never published and never charged; and for each producer the run killed between prepare and confirm,
 * the outcome check-back owed it (charged → committed and published, not charged → rolled back).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { scanTable } from 'serverless-outbox/local/services';
import { ORDER_PAID } from '../contract.ts';
import { type PaymentRecord, PaymentStatus } from '../prepared-payment.ts';
import type { DemoStack } from '../synth.ts';
import type { PreparedCrash } from './schedule.ts';

export interface PreparedCheck {
  readonly problems: string[];
  /** One line for the run's log. */
  readonly line: string;
}

export async function checkPreparedPayments(
  stack: DemoStack,
  doc: DynamoDBDocumentClient,
  /** Orders whose producer the run killed between prepare and confirm (and did not retry), and where. */
  crashed: ReadonlyMap<string, PreparedCrash>,
): Promise<PreparedCheck> {
  const items = await scanTable(doc, stack.ref(stack.resources.outboxTable));
  const events = new Map(
    items.filter((i) => String(i.sk).startsWith('EVT#')).map((i) => [String(i.id), i] as const),
  );
  const prepared = items.filter((i) => String(i.sk).startsWith('PRE#'));
  const payments = new Map(
    (await scanTable(doc, stack.ref(stack.resources.paymentsTable))).map((p) => [
      String(p.orderId),
      p as unknown as PaymentRecord,
    ]),
  );
  const problems: string[] = [];
  const byStatus: Record<string, number> = {};
  const outcome = new Map<string, string>();
  for (const item of prepared) {
    const id = String(item.id);
    const orderId = String(item.pk).replace(/^order#/, '');
    const status = String(item.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    outcome.set(orderId, status);
    const payment = payments.get(orderId);
    const event = events.get(id);
    if (status === 'CONFIRMED') {
      if (payment?.status !== PaymentStatus.charged || payment.eventId !== id)
        problems.push(`prepared payment ${id} (${orderId}) CONFIRMED without its charge`);
      if (event?.type !== ORDER_PAID)
        problems.push(`prepared payment ${id} (${orderId}) CONFIRMED but no OrderPaid event ${id} committed`);
    } else if (status === 'CANCELLED') {
      if (payment?.status === PaymentStatus.charged)
        problems.push(
          `prepared payment ${id} (${orderId}) CANCELLED but charged: a business change without its event`,
        );
      if (event) problems.push(`prepared payment ${id} (${orderId}) CANCELLED but its event was committed`);
    } else {
      problems.push(`prepared payment ${id} (${orderId}) still ${status} (neither confirmed nor cancelled)`);
    }
  }
  const preparedIds = new Set(prepared.map((i) => String(i.id)));
  for (const payment of payments.values())
    if (payment.status === PaymentStatus.charged && !preparedIds.has(payment.eventId))
      problems.push(`order ${payment.orderId} charged for ${payment.eventId}, which was never prepared`);
  for (const [orderId, when] of crashed) {
    const expected = when === 'after-charge' ? 'CONFIRMED' : 'CANCELLED';
    const got = outcome.get(orderId) ?? 'not prepared';
    if (got !== expected)
      problems.push(
        `prepared pay of ${orderId}, producer killed ${when}: check-back should end it ${expected}, it is ${got}`,
      );
  }
  const status = Object.entries(byStatus)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const killed = [...crashed].map(([orderId, when]) => `${orderId} ${when} → ${outcome.get(orderId) ?? '-'}`);
  return {
    problems,
    line: `prepared payments: ${prepared.length} prepared (${status || 'none'}); producer killed between prepare and confirm: ${killed.join(', ') || 'none'}`,
  };
}
