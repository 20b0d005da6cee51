import { afterEach, describe, expect, it } from 'vitest';
import { LambdaRuntime } from '../../local/runtime/lambda.ts';
import { useHandlerDirs } from './fixtures.ts';

// Lambda's Node.js runtime provides the AWS SDK v3; bundles leave it out. The handler folders here are in the OS
// temp folder, outside any node_modules, as a CDK asset of a project's cdk.out is for the runtime.
describe('functions that import the AWS SDK the bundle left out', () => {
  const handlerDir = useHandlerDirs();
  let runtime: LambdaRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
  });

  it.each([
    [
      'CommonJS require (NodejsFunction default)',
      'index.js',
      `"use strict";
const { SQSClient } = require('@aws-sdk/client-sqs');
exports.handler = async () => typeof SQSClient;`,
    ],
    [
      'ESM import',
      'index.mjs',
      `import { SQSClient } from '@aws-sdk/client-sqs';
export const handler = async () => typeof SQSClient;`,
    ],
  ])('%s resolves @aws-sdk/* from the runtime', async (_name, file, source) => {
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'sdk',
      codeDir: await handlerDir({ [file]: source }),
      handler: 'index.handler',
    });
    const result = await runtime.invoke('sdk', {});
    expect(result.error).toBeUndefined();
    expect(result.result).toBe('function');
  });

  it('a module that is not the AWS SDK still fails to load, as in Lambda', async () => {
    runtime = new LambdaRuntime({ log: () => {} });
    runtime.register({
      functionName: 'missing',
      codeDir: await handlerDir({
        'index.js': `require('left-pad-not-installed'); exports.handler = async () => 1;`,
      }),
      handler: 'index.handler',
    });
    const result = await runtime.invoke('missing', {});
    expect(result.error?.errorType).toBe('Runtime.ImportModuleError');
  });
});
