/**
 * vitest globalSetup: a folder for this run's `npm pack` of the repository, so the package tests (test/package/)
 * pack and build once per run rather than once per file (see `packOncePerRun` in test/package/adopter.ts).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder for the run's tarball; created by the first file that packs. */
    runPackDir: string | undefined;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const dir = path.join(tmpdir(), `outbox-run-pack-${randomUUID()}`);
  project.provide('runPackDir', dir);
  return () => rm(dir, { recursive: true, force: true });
}
