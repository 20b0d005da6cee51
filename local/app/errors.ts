/** Errors of `startLocal` / `synthesizeApp`: each message says what to do. */

/** Base class: every error `startLocal()` throws on purpose. */
export class LocalAppError extends Error {
  override name = 'LocalAppError';
}

export class NoCdkAppError extends LocalAppError {
  override name = 'NoCdkAppError';
  readonly cwd: string;
  constructor(cwd: string, hasCdkJson: boolean) {
    super(
      `No CDK app to run in ${cwd}: ${hasCdkJson ? 'its cdk.json has no "app"' : 'there is no cdk.json'}. ` +
        "Pass the command that synthesizes your app, e.g. startLocal({ app: 'node bin/app.ts' }) or " +
        "`outbox local --app 'node bin/app.ts'`, or set `cwd` to the folder whose cdk.json names it.",
    );
    this.cwd = cwd;
  }
}

export class SynthesisFailedError extends LocalAppError {
  override name = 'SynthesisFailedError';
  readonly command: string;
  readonly exitCode: number | null;
  readonly output: string;
  constructor(command: string, cwd: string, exitCode: number | null, output: string) {
    super(
      `The command \`${command}\` (the CDK app, or cdk.json's build) failed in ${cwd} (${exitCode === null ? 'killed' : `exit ${exitCode}`}). ` +
        `Run \`npx cdk synth\` there to see the error; the app's last output:\n${output.slice(-4000)}`,
    );
    this.command = command;
    this.exitCode = exitCode;
    this.output = output;
  }
}

export class NoSuchStackError extends LocalAppError {
  override name = 'NoSuchStackError';
  readonly stackName: string;
  constructor(stackName: string, known: readonly string[]) {
    super(`The app has no stack ${stackName}. Its stacks: ${known.join(', ') || '(none)'}.`);
    this.stackName = stackName;
  }
}

export class NoStacksError extends LocalAppError {
  override name = 'NoStacksError';
  constructor(outdir: string) {
    super(
      `The CDK app synthesized no stacks (cloud assembly ${outdir}). Does its entry point create an App and ` +
        'Stacks? (With a custom `outdir` in `new App({...})`, leave it unset: the CLI and startLocal set CDK_OUTDIR.)',
    );
  }
}

export class UnknownResourceError extends LocalAppError {
  override name = 'UnknownResourceError';
  readonly resource: string;
  constructor(resource: string, candidates: readonly string[]) {
    const near = candidates.slice(0, 20);
    super(
      `No running resource ${resource}. Name it by construct path (\`Stack/Construct/Child\`, as the ` +
        '`aws:cdk:path` metadata without the trailing /Resource), by `Stack/LogicalId`, or by its local name. ' +
        `${near.length > 0 ? `Known paths: ${near.join(', ')}${candidates.length > near.length ? ', ...' : ''}` : ''}`,
    );
    this.resource = resource;
  }
}

/** A function invoked with `local.invoke()` failed (threw, timed out, crashed or was throttled). */
export class LocalInvokeError extends LocalAppError {
  override name = 'LocalInvokeError';
  readonly functionName: string;
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace: readonly string[];
  constructor(
    functionName: string,
    error: { errorType: string; errorMessage: string; trace?: readonly string[] },
  ) {
    super(`${functionName} failed: ${error.errorType}: ${error.errorMessage}`);
    this.functionName = functionName;
    this.errorType = error.errorType;
    this.errorMessage = error.errorMessage;
    this.trace = error.trace ?? [];
  }
}

/** startLocal() was interrupted (SIGINT/SIGTERM or an AbortSignal) before it was ready. */
export class LocalStartAbortedError extends LocalAppError {
  override name = 'LocalStartAbortedError';
  constructor(reason: string) {
    super(`startLocal() was interrupted (${reason}); everything it had started is stopped.`);
  }
}
