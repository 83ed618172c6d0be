/**
 * The sync worker: every city stream, through one consumer group, into PostgreSQL (architecture.md §5).
 * This file wires the reader and the housekeeping (trimming, the lag gauges); applying batches and
 * poison is `sync-batches.ts`, a PostgreSQL that went back in time `sync-rewind.ts`.
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
 * - Event-driven: the worker waits in `XREADGROUP … BLOCK` (redis/stream-consumer.ts) and wakes
 *   when a city's stream gets an entry.
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
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { CityCatalog } from '../domain/cities.ts';
import { survived } from '../log.ts';
import { metrics } from '../metrics.ts';
import type { StreamEvent } from '../redis/events.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { StreamConsumer } from '../redis/stream-consumer.ts';
import { cityLag, SYNC_GROUP, trimStream, type CityLag } from '../redis/sync-state.ts';
import { BatchApplier, type Failpoint, type SyncStats } from './sync-batches.ts';
import { CursorGuard } from './sync-rewind.ts';

export { cityLag, syncedThrough, SYNC_GROUP, type CityLag } from '../redis/sync-state.ts';
export type { Failpoint } from './sync-batches.ts';

/** How often the streams are trimmed and the lag gauges refreshed. */
const HOUSEKEEPING_MS = 10_000;

export interface SyncOptions {
  batchSize?: number;
  /** Cities applied at once, each in its own transaction (SYNC_PARALLEL). */
  parallel?: number;
  /** After a batch smaller than a full one, wait this long for more (SYNC_LINGER_MS). */
  lingerMs?: number;
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

export class SyncWorker {
  readonly consumer: string;
  readonly stats: SyncStats = {
    applied: 0,
    skipped: 0,
    deadLettered: 0,
    batches: 0,
    retries: 0,
    replayed: 0,
    rewinds: 0,
  };
  private readonly guard: CursorGuard;
  private readonly reader: StreamConsumer;
  private readonly retentionMs: number;
  private stopped = false;
  private readonly stopping = new AbortController();
  private housekeeping: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisConnection,
    pool: pg.Pool,
    private readonly cities: CityCatalog,
    opts: SyncOptions = {},
  ) {
    this.consumer = opts.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const batchSize = opts.batchSize ?? defaults.SYNC_BATCH_SIZE;
    this.retentionMs = opts.retentionMs ?? defaults.STREAM_RETENTION_MS;
    this.guard = new CursorGuard(redis, pool, batchSize, opts.log);
    const applier = new BatchApplier(
      redis,
      pool,
      this.guard,
      {
        maxAttempts: opts.maxAttempts ?? defaults.SYNC_MAX_ATTEMPTS,
        overlapGraceMs: opts.overlapGraceMs ?? defaults.SYNC_OVERLAP_GRACE_MS,
        remoteApply: opts.remoteApply ?? false,
        log: opts.log,
        onDeadLetter: opts.onDeadLetter,
        failpoint: opts.failpoint,
      },
      this.stats,
    );
    this.reader = new StreamConsumer({
      name: 'sync',
      redis,
      cities: () => cities.all().map((c) => c.id),
      group: {
        name: SYNC_GROUP,
        consumer: this.consumer,
        start: '0',
        claimIdleMs: opts.claimIdleMs ?? defaults.SYNC_CLAIM_IDLE_MS,
      },
      count: batchSize,
      // Cities are independent (a cursor and a transaction each): several apply at once, each
      // city's batches still one after another, in stream order.
      concurrency: opts.parallel ?? defaults.SYNC_PARALLEL,
      lingerMs: opts.lingerMs ?? defaults.SYNC_LINGER_MS,
      handle: (city, entries) => applier.handle(city, entries),
      onError: (err) => {
        // PostgreSQL or Redis away: the entries stay pending and the reader backs off.
        this.stats.retries++;
        opts.log?.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'sync: store unavailable, backing off',
        );
      },
    });
  }

  /** Creates the consumer group on every city stream (from the start of the stream). */
  async ensureGroups(): Promise<void> {
    await this.reader.ensureGroups();
  }

  start(): void {
    // Every city's dead-letter series exists from the start, at 0, so that an alert on its
    // increase sees the first one (a series born at 1 has no increase).
    for (const c of this.cities.all()) metrics.syncDeadLetters.inc({ city: c.id }, 0);
    this.reader.start();
    this.housekeeping = this.keepHouse();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all([this.reader.stop(), this.housekeeping]);
  }

  /** Trims the streams and refreshes the lag gauges every HOUSEKEEPING_MS, until stopped. */
  private async keepHouse(): Promise<void> {
    while (!this.stopped) {
      await sleep(HOUSEKEEPING_MS, undefined, { signal: this.stopping.signal }).catch(() => undefined); // cut short by stop
      if (this.stopped) break;
      try {
        for (const c of this.cities.all()) await this.trim(c.id);
        await this.lag();
      } catch (err) {
        survived('sync.housekeeping', err); // next round tries again
      }
    }
  }

  /** One pass over every city without waiting; returns how many events were handled. */
  async syncOnce(): Promise<number> {
    return this.reader.consumeOnce();
  }

  /** Drains every city until nothing is pending or new (tests, CLI). */
  async drain(timeoutMs = 60_000): Promise<void> {
    await this.ensureGroups();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.syncOnce();
      if (n === 0 && (await this.lag()).every((l) => l.eventsBehind === 0)) return;
      if (Date.now() > deadline) throw new Error('sync drain timed out');
      if (n === 0) await sleep(20);
    }
  }

  /** PostgreSQL changed (a promotion): check every city's cursor against the stream again. */
  postgresChanged(): void {
    this.guard.forget();
  }

  /** Trims the stream below what every group has acknowledged and the retention window. */
  async trim(city: string): Promise<void> {
    await trimStream(this.redis, city, this.retentionMs);
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
