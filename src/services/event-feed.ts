/**
 * A city's events from a cursor (the CloudEvents feed, a WebSocket's replay): recent ones from the
 * city's stream, older ones — trimmed from it — from PostgreSQL's event log.
 */
import type pg from 'pg';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../domain/events.ts';
import { survived } from '../log.ts';
import { loggedEventsAfter } from '../pg/events.ts';
import { oldestStreamId, readStream, readStreamEntries } from '../redis/events.ts';
import type { RedisConnection } from '../redis/scripts.ts';

/** The city's events after `after` (exclusive), at most `limit`: the stream's, or the log's when the stream no longer holds them. */
export async function eventsAfter(
  redis: RedisConnection,
  pool: pg.Pool | undefined,
  city: string,
  after: string,
  limit: number,
): Promise<StreamEvent[]> {
  const first = await oldestStreamId(redis, city);
  return pool && first && compareStreamIds(after, first) < 0
    ? loggedEventsAfter(pool, city, after, limit)
    : readStream(redis, city, after, limit);
}

/**
 * A page of the stream after `after` (exclusive), at most `limit` entries (a WebSocket's replay):
 * the events, and the last id read — an entry that cannot be parsed is skipped and counted.
 */
export async function streamPage(
  redis: RedisConnection,
  city: string,
  after: string,
  limit: number,
): Promise<{ events: StreamEvent[]; last: string; read: number }> {
  const entries = await readStreamEntries(redis, city, after, limit);
  const events: StreamEvent[] = [];
  for (const [id, fields] of entries) {
    try {
      events.push(parseStreamEntry(city, id, fields));
    } catch (err) {
      survived('live.parse', err);
    }
  }
  return { events, last: entries.at(-1)?.[0] ?? after, read: entries.length };
}
