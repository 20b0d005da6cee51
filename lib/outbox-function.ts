import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { acknowledge, ControlTowerException } from './internal/compliance.ts';
import { handlerAssetDir, type LibraryHandler } from './internal/handler-assets.ts';

/** Settings every function of the library shares. */
export interface OutboxFunctionOptions {
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

/** How a subscription's consumer code is bundled: the user's own file, with the user's esbuild (no Docker). */
export interface ConsumerBundleOptions {
  /**
   * The handler file in your project (TypeScript or JavaScript), resolved like `NodejsFunction`'s `entry`
   * (an absolute path, or relative to the folder `cdk` runs in).
   */
  readonly entry: string;
  /** @default 'handler' */
  readonly handler?: string;
  /**
   * esbuild options (minify, source maps, ESM and a `require` shim are set by default).
   * @default - the defaults described above
   */
  readonly bundling?: nodejs.BundlingOptions;
  /** @default - NodejsFunction's search for a lock file from the current folder up */
  readonly depsLockFilePath?: string;
  /** @default - the folder of the lock file */
  readonly projectRoot?: string;
}

/** The Lambda runtime of every function: the newest Node.js LTS Lambda offers (bundles target node22). */
export const OUTBOX_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * Bundling defaults for consumer code: minified ESM for Node 22+, with `require` for CommonJS dependencies, and the
 * AWS SDK bundled too (the versions you tested, not whichever the Lambda runtime carries).
 */
export const CONSUMER_BUNDLING: nodejs.BundlingOptions = {
  format: nodejs.OutputFormat.ESM,
  target: 'node22',
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  forceDockerBundling: false,
  mainFields: ['module', 'main'],
  externalModules: [],
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
};

/** Role writing only to the function's own log group (no AWS-managed policy), and the props every function shares. */
function baseFunctionProps(scope: Construct, id: string, options: OutboxFunctionOptions) {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: options.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of ${id}`,
  });
  logGroup.grantWrite(role);
  acknowledge(logGroup, ControlTowerException.logRetention, ControlTowerException.logEncryption);
  return {
    description: options.description,
    runtime: OUTBOX_RUNTIME,
    role,
    architecture: lambda.Architecture.ARM_64,
    memorySize: options.memorySize ?? 256,
    timeout: options.timeout ?? Duration.seconds(30),
    ...(options.reservedConcurrentExecutions === undefined
      ? {}
      : { reservedConcurrentExecutions: options.reservedConcurrentExecutions }),
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    environment: { NODE_OPTIONS: '--enable-source-maps', ...options.environment },
  };
}

/** One of the library's own functions (relay, recovery) from its prebuilt bundle shipped in the package. */
export function createLibraryFunction(
  scope: Construct,
  id: string,
  handler: LibraryHandler,
  options: OutboxFunctionOptions,
): lambda.Function {
  const fn = new lambda.Function(scope, id, {
    ...baseFunctionProps(scope, id, options),
    code: lambda.Code.fromAsset(handlerAssetDir(handler)),
    handler: 'index.handler',
  });
  acknowledge(fn, ControlTowerException.lambdaOutsideVpc);
  return fn;
}

/** A consumer function bundled from the user's own file with the user's esbuild. */
export function createConsumerFunction(
  scope: Construct,
  id: string,
  code: ConsumerBundleOptions,
  options: OutboxFunctionOptions,
): nodejs.NodejsFunction {
  const fn = new nodejs.NodejsFunction(scope, id, {
    ...baseFunctionProps(scope, id, options),
    entry: code.entry,
    handler: code.handler ?? 'handler',
    ...(code.depsLockFilePath === undefined ? {} : { depsLockFilePath: code.depsLockFilePath }),
    ...(code.projectRoot === undefined ? {} : { projectRoot: code.projectRoot }),
    bundling: { ...CONSUMER_BUNDLING, ...code.bundling },
  });
  acknowledge(fn, ControlTowerException.lambdaOutsideVpc);
  return fn;
}
