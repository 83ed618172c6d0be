/**
 * A store for @fastify/rate-limit that keeps the counters in Redis (shared by every API process)
 * without a Redis round trip per request: each process counts locally and adds its counts to the
 * caller's Redis counter every `flushMs`, learning the others' counts in the same step. A caller's
 * first request of a window goes to Redis at once, so a new window starts from the shared count.
 *
 * The price is bounded: between two flushes the other processes' requests are not yet seen, so a
 * caller may exceed its limit by what it sends to the other processes within `flushMs` (50 ms).
 * Per request this saves a Redis write (an fsync with `appendfsync always`) and a round trip.
 */
import type { RedisConnection } from '../redis/scripts.ts';

interface Counter {
  /** The caller's count in Redis when last heard from; this process's counts on their way there; and not yet sent. */
  shared: number;
  inflight: number;
  pending: number;
  /** When the caller's window ends (ms). */
  windowEnd: number;
  /** A flush of this counter in flight. */
  flushing?: Promise<void>;
}

/** Longest a caller's first request of a window waits for the shared count. */
const FIRST_FLUSH_WAIT_MS = 250;

type Callback = (err: Error | null, res?: { current: number; ttl: number }) => void;

// Adds `ARGV[1]` to the window's counter, starting the window (ARGV[2] ms) when it is new.
const ADD = `
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return { current, ttl }`;

export interface BatchedStoreOptions { redis: RedisConnection; prefix: string; flushMs?: number; maxKeys?: number }

/** Builds the store class the plugin instantiates (`store: batchedRedisStore({...})`). */
export function batchedRedisStore(o: BatchedStoreOptions) {
  const flushMs = o.flushMs ?? 50;
  const maxKeys = o.maxKeys ?? 100_000;
  const redis = o.redis as RedisConnection & { fleetRateAdd?: (key: string, n: number, window: number) => Promise<[number, number]> };
  if (!redis.fleetRateAdd) (redis as unknown as { defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void }).defineCommand('fleetRateAdd', { numberOfKeys: 1, lua: ADD });
  const add = (key: string, n: number, window: number) => redis.fleetRateAdd!(key, n, window);
  const counters = new Map<string, Counter>();
  let timer: NodeJS.Timeout | undefined;

  async function flush(key: string, c: Counter, window: number): Promise<void> {
    const n = c.pending;
    c.pending = 0;
    c.inflight += n;
    try {
      const [current, ttl] = await add(key, n, window);
      // Redis's count includes ours up to this flush; what arrived meanwhile is still pending.
      c.shared = current;
      c.windowEnd = Date.now() + ttl;
    } catch {
      // Redis unreachable: keep the counts and try again with the next flush.
      c.pending += n;
    } finally {
      c.inflight -= n;
    }
  }

  function schedule(window: number): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      const now = Date.now();
      for (const [key, c] of counters) {
        if (c.pending > 0 && !c.flushing) c.flushing = flush(key, c, window).finally(() => { c.flushing = undefined; });
        else if (c.pending === 0 && c.windowEnd <= now && !c.flushing) counters.delete(key);
      }
      if ([...counters.values()].some((c) => c.pending > 0)) schedule(window);
    }, flushMs);
    timer.unref();
  }

  return class BatchedRedisStore {
    constructor(_params: unknown) {}

    incr(id: string, cb: Callback, timeWindow: number): void {
      const key = `${o.prefix}${id}`;
      const now = Date.now();
      let c = counters.get(key);
      if (c && c.windowEnd <= now && c.pending === 0 && !c.flushing) {
        counters.delete(key);
        c = undefined;
      }
      if (!c) {
        // A new window for this caller here: start from the shared count.
        if (counters.size >= maxKeys) counters.delete(counters.keys().next().value!);
        const fresh: Counter = { shared: 0, inflight: 0, pending: 1, windowEnd: now + timeWindow };
        counters.set(key, fresh);
        // Redis unreachable: the request is counted here and the count sent later (fail open: the
        // request itself then meets the outage, as a 503, rather than the limiter).
        fresh.flushing = flush(key, fresh, timeWindow).finally(() => { fresh.flushing = undefined; });
        // During a failover Redis may take seconds to answer: the request does not wait for the
        // limiter longer than FIRST_FLUSH_WAIT_MS (it counts locally meanwhile).
        // This request's place in the window: the shared count including it once flushed (later
        // requests are still pending then), else 1 (counted here, sent with the next flush).
        let answered = false;
        const answer = (current: number) => {
          if (answered) return;
          answered = true;
          cb(null, { current, ttl: Math.max(0, fresh.windowEnd - Date.now()) });
        };
        void fresh.flushing.then(() => answer(Math.max(1, fresh.shared)));
        setTimeout(() => answer(1), FIRST_FLUSH_WAIT_MS).unref();
        return;
      }
      c.pending++;
      schedule(timeWindow);
      cb(null, { current: c.shared + c.inflight + c.pending, ttl: Math.max(0, c.windowEnd - now) });
    }

    child(): BatchedRedisStore {
      return this;
    }
  };
}
