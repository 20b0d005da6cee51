/** What `outbox match` (EventBridge and `--sns` modes) shares: its I/O, exit codes and file reading. */

export interface MatchCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readFile: (p: string) => Promise<string>;
}

export const MATCH_EXIT = { match: 0, noMatch: 1, error: 2 } as const;

export type ReadResult = { kind: 'ok'; text: string; value: unknown } | { kind: 'error'; message: string };

/** Reads and parses a JSON file; errors come back as text for the user, never thrown. */
export async function readJsonFile(io: MatchCommandIo, path: string, what: string): Promise<ReadResult> {
  let text: string;
  try {
    text = await io.readFile(path);
  } catch (error) {
    return { kind: 'error', message: `cannot read ${what} file ${path}: ${describe(error)}` };
  }
  try {
    return { kind: 'ok', text, value: JSON.parse(text) };
  } catch (error) {
    return { kind: 'error', message: `${what} file ${path} is not valid JSON: ${describe(error)}` };
  }
}

export function fail(io: MatchCommandIo, message: string): number {
  io.stderr(`outbox match: ${message}\n`);
  return MATCH_EXIT.error;
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
