/**
 * Deployment discovery: what the operator commands act on (outbox table, subscription queues and DLQs,
 * topic, bus), read from the CloudFormation stack's outputs, from the offline runtime's
 * `.local-runs/deployment.json`, or from a file given with `--deployment`.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import {
  type Deployment,
  deploymentFromStackOutputs,
  IncompleteStackOutputsError,
  isFifoUrl,
  type SubscriptionQueues,
} from '../../functions/contract/deployment.ts';
import { CliUsageError, DeploymentNotFoundError, describeError } from './cli-support.ts';

export {
  type Deployment,
  isFifoUrl,
  kebabCase,
  type SubscriptionQueues,
} from '../../functions/contract/deployment.ts';
export { outputName as pascalCase } from '../../functions/contract/outputs.ts';

export interface DeploymentOptions {
  /** @default 'ServerlessOutbox' */
  stack?: string;
  region?: string;
  /** Read `.local-runs/deployment.json` (written by `npm start -- --serve`). */
  local?: boolean;
  /** Read this JSON file (same shape as `.local-runs/deployment.json`). */
  deploymentFile?: string;
  /** Base directory for `--local`. @default process.cwd() */
  cwd?: string;
  /** For tests. @default a client for `region` with the default credential chain */
  cloudFormation?: CloudFormationClient;
}

export const DEFAULT_STACK_NAME = 'ServerlessOutbox';
/** Written by the offline runtime when it runs with `--serve`, relative to the project root. */
export const LOCAL_DEPLOYMENT_FILE = '.local-runs/deployment.json';

/** Output keys of the stack (the `Sub<Name>...` ones are per subscription, <Name> in PascalCase). */
export { StackOutputKey as StackOutput } from '../../functions/contract/outputs.ts';

/** Where the commands find everything, by option precedence: --deployment, --local, then the stack. */
export async function resolveDeployment(options: DeploymentOptions = {}): Promise<Deployment> {
  if (options.deploymentFile !== undefined) {
    return readDeploymentFile(resolve(options.cwd ?? process.cwd(), options.deploymentFile), 'file');
  }
  if (options.local) {
    return readDeploymentFile(resolve(options.cwd ?? process.cwd(), LOCAL_DEPLOYMENT_FILE), 'local');
  }
  return deploymentFromStack(options);
}

async function readDeploymentFile(path: string, kind: 'file' | 'local'): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DeploymentNotFoundError(
        kind === 'local'
          ? `no offline runtime found (${path} does not exist): start the offline runtime with \`npm start -- --serve\` first, then run this command from the project root.`
          : `the deployment file ${path} does not exist.`,
        { cause: error },
      );
    }
    throw new DeploymentNotFoundError(`cannot read the deployment file ${path}: ${describeError(error)}`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DeploymentNotFoundError(`${path} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseDeployment(json, path);
}

/**
 * Validates a deployment description (the JSON of `.local-runs/deployment.json` or `--deployment`).
 * `fifo` may be omitted: it is then derived from the queue URL. Throws DeploymentNotFoundError naming the field.
 */
export function parseDeployment(json: unknown, origin = 'the deployment file'): Deployment {
  const fail = (field: string, problem: string): never => {
    throw new DeploymentNotFoundError(
      `${origin}: ${field} ${problem}; see docs/operations-cli.md for the format.`,
    );
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return fail('the content', 'must be a JSON object');
  const v = json as Record<string, unknown>;
  const text = (value: unknown, field: string, required: boolean): string | undefined => {
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'string' || value.trim() === '') return fail(field, 'must be a non-empty string');
    return value;
  };
  const outboxTableName = text(v.outboxTableName, 'outboxTableName', true) as string;
  if (!Array.isArray(v.subscriptions)) fail('subscriptions', 'must be an array (it may be empty)');
  const seen = new Set<string>();
  const subscriptions = (v.subscriptions as unknown[]).map((entry, i): SubscriptionQueues => {
    if (entry === null || typeof entry !== 'object') return fail(`subscriptions[${i}]`, 'must be an object');
    const s = entry as Record<string, unknown>;
    const name = text(s.name, `subscriptions[${i}].name`, true) as string;
    if (seen.has(normalizeName(name))) fail(`subscriptions[${i}].name`, `repeats "${name}"`);
    seen.add(normalizeName(name));
    const queueUrl = text(s.queueUrl, `subscriptions[${i}].queueUrl`, true) as string;
    const deadLetterQueueUrl = text(
      s.deadLetterQueueUrl,
      `subscriptions[${i}].deadLetterQueueUrl`,
      true,
    ) as string;
    if (s.fifo !== undefined && typeof s.fifo !== 'boolean')
      fail(`subscriptions[${i}].fifo`, 'must be a boolean');
    return {
      name,
      queueUrl,
      deadLetterQueueUrl,
      fifo: (s.fifo as boolean | undefined) ?? isFifoUrl(queueUrl),
    };
  });
  const topicArn = text(v.topicArn, 'topicArn', false);
  const busName = text(v.busName, 'busName', false);
  const relayFailureQueueUrl = text(v.relayFailureQueueUrl, 'relayFailureQueueUrl', false);
  let endpoints: Record<string, string> | undefined;
  if (v.endpoints !== undefined) {
    if (v.endpoints === null || typeof v.endpoints !== 'object' || Array.isArray(v.endpoints)) {
      fail('endpoints', 'must be an object of service → URL');
    }
    endpoints = {};
    for (const [service, url] of Object.entries(v.endpoints as Record<string, unknown>)) {
      if (typeof url !== 'string' || !/^https?:\/\//.test(url))
        fail(`endpoints.${service}`, 'must be an http(s) URL');
      endpoints[service] = url as string;
    }
  }
  return {
    outboxTableName,
    subscriptions,
    ...(topicArn === undefined ? {} : { topicArn }),
    ...(busName === undefined ? {} : { busName }),
    ...(relayFailureQueueUrl === undefined ? {} : { relayFailureQueueUrl }),
    ...(endpoints === undefined ? {} : { endpoints }),
  };
}

async function deploymentFromStack(options: DeploymentOptions): Promise<Deployment> {
  const stack = options.stack ?? DEFAULT_STACK_NAME;
  const client =
    options.cloudFormation ??
    new CloudFormationClient(options.region === undefined ? {} : { region: options.region });
  try {
    const response = await client.send(new DescribeStacksCommand({ StackName: stack }));
    const found = response.Stacks?.[0];
    if (!found) throw new DeploymentNotFoundError(stackMissing(stack, options.region));
    return deploymentFromOutputs(found.Outputs ?? [], stack);
  } catch (error) {
    if (error instanceof DeploymentNotFoundError) throw error;
    if ((error as Error).name === 'ValidationError' && /does not exist/i.test((error as Error).message)) {
      throw new DeploymentNotFoundError(stackMissing(stack, options.region), { cause: error });
    }
    throw new DeploymentNotFoundError(`cannot describe stack ${stack}: ${describeError(error)}`, {
      cause: error,
    });
  } finally {
    if (!options.cloudFormation) client.destroy();
  }
}

function stackMissing(stack: string, region: string | undefined): string {
  return `stack ${stack} was not found${region ? ` in ${region}` : ''}: deploy it (\`npx cdk deploy\`), or pass --stack <name> / --region <region>, or use --local for the offline runtime.`;
}

/** Builds a deployment from CloudFormation outputs; a stack without the outbox's outputs is DeploymentNotFoundError. */
export function deploymentFromOutputs(outputs: readonly Output[], stack = DEFAULT_STACK_NAME): Deployment {
  try {
    return deploymentFromStackOutputs(outputs, stack);
  } catch (error) {
    if (error instanceof IncompleteStackOutputsError) {
      throw new DeploymentNotFoundError(error.message, { cause: error });
    }
    throw error;
  }
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The queue name at the end of a queue URL. */
export function queueNameOf(queueUrl: string): string {
  return queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
}

/**
 * Finds a subscription by name, ignoring case and separators (`order-history`, `OrderHistory` and
 * `order_history` are the same). Throws CliUsageError (exit 2) listing the known names.
 */
export function findSubscription(deployment: Deployment, name: string): SubscriptionQueues {
  const wanted = normalizeName(name);
  const found = deployment.subscriptions.find((s) => normalizeName(s.name) === wanted);
  if (!found) {
    const known = deployment.subscriptions.map((s) => s.name);
    throw new CliUsageError(
      `no subscription "${name}" in this deployment; known: ${known.length > 0 ? known.join(', ') : '(none)'}. Run \`outbox status\` to list them.`,
    );
  }
  return found;
}
