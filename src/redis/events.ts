/**
 * A city stream's entries as the service reads them: every consumer (the sync into PostgreSQL,
 * the read models, the WebSocket hubs, the resolver, the event feed) parses an entry here.
 * Stream ids are `<ms>-<seq>` and order the events of a city.
 */
import { parseStreamEntry, type StreamEvent } from '../domain/events.ts';
import { keys } from './keys.ts';
import type { RedisConnection } from './scripts.ts';

// The entries' format is the domain's (pure); these readers bring it from Redis.
export {
  compareStreamIds,
  fieldMap,
  MalformedEventError,
  parseStreamEntry,
  parseStreamId,
  type StreamEvent,
} from '../domain/events.ts';

/** The city's events after `after` (exclusive), at most `limit`, from its stream. */
export async function readStream(
  redis: RedisConnection,
  city: string,
  after: string,
  limit: number,
): Promise<StreamEvent[]> {
  return (await redis.xrange(keys.events(city), `(${after}`, '+', 'COUNT', limit)).map(([id, f]) =>
    parseStreamEntry(city, id, f),
  );
}

/** The raw entries after `after` (exclusive), at most `limit`: for a reader that skips what it cannot parse. */
export function readStreamEntries(
  redis: RedisConnection,
  city: string,
  after: string,
  limit: number,
): Promise<[string, string[]][]> {
  return redis.xrange(keys.events(city), `(${after}`, '+', 'COUNT', limit);
}

/** The id of the oldest event the city's stream still holds (older ones were trimmed). */
export async function oldestStreamId(redis: RedisConnection, city: string): Promise<string | undefined> {
  return (await redis.xrange(keys.events(city), '-', '+', 'COUNT', 1))[0]?.[0];
}
