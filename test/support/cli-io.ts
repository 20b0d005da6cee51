import type { CliIo } from '../../bin/commands/cli-support.ts';

/** What a test reads back from an operator command's run. */
export interface CapturedIo {
  readonly io: CliIo;
  out(): string;
  err(): string;
  /** Confirmation questions the command asked. */
  readonly questions: string[];
  /** Sleeps the command asked for, in ms (the fake clock moved by each). */
  readonly sleeps: number[];
}

/**
 * A CliIo that captures stdout and stderr. With `now`, a fake clock that moves only when the command sleeps
 * (`onSleep` runs inside each sleep); with `answer`, a terminal that answers every confirmation so (absent: no
 * terminal, as with a pipe).
 */
export function captureIo(
  options: { now?: number; answer?: boolean; onSleep?: (ms: number) => Promise<void> } = {},
): CapturedIo {
  let out = '';
  let err = '';
  const questions: string[] = [];
  const sleeps: number[] = [];
  let t = options.now;
  const io: CliIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    ...(t === undefined
      ? {}
      : {
          now: () => t as number,
          sleep: async (ms: number) => {
            sleeps.push(ms);
            await options.onSleep?.(ms);
            t = (t as number) + ms;
          },
        }),
    ...(options.answer === undefined
      ? {}
      : {
          confirm: async (question: string) => {
            questions.push(question);
            return options.answer as boolean;
          },
        }),
  };
  return { io, out: () => out, err: () => err, questions, sleeps };
}
