/**
 * Time-driven changes to a city (the sweeper's work, workers/sweeper.ts): holds that lapsed
 * expire and statuses move with the clock; past, final entries leave the calendars once
 * PostgreSQL has them. Each change is one script, like every other.
 */
import { randomUUID } from 'node:crypto';
import { keys } from '../redis/keys.ts';
import { fromScript, luaList, runScript, type RedisConnection } from '../redis/scripts.ts';
import { MAX_TIMESTAMP_MS } from '../domain/calendar.ts';
import { time } from './commands.ts';
import type { Clock } from '../redis/clock.ts';

/**
 * One sweep over a city: lapsed holds expire and statuses move with the clock, for every
 * vehicle whose next status change is due. Returns how many vehicles were looked at.
 */
export async function sweepCity(
  redis: RedisConnection,
  clock: Clock,
  city: string,
  batch = 100,
): Promise<{ vehicles: number; expired: number; events: string[]; at?: number }> {
  // Candidates by our clock (a little ahead for skew); the script decides by the server's.
  const due = await redis.zrangebyscore(keys.statusDue(city), '-inf', clock.now() + 1_000, 'LIMIT', 0, batch);
  if (due.length === 0) return { vehicles: 0, expired: 0, events: [] };
  const vehicleKeys = due.flatMap((v) => keys.vehicleKeys(city, v));
  const raw = await runScript(
    redis,
    'expire_holds',
    [...keys.cityScriptKeys(city), ...vehicleKeys],
    [randomUUID(), city, ...due],
  );
  const out = fromScript<{ expired: number; events: string[] | Record<string, never>; at: number }>(raw);
  return {
    vehicles: due.length,
    expired: out.expired,
    events: luaList(out.events),
    at: out.at,
  };
}

/**
 * Past, final entries leave the city's calendars once PostgreSQL has them (`syncedThrough`:
 * every change before it is synced). Returns how many entries were removed.
 */
export async function trimCity(
  redis: RedisConnection,
  city: string,
  before: number,
  syncedThrough: number,
  batch = 200,
): Promise<number> {
  if (syncedThrough <= 0) return 0;
  let removed = 0;
  let cursor = '0';
  do {
    const [next, ids] = await redis.sscan(keys.vehicles(city), cursor, 'COUNT', batch);
    cursor = next;
    if (ids.length) {
      removed += Number(
        await runScript(
          redis,
          'trim_calendar',
          [keys.entries(city), ...ids.flatMap((v) => [keys.calendar(city, v), keys.calendarIndex(city, v)])],
          [time(before, 'before'), time(Math.min(syncedThrough, MAX_TIMESTAMP_MS), 'syncedThrough')],
        ),
      );
    }
  } while (cursor !== '0');
  return removed;
}
