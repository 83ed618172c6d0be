/**
 * Where the sync stands on a city, read from its consumer group (`pg-sync`) on the city's stream:
 * how many events PostgreSQL does not have yet, and since when. Read by /readyz, `fleet lag`,
 * trimming (only what is synced leaves Redis) and the sync itself.
 */
import { compareStreamIds, parseStreamId } from '../domain/events.ts';
import { keys } from './keys.ts';
import { runScript, type RedisConnection } from './scripts.ts';
import { messageOf } from '../domain/errors.ts';

export const SYNC_GROUP = 'pg-sync';

export interface CityLag {
  city: string;
  eventsBehind: number;
  secondsBehind: number;
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

async function syncState(
  redis: RedisConnection,
  city: string,
): Promise<{ group: boolean; eventsBehind: number; oldestUnsynced?: number }> {
  const stream = keys.events(city);
  // A city without a stream yet has no group; any other failure is the caller's to hear.
  const groups = (await redis.xinfo('GROUPS', stream).catch((err: unknown) => {
    if (/no such key/i.test(messageOf(err))) return [];
    throw err;
  })) as unknown[][];
  const g = groups.map(toRecord).find((x) => x.name === SYNC_GROUP);
  const length = await redis.xlen(stream);
  if (!g) return { group: false, eventsBehind: length };
  const pending = Number(g.pending);
  // The group's `lag` is a counter Redis keeps alongside; after a failover it can be off (or
  // null). Nothing is undelivered when the group has read up to the stream's last entry.
  const lastId = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0];
  const caughtUp = !lastId || compareStreamIds(String(g['last-delivered-id']), lastId) >= 0;
  const undelivered = caughtUp ? 0 : g.lag === null || g.lag === undefined ? length : Math.max(1, Number(g.lag));
  let oldest: string | undefined;
  if (pending > 0) oldest = ((await redis.xpending(stream, SYNC_GROUP)) as [number, string])[1];
  else if (undelivered > 0)
    oldest = (await redis.xrange(stream, `(${String(g['last-delivered-id'])}`, '+', 'COUNT', 1))[0]?.[0];
  return {
    group: true,
    eventsBehind: pending + undelivered,
    ...(oldest ? { oldestUnsynced: parseStreamId(oldest)[0] } : {}),
  };
}

/** A Redis reply's flat `[name, value, ...]` list (XINFO) as a record. */
export function toRecord(flat: unknown[]): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) r[String(flat[i])] = flat[i + 1];
  return r;
}

/**
 * Trims the city's stream below what every group has acknowledged and below the retention window
 * (`retentionMs`), never by a blind MAXLEN: an entry leaves Redis only once every reader has it.
 */
export async function trimStream(redis: RedisConnection, city: string, retentionMs: number): Promise<void> {
  const stream = keys.events(city);
  const groups = await redis.xinfo('GROUPS', stream).catch((err: unknown) => {
    if (/no such key/i.test(messageOf(err))) return []; // no stream yet: nothing to trim
    throw err;
  });
  if (!Array.isArray(groups) || groups.length === 0) return;
  let safe = `${Date.now() - retentionMs}-0`;
  for (const g of groups) {
    const info = toRecord(Array.isArray(g) ? g : []);
    const name = String(info.name);
    const pending = Number(info.pending);
    let floor = String(info['last-delivered-id']);
    if (pending > 0) {
      const summary = await redis.xpending(stream, name);
      if (Array.isArray(summary) && typeof summary[1] === 'string') floor = summary[1];
    }
    if (compareStreamIds(floor, safe) < 0) safe = floor;
  }
  await runScript(redis, 'trim_stream', [stream], [safe]);
}
