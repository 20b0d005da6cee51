/**
 * vitest globalSetup: one DynamoDB Local per test worker for the whole run, instead of one per test file (a JVM
 * boot costs seconds of CPU and, on a busy machine, 5–20 s of wall time per file). Worker N (VITEST_POOL_ID) gets
 * `sharedDynamoDbLocal[N - 1]`; a worker runs one file at a time, and `useDynamoDbLocal()` empties the instance
 * before each file, so a file sees a fresh DynamoDB Local as before.
 *
 * The instances start in the background (files that need none run meanwhile) and only when a selected test file
 * calls `useDynamoDbLocal(`: `vitest run test/unit/x.test.ts` boots no JVM.
 */
import { readFile } from 'node:fs/promises';
import type { TestProject } from 'vitest/node';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../local/services/dynamodb-local.ts';
import { freePort } from '../../local/services/free-port.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Endpoint of the DynamoDB Local shared by the files of worker N, at index N - 1 (absent: none shared). */
    sharedDynamoDbLocal: readonly string[] | undefined;
  }
}

const USES_DYNAMODB_LOCAL = 'useDynamoDbLocal(';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (!(await someSelectedFileUses(project, USES_DYNAMODB_LOCAL))) {
    project.provide('sharedDynamoDbLocal', undefined);
    return undefined;
  }
  const workers = Math.max(1, project.config.maxWorkers);
  const ports = await Promise.all(Array.from({ length: workers }, () => freePort()));
  // Not awaited: the JVMs boot while the first files (CDK, unit) run; useDynamoDbLocal() waits for its instance.
  const started: Promise<DynamoDbLocal | undefined>[] = ports.map((port) =>
    startDynamoDbLocal({ port, startTimeoutMs: 100_000 }).catch((error: unknown) => {
      // The files that need it time out naming this; say why here once.
      console.error(`test/support/global-services.ts: DynamoDB Local on port ${port} did not start:`, error);
      return undefined;
    }),
  );
  project.provide(
    'sharedDynamoDbLocal',
    ports.map((port) => `http://127.0.0.1:${port}`),
  );
  return async () => {
    await Promise.all(started.map(async (service) => (await service)?.stop()));
  };
}

/**
 * Whether a test file the run selected contains `marker`. Reads the run's file filters from vitest's (internal)
 * `filenamePattern`; when that is not there, assumes yes (the cost of a wrong yes is two idle JVM boots).
 */
async function someSelectedFileUses(project: TestProject, marker: string): Promise<boolean> {
  try {
    const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
    const { testFiles } = await project.globTestFiles(filters ?? []);
    for (const file of testFiles) {
      if ((await readFile(file, 'utf8')).includes(marker)) return true;
    }
    return false;
  } catch {
    return true;
  }
}
