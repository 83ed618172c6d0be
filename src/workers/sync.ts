/**
 * The sync worker: every city stream, through one consumer group, into PostgreSQL (architecture.md §5).
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
 * - PostgreSQL that lost applied batches (an asynchronous standby promoted without the last
 *   transactions): the city's cursor is found behind what this worker committed, or behind
 *   events the group already acknowledged, and the missing events are replayed from the stream
 *   (it keeps at least `retentionMs` of them). What the stream no longer has is reported and left
 *   to the failover verification, which writes Redis's state to PostgreSQL.
 * - An overlap PostgreSQL refuses (23P01) is, after a Redis failover, usually a booking that the
 *   verification is about to displace: the worker applies the event together with the later
 *   states of the same entry when the stream has them, and otherwise waits `overlapGraceMs`
 *   before dead-lettering it.
 */
import { defaults } from '../config.ts';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { CityCatalog } from '../domain/cities.ts';
import { keys } from '../redis/keys.ts';
import { runScript } from '../redis/scripts.ts';
import { metrics } from '../metrics.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { advanceCursor, deadLetterEvent, lockCursor, readCursor } from '../pg/cursors.ts';
import { awaitStandbyApply, inTransaction } from '../pg/tx.ts';
import { applyEvents } from '../pg/projection.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import { messageOf, codeOf, asError } from '../domain/errors.ts';

export { cityLag, syncedThrough, SYNC_GROUP, type CityLag } from '../redis/sync-state.ts';
import { cityLag, SYNC_GROUP, toRecord, type CityLag } from '../redis/sync-state.ts';

export type Failpoint = 'mid_batch' | 'before_commit' | 'after_commit';

export interface SyncOptions {
  batchSize?: number;
  /** Cities applied at once, each in its own transaction (SYNC_PARALLEL). */
  parallel?: number;
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
  /** How long an overlap refused by PostgreSQL waits for a verification to settle it. */
  overlapGraceMs?: number;
  /**
   * DR_ACK=remote (docs/regions.md): each batch commits with `synchronous_commit = remote_apply`,
   * so a cursor visible on the primary is applied on the synchronous (cross-region) standby too.
   */
  remoteApply?: boolean;
}

/** PostgreSQL's cursor is behind what was applied: it lost transactions. */
class SyncRewound extends Error {
  constructor(
    readonly city: string,
    readonly cursor: string,
    readonly upTo: string,
  ) {
    super(`PostgreSQL's cursor for ${city} went back to ${cursor} (applied up to ${upTo})`);
  }
}

type Entries = [string, string[]][];

/** Data errors (SQLSTATE classes 22 and 23) mean this event cannot be applied: poison. */
function isPoison(err: unknown): boolean {
  const code = codeOf(err);
  return typeof code === 'string' && /^2[23]/.test(code);
}

export class SyncWorker {
  readonly consumer: string;
  private readonly o: Required<Omit<SyncOptions, 'log' | 'onDeadLetter' | 'failpoint' | 'consumer' | 'remoteApply'>>;
  private readonly attempts = new Map<string, { count: number; firstAt: number }>();
  /** The cursor this worker last committed per city; PostgreSQL showing less means it lost them. */
  private readonly committed = new Map<string, string>();
  /** Cities whose cursor was checked against the stream since start (or since PostgreSQL changed). */
  private readonly checked = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private lastClaim = 0;
  private lastTrim = 0;
  /** Counters for metrics and tests. */
  readonly stats = { applied: 0, skipped: 0, deadLettered: 0, batches: 0, retries: 0, replayed: 0, rewinds: 0 };

  constructor(
    private readonly redis: RedisConnection,
    private readonly pool: pg.Pool,
    private readonly cities: CityCatalog,
    private readonly opts: SyncOptions = {},
  ) {
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.o = {
      batchSize: opts.batchSize ?? defaults.SYNC_BATCH_SIZE,
      parallel: opts.parallel ?? defaults.SYNC_PARALLEL,
      idleMs: opts.idleMs ?? 50,
      claimIdleMs: opts.claimIdleMs ?? defaults.SYNC_CLAIM_IDLE_MS,
      maxAttempts: opts.maxAttempts ?? defaults.SYNC_MAX_ATTEMPTS,
      retentionMs: opts.retentionMs ?? defaults.STREAM_RETENTION_MS,
      overlapGraceMs: opts.overlapGraceMs ?? 60_000,
    };
  }

  /** Creates the consumer group on every city stream (from the start of the stream). */
  async ensureGroups(): Promise<void> {
    for (const c of this.cities.all()) {
      try {
        await this.redis.xgroup('CREATE', keys.events(c.id), SYNC_GROUP, '0', 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test(messageOf(err))) throw err;
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
          if (/NOGROUP/.test(messageOf(err))) await this.ensureGroups().catch(() => {});
          this.opts.log?.warn({ err: messageOf(err), retryInMs: backoff }, 'sync: store unavailable, backing off');
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
        this.opts.log?.warn({ err: messageOf(err) }, 'sync: cannot create consumer groups yet');
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
    // Cities are independent (a cursor and a transaction each): several apply at once, each city's
    // batches still one after another, in stream order.
    const queue = this.cities.all().map((c) => c.id);
    let handled = 0;
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: Math.min(this.o.parallel, queue.length) }, async () => {
        for (let city = queue.shift(); city !== undefined; city = queue.shift()) {
          try {
            // Read after the await: `handled += await …` would add to a stale total.
            const n = await this.syncCity(city);
            handled += n;
          } catch (err) {
            failures.push(err);
          }
        }
      }),
    );
    if (failures.length) throw failures[0];
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
        poison.push({ id, error: asError(err) });
      }
    }
    try {
      const first = entries[0]?.[0];
      if (first && !this.checked.has(city)) await this.checkCursor(city, first);
      if (poison.length === 0) {
        try {
          await this.applyBatch(city, events);
          await this.ack(
            stream,
            entries.map(([id]) => id),
          );
          return entries.length;
        } catch (err) {
          if (!isPoison(err)) throw err;
        }
      }
      return await this.oneByOne(city, stream, entries, poison);
    } catch (err) {
      if (!(err instanceof SyncRewound)) throw err;
      await this.replay(err);
      return 0; // the batch is still pending: the next pass applies it
    }
  }

  /** Something in the batch is poison: go one by one, in order, so the rest keeps flowing. */
  private async oneByOne(
    city: string,
    stream: string,
    entries: Entries,
    poison: { id: string; error: Error }[],
  ): Promise<number> {
    let handled = 0;
    for (const [id, fields] of entries) {
      const bad = poison.find((p) => p.id === id);
      let event: StreamEvent | undefined;
      try {
        if (bad) throw bad.error;
        event = parseStreamEntry(city, id, fields);
        await this.applyBatch(city, [event]);
      } catch (err) {
        if (err instanceof SyncRewound) throw err;
        if (!isPoison(err) && !bad) throw err;
        if (event && sqlstateOf(err) === '23P01' && (await this.applyWithLaterStates(city, stream, event))) {
          await this.ack(stream, [id]);
          handled++;
          continue;
        }
        const a = this.attempts.get(id) ?? { count: 0, firstAt: Date.now() };
        a.count++;
        this.attempts.set(id, a);
        const grace = sqlstateOf(err) === '23P01' ? this.o.overlapGraceMs : 0;
        if (a.count < this.o.maxAttempts || Date.now() - a.firstAt < grace) return handled; // retried next pass; nothing after it yet
        await this.deadLetter(city, event ?? { id, raw: fields }, asError(err), a.count);
        this.attempts.delete(id);
      }
      await this.ack(stream, [id]);
      handled++;
    }
    return handled;
  }

  /**
   * An overlap PostgreSQL refuses: when the stream has later states of the same entry (the
   * booking was displaced since, say by a failover verification), the event is applied with them —
   * its entry takes its latest state at once, which the later events would write anyway.
   */
  private async applyWithLaterStates(city: string, stream: string, event: StreamEvent): Promise<boolean> {
    const later: StreamEvent[] = [];
    for (let from = event.id; ; ) {
      const page = await this.redis.xrange(stream, `(${from}`, '+', 'COUNT', 1000);
      for (const [id, fields] of page) {
        const e = (() => {
          try {
            return parseStreamEntry(city, id, fields);
          } catch {
            return undefined;
          }
        })();
        if (e && e.subject === event.subject) later.push(e);
      }
      const last = page.at(-1);
      if (page.length < 1000 || !last) break;
      from = last[0];
    }
    if (later.length === 0) return false;
    try {
      await this.applyBatch(city, [event, ...later], event);
      this.opts.log?.warn(
        { city, event: event.id, subject: event.subject, later: later.length },
        "sync: an overlap PostgreSQL refused was settled by the entry's later state",
      );
      return true;
    } catch (err) {
      if (err instanceof SyncRewound || !isPoison(err)) throw err;
      return false;
    }
  }

  /**
   * Once per city (at start, and after PostgreSQL changed): events between PostgreSQL's cursor and
   * the first entry we are about to apply were acknowledged before — PostgreSQL had them and lost
   * them. Replayed from the stream.
   */
  private async checkCursor(city: string, firstId: string): Promise<void> {
    const cursor = await readCursor(this.pool, city);
    this.checked.add(city);
    if (cursor === undefined || compareStreamIds(cursor, firstId) >= 0) return;
    const gap = await this.redis.xrange(keys.events(city), `(${cursor}`, `(${firstId}`, 'COUNT', 1);
    if (gap.length > 0) throw new SyncRewound(city, cursor, firstId);
  }

  /** Applies again, from the stream, what PostgreSQL lost: (cursor, upTo). */
  private async replay(r: SyncRewound): Promise<void> {
    this.stats.rewinds++;
    metrics.syncRewinds.inc({ city: r.city });
    const stream = keys.events(r.city);
    const info = toRecord((await this.redis.xinfo('STREAM', stream)) as unknown[]);
    const deleted = String(info['max-deleted-entry-id'] ?? '0-0');
    if (compareStreamIds(deleted, r.cursor) > 0) {
      this.opts.log?.error(
        { city: r.city, cursor: r.cursor, trimmedThrough: deleted },
        "sync: PostgreSQL lost events the stream no longer has; the failover verification writes Redis's state to PostgreSQL (size STREAM_RETENTION_MS above the standby's lag)",
      );
    }
    this.opts.log?.warn(
      { city: r.city, from: r.cursor, upTo: r.upTo },
      'sync: PostgreSQL lost applied events (a promoted standby?); replaying them from the stream',
    );
    this.committed.delete(r.city);
    let from = r.cursor;
    for (;;) {
      const page = await this.redis.xrange(stream, `(${from}`, `(${r.upTo}`, 'COUNT', this.o.batchSize);
      if (page.length === 0) break;
      const events: StreamEvent[] = [];
      for (const [id, fields] of page) {
        try {
          events.push(parseStreamEntry(r.city, id, fields));
        } catch {
          /* poison: its dead letter is still recorded */
        }
      }
      await this.applyBatch(r.city, events);
      this.stats.replayed += events.length;
      from = page.at(-1)?.[0] ?? from;
    }
  }

  /** PostgreSQL changed (a promotion): check every city's cursor against the stream again. */
  postgresChanged(): void {
    this.checked.clear();
  }

  private async read(stream: string, from: '0' | '>'): Promise<Entries> {
    const res = (await this.redis.xreadgroup(
      'GROUP',
      SYNC_GROUP,
      this.consumer,
      'COUNT',
      this.o.batchSize,
      'STREAMS',
      stream,
      from,
    )) as [string, Entries][] | null;
    // Pending entries trimmed away come back with null fields: nothing to apply, just acknowledge.
    const entries = res?.[0]?.[1] ?? [];
    const gone = entries.filter(([, f]) => !f).map(([id]) => id);
    if (gone.length) await this.ack(stream, gone);
    return entries.filter(([, f]) => f);
  }

  private async ack(stream: string, ids: string[]): Promise<void> {
    if (ids.length) await this.redis.xack(stream, SYNC_GROUP, ...ids);
  }

  /**
   * One transaction: the events newer than the cursor, then the cursor — moved to the last event,
   * or to `cursorTo` (events after it applied early, see applyWithLaterStates).
   */
  private async applyBatch(city: string, events: StreamEvent[], cursorTo?: StreamEvent): Promise<void> {
    const fresh = await inTransaction(this.pool, async (db) => {
      if (this.opts.remoteApply) await awaitStandbyApply(db);
      const cursor = await lockCursor(db, city);
      const known = this.committed.get(city);
      if (known && compareStreamIds(cursor, known) < 0) throw new SyncRewound(city, cursor, events[0]?.id ?? known);
      const todo = events.filter((e) => compareStreamIds(e.id, cursor) > 0);
      await applyEvents(db, todo, this.opts.failpoint ? () => this.opts.failpoint?.('mid_batch') : undefined);
      const last =
        cursorTo && compareStreamIds(cursorTo.id, cursor) > 0 ? cursorTo : cursorTo ? undefined : todo.at(-1);
      if (last) {
        await advanceCursor(db, city, last, todo.length);
      }
      this.opts.failpoint?.('before_commit');
      return { applied: todo.length, last: last?.id };
    });
    if (fresh.last) this.committed.set(city, fresh.last);
    this.opts.failpoint?.('after_commit');
    metrics.syncApplied.inc({ city }, fresh.applied);
    this.stats.applied += fresh.applied;
    this.stats.skipped += events.length - fresh.applied;
    this.stats.batches++;
  }

  private async deadLetter(
    city: string,
    event: StreamEvent | { id: string; raw: string[] },
    error: Error,
    attempts: number,
  ): Promise<void> {
    await inTransaction(this.pool, async (db) => {
      await lockCursor(db, city);
      await deadLetterEvent(db, city, event.id, event, {
        message: error.message,
        sqlstate: codeOf(error) ?? null,
        attempts,
      });
    });
    this.stats.deadLettered++;
    metrics.syncDeadLetters.inc({ city });
    this.opts.log?.error(
      { city, streamId: event.id, error: error.message, attempts },
      'sync: event dead-lettered; ALARM: Redis and PostgreSQL disagree until reconciled',
    );
    this.opts.onDeadLetter?.(city, event as StreamEvent, error);
  }

  /** Takes over entries a dead consumer left pending. */
  private async reclaim(city: string): Promise<void> {
    let cursor = '0-0';
    do {
      const res = (await this.redis.xautoclaim(
        keys.events(city),
        SYNC_GROUP,
        this.consumer,
        this.o.claimIdleMs,
        cursor,
        'COUNT',
        this.o.batchSize,
        'JUSTID',
      )) as [string, string[]];
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
    await runScript(this.redis, 'trim_stream', [stream], [safe]);
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

function sqlstateOf(err: unknown): string | undefined {
  return codeOf(err);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
