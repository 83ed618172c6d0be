/**
 * Operations' view of the market: live counts per city, straight from the exact Redis counters;
 * and utilization over time, computed in PostgreSQL from the projected tables (a read replica
 * when one is configured), cached briefly in process.
 */
import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import { DomainError } from '../../domain/errors.ts';
import { keys } from '../../redis/keys.ts';
import type { App, AppDeps } from '../app.ts';
import { requireRole } from '../authorize.ts';
import { IsoTime, toMs } from '../schemas.ts';

const problem = { $ref: 'Problem#' } as const;
const Counts = Type.Record(Type.String(), Type.Integer());

/** How long a utilization answer is reused (and the `Cache-Control: max-age` it is sent with). */
export const UTILIZATION_CACHE_TTL_MS = 10_000;
/** Cached utilization answers kept at most; the oldest is dropped beyond. */
export const UTILIZATION_CACHE_MAX_ENTRIES = 500;
/** Buckets per request at most: 92 days of hours, or ten years of days. */
export const UTILIZATION_MAX_BUCKETS = { hour: 24 * 92, day: 3660 } as const;

const HOUR_MS = 3_600_000;
const STEP_MS = { hour: HOUR_MS, day: 24 * HOUR_MS } as const;
type Granularity = keyof typeof STEP_MS;

const UtilizationQuery = Type.Object({
  city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }),
  from: IsoTime, to: IsoTime,
  granularity: Type.Unsafe<Granularity>({ type: 'string', enum: ['hour', 'day'], description: 'UTC hours or UTC days' }),
}, { additionalProperties: false });

const Bucket = Type.Object({
  start: IsoTime, end: IsoTime,
  vehicles: Type.Integer({ description: 'vehicles of the city listed now (not delisted) and created before the bucket ends' }),
  bookedHours: Type.Number({ description: 'vehicle-hours of confirmed, active and completed bookings inside the bucket' }),
  blockedHours: Type.Number({ description: 'vehicle-hours of active and cleared blocks inside the bucket' }),
  utilization: Type.Number({ description: 'bookedHours / (vehicles × hours in the bucket); 0 without vehicles' }),
  blockedShare: Type.Number({ description: 'blockedHours / (vehicles × hours in the bucket); 0 without vehicles' }),
});
const Utilization = Type.Object({
  city: Type.String(), from: IsoTime, to: IsoTime, granularity: Type.Unsafe<Granularity>({ type: 'string', enum: ['hour', 'day'] }),
  buckets: Type.Array(Bucket),
});
type UtilizationT = Static<typeof Utilization>;

/**
 * One row per bucket. $1 city, $2 first bucket start (epoch ms: any year, 0000 included), $3 bucket
 * length, $4 number of buckets.
 * Only vehicles counted in a bucket contribute hours to it, so utilization never exceeds 1.
 */
const UTILIZATION_SQL = `
WITH buckets AS (
  SELECT g.i, tstzrange(to_timestamp($2::float8 / 1000) + g.i * $3::interval, to_timestamp($2::float8 / 1000) + (g.i + 1) * $3::interval, '[)') AS r
  FROM generate_series(0, $4::int - 1) AS g(i)
), fleet AS (
  SELECT id, created_at FROM vehicles WHERE city = $1 AND listing <> 'delisted'
)
SELECT lower(b.r) AS start, upper(b.r) AS "end",
  (SELECT count(*) FROM fleet f WHERE f.created_at < upper(b.r))::int AS vehicles,
  (SELECT COALESCE(sum(extract(epoch FROM upper(k.period * b.r) - lower(k.period * b.r))), 0)
     FROM bookings k JOIN fleet f ON f.id = k.vehicle_id AND f.created_at < upper(b.r)
     WHERE k.city = $1 AND k.status IN ('confirmed', 'active', 'completed') AND k.period && b.r)::float8 / 3600 AS booked_hours,
  (SELECT COALESCE(sum(extract(epoch FROM upper(k.period * b.r) - lower(k.period * b.r))), 0)
     FROM blocks k JOIN fleet f ON f.id = k.vehicle_id AND f.created_at < upper(b.r)
     WHERE k.city = $1 AND k.status IN ('active', 'cleared') AND k.period && b.r)::float8 / 3600 AS blocked_hours
FROM buckets b ORDER BY b.i`;

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** Connection trouble (the database or replica is down or unreachable) is a 503, not a 500. */
function unavailable(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return code.startsWith('08') || code.startsWith('57P') || ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code)
    || /timeout|Connection terminated/i.test((err as Error).message ?? '');
}

async function computeUtilization(db: pg.Pool, city: string, q: { from: number; to: number; granularity: Granularity; first: number; buckets: number }): Promise<UtilizationT> {
  const step = STEP_MS[q.granularity];
  let rows: { start: Date; end: Date; vehicles: number; booked_hours: number; blocked_hours: number }[];
  try {
    // Hours, never days, as the step: '1 day' would follow the session time zone's DST changes.
    ({ rows } = await db.query(UTILIZATION_SQL, [city, q.first, `${step / HOUR_MS} hours`, q.buckets]));
  } catch (err) {
    if (unavailable(err)) throw new DomainError('UNAVAILABLE', 'the analytics database is unavailable; retry shortly');
    throw err;
  }
  const capacity = (vehicles: number) => vehicles * (step / HOUR_MS);
  return {
    city, from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(), granularity: q.granularity,
    buckets: rows.map((r) => ({
      start: r.start.toISOString(), end: r.end.toISOString(), vehicles: r.vehicles,
      bookedHours: round6(r.booked_hours), blockedHours: round6(r.blocked_hours),
      utilization: r.vehicles > 0 ? round6(r.booked_hours / capacity(r.vehicles)) : 0,
      blockedShare: r.vehicles > 0 ? round6(r.blocked_hours / capacity(r.vehicles)) : 0,
    })),
  };
}

/** A small TTL cache of answers (in flight ones included, so a burst of equal requests runs one query). */
class AnswerCache<V> {
  private readonly entries = new Map<string, { at: number; value: Promise<V> }>();
  constructor(private readonly ttlMs: number, private readonly maxEntries: number) {}

  /** The cached answer and its age, or a fresh one from `compute`. */
  async get(key: string, compute: () => Promise<V>): Promise<{ value: V; hit: boolean; ageMs: number }> {
    const now = Date.now();
    const found = this.entries.get(key);
    if (found && now - found.at < this.ttlMs) return { value: await found.value, hit: true, ageMs: now - found.at };
    if (found) this.entries.delete(key);
    const entry = { at: now, value: compute() };
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    try {
      return { value: await entry.value, hit: false, ageMs: 0 };
    } catch (err) {
      if (this.entries.get(key) === entry) this.entries.delete(key); // failures are never cached
      throw err;
    }
  }
}

export function analyticsRoutes(app: App, { inventory, redis, pool, replicaPool }: AppDeps): void {
  const cache = new AnswerCache<UtilizationT>(UTILIZATION_CACHE_TTL_MS, UTILIZATION_CACHE_MAX_ENTRIES);
  const readPool = replicaPool ?? pool;

  app.get('/v1/analytics/utilization', {
    schema: {
      tags: ['analytics'], summary: 'Booked and blocked vehicle-hours per UTC hour or day, and utilization (PostgreSQL; cached 10 s)',
      description: 'Buckets are whole UTC hours or days covering [from, to). Read from the replica when one is configured; the answer may lag the live engine by the sync delay plus the cache time.',
      querystring: UtilizationQuery,
      response: { 200: Utilization, 400: problem, 401: problem, 403: problem, 404: problem, 503: problem },
    },
  }, async (request, reply) => {
    requireRole(request.actor, 'ops', 'admin');
    const { city, granularity } = request.query;
    const from = toMs(request.query.from);
    const to = toMs(request.query.to);
    if (!(from < to)) throw new DomainError('INVALID_INTERVAL', 'from must be before to', { from: request.query.from, to: request.query.to });
    const step = STEP_MS[granularity];
    const first = Math.floor(from / step) * step;
    const buckets = Math.ceil((to - first) / step);
    const max = UTILIZATION_MAX_BUCKETS[granularity];
    if (buckets > max) throw new DomainError('VALIDATION', `at most ${max} ${granularity} buckets per request (asked for ${buckets})`, { buckets, max });
    if (!inventory.cities.get(city)) throw new DomainError('NOT_FOUND', `city ${city} not found`, { entity: 'city', id: city });
    if (!readPool) throw new DomainError('UNAVAILABLE', 'utilization needs PostgreSQL, and none is configured in this process');
    const db = readPool;
    const answer = await cache.get(`${city}|${from}|${to}|${granularity}`, () => computeUtilization(db, city, { from, to, granularity, first, buckets }));
    const maxAge = Math.max(0, Math.ceil((UTILIZATION_CACHE_TTL_MS - answer.ageMs) / 1000));
    void reply.header('cache-control', `private, max-age=${maxAge}`).header('x-cache', answer.hit ? 'hit' : 'miss');
    return answer.value;
  });

  app.get('/v1/analytics/cities', {
    schema: {
      tags: ['analytics'], summary: 'Live vehicle counts per city, by status and by category (exact, real time)',
      response: { 200: Type.Object({ cities: Type.Array(Type.Object({ city: Type.String(), vehicles: Type.Integer(), byStatus: Counts, byCategory: Counts, byCategoryAndStatus: Type.Record(Type.String(), Counts) })) }), 401: problem, 403: problem },
    },
  }, async (request) => {
    requireRole(request.actor, 'ops', 'admin');
    const cities = [];
    for (const c of inventory.cities.all()) {
      const raw = await redis.hgetall(keys.counters(c.id));
      const byStatus: Record<string, number> = {};
      const byCategory: Record<string, number> = {};
      const byCategoryAndStatus: Record<string, Record<string, number>> = {};
      for (const [k, v] of Object.entries(raw)) {
        const n = Number(v);
        if (n === 0) continue;
        const [kind, a, b] = k.split(':');
        if (kind === 's' && a) byStatus[a] = n;
        else if (kind === 'c' && a) byCategory[a] = n;
        else if (kind === 'cs' && a && b) (byCategoryAndStatus[a] ??= {})[b] = n;
      }
      cities.push({ city: c.id, vehicles: Object.values(byCategory).reduce((x, y) => x + y, 0), byStatus, byCategory, byCategoryAndStatus });
    }
    return { cities };
  });
}
