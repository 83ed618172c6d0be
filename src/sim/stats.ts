/** What the simulator measures: latency per endpoint, outcomes by code, and per-second series. */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

export interface EndpointFigures {
  endpoint: string;
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface SecondSample {
  t: number;
  ops: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  syncLagMs: number;
  syncEventsBehind: number;
}

export class Recorder {
  private readonly latencies = new Map<string, number[]>();
  private readonly errorsByEndpoint = new Map<string, number>();
  readonly codes = new Map<string, number>();
  readonly operations = new Map<string, number>();
  private window: number[] = [];
  private windowErrors = 0;
  readonly series: SecondSample[] = [];
  total = 0;

  /** One HTTP call: endpoint = method + route template; code = the problem code or the status. */
  call(endpoint: string, ms: number, status: number, code?: string): void {
    let list = this.latencies.get(endpoint);
    if (!list) {
      list = [];
      this.latencies.set(endpoint, list);
    }
    list.push(ms);
    this.window.push(ms);
    this.total++;
    const key = status < 400 ? String(status) : `${status} ${code ?? ''}`.trim();
    this.codes.set(key, (this.codes.get(key) ?? 0) + 1);
    // 4xx answers are the marketplace working (taken, limits); only 5xx and network failures are errors.
    if (status >= 500 || status === 0) {
      this.errorsByEndpoint.set(endpoint, (this.errorsByEndpoint.get(endpoint) ?? 0) + 1);
      this.windowErrors++;
    }
  }

  /** A marketplace operation (one or more calls), by type. */
  operation(type: string): void {
    this.operations.set(type, (this.operations.get(type) ?? 0) + 1);
  }

  /** Closes the current second. */
  sample(t: number, syncLagMs: number, syncEventsBehind: number): SecondSample {
    const sorted = this.window.sort((a, b) => a - b);
    const s = {
      t,
      ops: sorted.length,
      errors: this.windowErrors,
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      syncLagMs,
      syncEventsBehind,
    };
    this.series.push(s);
    this.window = [];
    this.windowErrors = 0;
    return s;
  }

  endpoints(): EndpointFigures[] {
    return [...this.latencies]
      .map(([endpoint, list]) => {
        const sorted = [...list].sort((a, b) => a - b);
        return {
          endpoint,
          count: sorted.length,
          errors: this.errorsByEndpoint.get(endpoint) ?? 0,
          p50Ms: round(percentile(sorted, 50)),
          p95Ms: round(percentile(sorted, 95)),
          p99Ms: round(percentile(sorted, 99)),
          maxMs: round(sorted.at(-1) ?? 0),
        };
      })
      .sort((a, b) => b.count - a.count);
  }

  get serverErrors(): number {
    return [...this.errorsByEndpoint.values()].reduce((a, b) => a + b, 0);
  }
}

export const round = (n: number) => Math.round(n * 100) / 100;
