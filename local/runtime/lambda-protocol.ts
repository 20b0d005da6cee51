// Messages between lambda.ts (parent) and lambda-worker.ts (one execution environment).

export interface WorkerData {
  readonly codeDir: string;
  readonly handler: string;
  readonly functionName: string;
  readonly functionArn: string;
  readonly memorySizeMb: number;
  readonly logGroupName: string;
  readonly logStreamName: string;
  /** Added to the environment's `Date` clock (fault injection: clock skew between functions). */
  readonly clockSkewMs?: number;
}

export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

export interface InvokeMessage {
  readonly type: 'invoke';
  readonly requestId: string;
  readonly event: unknown;
  /** Epoch ms at which the invocation times out. */
  readonly deadline: number;
  readonly clientContext?: unknown;
}

export type WorkerToParentMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'init-error'; readonly error: LambdaErrorPayload }
  | {
      readonly type: 'log';
      readonly stream: 'stdout' | 'stderr';
      readonly text: string;
      readonly requestId?: string;
    }
  | { readonly type: 'result'; readonly requestId: string; readonly ok: true; readonly result: unknown }
  | {
      readonly type: 'result';
      readonly requestId: string;
      readonly ok: false;
      readonly error: LambdaErrorPayload;
      /** The environment is exiting after this failure and must not be reused. */
      readonly fatal?: boolean;
    };
