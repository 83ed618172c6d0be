/**
 * Callers' budgets (requests per window, by weight), kept in Redis so every API process shares
 * them, without a Redis round trip per request: each process counts locally and adds its counts
 * to the caller's Redis counter every `flushMs` (rate_limit_add.lua), learning the others' counts
 * in the same step.
 *
 * How far a caller can exceed its limit is bounded: a process admits at most a *local share* of
 * the limit (`localShare` × limit, at least 1) between two syncs with Redis; past it, the request
 * waits for a sync before it is decided. A caller spread over P processes can therefore exceed its
 * limit by at most (P − 1) × share in a window; on one process, never. A caller's first request of
 * a window always waits for the shared count (for at most `syncWaitMs`: when Redis is away, the
 * limiter fails open rather than failing the request).
 */
import { defaults } from '../config.ts';
import { runScript, type RedisConnection } from '../redis/scripts.ts';
import { isCluster } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { survived } from '../log.ts';
import { setTimeout as wait } from 'node:timers/promises';

/**
 * One caller's window in this process. A request's place in the window is what the other
 * processes had counted when Redis last answered, plus this process's own count up to it.
 */
interface Counter {
  /** Everything this process counted in the window, in arrival order (a request's own place). */
  local: number;
  /** How much of `local` was sent to Redis (or is on its way). */
  sent: number;
  /** How much of it Redis confirmed. */
  confirmed: number;
  /** The other processes' count, as of Redis's last answer. */
  others: number;
  /** When the caller's window ends (ms). */
  windowEnd: number;
  /** How long the caller's windows last (a key's window never changes: an API client's burst has its own key). */
  windowMs: number;
  flushing?: Promise<void>;
}

export interface BudgetOptions {
  redis: RedisConnection;
  flushMs?: number;
  /** Fraction of a caller's limit one process may admit between syncs (0 < share ≤ 1). */
  localShare?: number;
  /** Longest a request waits for the shared count. */
  syncWaitMs?: number;
  maxKeys?: number;
}

export interface Taken {
  allowed: boolean;
  /** The caller's count in the window, this request included. */
  current: number;
  limit: number;
  /** ms until the window ends. */
  resetMs: number;
  /** How long the window lasts. */
  windowMs: number;
}

/** Callers sent in one script call at most. */
const FLUSH_BATCH = 500;

/** A wait that does not keep the process alive. */
const sleep = (ms: number) => wait(ms, undefined, { ref: false });

export class CallerBudgets {
  private readonly counters = new Map<string, Counter>();
  private readonly flushMs: number;
  private readonly localShare: number;
  private readonly syncWaitMs: number;
  private readonly maxKeys: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: BudgetOptions) {
    this.flushMs = o.flushMs ?? 50;
    this.localShare = o.localShare ?? defaults.RATE_LIMIT_LOCAL_SHARE;
    this.syncWaitMs = o.syncWaitMs ?? 250;
    this.maxKeys = o.maxKeys ?? 100_000;
  }

  /** Charges `cost` to the caller `key` (limit per `windowMs`) and says whether it is within budget. */
  async take(key: string, cost: number, limit: number, windowMs: number): Promise<Taken> {
    const now = Date.now();
    let c = this.counters.get(key);
    if (c && c.windowEnd <= now && c.sent === c.local && !c.flushing) {
      this.counters.delete(key);
      c = undefined;
    }
    const fresh = !c;
    if (!c) {
      const oldest = this.counters.keys().next();
      if (this.counters.size >= this.maxKeys && !oldest.done) this.counters.delete(oldest.value);
      c = { local: 0, sent: 0, confirmed: 0, others: 0, windowEnd: now + windowMs, windowMs };
      this.counters.set(key, c);
    }
    c.local += cost;
    const place = c.local;
    const share = Math.max(1, Math.floor(limit * this.localShare));
    if (fresh || c.local - c.sent >= share) {
      // A new window starts from the shared count; a process past its share syncs before deciding.
      await Promise.race([this.flush(key, c), sleep(this.syncWaitMs)]);
    } else {
      this.schedule();
    }
    const current = c.others + place;
    return { allowed: current <= limit, current, limit, resetMs: Math.max(0, c.windowEnd - Date.now()), windowMs };
  }

  /** Sends what this process counted for `key` since the last flush; the answer tells the others' count. */
  private flush(key: string, c: Counter): Promise<void> {
    if (c.flushing) return c.flushing.then(() => (c.local > c.sent ? this.flush(key, c) : undefined));
    return this.send([[key, c]]);
  }

  /**
   * Sends the counts of `batch` in one script call (rate_limit_add.lua takes many callers); a
   * counter already on its way is left for the next flush.
   */
  private send(batch: readonly (readonly [string, Counter])[]): Promise<void> {
    const items = batch.flatMap(([key, c]) =>
      c.flushing || c.local === c.sent ? [] : [{ key, c, n: c.local - c.sent }],
    );
    if (!items.length) return Promise.resolve();
    for (const i of items) i.c.sent += i.n;
    const sending = (async () => {
      try {
        const reply = (await runScript(
          this.o.redis,
          'rate_limit_add',
          items.map((i) => keys.callerBudget(i.key)),
          items.flatMap((i) => [i.n, i.c.windowMs]),
        )) as number[];
        const now = Date.now();
        items.forEach(({ c, n }, k) => {
          c.confirmed += n;
          c.others = Math.max(0, Number(reply[2 * k]) - c.confirmed);
          c.windowEnd = now + Number(reply[2 * k + 1]);
        });
      } catch (err) {
        // Redis unreachable: send these counts again with the next flush.
        survived('rate-limit.flush', err);
        for (const { c, n } of items) c.sent -= n;
      } finally {
        for (const { c } of items) c.flushing = undefined;
      }
    })();
    for (const { c } of items) c.flushing = sending;
    return sending;
  }

  /**
   * Sends what is still counted here (waiting at most `syncWaitMs`) and stops flushing: the app
   * closes before its Redis connection does, so no flush is left to meet a closed connection.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const pending = [...this.counters].filter(([, c]) => c.local > c.sent).map(([key, c]) => this.flush(key, c));
    await Promise.race([Promise.all(pending), sleep(this.syncWaitMs)]);
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      const due: [string, Counter][] = [];
      for (const [key, c] of this.counters) {
        if (c.local > c.sent) due.push([key, c]);
        else if (c.windowEnd <= now && !c.flushing) this.counters.delete(key);
      }
      // One call for every caller counted meanwhile; on a Redis Cluster one per caller (a script's
      // keys must share a slot).
      if (isCluster(this.o.redis)) for (const d of due) void this.send([d]);
      else for (let i = 0; i < due.length; i += FLUSH_BATCH) void this.send(due.slice(i, i + FLUSH_BATCH));
      if (due.length) this.schedule();
    }, this.flushMs);
    this.timer.unref();
  }
}
