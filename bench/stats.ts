/** Small helpers shared by the benchmarks. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** CPU microseconds (user + system) per iteration of `fn`, median of `runs` runs of `iterations` each. */
export async function cpuMicrosPerOp(
  fn: (i: number) => unknown | Promise<unknown>,
  options: { iterations: number; runs: number; warmup?: number },
): Promise<number> {
  for (let i = 0; i < (options.warmup ?? options.iterations); i++) await fn(i);
  const perRun: number[] = [];
  for (let r = 0; r < options.runs; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < options.iterations; i++) await fn(i);
    const used = process.cpuUsage(start);
    perRun.push((used.user + used.system) / options.iterations);
  }
  return Math.round(median(perRun) * 100) / 100;
}

/** Rounds to `digits` decimals for reporting. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Bytes as whole MiB. */
export function mib(bytes: number): number {
  return round(bytes / 2 ** 20, 0);
}

/** A positive number from the environment variable `name`, or `fallback` when it is unset. */
export function positiveFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0)) throw new Error(`${name} must be a positive number, but "${raw}" was given`);
  return value;
}
