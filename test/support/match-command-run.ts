/**
 * Running `outbox match` in-process on files in a temporary folder, for the match command tests (EventBridge
 * patterns and SNS filter policies).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { runMatchCommand } from '../../local/eventbridge/match-command.ts';

export interface MatchRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Creates a temporary folder for the calling test file (removed after it) and returns its helpers. */
export function useMatchFiles(prefix: string) {
  let dir = '';
  let files = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    /** A path in the folder that nothing was written to. */
    path: (name: string) => join(dir, name),
    /** Writes `content` (JSON unless a string) to a new file and returns its path. */
    async file(content: unknown, name = `f${files++}.json`): Promise<string> {
      const path = join(dir, name);
      await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    },
  };
}

/** Runs `outbox match <argv>` and captures its exit code and output. */
export async function runMatch(argv: string[]): Promise<MatchRun> {
  let stdout = '';
  let stderr = '';
  const code = await runMatchCommand(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    readFile: (p) => readFile(p, 'utf8'),
  });
  return { code, stdout, stderr };
}
