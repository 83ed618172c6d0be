/**
 * What each API client used, minute by minute (docs/api.md, "API clients"): requests, budget units
 * and refusals, counted by the rate limiter as it charges the client. Each process adds up its
 * counts in memory and adds them to Redis every `flushMs` (1 s); a reader sees a minute's counts
 * at most that much late. Kept `RETENTION_DAYS` (7) in Redis, a hash per client and UTC day.
 *
 * Why Redis and not PostgreSQL: the counts are written on the request path of every process, the
 * rate limiter already syncs with Redis, and expiry is the retention — no writer on the primary,
 * no table to prune. They are operational figures, not records: a failover may lose the last
 * second of them, as it may lose the budgets themselves.
 */
import { DomainError } from '../domain/errors.ts';
import { survived } from '../log.ts';
import { addClientUsage, readClientUsage, type UsageCounts } from '../redis/client-usage.ts';
import type { RedisConnection } from '../redis/scripts.ts';

export type { UsageCounts } from '../redis/client-usage.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
export const RETENTION_DAYS = 7;
const RETENTION_MS = RETENTION_DAYS * 24 * HOUR;

export type UsageGranularity = 'minute' | 'hour';

/** The window answered when none is asked for: the last hour by minute, the last day by hour. */
const DEFAULT_WINDOW_MS: Record<UsageGranularity, number> = { minute: HOUR, hour: 24 * HOUR };

/** The longest window each granularity answers: a day of minutes, the whole retention in hours. */
export const MAX_WINDOW_MS: Record<UsageGranularity, number> = { minute: 24 * HOUR, hour: RETENTION_MS };

export interface UsageBucket extends UsageCounts {
  /** The bucket's start (ms). */
  at: number;
}

export interface UsageReport {
  granularity: UsageGranularity;
  from: number;
  to: number;
  buckets: UsageBucket[];
  totals: UsageCounts;
}

export class ClientUsage {
  /** clientId -> minute -> counts not yet in Redis. */
  private pending = new Map<string, Map<number, UsageCounts>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private readonly flushMs: number;

  constructor(
    private readonly redis: RedisConnection,
    o: { flushMs?: number } = {},
  ) {
    this.flushMs = o.flushMs ?? 1_000;
  }

  /** Counts a charge to the client, in the current minute. */
  record(clientId: string, counts: UsageCounts, now = Date.now()): void {
    const minute = Math.floor(now / MINUTE);
    let byMinute = this.pending.get(clientId);
    if (!byMinute) {
      byMinute = new Map();
      this.pending.set(clientId, byMinute);
    }
    const c = byMinute.get(minute) ?? { requests: 0, units: 0, refused: 0 };
    c.requests += counts.requests;
    c.units += counts.units;
    c.refused += counts.refused;
    byMinute.set(minute, c);
    this.schedule();
  }

  /** Sends what this process counted; counts Redis refused are kept for the next flush. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.pending.size ? this.flush() : undefined));
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      for (const [clientId, byMinute] of batch) {
        try {
          await addClientUsage(this.redis, clientId, byMinute, RETENTION_MS);
        } catch (err) {
          survived('client-usage.flush', err);
          for (const [minute, c] of byMinute) this.record(clientId, c, minute * MINUTE);
        }
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer after a last flush. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /**
   * The client's counts per bucket over [from, to), empty buckets included, widened to whole
   * buckets. By default `to` is the end of the current bucket, and `from` an hour (by minute) or a
   * day (by hour) before it.
   */
  async report(
    clientId: string,
    granularity: UsageGranularity,
    window: { from?: number; to?: number } = {},
  ): Promise<UsageReport> {
    const size = granularity === 'minute' ? MINUTE : HOUR;
    const end = Math.ceil((window.to ?? Date.now() + 1) / size) * size;
    const start = Math.floor((window.from ?? end - DEFAULT_WINDOW_MS[granularity]) / size) * size;
    if (end <= start)
      throw new DomainError('INVALID_INTERVAL', 'from must be before to', { problem: 'order', field: 'from' });
    if (end - start > MAX_WINDOW_MS[granularity])
      throw new DomainError(
        'VALIDATION',
        `a window of ${granularity}s spans at most ${MAX_WINDOW_MS[granularity] / HOUR} hours`,
        {
          field: 'from',
        },
      );
    const byMinute = await readClientUsage(this.redis, clientId, start / MINUTE, end / MINUTE);
    const buckets: UsageBucket[] = [];
    for (let at = start; at < end; at += size) buckets.push({ at, requests: 0, units: 0, refused: 0 });
    const totals: UsageCounts = { requests: 0, units: 0, refused: 0 };
    for (const [minute, c] of byMinute) {
      const b = buckets[Math.floor((minute * MINUTE - start) / size)];
      if (!b) continue;
      for (const k of ['requests', 'units', 'refused'] as const) {
        b[k] += c[k];
        totals[k] += c[k];
      }
    }
    return { granularity, from: start, to: end, buckets, totals };
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.flushMs);
    this.timer.unref();
  }
}
