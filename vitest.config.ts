import { configDefaults, defineConfig } from 'vitest/config';

// Tests and examples import the package by its public names (`serverless-outbox/writer`, ...); this condition
// resolves them to the TypeScript sources instead of the built `dist/`.
const conditions = ['serverless-outbox-source', 'node', 'import', 'default'];

// One DynamoDB Local per worker and one `npm pack` for the run, not one per file (see the files).
const globalSetup = ['test/support/global-services.ts', 'test/support/global-pack.ts'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['serverless-outbox-source'] } },
  test: {
    // Two cores: integration suites each start DynamoDB Local / fauxqs, so keep workers low.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    // CDK's built-in CloudFormation validation starts a WASM engine (~3 CPU s per process) and checks every
    // template at each synth (~0.4 s), yet only warns unless @aws-cdk/core:validateAgainstDefaultRules is set:
    // off for the suite (and the synths it spawns); test/cdk/cloudformation-validation.test.ts runs it as errors.
    env: { CDK_VALIDATION: 'false' },
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        // The CDK tests build stacks in fresh Apps and mock no modules: one worker process runs several files,
        // loading aws-cdk-lib once instead of once per file.
        test: { name: 'cdk', include: ['test/cdk/**/*.test.ts'], isolate: false },
      },
      {
        extends: true,
        test: {
          name: 'rest',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/cdk/**'],
          globalSetup,
        },
      },
    ],
  },
});
