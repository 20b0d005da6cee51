/** One CloudWatch-style datapoint. A metric is identified by namespace, name and the exact dimension set. */
export interface MetricDatum {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  readonly unit?: string;
  /** Epoch milliseconds. */
  readonly timestamp: number;
}

export interface MetricQuery {
  readonly namespace: string;
  readonly metricName: string;
  /** Must equal the datum's dimension set exactly (CloudWatch semantics). @default {} */
  readonly dimensions?: Readonly<Record<string, string>>;
  /** Inclusive, epoch ms. */
  readonly startTime: number;
  /** Exclusive, epoch ms. */
  readonly endTime: number;
}

export interface MetricStoreOptions {
  /** Datapoints older than this are dropped. @default 3 hours */
  readonly retentionMs?: number;
  /** Hard cap on stored datapoints; the oldest go first. @default 200_000 */
  readonly maxDatapoints?: number;
}

/** In-memory stand-in for CloudWatch metrics: fed by EMF log lines, Lambda invocations and queue samplers. */
export class MetricStore {
  readonly #data: MetricDatum[] = [];
  readonly #retentionMs: number;
  readonly #max: number;

  constructor(opts: MetricStoreOptions = {}) {
    this.#retentionMs = opts.retentionMs ?? 3 * 60 * 60 * 1000;
    this.#max = opts.maxDatapoints ?? 200_000;
  }

  put(datum: MetricDatum): void {
    this.#data.push(datum);
    if (this.#data.length > this.#max) this.#data.splice(0, this.#data.length - this.#max);
  }

  /** Parses one stdout line; stores its metrics if it is EMF. Returns how many datapoints it held. */
  putEmfLine(line: string): number {
    const data = parseEmf(line);
    for (const datum of data) this.put(datum);
    return data.length;
  }

  query(q: MetricQuery): MetricDatum[] {
    this.#prune(q.endTime);
    const key = dimensionKey(q.dimensions ?? {});
    return this.#data.filter(
      (d) =>
        d.namespace === q.namespace &&
        d.metricName === q.metricName &&
        d.timestamp >= q.startTime &&
        d.timestamp < q.endTime &&
        dimensionKey(d.dimensions) === key,
    );
  }

  all(): readonly MetricDatum[] {
    return this.#data;
  }

  clear(): void {
    this.#data.length = 0;
  }

  #prune(now: number): void {
    const cutoff = now - this.#retentionMs;
    let drop = 0;
    while (drop < this.#data.length && (this.#data[drop] as MetricDatum).timestamp < cutoff) drop++;
    if (drop > 0) this.#data.splice(0, drop);
  }
}

function dimensionKey(dimensions: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(dimensions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Datapoints of a CloudWatch Embedded Metric Format line (as printed by Powertools Metrics): one per
 * metric value per dimension set. Returns [] for anything that is not EMF.
 */
export function parseEmf(line: string, fallbackTimestamp = Date.now()): MetricDatum[] {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{') || !trimmed.includes('"_aws"')) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    return [];
  }
  if (!isObject(doc) || !isObject(doc._aws)) return [];
  const aws = doc._aws;
  const timestamp = typeof aws.Timestamp === 'number' ? aws.Timestamp : fallbackTimestamp;
  const directives = Array.isArray(aws.CloudWatchMetrics) ? aws.CloudWatchMetrics : [];
  const out: MetricDatum[] = [];
  for (const directive of directives) {
    if (!isObject(directive) || typeof directive.Namespace !== 'string') continue;
    const dimensionSets: unknown[][] =
      Array.isArray(directive.Dimensions) && directive.Dimensions.length > 0
        ? directive.Dimensions.filter(Array.isArray)
        : [[]];
    const metrics = Array.isArray(directive.Metrics) ? directive.Metrics : [];
    for (const metric of metrics) {
      if (!isObject(metric) || typeof metric.Name !== 'string') continue;
      const raw = doc[metric.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is number => typeof v === 'number');
      for (const set of dimensionSets) {
        const dimensions: Record<string, string> = {};
        for (const name of set) {
          const value = doc[String(name)];
          if (value !== undefined) dimensions[String(name)] = String(value);
        }
        for (const value of values) {
          out.push({
            namespace: directive.Namespace,
            metricName: metric.Name,
            dimensions,
            value,
            ...(typeof metric.Unit === 'string' ? { unit: metric.Unit } : {}),
            timestamp,
          });
        }
      }
    }
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
