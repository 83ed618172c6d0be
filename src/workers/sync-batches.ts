/**
 * How the sync applies a city's entries: a batch in ONE PostgreSQL transaction together with the
 * city's cursor (a re-delivered event is skipped, never applied twice), acknowledged only after
 * the commit; poison (an event PostgreSQL refuses with a data error) is retried alone, then
 * dead-lettered with the cursor moved past it, so the city's later events keep flowing.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { asError, codeOf } from '../domain/errors.ts';
import { metrics } from '../metrics.ts';
import { advanceCursor, deadLetterEvent, lockCursor } from '../pg/cursors.ts';
import { applyEvents } from '../pg/projection.ts';
import { inSpan } from '../telemetry/spans.ts';
import { awaitStandbyApply, inTransaction } from '../pg/tx.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import type { StreamEntry } from '../redis/stream-consumer.ts';
import { SyncRewound, type CursorGuard } from './sync-rewind.ts';

export type Failpoint = 'mid_batch' | 'before_commit' | 'after_commit';

/** Counters for metrics and tests. */
export interface SyncStats {
  applied: number;
  skipped: number;
  deadLettered: number;
  batches: number;
  retries: number;
  replayed: number;
  rewinds: number;
}

export interface BatchOptions {
  maxAttempts: number;
  /** How long an overlap refused by PostgreSQL waits for a verification to settle it. */
  overlapGraceMs: number;
  /** DR_ACK=remote: each batch commits once the synchronous standby applied it. */
  remoteApply: boolean;
  log?: Logger | undefined;
  onDeadLetter?: ((city: string, event: StreamEvent | { id: string }, error: Error) => void) | undefined;
  /** Test hook: called at named points of a batch (the failpoint tests kill the process there). */
  failpoint?: ((where: Failpoint) => void) | undefined;
}

/** Data errors (SQLSTATE classes 22 and 23) mean this event cannot be applied: poison. */
function isPoison(err: unknown): boolean {
  const code = codeOf(err);
  return typeof code === 'string' && /^2[23]/.test(code);
}

export class BatchApplier {
  private readonly attempts = new Map<string, { count: number; firstAt: number }>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly pool: pg.Pool,
    private readonly guard: CursorGuard,
    private readonly o: BatchOptions,
    readonly stats: SyncStats,
  ) {}

  /** The stream consumer's handler: a city's entries in; the ids done (applied, skipped or dead-lettered) out. */
  async handle(city: string, entries: readonly StreamEntry[]): Promise<string[]> {
    const events: StreamEvent[] = [];
    const poison: { id: string; error: Error }[] = [];
    for (const { id, fields } of entries) {
      try {
        events.push(parseStreamEntry(city, id, fields));
      } catch (err) {
        poison.push({ id, error: asError(err) });
      }
    }
    try {
      const first = entries[0]?.id;
      if (first) await this.guard.check(city, first);
      if (poison.length === 0) {
        try {
          await this.applyBatch(city, events);
          return entries.map((e) => e.id);
        } catch (err) {
          if (!isPoison(err)) throw err;
        }
      }
      return await this.oneByOne(city, entries, poison);
    } catch (err) {
      if (!(err instanceof SyncRewound)) throw err;
      this.stats.rewinds++;
      this.stats.replayed += await this.guard.replay(err, (c, evs) => this.applyBatch(c, evs));
      return []; // the batch is still pending: the next pass applies it
    }
  }

  /** Something in the batch is poison: one by one, in order, so the rest keeps flowing. Returns the ids done. */
  private async oneByOne(
    city: string,
    entries: readonly StreamEntry[],
    poison: { id: string; error: Error }[],
  ): Promise<string[]> {
    const done: string[] = [];
    const stream = keys.events(city);
    for (const { id, fields } of entries) {
      const bad = poison.find((p) => p.id === id);
      let event: StreamEvent | undefined;
      try {
        if (bad) throw bad.error;
        event = parseStreamEntry(city, id, fields);
        await this.applyBatch(city, [event]);
      } catch (err) {
        if (err instanceof SyncRewound) throw err;
        if (!isPoison(err) && !bad) throw err;
        if (event && codeOf(err) === '23P01' && (await this.applyWithLaterStates(city, stream, event))) {
          done.push(id);
          continue;
        }
        const a = this.attempts.get(id) ?? { count: 0, firstAt: Date.now() };
        a.count++;
        this.attempts.set(id, a);
        const grace = codeOf(err) === '23P01' ? this.o.overlapGraceMs : 0;
        if (a.count < this.o.maxAttempts || Date.now() - a.firstAt < grace) return done; // retried next pass; nothing after it yet
        await this.deadLetter(city, event ?? { id, raw: fields }, asError(err), a.count);
        this.attempts.delete(id);
      }
      done.push(id);
    }
    return done;
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
        const e = parsedOrUndefined(city, id, fields);
        if (e && e.subject === event.subject) later.push(e);
      }
      const last = page.at(-1);
      if (page.length < 1000 || !last) break;
      from = last[0];
    }
    if (later.length === 0) return false;
    try {
      await this.applyBatch(city, [event, ...later], event);
      this.o.log?.warn(
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
   * One transaction: the events newer than the cursor, then the cursor — moved to the last event,
   * or to `cursorTo` (events after it applied early, see applyWithLaterStates).
   */
  async applyBatch(city: string, events: StreamEvent[], cursorTo?: StreamEvent): Promise<void> {
    const { failpoint } = this.o;
    // The sync's transaction continues the trace of the batch's first traced event and links the others.
    const traced = events.map((e) => e.traceparent).filter((tp) => tp !== undefined);
    const span = {
      parent: traced[0],
      links: traced.slice(1),
      attributes: { 'fleet.city': city, 'fleet.events': events.length },
    };
    const fresh = await inSpan('sync.apply', span, () =>
      inTransaction(this.pool, async (db) => {
        if (this.o.remoteApply) await awaitStandbyApply(db);
        const cursor = await lockCursor(db, city);
        this.guard.verify(city, cursor, events[0]?.id);
        const todo = events.filter((e) => compareStreamIds(e.id, cursor) > 0);
        await applyEvents(db, todo, failpoint ? () => failpoint('mid_batch') : undefined);
        const last =
          cursorTo && compareStreamIds(cursorTo.id, cursor) > 0 ? cursorTo : cursorTo ? undefined : todo.at(-1);
        if (last) await advanceCursor(db, city, last, todo.length);
        failpoint?.('before_commit');
        return { applied: todo.length, last: last?.id };
      }),
    );
    if (fresh.last) this.guard.committed.set(city, fresh.last);
    failpoint?.('after_commit');
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
    this.o.log?.error(
      { city, streamId: event.id, error: error.message, attempts },
      'sync: event dead-lettered; ALARM: Redis and PostgreSQL disagree until reconciled',
    );
    this.o.onDeadLetter?.(city, event, error);
  }
}

/** A stream entry as an event, or undefined when it does not parse (its own dead letter says why). */
function parsedOrUndefined(city: string, id: string, fields: string[]): StreamEvent | undefined {
  try {
    return parseStreamEntry(city, id, fields);
  } catch {
    return undefined; // not an event of this entry's subject, whatever it is
  }
}
