import { sharedDocumentClient } from 'serverless-outbox/writer';
import { PAYMENTS_TABLE_ENV } from './contract.ts';
import { decidePayment } from './prepared-payment.ts';

/**
 * The orders producer's check-back function: the recovery sweeper asks it about a payment message still PREPARED
 * after `checkbackAfter` (its producer died between prepare and confirm). It answers from the payments table and,
 * when there is no payment, records the roll-back so the producer can no longer charge.
 */
export const handler = async (request: {
  readonly eventId: string;
  readonly aggregateKey: string;
}): Promise<{ status: 'committed' | 'rolled-back' | 'unknown' }> => {
  const table = process.env[PAYMENTS_TABLE_ENV];
  if (!table)
    throw new Error(`${PAYMENTS_TABLE_ENV} is not set: deploy the function with the payments table name.`);
  if (!request.aggregateKey.startsWith('order#')) return { status: 'unknown' };
  const orderId = request.aggregateKey.slice('order#'.length);
  return { status: await decidePayment(sharedDocumentClient(), table, orderId, request.eventId) };
};
