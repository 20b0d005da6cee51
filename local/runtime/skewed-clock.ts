/**
 * Clock skew for one execution environment (fault injection): `Date.now()`, `new Date()` and `Date()` in the
 * worker read the host clock plus `offsetMs`, as a function whose clock drifted from the others' would. Runs in
 * the worker before the handler module loads, so code that keeps a reference to `Date.now` gets the skewed one.
 * Timers, `performance.now()` and the invocation deadline keep the true clock (the runtime, not the function's
 * code, enforces timeouts).
 */
export function installClockSkew(offsetMs: number): void {
  if (!offsetMs) return;
  const TrueDate = globalThis.Date;
  const trueNow = TrueDate.now.bind(TrueDate);
  const now = () => trueNow() + offsetMs;
  const SkewedDate = new Proxy(TrueDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget);
    },
    // `Date()` called without `new` returns the current time as a string.
    apply() {
      return new TrueDate(now()).toString();
    },
    get(target, property, receiver) {
      if (property === 'now') return now;
      return Reflect.get(target, property, receiver);
    },
  });
  globalThis.Date = SkewedDate;
}
