import { defineConfig } from 'vitest/config';

// Tests and examples import the package by its public names (`serverless-outbox/writer`, ...); this condition
// resolves them to the TypeScript sources instead of the built `dist/`.
const conditions = ['serverless-outbox-source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['serverless-outbox-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: integration suites each start DynamoDB Local / fauxqs, so keep workers low.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
