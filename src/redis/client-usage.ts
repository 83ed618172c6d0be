/**
 * API clients' usage per minute (services/client-usage.ts): one hash per client and UTC day
 * (keys.clientUsage), kept `retentionMs` past the day's end. Counts are added in batches by each
 * process (HINCRBY: processes add up) and read a day key at a time.
 */
import { keys } from './keys.ts';
import type { RedisConnection } from './scripts.ts';

export interface UsageCounts {
  /** Requests and WebSocket messages charged to the client. */
  requests: number;
  /** Budget units charged (a batch of n items: n). */
  units: number;
  /** Charges refused (429). */
  refused: number;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const FIELDS = [
  ['r', 'requests'],
  ['u', 'units'],
  ['x', 'refused'],
] as const;

/** Adds one client's counts, by minute since the epoch; each day's hash lives until `retentionMs` after that day. */
export async function addClientUsage(
  redis: RedisConnection,
  clientId: string,
  byMinute: ReadonlyMap<number, UsageCounts>,
  retentionMs: number,
): Promise<void> {
  const pipe = redis.pipeline();
  const days = new Set<number>();
  for (const [minute, counts] of byMinute) {
    const day = Math.floor((minute * MINUTE) / DAY);
    days.add(day);
    for (const [prefix, field] of FIELDS)
      if (counts[field]) pipe.hincrby(keys.clientUsage(clientId, day), `${prefix}:${minute}`, counts[field]);
  }
  for (const day of days) pipe.pexpireat(keys.clientUsage(clientId, day), (day + 1) * DAY + retentionMs);
  const replies = (await pipe.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
}

/** The client's counts of every minute in [fromMinute, toMinute) that has any. */
export async function readClientUsage(
  redis: RedisConnection,
  clientId: string,
  fromMinute: number,
  toMinute: number,
): Promise<Map<number, UsageCounts>> {
  const out = new Map<number, UsageCounts>();
  const first = Math.floor((fromMinute * MINUTE) / DAY);
  const last = Math.floor(((toMinute - 1) * MINUTE) / DAY);
  const pipe = redis.pipeline();
  for (let day = first; day <= last; day++) pipe.hgetall(keys.clientUsage(clientId, day));
  for (const [err, hash] of (await pipe.exec()) ?? []) {
    if (err) throw err;
    if (!hash || typeof hash !== 'object') continue;
    for (const [k, v] of Object.entries(hash)) {
      const [prefix, m] = k.split(':');
      const minute = Number(m);
      const field = FIELDS.find(([p]) => p === prefix)?.[1];
      if (!field || !Number.isSafeInteger(minute) || minute < fromMinute || minute >= toMinute) continue;
      const counts = out.get(minute) ?? { requests: 0, units: 0, refused: 0 };
      counts[field] += Number(v);
      out.set(minute, counts);
    }
  }
  return out;
}
