/**
 * The sync worker: every city stream, through one consumer group, into PostgreSQL (DESIGN §5).
 *
 * - A batch (up to `batchSize` events) is applied in ONE transaction together with the city's
 *   cursor (last applied stream id), so a re-delivered event is skipped, never applied twice.
 * - `XACK` only after the commit. A worker killed anywhere leaves its entries pending; any live
 *   worker reclaims them with `XAUTOCLAIM` once they have been idle for `claimIdleMs`.
 * - An event that fails with a data error is retried alone; after `maxAttempts` it goes to the
 *   dead-letter table (with the cursor moved past it, in one transaction), an error is logged,
 *   the alarm callback fires, and the city's later events keep flowing.
 * - PostgreSQL down: back off (exponential, capped), keep the entries pending; the API keeps
 *   writing to Redis meanwhile and the backlog drains when PostgreSQL is back.
 * - Streams are trimmed only below what every group has acknowledged (and older than
 *   `retentionMs`), never by a blind MAXLEN.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { CityCatalog } from '../domain/cities.ts';
import { keys } from '../redis/keys.ts';
import { metrics } from '../metrics.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { inTransaction } from '../pg/tx.ts';
import { applyEvents, compareStreamIds, parseStreamEntry, parseStreamId, type StreamEvent } from '../pg/projection.ts';

export const SYNC_GROUP = 'pg-sync';

export type Failpoint = 'mid_batch' | 'before_commit' | 'after_commit';

export interface SyncOptions {
  batchSize?: number;
  /** Pause when every stream was empty. */
  idleMs?: number;
  /** A pending entry idle this long belongs to a dead consumer and is reclaimed. */
  claimIdleMs?: number;
  maxAttempts?: number;
  retentionMs?: number;
  consumer?: string;
  log?: Logger;
  /** Called when an event is dead-lettered: the alarm. */
  onDeadLetter?: (city: string, event: StreamEvent | { id: string }, error: Error) => void;
  /** Test hook: called at named points of a batch (the failpoint tests kill the process there). */
  failpoint?: (where: Failpoint) => void;
}

export interface CityLag { city: string; eventsBehind: number; secondsBehind: number }

type Entries = [string, string[]][];

/** Data errors (SQLSTATE classes 22 and 23) mean this event cannot be applied: poison. */
function isPoison(err: unknown): boolean {
  const code = (err as { sqlstate?: string; code?: string }).sqlstate ?? (err as { code?: string }).code;
  return typeof code === 'string' && /^2[23]/.test(code);
}

export class SyncWorker {
  readonly consumer: string;
  private readonly o: Required<Omit<SyncOptions, 'log' | 'onDeadLetter' | 'failpoint' | 'consumer'>>;
  private readonly attempts = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private lastClaim = 0;
  private lastTrim = 0;
  /** Counters for metrics and tests. */
  readonly stats = { applied: 0, skipped: 0, deadLettered: 0, batches: 0, retries: 0 };

  constructor(private readonly redis: RedisConnection, private readonly pool: pg.Pool, private readonly cities: CityCatalog, private readonly opts: SyncOptions = {}) {
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.o = {
      batchSize: opts.batchSize ?? 500, idleMs: opts.idleMs ?? 50, claimIdleMs: opts.claimIdleMs ?? 15_000,
      maxAttempts: opts.maxAttempts ?? 5, retentionMs: opts.retentionMs ?? 10 * 60_000,
    };
  }

  /** Creates the consumer group on every city stream (from the start of the stream). */
  async ensureGroups(): Promise<void> {
    for (const c of this.cities.all()) {
      try {
        await this.redis.xgroup('CREATE', keys.events(c.id), SYNC_GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    }
  }

  start(): void {
    this.loop = (async () => {
      let backoff = 100;
      await this.ensureGroupsWithRetry();
      while (!this.stopped) {
        try {
          const n = await this.syncOnce();
          backoff = 100;
          if (n === 0) await sleep(this.o.idleMs);
        } catch (err) {
          // A Redis that lost its data (then rebuilt) has streams without our group: recreate it.
          if (/NOGROUP/.test((err as Error).message)) await this.ensureGroups().catch(() => {});
          this.opts.log?.warn({ err: (err as Error).message, retryInMs: backoff }, 'sync: store unavailable, backing off');
          this.stats.retries++;
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async ensureGroupsWithRetry(): Promise<void> {
    for (let wait = 100; !this.stopped; wait = Math.min(wait * 2, 5_000)) {
      try {
        await this.ensureGroups();
        return;
      } catch (err) {
        this.opts.log?.warn({ err: (err as Error).message }, 'sync: cannot create consumer groups yet');
        await sleep(wait);
      }
    }
  }

  /** One pass over every city; returns how many events were handled. */
  async syncOnce(): Promise<number> {
    const now = Date.now();
    if (now - this.lastClaim >= Math.min(this.o.claimIdleMs, 5_000)) {
      this.lastClaim = now;
      for (const c of this.cities.all()) await this.reclaim(c.id);
    }
    let handled = 0;
    for (const c of this.cities.all()) handled += await this.syncCity(c.id);
    if (now - this.lastTrim >= 10_000) {
      this.lastTrim = now;
      for (const c of this.cities.all()) await this.trim(c.id);
      await this.lag(); // refreshes the lag gauges
    }
    return handled;
  }

  /** Drains every city until nothing is pending or new (tests, CLI). */
  async drain(timeoutMs = 60_000): Promise<void> {
    await this.ensureGroups();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.syncOnce();
      if (n === 0 && (await this.lag()).every((l) => l.eventsBehind === 0)) return;
      if (Date.now() > deadline) throw new Error('sync drain timed out');
      if (n === 0) await sleep(this.o.idleMs);
    }
  }

  private async syncCity(city: string): Promise<number> {
    const stream = keys.events(city);
    // Our own pending entries first (a batch that failed), then new ones.
    let entries = await this.read(stream, '0');
    if (entries.length === 0) entries = await this.read(stream, '>');
    if (entries.length === 0) return 0;
    const events: StreamEvent[] = [];
    const poison: { id: string; error: Error }[] = [];
    for (const [id, fields] of entries) {
      try {
        events.push(parseStreamEntry(city, id, fields));
      } catch (err) {
        poison.push({ id, error: err as Error });
      }
    }
    if (poison.length === 0) {
      try {
        await this.applyBatch(city, events);
        await this.ack(stream, entries.map(([id]) => id));
        return entries.length;
      } catch (err) {
        if (!isPoison(err)) throw err;
      }
    }
    // Something in the batch is poison: go one by one, in order, so the rest keeps flowing.
    let handled = 0;
    for (const [id, fields] of entries) {
      const bad = poison.find((p) => p.id === id);
      let event: StreamEvent | undefined;
      try {
        if (bad) throw bad.error;
        event = parseStreamEntry(city, id, fields);
        await this.applyBatch(city, [event]);
      } catch (err) {
        if (!isPoison(err) && !bad) throw err;
        const attempts = (this.attempts.get(id) ?? 0) + 1;
        this.attempts.set(id, attempts);
        if (attempts < this.o.maxAttempts) return handled; // retried next pass; nothing after it yet
        await this.deadLetter(city, event ?? { id, raw: fields }, err as Error, attempts);
        this.attempts.delete(id);
      }
      await this.ack(stream, [id]);
      handled++;
    }
    return handled;
  }

  private async read(stream: string, from: '0' | '>'): Promise<Entries> {
    const res = (await this.redis.xreadgroup('GROUP', SYNC_GROUP, this.consumer, 'COUNT', this.o.batchSize, 'STREAMS', stream, from)) as [string, Entries][] | null;
    // Pending entries trimmed away come back with null fields: nothing to apply, just acknowledge.
    const entries = res?.[0]?.[1] ?? [];
    const gone = entries.filter(([, f]) => !f).map(([id]) => id);
    if (gone.length) await this.ack(stream, gone);
    return entries.filter(([, f]) => f);
  }

  private async ack(stream: string, ids: string[]): Promise<void> {
    if (ids.length) await this.redis.xack(stream, SYNC_GROUP, ...ids);
  }

  /** One transaction: the events newer than the cursor, then the cursor. */
  private async applyBatch(city: string, events: StreamEvent[]): Promise<void> {
    const fresh = await inTransaction(this.pool, async (db) => {
      const cursor = await lockCursor(db, city);
      const todo = events.filter((e) => compareStreamIds(e.id, cursor) > 0);
      const half = Math.ceil(todo.length / 2);
      await applyEvents(db, todo.slice(0, half));
      this.opts.failpoint?.('mid_batch');
      await applyEvents(db, todo.slice(half));
      const last = todo.at(-1);
      if (last) {
        await db.query('UPDATE sync_cursors SET last_ms = $2, last_seq = $3, applied = applied + $4, updated_at = now() WHERE city = $1',
          [city, last.ms, last.seq, todo.length]);
      }
      this.opts.failpoint?.('before_commit');
      return todo.length;
    });
    this.opts.failpoint?.('after_commit');
    metrics.syncApplied.inc({ city }, fresh);
    this.stats.applied += fresh;
    this.stats.skipped += events.length - fresh;
    this.stats.batches++;
  }

  private async deadLetter(city: string, event: StreamEvent | { id: string; raw: string[] }, error: Error, attempts: number): Promise<void> {
    const [ms, seq] = parseStreamId(event.id);
    await inTransaction(this.pool, async (db) => {
      await lockCursor(db, city);
      await db.query(
        `INSERT INTO dead_letters (city, stream_id, event, error, sqlstate, attempts) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (city, stream_id) DO UPDATE SET attempts = EXCLUDED.attempts, error = EXCLUDED.error`,
        [city, event.id, event, error.message, (error as { code?: string }).code ?? null, attempts]);
      await db.query(
        `UPDATE sync_cursors SET last_ms = $2, last_seq = $3, updated_at = now()
         WHERE city = $1 AND (last_ms, last_seq) < ($2::bigint, $3::bigint)`, [city, ms, seq]);
    });
    this.stats.deadLettered++;
    metrics.syncDeadLetters.inc({ city });
    this.opts.log?.error({ city, streamId: event.id, error: error.message, attempts }, 'sync: event dead-lettered; ALARM: Redis and PostgreSQL disagree until reconciled');
    this.opts.onDeadLetter?.(city, event as StreamEvent, error);
  }

  /** Takes over entries a dead consumer left pending. */
  private async reclaim(city: string): Promise<void> {
    let cursor = '0-0';
    do {
      const res = (await this.redis.xautoclaim(keys.events(city), SYNC_GROUP, this.consumer, this.o.claimIdleMs, cursor, 'COUNT', this.o.batchSize, 'JUSTID')) as [string, string[]];
      cursor = res[0];
    } while (cursor !== '0-0');
  }

  /** Trims the stream below what every group has acknowledged and the retention window. */
  async trim(city: string): Promise<void> {
    const stream = keys.events(city);
    const groups = (await this.redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
    if (groups.length === 0) return;
    let safe = `${Date.now() - this.o.retentionMs}-0`;
    for (const g of groups) {
      const info = toRecord(g);
      const name = String(info.name);
      const pending = Number(info.pending);
      let floor = String(info['last-delivered-id']);
      if (pending > 0) {
        const summary = (await this.redis.xpending(stream, name)) as [number, string, string, unknown];
        floor = summary[1];
      }
      if (compareStreamIds(floor, safe) < 0) safe = floor;
    }
    await this.redis.xtrim(stream, 'MINID', safe);
  }

  /** Events not yet in PostgreSQL, and how old the oldest of them is, per city (also the gauges). */
  async lag(): Promise<CityLag[]> {
    const out: CityLag[] = [];
    for (const c of this.cities.all()) {
      const l = await cityLag(this.redis, c.id);
      metrics.syncLagEvents.set({ city: c.id }, l.eventsBehind);
      metrics.syncLagSeconds.set({ city: c.id }, l.secondsBehind);
      out.push(l);
    }
    return out;
  }
}

export async function cityLag(redis: RedisConnection, city: string): Promise<CityLag> {
  const s = await syncState(redis, city);
  const secondsBehind = s.oldestUnsynced !== undefined ? Math.max(0, (Date.now() - s.oldestUnsynced) / 1000) : 0;
  return { city, eventsBehind: s.eventsBehind, secondsBehind };
}

/**
 * Every change made before this instant (ms) is in PostgreSQL: the time of the oldest event the
 * sync has not acknowledged, or now when it has them all; 0 when no sync ever ran for the city.
 */
export async function syncedThrough(redis: RedisConnection, city: string): Promise<number> {
  const s = await syncState(redis, city);
  if (!s.group) return 0;
  return s.oldestUnsynced ?? Date.now();
}

async function syncState(redis: RedisConnection, city: string): Promise<{ group: boolean; eventsBehind: number; oldestUnsynced?: number }> {
  const stream = keys.events(city);
  const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
  const g = groups.map(toRecord).find((x) => x.name === SYNC_GROUP);
  const length = await redis.xlen(stream);
  if (!g) return { group: false, eventsBehind: length };
  const pending = Number(g.pending);
  const undelivered = g.lag === null || g.lag === undefined ? length : Number(g.lag);
  let oldest: string | undefined;
  if (pending > 0) oldest = ((await redis.xpending(stream, SYNC_GROUP)) as [number, string])[1];
  else if (undelivered > 0) oldest = (await redis.xrange(stream, `(${String(g['last-delivered-id'])}`, '+', 'COUNT', 1))[0]?.[0];
  return { group: true, eventsBehind: pending + undelivered, ...(oldest ? { oldestUnsynced: parseStreamId(oldest)[0] } : {}) };
}

/** The city's cursor row, locked for this transaction (created at zero the first time). */
async function lockCursor(db: pg.ClientBase, city: string): Promise<string> {
  await db.query('INSERT INTO sync_cursors (city, last_ms, last_seq) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING', [city]);
  const { rows } = await db.query<{ last_ms: string; last_seq: string }>('SELECT last_ms, last_seq FROM sync_cursors WHERE city = $1 FOR UPDATE', [city]);
  return `${rows[0]!.last_ms}-${rows[0]!.last_seq}`;
}

function toRecord(flat: unknown[]): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) r[String(flat[i])] = flat[i + 1];
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
