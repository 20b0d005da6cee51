import { createHash } from 'node:crypto';

/** The attachment-like field of a large demo order: deterministic, so the report can recompute its digest. */
export function attachmentFor(orderId: string, bytes: number): string {
  const unit = `${orderId}:attachment;`;
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
