/** Fault injection for `npm start -- --faults` (filled in below). */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { OfflineStack } from './offline.ts';
import type { LocalEndpoints } from './runtime/lambda.ts';

export interface FaultPlan {
  readonly context: Readonly<Record<string, string>>;
  endpointsFor(
    functionName: string,
    services: { dynamodb: string; fauxqs: string },
  ): Partial<LocalEndpoints> | undefined;
  dropStreamRecord(record: unknown): boolean;
  attach(stack: OfflineStack, doc: DynamoDBDocumentClient): Promise<void>;
  afterWorkload(stack: OfflineStack, doc: DynamoDBDocumentClient): Promise<void>;
  tick(stack: OfflineStack): Promise<void>;
  settled(stack: OfflineStack, doc: DynamoDBDocumentClient): Promise<boolean>;
  readonly excludedEventIds: readonly string[];
  describe(): string[];
}

export function createFaultPlan(): FaultPlan {
  return {
    context: {},
    endpointsFor: () => undefined,
    dropStreamRecord: () => false,
    attach: async () => {},
    afterWorkload: async () => {},
    tick: async () => {},
    settled: async () => true,
    excludedEventIds: [],
    describe: () => [],
  };
}
