/** The local EventBridge's errors (re-exported by bus.ts). */

/** A whole PutEvents request is invalid (AWS: HTTP 400 `ValidationException`). */
export class PutEventsValidationError extends Error {
  readonly code = 'ValidationException';
  constructor(message: string) {
    super(message);
    this.name = 'PutEventsValidationError';
  }
}

/** A bus, rule or target given to the programmatic API is not usable. */
export class LocalEventBridgeConfigError extends Error {
  readonly subject: string;
  constructor(subject: string, problem: string) {
    super(`Local EventBridge: ${subject}: ${problem}`);
    this.name = 'LocalEventBridgeConfigError';
    this.subject = subject;
  }
}

/** `url` was read before `start()` resolved. */
export class LocalEventBridgeNotStartedError extends Error {
  constructor() {
    super('Local EventBridge has no URL yet: await start() first.');
    this.name = 'LocalEventBridgeNotStartedError';
  }
}
