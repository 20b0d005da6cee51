/**
 * `serverless-outbox/local/services`: DynamoDB Local and fauxqs alone, without the rest of the offline runtime, so
 * a program can start them first thing (the JVM boots while Node loads the rest) and hand them to
 * `startOfflineStack` / `startOfflineRuntime` (options `dynamodb`, `fauxqs`).
 */
export {
  type DynamoDbLocal,
  type DynamoDbLocalOptions,
  DynamoDbLocalStartError,
  startDynamoDbLocal,
} from './dynamodb-local.ts';
export { type Fauxqs, type FauxqsOptions, FauxqsStartError, startFauxqs } from './fauxqs.ts';
export { type ScanTableOptions, scanTable } from './scan-table.ts';
