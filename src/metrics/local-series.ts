import type { Registry } from 'prom-client';

// Counters and a histogram for the per-request metrics, kept in plain Maps and handed to the
// registry in prom-client's collector shape at scrape time. prom-client validates and hashes
// the label object on every inc/observe; on the 1 KiB download path that was 10% of the
// server's CPU (bench --cpu-prof), for three metric updates per request. Here an update is one
// Map lookup by a joined key and an increment. Same names, labels and text format as before.

interface Series {
  labels: Record<string, string>;
  value: number;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

abstract class LocalMetric {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly labelNames: readonly string[],
    registers: Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never);
  }

  protected labelsOf(values: readonly string[]): Record<string, string> {
    const labels: Record<string, string> = {};
    this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
    return labels;
  }

  protected abstract values(): MetricValue[];
  abstract reset(): void;

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }
}

export class LocalCounter extends LocalMetric {
  readonly type = 'counter';
  private series = new Map<string, Series>();

  /** `values` in labelNames order. */
  inc(values: readonly string[], by = 1): void {
    const key = values.join('\0');
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: this.labelsOf(values), value: by });
  }

  protected values(): MetricValue[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }

  reset(): void {
    this.series.clear();
  }
}

interface Buckets {
  labels: Record<string, string>;
  /** Per bucket, not cumulative; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class LocalHistogram extends LocalMetric {
  readonly type = 'histogram';
  private series = new Map<string, Buckets>();

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registers: Registry[],
  ) {
    super(name, help, labelNames, registers);
  }

  observe(values: readonly string[], v: number): void {
    const key = values.join('\0');
    let s = this.series.get(key);
    if (!s) {
      s = { labels: this.labelsOf(values), counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        out.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      out.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }

  reset(): void {
    this.series.clear();
  }
}
