/**
 * One load generator for every scenario: autocannon, `connections` keep-alive clients (one request
 * in flight each, no pipelining), loopback only. Latencies are taken from autocannon's `response`
 * events at full precision (its own histogram rounds to whole ms) and include every answer,
 * refusals too; throughput counts every answer.
 */
import autocannon, { type RequestSpec } from 'autocannon';
import { percentiles } from './stats.ts';

export interface LoadResult {
  requests: number;
  seconds: number;
  perSec: number;
  p50: number;
  p99: number;
  max: number;
  /** Answers by status code. */
  status: Record<string, number>;
  errors: number;
  timeouts: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; or `amount` requests in all (then `deadlineSeconds` bounds it). */
  duration?: number;
  amount?: number;
  deadlineSeconds?: number;
  request: RequestSpec;
  headers?: Record<string, string>;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const lat: number[] = [];
  const status: Record<string, number> = {};
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    timeout: 30,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? 10 }),
    ...(o.headers ? { headers: o.headers } : {}),
    requests: [o.request],
  });
  instance.on('response', (_client: unknown, code: number, _bytes: number, ms: number) => {
    lat.push(ms);
    status[code] = (status[code] ?? 0) + 1;
  });
  const deadline = o.deadlineSeconds ? setTimeout(() => instance.stop(), o.deadlineSeconds * 1000) : undefined;
  const t0 = performance.now();
  const result = await new Promise<{ errors: number; timeouts: number }>((resolve) => instance.once('done', resolve));
  const seconds = (performance.now() - t0) / 1000;
  if (deadline) clearTimeout(deadline);
  const p = percentiles(lat);
  return {
    requests: lat.length,
    seconds,
    perSec: lat.length / seconds,
    p50: p.p50,
    p99: p.p99,
    max: p.max,
    status,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
