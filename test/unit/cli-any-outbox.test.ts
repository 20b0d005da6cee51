/**
 * Operator CLI against any outbox (#12.5): the outputs of several stacks merged (one outbox, subscriptions from
 * all), and an outbox found by the SSM parameters of its `parameterPrefix`. CloudFormation and SSM are mocked.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  CliUsageError,
  DEPLOYMENT_OPTIONS,
  DeploymentNotFoundError,
  deploymentOptionsOf,
  parseCommandArgs,
} from '../../bin/commands/cli-support.ts';
import { resolveDeployment } from '../../bin/commands/deployment.ts';
import { runDlqCommand } from '../../bin/commands/dlq.ts';
import { runStatusCommand } from '../../bin/commands/status.ts';
import { captureIo as capture } from '../support/cli-io.ts';

const cfn = mockClient(CloudFormationClient);
const ssm = mockClient(SSMClient);
const sqs = mockClient(SQSClient);
beforeEach(() => {
  cfn.reset();
  ssm.reset();
  sqs.reset();
});

const outboxOutputs: Output[] = [
  { OutputKey: 'OutboxTableName', OutputValue: 'orders-outbox' },
  { OutputKey: 'OutboxTopicArn', OutputValue: 'arn:aws:sns:eu-west-1:123456789012:orders.fifo' },
  { OutputKey: 'OutboxBusName', OutputValue: 'orders-bus' },
  { OutputKey: 'RelayFailureQueueUrl', OutputValue: 'https://sqs/123/relay-failures' },
];
const billing: Output[] = [
  { OutputKey: 'SubBillingQueueUrl', OutputValue: 'https://sqs/123/billing.fifo' },
  { OutputKey: 'SubBillingDlqUrl', OutputValue: 'https://sqs/123/billing-dlq.fifo' },
];
const orderHistory: Output[] = [
  { OutputKey: 'SubOrderHistoryQueueUrl', OutputValue: 'https://sqs/123/order-history' },
  { OutputKey: 'SubOrderHistoryDlqUrl', OutputValue: 'https://sqs/123/order-history-dlq' },
];

function stack(name: string, outputs: Output[]): void {
  cfn.on(DescribeStacksCommand, { StackName: name }).resolves({
    Stacks: [{ StackName: name, StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: outputs }],
  });
}

const failure = (promise: Promise<unknown>) => promise.then(() => undefined).catch((e: unknown) => e);

describe('--stack with several stacks', () => {
  it('takes the outbox from the one stack that carries it and subscriptions from all', async () => {
    stack('Orders', [...outboxOutputs, ...orderHistory]);
    stack('Billing', billing);
    const expected = {
      outboxTableName: 'orders-outbox',
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:orders.fifo',
      busName: 'orders-bus',
      relayFailureQueueUrl: 'https://sqs/123/relay-failures',
      subscriptions: [
        {
          name: 'billing',
          queueUrl: 'https://sqs/123/billing.fifo',
          deadLetterQueueUrl: 'https://sqs/123/billing-dlq.fifo',
          fifo: true,
        },
        {
          name: 'order-history',
          queueUrl: 'https://sqs/123/order-history',
          deadLetterQueueUrl: 'https://sqs/123/order-history-dlq',
          fifo: false,
        },
      ],
    };
    // The subscribers' stack first: the outbox is found wherever it is in the list.
    expect(await resolveDeployment({ stack: 'Billing,Orders', region: 'eu-west-1' })).toEqual(expected);
    expect(await resolveDeployment({ stack: ['Billing', ' Orders '], region: 'eu-west-1' })).toEqual(
      expected,
    );
    expect(
      cfn
        .commandCalls(DescribeStacksCommand)
        .map((c) => c.args[0].input.StackName)
        .sort(),
    ).toEqual(['Billing', 'Billing', 'Orders', 'Orders']);
  });

  it('--stack is comma-separated or repeated on the command line', () => {
    const args = parseCommandArgs(['--stack', 'Orders,Billing', '--stack', 'Shipping'], DEPLOYMENT_OPTIONS);
    expect(deploymentOptionsOf(args.values)).toEqual({ stack: ['Orders,Billing', 'Shipping'] });
  });

  it('a command reaches a subscription of another stack than the outbox', async () => {
    stack('Orders', outboxOutputs);
    stack('Billing', billing);
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '0' } });
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [] });
    const c = capture();
    const code = await runDlqCommand(
      ['list', 'billing', '--stack', 'Orders', '--stack', 'Billing', '--region', 'eu-west-1', '--json'],
      c.io,
    );
    expect(c.err()).toBe('');
    expect(code).toBe(0);
    expect(sqs.commandCalls(GetQueueAttributesCommand)[0]?.args[0].input.QueueUrl).toBe(
      'https://sqs/123/billing-dlq.fifo',
    );
  });

  it('refuses stacks none of which carries the outbox, naming them and what to do', async () => {
    stack('Billing', billing);
    stack('History', orderHistory);
    const error = await failure(resolveDeployment({ stack: 'Billing,History', region: 'eu-west-1' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain('none of the stacks Billing, History');
    expect((error as Error).message).toContain('OutboxTableName');
    expect((error as Error).message).toContain('--outbox <parameterPrefix>');
  });

  it('refuses several stacks that carry outbox outputs, naming them', async () => {
    stack('Orders', outboxOutputs);
    stack('Payments', [{ OutputKey: 'OutboxTableName', OutputValue: 'payments-outbox' }, ...billing]);
    const error = await failure(resolveDeployment({ stack: ['Orders', 'Payments'], region: 'eu-west-1' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain('stacks Orders, Payments all carry outbox outputs');
    expect((error as Error).message).toContain('one outbox at a time');
  });

  it('a stack with only some outbox outputs counts as the outbox stack and must have OutboxTableName', async () => {
    stack('Orders', [{ OutputKey: 'OutboxBusName', OutputValue: 'orders-bus' }]);
    stack('Billing', billing);
    const error = await failure(resolveDeployment({ stack: 'Orders,Billing', region: 'eu-west-1' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain('stack Orders has no OutboxTableName output');
  });

  it('refuses the same subscription in two stacks, naming both', async () => {
    stack('Orders', [...outboxOutputs, ...billing]);
    stack('Billing', billing);
    const error = await failure(resolveDeployment({ stack: 'Orders,Billing', region: 'eu-west-1' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain('subscription "billing" is in two stacks, Orders and Billing');
    expect((error as Error).message).toContain('SubBillingQueueUrl');
  });

  it('names the stack with an incomplete subscription and the one that does not exist', async () => {
    stack('Orders', outboxOutputs);
    stack('Billing', [billing[0] as Output]);
    const incomplete = await failure(resolveDeployment({ stack: 'Orders,Billing', region: 'eu-west-1' }));
    expect(incomplete).toBeInstanceOf(DeploymentNotFoundError);
    expect((incomplete as Error).message).toContain(
      'stack Billing has an incomplete subscription "Billing": output SubBillingDlqUrl is missing',
    );

    cfn
      .on(DescribeStacksCommand, { StackName: 'Gone' })
      .rejects(Object.assign(new Error('Stack with id Gone does not exist'), { name: 'ValidationError' }));
    const missing = await failure(resolveDeployment({ stack: 'Orders,Gone', region: 'eu-west-1' }));
    expect(missing).toBeInstanceOf(DeploymentNotFoundError);
    expect((missing as Error).message).toContain('stack Gone was not found in eu-west-1');
  });
});

describe('--outbox <parameterPrefix>', () => {
  const prefix = '/orders/outbox';
  const parameters = {
    [`${prefix}/table-arn`]: 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders-outbox',
    [`${prefix}/topic-arn`]: 'arn:aws:sns:eu-west-1:123456789012:orders.fifo',
    [`${prefix}/bus-arn`]: 'arn:aws:events:eu-west-1:123456789012:event-bus/orders-bus',
  };
  function publish(values: Record<string, string>): void {
    ssm.on(GetParametersCommand).callsFake((input: { Names?: string[] }) => ({
      Parameters: (input.Names ?? [])
        .filter((n) => values[n] !== undefined)
        .map((n) => ({ Name: n, Value: values[n], Type: 'String' })),
      InvalidParameters: (input.Names ?? []).filter((n) => values[n] === undefined),
    }));
  }

  it('finds the outbox by its SSM parameters: table and bus names from their ARNs, no stack read', async () => {
    publish(parameters);
    expect(await resolveDeployment({ outbox: prefix, region: 'eu-west-1' })).toEqual({
      outboxTableName: 'orders-outbox',
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:orders.fifo',
      busName: 'orders-bus',
      subscriptions: [],
    });
    expect(ssm.commandCalls(GetParametersCommand)[0]?.args[0].input.Names).toEqual([
      `${prefix}/table-arn`,
      `${prefix}/topic-arn`,
      `${prefix}/bus-arn`,
    ]);
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });

  it('a subscription not found says to add its stack with --stack', async () => {
    publish(parameters);
    const c = capture();
    expect(await runDlqCommand(['list', 'billing', '--outbox', prefix, '--region', 'eu-west-1'], c.io)).toBe(
      2,
    );
    expect(c.err()).toContain('no subscription "billing" in this deployment; known: (none)');
    expect(c.err()).toContain('is found when that stack is added with --stack');
  });

  it('takes the subscriptions from the --stack stacks (the subscribers of the outbox)', async () => {
    publish(parameters);
    stack('Billing', billing);
    stack('History', orderHistory);
    const deployment = await resolveDeployment({ outbox: `${prefix}/`, stack: 'Billing,History' });
    expect(deployment.outboxTableName).toBe('orders-outbox');
    expect(deployment.subscriptions.map((s) => s.name)).toEqual(['billing', 'order-history']);
  });

  it("takes the relay failure queue from the outbox's own stack, and refuses another outbox's stack", async () => {
    publish(parameters);
    stack('Orders', [...outboxOutputs, ...orderHistory]);
    const own = await resolveDeployment({ outbox: prefix, stack: 'Orders' });
    expect(own.relayFailureQueueUrl).toBe('https://sqs/123/relay-failures');
    expect(own.busName).toBe('orders-bus');

    stack('Payments', [{ OutputKey: 'OutboxTableName', OutputValue: 'payments-outbox' }, ...billing]);
    const error = await failure(resolveDeployment({ outbox: prefix, stack: 'Payments' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain(
      'stack Payments carries the outputs of another outbox (table payments-outbox) than --outbox /orders/outbox (table orders-outbox)',
    );
  });

  it('an outbox without topic or bus has no topic-arn / bus-arn parameter', async () => {
    publish({ [`${prefix}/table-arn`]: parameters[`${prefix}/table-arn`] as string });
    expect(await resolveDeployment({ outbox: prefix })).toEqual({
      outboxTableName: 'orders-outbox',
      subscriptions: [],
    });
  });

  it('a missing table-arn parameter says which and to deploy the Outbox with parameterPrefix', async () => {
    publish({});
    const error = await failure(resolveDeployment({ outbox: prefix, region: 'eu-west-1' }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain(
      'SSM parameter /orders/outbox/table-arn was not found in eu-west-1',
    );
    expect((error as Error).message).toContain("parameterPrefix: '/orders/outbox'");

    const c = capture();
    expect(await runStatusCommand(['--outbox', prefix, '--region', 'eu-west-1'], c.io)).toBe(1);
    expect(c.err()).toContain('SSM parameter /orders/outbox/table-arn was not found');
  });

  it('a parameter that is not the expected ARN is refused, naming it', async () => {
    publish({ ...parameters, [`${prefix}/bus-arn`]: 'orders-bus' });
    const error = await failure(resolveDeployment({ outbox: prefix }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain('SSM parameter /orders/outbox/bus-arn holds "orders-bus"');
  });

  it('an SSM failure is a DeploymentNotFoundError with the hint', async () => {
    ssm
      .on(GetParametersCommand)
      .rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));
    const error = await failure(resolveDeployment({ outbox: prefix }));
    expect(error).toBeInstanceOf(DeploymentNotFoundError);
    expect((error as Error).message).toContain(
      "cannot read the outbox's SSM parameters under /orders/outbox",
    );
    expect((error as Error).message).toContain('docs/operations-cli.md');
  });

  it.each([
    [['--outbox', prefix, '--local'], '--outbox reads the SSM parameters of a deployed Outbox'],
    [
      ['--outbox', prefix, '--deployment', 'x.json'],
      '--outbox reads the SSM parameters of a deployed Outbox',
    ],
    [['--outbox', 'orders/outbox'], '--outbox takes the parameterPrefix'],
    [['--stack', ','], '--stack needs a stack name'],
  ])('%j → exit 2 with the reason and the usage', async (argv, reason) => {
    const c = capture();
    expect(await runStatusCommand(argv, c.io)).toBe(2);
    expect(c.err()).toContain(reason);
    expect(c.err()).toContain('--outbox <prefix>');
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(0);
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });

  it('the usage error type is CliUsageError for a bad prefix', async () => {
    const error = await failure(resolveDeployment({ outbox: 'orders' }));
    expect(error).toBeInstanceOf(CliUsageError);
  });
});
