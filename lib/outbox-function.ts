import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Repository root: CDK bundles handlers from `functions/` with the local esbuild (no Docker). */
export const PROJECT_ROOT = path.join(import.meta.dirname, '..');

export interface OutboxFunctionProps {
  /** Handler file, relative to `functions/`, e.g. `relay/handler.ts`. */
  readonly entry: string;
  readonly description: string;
  readonly environment?: Record<string, string>;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default - no reserved concurrency */
  readonly reservedConcurrentExecutions?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** The Lambda runtime of every function: the newest Node.js LTS Lambda offers (bundles target node22). */
export const OUTBOX_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * A Lambda function with the project's defaults: Node.js on arm64, minified ESM bundle, its own log group and a
 * role that may write only to that log group (no AWS-managed policy).
 */
export function createOutboxFunction(
  scope: Construct,
  id: string,
  props: OutboxFunctionProps,
): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of ${id}`,
  });
  logGroup.grantWrite(role);
  return new nodejs.NodejsFunction(scope, id, {
    entry: path.join(PROJECT_ROOT, 'functions', props.entry),
    handler: 'handler',
    description: props.description,
    runtime: OUTBOX_RUNTIME,
    role,
    architecture: lambda.Architecture.ARM_64,
    memorySize: props.memorySize ?? 256,
    timeout: props.timeout ?? Duration.seconds(30),
    ...(props.reservedConcurrentExecutions === undefined
      ? {}
      : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      forceDockerBundling: false,
      mainFields: ['module', 'main'],
      // Some CommonJS dependencies call require(); give the ESM bundle one.
      banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      externalModules: [],
    },
  });
}
