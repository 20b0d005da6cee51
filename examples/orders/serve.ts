/**
 * `npm start -- --serve`: keeps the offline stack running, writes `.local-runs/deployment.json` for the
 * operator CLI (`npx outbox status --local`), prints the endpoints and stops cleanly on Ctrl-C.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { deploymentFromOutputs, startOfflineStack } from 'serverless-outbox/local';
import { DEMO_SYNTH_SCRIPT, type DemoResources } from './synth.ts';

export async function serve(options: { workDir: string }): Promise<number> {
  await mkdir(options.workDir, { recursive: true });
  const logFile = path.join(options.workDir, 'functions.log');
  const log = createWriteStream(logFile);
  console.log('serverless-outbox offline: synthesizing the CDK app and starting the stack');
  const stack = await startOfflineStack<DemoResources>({
    workDir: options.workDir,
    synthScript: DEMO_SYNTH_SCRIPT,
    log: (line) => log.write(`${new Date().toISOString()} ${line}\n`),
  });
  const endpoints = {
    dynamodb: stack.dynamodb.endpoint,
    sqs: stack.fauxqs.endpoint,
    sns: stack.fauxqs.endpoint,
    eventbridge: stack.bus.url,
  };
  const deployment = { ...deploymentFromOutputs(stack.outputs(), stack.stackName), endpoints };
  const deploymentFile = path.join(options.workDir, 'deployment.json');
  await writeFile(deploymentFile, `${JSON.stringify(deployment, null, 2)}\n`);

  const producer = stack.ref(stack.resources.producer);
  console.log(`\nready in ${stack.timings.readyMs} ms. Endpoints (AWS SDK v3 reads these variables):\n`);
  console.log(`export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local`);
  console.log(
    `export AWS_ENDPOINT_URL_DYNAMODB=${endpoints.dynamodb} AWS_ENDPOINT_URL_DYNAMODB_STREAMS=${endpoints.dynamodb}`,
  );
  console.log(`export AWS_ENDPOINT_URL_SQS=${endpoints.sqs} AWS_ENDPOINT_URL_SNS=${endpoints.sns}`);
  console.log(`export AWS_ENDPOINT_URL_EVENTBRIDGE=${endpoints.eventbridge}`);
  console.log(`export OUTBOX_TABLE_NAME=${deployment.outboxTableName}`);
  console.log('\nstack outputs:');
  for (const output of stack.outputs()) console.log(`  ${output.OutputKey} = ${output.OutputValue}`);
  console.log(`\ndemo producer function: ${producer} (functions log: ${logFile})`);
  console.log(
    `operator CLI: npx outbox status --local   (deployment: ${path.relative(process.cwd(), deploymentFile)})`,
  );
  console.log('press Ctrl-C to stop');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('\nstopping...');
  await stack.stop();
  await rm(deploymentFile, { force: true });
  log.end();
  console.log('stopped');
  return 0;
}
