/**
 * The sync's guard against a PostgreSQL that lost applied batches (an asynchronous standby
 * promoted without the last transactions): a city's cursor found behind what this worker
 * committed, or behind events the group already acknowledged, means events to apply again; they
 * are replayed from the stream, which keeps at least `retentionMs` of them. What the stream no
 * longer has is reported and left to the failover verification (it writes Redis's state to
 * PostgreSQL).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { metrics } from '../metrics.ts';
import { readCursor } from '../pg/cursors.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { toRecord } from '../redis/sync-state.ts';
import { survived } from '../log.ts';

/** PostgreSQL's cursor is behind what was applied: it lost transactions. */
export class SyncRewound extends Error {
  constructor(
    readonly city: string,
    readonly cursor: string,
    readonly upTo: string,
  ) {
    super(`PostgreSQL's cursor for ${city} went back to ${cursor} (applied up to ${upTo})`);
  }
}

export class CursorGuard {
  /** The cursor this worker last committed per city; PostgreSQL showing less means it lost them. */
  readonly committed = new Map<string, string>();
  /** Cities whose cursor was checked against the stream since start (or since PostgreSQL changed). */
  private readonly checked = new Set<string>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly pool: pg.Pool,
    private readonly batchSize: number,
    private readonly log: Logger | undefined,
  ) {}

  /**
   * Once per city (at start, and after PostgreSQL changed): events between PostgreSQL's cursor and
   * the first entry about to be applied were acknowledged before — PostgreSQL had them and lost
   * them. Throws SyncRewound then.
   */
  async check(city: string, firstId: string): Promise<void> {
    if (this.checked.has(city)) return;
    const cursor = await readCursor(this.pool, city);
    this.checked.add(city);
    if (cursor === undefined || compareStreamIds(cursor, firstId) >= 0) return;
    const gap = await this.redis.xrange(keys.events(city), `(${cursor}`, `(${firstId}`, 'COUNT', 1);
    if (gap.length > 0) throw new SyncRewound(city, cursor, firstId);
  }

  /** A cursor read inside a batch's transaction, against what this worker committed. */
  verify(city: string, cursor: string, firstId: string | undefined): void {
    const known = this.committed.get(city);
    if (known && compareStreamIds(cursor, known) < 0) throw new SyncRewound(city, cursor, firstId ?? known);
  }

  /** PostgreSQL changed (a promotion): every city's cursor is checked against the stream again. */
  forget(): void {
    this.checked.clear();
  }

  /** Applies again, from the stream, what PostgreSQL lost: (cursor, upTo). Returns how many events. */
  async replay(r: SyncRewound, apply: (city: string, events: StreamEvent[]) => Promise<void>): Promise<number> {
    metrics.syncRewinds.inc({ city: r.city });
    const stream = keys.events(r.city);
    const info = toRecord((await this.redis.xinfo('STREAM', stream)) as unknown[]);
    const deleted = String(info['max-deleted-entry-id'] ?? '0-0');
    if (compareStreamIds(deleted, r.cursor) > 0) {
      this.log?.error(
        { city: r.city, cursor: r.cursor, trimmedThrough: deleted },
        "sync: PostgreSQL lost events the stream no longer has; the failover verification writes Redis's state to PostgreSQL (size STREAM_RETENTION_MS above the standby's lag)",
      );
    }
    this.log?.warn(
      { city: r.city, from: r.cursor, upTo: r.upTo },
      'sync: PostgreSQL lost applied events (a promoted standby?); replaying them from the stream',
    );
    this.committed.delete(r.city);
    let replayed = 0;
    let from = r.cursor;
    for (;;) {
      const page = await this.redis.xrange(stream, `(${from}`, `(${r.upTo}`, 'COUNT', this.batchSize);
      if (page.length === 0) break;
      const events: StreamEvent[] = [];
      for (const [id, fields] of page) {
        try {
          events.push(parseStreamEntry(r.city, id, fields));
        } catch (err) {
          survived('sync.replay-parse', err); // poison: its dead letter is already recorded
        }
      }
      await apply(r.city, events);
      replayed += events.length;
      from = page.at(-1)?.[0] ?? from;
    }
    return replayed;
  }
}
