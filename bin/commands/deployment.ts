/**
 * Deployment discovery: what the operator commands act on (outbox table, subscription queues and DLQs,
 * topic, bus), read from the outputs of one or more CloudFormation stacks, from the SSM parameters an Outbox
 * publishes under its `parameterPrefix`, from the offline runtime's `.local-runs/deployment.json`, or from a
 * file given with `--deployment`.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  type Deployment,
  deploymentFromStackOutputs,
  hasOutboxOutputs,
  IncompleteStackOutputsError,
  isFifoUrl,
  type OutboxCoordinates,
  outboxFromStackOutputs,
  type SubscriptionQueues,
  subscriptionsFromStackOutputs,
} from '../../functions/contract/deployment.ts';
import { StackOutputKey } from '../../functions/contract/outputs.ts';
import {
  busNameFromArn,
  OutboxParameterName,
  outboxParameterPath,
  tableNameFromArn,
} from '../../functions/contract/parameters.ts';
import { CliUsageError, DeploymentNotFoundError, describeError } from './cli-support.ts';

export {
  type Deployment,
  isFifoUrl,
  kebabCase,
  type SubscriptionQueues,
} from '../../functions/contract/deployment.ts';
export { outputName as pascalCase } from '../../functions/contract/outputs.ts';

export interface DeploymentOptions {
  /**
   * Stack(s) to read outputs from: one name, comma-separated names, or a list (`--stack A,B` / repeated
   * `--stack`). Exactly one of them carries the outbox's outputs (unless `outbox` is given); subscriptions are
   * collected from all. @default 'ServerlessOutbox' (none when `outbox` is given)
   */
  stack?: string | readonly string[];
  /** Find the outbox by the SSM parameters it publishes under this `parameterPrefix` (`/my-app/outbox`). */
  outbox?: string;
  region?: string;
  /** Read `.local-runs/deployment.json` (written by `npm start -- --serve`). */
  local?: boolean;
  /** Read this JSON file (same shape as `.local-runs/deployment.json`). */
  deploymentFile?: string;
  /** Base directory for `--local`. @default process.cwd() */
  cwd?: string;
  /** For tests. @default a client for `region` with the default credential chain */
  cloudFormation?: CloudFormationClient;
  /** For tests. @default a client for `region` with the default credential chain */
  ssm?: SSMClient;
}

export const DEFAULT_STACK_NAME = 'ServerlessOutbox';
/** Written by the offline runtime when it runs with `--serve`, relative to the project root. */
export const LOCAL_DEPLOYMENT_FILE = '.local-runs/deployment.json';

/** Output keys of the stack (the `Sub<Name>...` ones are per subscription, <Name> in PascalCase). */
export { StackOutputKey as StackOutput } from '../../functions/contract/outputs.ts';

/**
 * Where the commands find everything, by option precedence: --deployment, --local, then --outbox (SSM parameters,
 * with the subscriptions of the --stack stacks, if any), then the --stack stacks' outputs.
 */
export async function resolveDeployment(options: DeploymentOptions = {}): Promise<Deployment> {
  if (options.deploymentFile !== undefined) {
    return readDeploymentFile(resolve(options.cwd ?? process.cwd(), options.deploymentFile), 'file');
  }
  if (options.local) {
    return readDeploymentFile(resolve(options.cwd ?? process.cwd(), LOCAL_DEPLOYMENT_FILE), 'local');
  }
  if (options.outbox !== undefined) {
    const prefix = normalizeParameterPrefix(options.outbox);
    const stacks = options.stack === undefined ? [] : stackNames(options.stack);
    const [outbox, described] = await Promise.all([
      outboxFromParameters(prefix, options),
      stacks.length === 0 ? Promise.resolve([]) : describeStacks(stacks, options),
    ]);
    return mergeStackOutputs(described, { outbox, prefix });
  }
  const stacks = options.stack === undefined ? [DEFAULT_STACK_NAME] : stackNames(options.stack);
  return mergeStackOutputs(await describeStacks(stacks, options));
}

/** `A,B` / `['A', 'B,C']` → `['A', 'B', 'C']` (trimmed, without repeats). */
export function stackNames(stack: string | readonly string[]): string[] {
  const names = (typeof stack === 'string' ? [stack] : stack)
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) {
    throw new CliUsageError('--stack needs a stack name (several: --stack A,B or --stack A --stack B)');
  }
  return [...new Set(names)];
}

/** The outputs of one stack, as DescribeStacks returns them. */
export interface StackOutputs {
  readonly stack: string;
  readonly outputs: readonly Output[];
}

/**
 * Merges the outputs of several stacks into one deployment. Without `outbox`, exactly one stack carries the
 * outbox's outputs (`OutboxTableName`, `OutboxTopicArn`, `OutboxBusName`, `RelayFailureQueueUrl`); with `outbox`
 * (found by its SSM parameters) a stack that carries outbox outputs must be of that outbox. Subscriptions are
 * collected from every stack; the same subscription in two stacks is refused. Throws DeploymentNotFoundError.
 */
export function mergeStackOutputs(
  stacks: readonly StackOutputs[],
  from?: { outbox: OutboxCoordinates; prefix: string },
): Deployment {
  const carriers = stacks.filter((s) => hasOutboxOutputs(s.outputs));
  let outbox: OutboxCoordinates;
  if (from) {
    outbox = { ...from.outbox };
    for (const carrier of carriers) {
      const own = outboxFromStackOutputs(carrier.outputs);
      if (own?.outboxTableName !== from.outbox.outboxTableName) {
        throw new DeploymentNotFoundError(
          `stack ${carrier.stack} carries the outputs of another outbox (table ${own?.outboxTableName ?? '(no OutboxTableName output)'}) than --outbox ${from.prefix} (table ${from.outbox.outboxTableName}): pass in --stack only the stacks of this outbox's subscriptions.`,
        );
      }
      // The relay failure queue has no SSM parameter: take it from the outbox's own stack when that is given.
      outbox = { ...own, ...outbox };
    }
  } else {
    const carrier = carriers[0];
    if (carriers.length > 1) {
      throw new DeploymentNotFoundError(
        `stacks ${carriers.map((c) => c.stack).join(', ')} all carry outbox outputs (${Object.values(StackOutputKey).join(', ')}): the CLI acts on one outbox at a time. Pass in --stack one outbox's stack and the stacks of its subscriptions, or find the outbox with --outbox <parameterPrefix>.`,
      );
    }
    if (!carrier) {
      if (stacks.length === 1) return deploymentFromOutputs(stacks[0]?.outputs ?? [], stacks[0]?.stack);
      throw new DeploymentNotFoundError(
        `none of the stacks ${stacks.map((s) => s.stack).join(', ')} has the outbox's ${StackOutputKey.tableName} output: add the stack that holds the Outbox construct to --stack (\`npx cdk deploy\` it if it predates the operator CLI), or find the outbox by its SSM parameters with --outbox <parameterPrefix>.`,
      );
    }
    const own = outboxFromStackOutputs(carrier.outputs);
    if (!own) return deploymentFromOutputs(carrier.outputs, carrier.stack);
    outbox = own;
  }
  const found = new Map<string, { stack: string; subscription: SubscriptionQueues }>();
  for (const { stack, outputs } of stacks) {
    let entries: ReturnType<typeof subscriptionsFromStackOutputs>;
    try {
      entries = subscriptionsFromStackOutputs(outputs, stack);
    } catch (error) {
      if (error instanceof IncompleteStackOutputsError) {
        throw new DeploymentNotFoundError(error.message, { cause: error });
      }
      throw error;
    }
    for (const { outputName, subscription } of entries) {
      const other = found.get(outputName);
      if (other) {
        throw new DeploymentNotFoundError(
          `subscription "${subscription.name}" is in two stacks, ${other.stack} and ${stack} (outputs Sub${outputName}QueueUrl / Sub${outputName}DlqUrl): subscription names are unique per outbox. Pass only the stacks of one outbox in --stack, or rename one of the subscriptions.`,
        );
      }
      found.set(outputName, { stack, subscription });
    }
  }
  const subscriptions = [...found]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, entry]) => entry.subscription);
  return { ...outbox, subscriptions };
}

/** `--outbox` takes a `parameterPrefix`: it starts with "/"; a trailing "/" is ignored. */
function normalizeParameterPrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  if (!/^\/[A-Za-z0-9_.\-/]+$/.test(trimmed)) {
    throw new CliUsageError(
      `--outbox takes the parameterPrefix the Outbox publishes its SSM parameters under, e.g. /my-app/outbox (it starts with "/"), but "${prefix}" was given`,
    );
  }
  return trimmed;
}

/**
 * The outbox's coordinates from the SSM parameters it publishes under `parameterPrefix`: `<prefix>/table-arn`
 * (required), `<prefix>/topic-arn` and `<prefix>/bus-arn` (present when the outbox has a topic / a bus).
 */
async function outboxFromParameters(prefix: string, options: DeploymentOptions): Promise<OutboxCoordinates> {
  const names = {
    table: outboxParameterPath(prefix, OutboxParameterName.tableArn),
    topic: outboxParameterPath(prefix, OutboxParameterName.topicArn),
    bus: outboxParameterPath(prefix, OutboxParameterName.busArn),
  };
  const client = options.ssm ?? new SSMClient(options.region === undefined ? {} : { region: options.region });
  const values = new Map<string, string>();
  try {
    const response = await client.send(
      new GetParametersCommand({ Names: [names.table, names.topic, names.bus] }),
    );
    for (const p of response.Parameters ?? []) if (p.Name && p.Value) values.set(p.Name, p.Value);
  } catch (error) {
    throw new DeploymentNotFoundError(
      `cannot read the outbox's SSM parameters under ${prefix}: ${describeError(error)}`,
      { cause: error },
    );
  } finally {
    if (!options.ssm) client.destroy();
  }
  const tableArn = values.get(names.table);
  if (tableArn === undefined) {
    throw new DeploymentNotFoundError(
      `SSM parameter ${names.table} was not found${options.region ? ` in ${options.region}` : ''}: --outbox ${prefix} finds an outbox by the parameters it publishes, so deploy the Outbox with \`parameterPrefix: '${prefix}'\` (\`npx cdk deploy\`), or check --outbox and --region.`,
    );
  }
  const outboxTableName = tableNameFromArn(tableArn);
  if (outboxTableName === undefined) {
    throw new DeploymentNotFoundError(
      `SSM parameter ${names.table} holds "${tableArn}", not a DynamoDB table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>): check --outbox, or redeploy the Outbox.`,
    );
  }
  const topicArn = values.get(names.topic);
  const busArn = values.get(names.bus);
  let busName: string | undefined;
  if (busArn !== undefined) {
    busName = busNameFromArn(busArn);
    if (busName === undefined) {
      throw new DeploymentNotFoundError(
        `SSM parameter ${names.bus} holds "${busArn}", not an EventBridge bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>): check --outbox, or redeploy the Outbox.`,
      );
    }
  }
  return {
    outboxTableName,
    ...(topicArn === undefined ? {} : { topicArn }),
    ...(busName === undefined ? {} : { busName }),
  };
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

async function describeStacks(
  stacks: readonly string[],
  options: DeploymentOptions,
): Promise<StackOutputs[]> {
  const client =
    options.cloudFormation ??
    new CloudFormationClient(options.region === undefined ? {} : { region: options.region });
  try {
    return await Promise.all(stacks.map((stack) => describeStack(client, stack, options.region)));
  } finally {
    if (!options.cloudFormation) client.destroy();
  }
}

async function describeStack(
  client: CloudFormationClient,
  stack: string,
  region: string | undefined,
): Promise<StackOutputs> {
  try {
    const response = await client.send(new DescribeStacksCommand({ StackName: stack }));
    const found = response.Stacks?.[0];
    if (!found) throw new DeploymentNotFoundError(stackMissing(stack, region));
    return { stack, outputs: found.Outputs ?? [] };
  } catch (error) {
    if (error instanceof DeploymentNotFoundError) throw error;
    if ((error as Error).name === 'ValidationError' && /does not exist/i.test((error as Error).message)) {
      throw new DeploymentNotFoundError(stackMissing(stack, region), { cause: error });
    }
    throw new DeploymentNotFoundError(`cannot describe stack ${stack}: ${describeError(error)}`, {
      cause: error,
    });
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
      `no subscription "${name}" in this deployment; known: ${known.length > 0 ? known.join(', ') : '(none)'}. Run \`outbox status\` to list them; a subscription deployed in another stack than the outbox is found when that stack is added with --stack (e.g. --stack Outbox,Subscribers).`,
    );
  }
  return found;
}
