import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { scanTable } from 'serverless-outbox/local/services';
import { attachmentFor, sha256Hex } from './attachment.ts';

/**
 * Large events in the demo: some orders carry an attachment-like field big enough that the OrderPlaced event is over
 * SNS's 256 KB, so the writer stores its data in S3 (claim-check) and billing gets it back from there. Billing records
 * the attachment's size and SHA-256; the report compares them with what the producer generated.
 */

/** In the `--faults` run, every LARGE_ORDER_EVERY-th order carries an attachment of LARGE_ATTACHMENT_BYTES. */
export const LARGE_ORDER_EVERY = 10;
export const LARGE_ATTACHMENT_BYTES = 300 * 1024;

/** Attachment size for an order of the `--faults` workload (`o00010`, `o00020`, ...), else undefined. */
export function largeAttachmentBytesFor(orderId: string): number | undefined {
  const n = Number.parseInt(orderId.replace(/^\D+/, ''), 10);
  return Number.isInteger(n) && n % LARGE_ORDER_EVERY === 0 ? LARGE_ATTACHMENT_BYTES : undefined;
}

/**
 * Compares what billing applied for each large order with the attachment the producer sent: one line for the
 * report, and a problem per order whose data did not arrive intact (or not at all).
 */
export async function verifyLargeOrders(
  doc: DynamoDBDocumentClient,
  chargesTable: string,
  orders: ReadonlyMap<string, number>,
): Promise<{ line: string; problems: string[] }> {
  const charges = new Map((await scanTable(doc, chargesTable)).map((item) => [String(item.orderId), item]));
  const problems: string[] = [];
  let intact = 0;
  for (const [orderId, bytes] of orders) {
    const charge = charges.get(orderId);
    const expected = sha256Hex(attachmentFor(orderId, bytes));
    if (charge?.attachmentSha256 === expected && charge.attachmentBytes === bytes) intact++;
    else
      problems.push(
        `large order ${orderId}: billing applied ${charge ? `an attachment of ${String(charge.attachmentBytes)} bytes, sha256 ${String(charge.attachmentSha256).slice(0, 12)}…` : 'nothing'}; expected ${bytes} bytes, sha256 ${expected.slice(0, 12)}…`,
      );
  }
  return {
    line: `large events (claim-check via S3): ${intact}/${orders.size} orders with a ${LARGE_ATTACHMENT_BYTES / 1024} KB attachment applied by billing with size and SHA-256 intact`,
    problems,
  };
}
