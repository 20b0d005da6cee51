/**
 * AWS SDK clients for one command run. Against AWS they use the default credential chain and the `--region`
 * option; for the offline runtime (a deployment with `endpoints`) they point at the local endpoints with
 * dummy credentials in us-east-1.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Deployment, DeploymentOptions } from './deployment.ts';

export interface OutboxClients {
  readonly dynamodb: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly sns: SNSClient;
  readonly eventBridge: EventBridgeClient;
  readonly cloudWatch: CloudWatchClient;
  /** True when the deployment is the offline runtime (emulators instead of AWS). */
  readonly local: boolean;
  /** Closes every client's sockets. */
  destroy(): void;
}

const LOCAL_REGION = 'us-east-1';
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

interface ClientConfig {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Client config for one service: its local endpoint when the deployment has one, otherwise AWS. */
export function clientConfig(
  deployment: Pick<Deployment, 'endpoints'>,
  service: string,
  options: Pick<DeploymentOptions, 'region'> = {},
): ClientConfig {
  if (deployment.endpoints !== undefined) {
    const endpoint = deployment.endpoints[service];
    return {
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      // A service the offline runtime does not serve gets an unroutable endpoint rather than real AWS.
      endpoint: endpoint ?? 'http://127.0.0.1:9',
    };
  }
  return options.region === undefined ? {} : { region: options.region };
}

export function createClients(
  deployment: Pick<Deployment, 'endpoints'>,
  options: Pick<DeploymentOptions, 'region'> = {},
): OutboxClients {
  const ddb = new DynamoDBClient(clientConfig(deployment, 'dynamodb', options));
  const dynamodb = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  const sqs = new SQSClient(clientConfig(deployment, 'sqs', options));
  const sns = new SNSClient(clientConfig(deployment, 'sns', options));
  const eventBridge = new EventBridgeClient(clientConfig(deployment, 'eventbridge', options));
  const cloudWatch = new CloudWatchClient(clientConfig(deployment, 'cloudwatch', options));
  return {
    dynamodb,
    sqs,
    sns,
    eventBridge,
    cloudWatch,
    local: deployment.endpoints !== undefined,
    destroy() {
      for (const client of [ddb, sqs, sns, eventBridge, cloudWatch]) client.destroy();
    },
  };
}
