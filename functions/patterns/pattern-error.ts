/**
 * Errors of the pattern engines. Operator compilers throw `PatternSyntaxError` (the reason alone); each engine
 * rethrows it as its service's error with the path of the offending field.
 */

/** Internal: a rule broken inside one match value; carries AWS's reason text. */
export class PatternSyntaxError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'PatternSyntaxError';
    this.reason = reason;
  }
}

/** Thrown by `compilePattern` for a pattern AWS would reject with `InvalidEventPatternException`. */
export class InvalidEventPatternError extends Error {
  /** What is wrong: the `Reason:` part of AWS's message, word for word where AWS's wording is known. */
  readonly reason: string;
  /** Dotted path of the offending field in the pattern (`""` for the pattern itself). */
  readonly path: string;
  constructor(reason: string, path: string, options?: { cause?: unknown }) {
    super(
      `Event pattern is not valid. Reason: ${reason}${path ? ` (at pattern path "${path}")` : ''}`,
      options,
    );
    this.name = 'InvalidEventPatternError';
    this.reason = reason;
    this.path = path;
  }
}
