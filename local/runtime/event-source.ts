// Pieces shared by the stream and SQS pollers.
import { compilePattern } from '../../functions/patterns/event-pattern.ts';
import type { InvokeOptions, InvokeResult } from './lambda.ts';

/** What pollers need from the Lambda runtime (LambdaRuntime implements it). */
export interface FunctionInvoker {
  invoke(functionNameOrArn: string, event: unknown, opts?: InvokeOptions): Promise<InvokeResult>;
  functionArn(functionName: string): string;
}

/** Lambda FilterCriteria: a record passes if any pattern matches (no patterns: everything passes). */
export function compileFilters(patterns: readonly string[] | undefined): (record: unknown) => boolean {
  const compiled = (patterns ?? []).map((p) => compilePattern(p));
  if (compiled.length === 0) return () => true;
  return (record) => compiled.some((c) => c.matches(record));
}

/** `batchItemFailures` identifiers of a ReportBatchItemFailures response, or 'all' when malformed. */
export function batchItemFailures(result: unknown, validIds: ReadonlySet<string>): string[] | 'all' {
  if (result === null || result === undefined || typeof result !== 'object') return [];
  const failures = (result as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === null || failures === undefined) return [];
  if (!Array.isArray(failures)) return 'all';
  const ids: string[] = [];
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    // Null, empty or unknown identifiers fail the whole batch (AWS documented behaviour).
    if (typeof id !== 'string' || id === '' || !validIds.has(id)) return 'all';
    ids.push(id);
  }
  return ids;
}

/** Cancellable sleep used by poll loops. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export type PollerLog = (level: 'info' | 'warn' | 'error', message: string) => void;

export const defaultPollerLog: PollerLog = (level, message) => {
  if (level !== 'info') process.stderr.write(`[local-runtime] ${level}: ${message}\n`);
};

/** Which poller an event source ARN needs. */
export function eventSourceKind(arn: string): 'dynamodb-stream' | 'sqs' | 'unsupported' {
  if (/^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/[^/]+\/stream\//.test(arn)) return 'dynamodb-stream';
  if (/^arn:[^:]+:sqs:/.test(arn)) return 'sqs';
  return 'unsupported';
}

/** Function name from a name, `name:qualifier`, a function ARN or a qualified ARN. */
export function functionNameOf(nameOrArn: string): string {
  const match = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)/.exec(nameOrArn);
  return match ? (match[1] as string) : (nameOrArn.split(':')[0] as string);
}

/** The `Pattern` strings of a resolved `FilterCriteria`. */
export function filterPatternsOf(filterCriteria: unknown): string[] {
  const filters = (filterCriteria as { Filters?: unknown } | undefined)?.Filters;
  if (!Array.isArray(filters)) return [];
  return filters
    .map((f) => (f as { Pattern?: unknown } | null)?.Pattern)
    .map((p) => (typeof p === 'string' ? p : p === undefined ? undefined : JSON.stringify(p)))
    .filter((p): p is string => p !== undefined);
}
