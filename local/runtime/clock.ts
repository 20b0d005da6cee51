/** Time source for schedules and alarms, so tests can move time by hand. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Runs `callback` once `delayMs` have passed on this clock. */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
}

export interface TimerHandle {
  cancel(): void;
}

// setTimeout overflows above 2^31-1 ms (~24.8 days): longer waits are chained.
const MAX_TIMEOUT_MS = 2_147_483_647;

/** Real time. Timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    let timer: NodeJS.Timeout;
    const due = Date.now() + delayMs;
    const arm = (): void => {
      const remaining = due - Date.now();
      timer = setTimeout(
        remaining > MAX_TIMEOUT_MS ? arm : callback,
        Math.max(0, Math.min(remaining, MAX_TIMEOUT_MS)),
      );
      timer.unref();
    };
    arm();
    return { cancel: () => clearTimeout(timer) };
  },
};

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
}

/** A clock that only moves when told to; `advance` fires due timers in time order. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(start: number | Date = Date.UTC(2030, 0, 1)) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const timer: ManualTimer = { due: this.#now + Math.max(0, delayMs), seq: this.#seq++, callback };
    this.#timers.push(timer);
    return { cancel: () => (this.#timers = this.#timers.filter((t) => t !== timer)) };
  }

  /** Moves time forward, firing each due timer at its own time; yields to pending promises in between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#timers
        .filter((t) => t.due <= target)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = next.due;
      next.callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = target;
  }

  /** Number of armed timers (for tests). */
  get pendingTimers(): number {
    return this.#timers.length;
  }
}
