/**
 * The clock the engine runs on. Scripts read Redis's TIME (one clock for every process); the
 * TypeScript side reads `clock.now()` where it must agree with them (which vehicles a sweep
 * looks at). Production uses `systemClock`. A test that needs time to pass — a trip overdue, a
 * block ending — uses a `ShiftedClock` on a connection of its own and moves it, instead of
 * waiting for the wall clock.
 */
import { setClockOffset, type RedisConnection } from './scripts.ts';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ShiftedClock implements Clock {
  private offsetMs = 0;

  private readonly conns: RedisConnection[];

  /** The connections become this clock's: their scripts run with its offset (an argument, so Redis caches each script once). */
  constructor(...conns: RedisConnection[]) {
    this.conns = conns;
    for (const conn of conns) setClockOffset(conn, 0);
  }

  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Moves time forward (never back: the engine's stream ids and versions assume it does not). */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isSafeInteger(ms)) throw new Error(`advance by ${ms} ms: a whole, non-negative number`);
    this.offsetMs += ms;
    for (const conn of this.conns) setClockOffset(conn, this.offsetMs);
  }

  /** Moves time to `t` (or leaves it, if it is already past). */
  advanceTo(t: number): void {
    this.advance(Math.max(0, Math.ceil(t - this.now())));
  }
}
