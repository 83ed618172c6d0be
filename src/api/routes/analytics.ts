/**
 * Operations' view of the market: live counts per city, straight from the exact Redis counters;
 * utilization over time and conflict tracking (how displaced bookings ended), computed in
 * PostgreSQL from the projected tables (a read replica when one is configured), cached briefly
 * in process.
 */
import type { FastifyReply } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type pg from 'pg';
import { DomainError } from '../../domain/errors.ts';
import { keys } from '../../redis/keys.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
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

/** How long a conflicts answer is reused (and the `Cache-Control: max-age` it is sent with). */
export const CONFLICTS_CACHE_TTL_MS = 10_000;
/** Cached conflicts answers kept at most; the oldest is dropped beyond. */
export const CONFLICTS_CACHE_MAX_ENTRIES = 500;

const ConflictsQuery = Type.Object({
  city: Type.Optional(Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' })),
  hostId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'the host of the original (displaced) vehicle' })),
  from: Type.String({ format: 'date-time', maxLength: 40, description: 'ISO 8601 with offset: conflicts whose booking became conflicted at or after this instant' }),
  to: Type.String({ format: 'date-time', maxLength: 40, description: 'ISO 8601 with offset: and before this one' }),
}, { additionalProperties: false });

const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const figureFields = {
  conflicts: Type.Integer({ description: 'bookings that became conflicted in [from, to) (a booking conflicted twice counts twice)' }),
  byCause: Type.Record(Type.String(), Type.Integer(), { description: 'conflicts per cause (maintenance, accident, delisted, late_return, ...)' }),
  offersMade: Type.Integer({ description: 'offers (held alternatives) made for these conflicts' }),
  accepted: Type.Integer({ description: 'conflicts closed by accepting an offer' }),
  declined: Type.Integer({ description: 'conflicts closed by declining the offers' }),
  lapsed: Type.Integer({ description: 'conflicts whose offers lapsed' }),
  noAlternative: Type.Integer({ description: 'conflicts cancelled with NO_ALTERNATIVE' }),
  cancelled: Type.Integer({ description: 'conflicted bookings cancelled another way (by the customer or ops) before any outcome; not in acceptanceRate' }),
  open: Type.Integer({ description: 'conflicts without an outcome yet; conflicts = accepted + declined + lapsed + noAlternative + cancelled + open' }),
  acceptanceRate: Type.Union([Type.Number(), Type.Null()], { description: 'accepted / (accepted + declined + lapsed + noAlternative), 6 decimals; null when that is 0' }),
  timeToFirstOffer: Type.Object({
    p50Ms: NullableInt, p99Ms: NullableInt,
  }, { description: 'from the booking becoming conflicted to its offers (or its NO_ALTERNATIVE cancellation), in ms: percentile_disc (nearest rank, an observed value); null without any' }),
  incentiveCost: Type.Number({ description: "the accepted offers' incentive amounts plus the NO_ALTERNATIVE credits, 2 decimals" }),
};
const Figures = Type.Object(figureFields);
const ConflictsAnswer = Type.Object({
  from: IsoTime, to: IsoTime,
  filters: Type.Object({ city: Type.Optional(Type.String()), hostId: Type.Optional(Type.String()) }),
  totals: Figures,
  byCity: Type.Array(Type.Object({ city: Type.String(), ...figureFields })),
  byHost: Type.Array(Type.Object({ hostId: Type.Union([Type.String(), Type.Null()], { description: 'null when the vehicle is unknown to PostgreSQL' }), ...figureFields })),
});
type FiguresT = Static<typeof Figures>;
type ConflictsAnswerT = Static<typeof ConflictsAnswer>;

/** A conflicts row's stream position, (ms, seq), for ordering. */
const POS = (t: string) => `split_part(${t}.stream_id, '-', 1)::bigint DESC, split_part(${t}.stream_id, '-', 2)::bigint DESC`;

/**
 * Figures for the whole selection, per city and per host, in one statement. $1 from, $2 to
 * (epoch ms; conflicted_at in [from, to)), $3 city or null, $4 host or null.
 * - An offer belongs to the latest conflict of its booking at or before the offer was made.
 * - The first offer is the `conflict.offers_ready` time (offers.created_at); a NO_ALTERNATIVE
 *   conflict's is its cancellation (resolved_at). Times go through epoch seconds (numeric), so the
 *   difference is exact to the ms.
 * - The cost is the accepted offer's incentive amount, or the NO_ALTERNATIVE credit (the
 *   cancelled booking's document keeps it).
 */
const CONFLICTS_SQL = `
WITH sel AS (
  SELECT c.booking_id, c.stream_id, c.city, COALESCE(c.host_id, v.host_id) AS host_id, c.cause, c.conflicted_at, c.resolution, c.resolved_at
  FROM conflicts c LEFT JOIN vehicles v ON v.id = c.vehicle_id
  WHERE c.conflicted_at >= to_timestamp($1::float8 / 1000) AND c.conflicted_at < to_timestamp($2::float8 / 1000)
    AND ($3::text IS NULL OR c.city = $3::text)
    AND ($4::text IS NULL OR COALESCE(c.host_id, v.host_id) = $4::text)
), offered AS (
  SELECT k.booking_id, k.stream_id, count(*)::int AS offers_made, min(o.created_at) AS first_offer_at,
    sum((o.incentive->>'amount')::numeric) FILTER (WHERE o.status = 'accepted') AS accepted_cost
  FROM offers o CROSS JOIN LATERAL (
    SELECT k.booking_id, k.stream_id FROM conflicts k
    WHERE k.booking_id = o.booking_id AND k.conflicted_at <= o.created_at
    ORDER BY k.conflicted_at DESC, ${POS('k')} LIMIT 1) k
  WHERE o.booking_id IN (SELECT booking_id FROM sel)
  GROUP BY k.booking_id, k.stream_id
), f AS MATERIALIZED (
  SELECT s.city, s.host_id, s.cause, s.resolution, COALESCE(x.offers_made, 0) AS offers_made,
    round((extract(epoch FROM CASE WHEN x.first_offer_at IS NOT NULL THEN x.first_offer_at WHEN s.resolution = 'no_alternative' THEN s.resolved_at END)
      - extract(epoch FROM s.conflicted_at)) * 1000)::bigint AS tto_ms,
    CASE s.resolution WHEN 'accepted' THEN x.accepted_cost WHEN 'no_alternative' THEN (b.doc->'credit'->>'amount')::numeric END AS cost
  FROM sel s
  LEFT JOIN offered x ON x.booking_id = s.booking_id AND x.stream_id = s.stream_id
  LEFT JOIN bookings b ON b.id = s.booking_id AND s.resolution = 'no_alternative'
), figs AS (
  SELECT CASE WHEN GROUPING(city) = 0 THEN 'city' WHEN GROUPING(host_id) = 0 THEN 'host' ELSE 'total' END AS dim,
    CASE WHEN GROUPING(city) = 0 THEN city ELSE host_id END AS key,
    count(*)::int AS conflicts, COALESCE(sum(offers_made), 0)::int AS offers_made,
    count(*) FILTER (WHERE resolution = 'accepted')::int AS accepted,
    count(*) FILTER (WHERE resolution = 'declined')::int AS declined,
    count(*) FILTER (WHERE resolution = 'lapsed')::int AS lapsed,
    count(*) FILTER (WHERE resolution = 'no_alternative')::int AS no_alternative,
    count(*) FILTER (WHERE resolution = 'cancelled')::int AS cancelled,
    count(*) FILTER (WHERE resolution IS NULL)::int AS open,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY tto_ms) AS p50,
    percentile_disc(0.99) WITHIN GROUP (ORDER BY tto_ms) AS p99,
    COALESCE(sum(cost), 0)::text AS cost
  FROM f GROUP BY GROUPING SETS ((), (city), (host_id))
), causes AS (
  SELECT dim, key, jsonb_object_agg(cause, n) AS by_cause FROM (
    SELECT CASE WHEN GROUPING(city) = 0 THEN 'city' WHEN GROUPING(host_id) = 0 THEN 'host' ELSE 'total' END AS dim,
      CASE WHEN GROUPING(city) = 0 THEN city ELSE host_id END AS key, cause, count(*)::int AS n
    FROM f GROUP BY GROUPING SETS ((cause), (city, cause), (host_id, cause))
  ) y GROUP BY dim, key
)
SELECT g.*, COALESCE(c.by_cause, '{}'::jsonb) AS by_cause
FROM figs g LEFT JOIN causes c ON c.dim = g.dim AND c.key IS NOT DISTINCT FROM g.key`;

interface FigureRow {
  dim: 'total' | 'city' | 'host'; key: string | null; conflicts: number; offers_made: number; accepted: number; declined: number;
  lapsed: number; no_alternative: number; cancelled: number; open: number; p50: string | null; p99: string | null; cost: string;
  by_cause: Record<string, number>;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function figuresOf(r: FigureRow | undefined): FiguresT {
  if (!r) {
    return { conflicts: 0, byCause: {}, offersMade: 0, accepted: 0, declined: 0, lapsed: 0, noAlternative: 0, cancelled: 0, open: 0, acceptanceRate: null, timeToFirstOffer: { p50Ms: null, p99Ms: null }, incentiveCost: 0 };
  }
  const closed = r.accepted + r.declined + r.lapsed + r.no_alternative;
  return {
    conflicts: r.conflicts, byCause: r.by_cause, offersMade: r.offers_made, accepted: r.accepted, declined: r.declined, lapsed: r.lapsed,
    noAlternative: r.no_alternative, cancelled: r.cancelled, open: r.open, acceptanceRate: closed > 0 ? round6(r.accepted / closed) : null,
    timeToFirstOffer: { p50Ms: r.p50 === null ? null : Number(r.p50), p99Ms: r.p99 === null ? null : Number(r.p99) },
    incentiveCost: round2(Number(r.cost)),
  };
}

async function computeConflicts(db: pg.Pool, q: { from: number; to: number; city?: string; hostId?: string }): Promise<ConflictsAnswerT> {
  let rows: FigureRow[];
  try {
    ({ rows } = await db.query<FigureRow>(CONFLICTS_SQL, [q.from, q.to, q.city ?? null, q.hostId ?? null]));
  } catch (err) {
    if (unavailable(err)) throw new DomainError('UNAVAILABLE', 'the analytics database is unavailable; retry shortly');
    throw err;
  }
  const byKey = (a: FigureRow, b: FigureRow) => ((a.key ?? '') < (b.key ?? '') ? -1 : (a.key ?? '') > (b.key ?? '') ? 1 : 0);
  return {
    from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(),
    filters: { ...(q.city !== undefined ? { city: q.city } : {}), ...(q.hostId !== undefined ? { hostId: q.hostId } : {}) },
    totals: figuresOf(rows.find((r) => r.dim === 'total')),
    byCity: rows.filter((r) => r.dim === 'city').sort(byKey).map((r) => ({ city: r.key ?? '', ...figuresOf(r) })),
    byHost: rows.filter((r) => r.dim === 'host').sort(byKey).map((r) => ({ hostId: r.key, ...figuresOf(r) })),
  };
}

/** [from, to) of an analytics query, in ms; `from` must come first. */
function windowOf(q: { from: string; to: string }): { from: number; to: number } {
  const from = toMs(q.from);
  const to = toMs(q.to);
  if (!(from < to)) throw new DomainError('INVALID_INTERVAL', 'from must be before to', { from: q.from, to: q.to });
  return { from, to };
}

/** A cached answer with its freshness headers (`private`: staff-only figures). */
function cached<T>(reply: FastifyReply, answer: { value: T; hit: boolean; ageMs: number }, ttlMs: number): T {
  const maxAge = Math.max(0, Math.ceil((ttlMs - answer.ageMs) / 1000));
  void reply.header('cache-control', `private, max-age=${maxAge}`).header('x-cache', answer.hit ? 'hit' : 'miss');
  return answer.value;
}

export const analyticsRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory, redis, pool, replicaPool }) => {
  const cache = new AnswerCache<UtilizationT>(UTILIZATION_CACHE_TTL_MS, UTILIZATION_CACHE_MAX_ENTRIES);
  const conflictsCache = new AnswerCache<ConflictsAnswerT>(CONFLICTS_CACHE_TTL_MS, CONFLICTS_CACHE_MAX_ENTRIES);
  const readPool = replicaPool ?? pool;
  const analyticsDb = (what: string) => {
    if (!readPool) throw new DomainError('UNAVAILABLE', `${what} needs PostgreSQL, and none is configured in this process`);
    return readPool;
  };
  const servedCity = (city: string) => {
    if (!inventory.cities.get(city)) throw new DomainError('NOT_FOUND', `city ${city} not found`, { entity: 'city', id: city });
  };

  app.get('/v1/analytics/conflicts', {
    schema: {
      tags: ['analytics'], summary: 'How conflicted bookings ended: offers, outcomes, time to first offer, incentive cost (PostgreSQL; cached 10 s)',
      description: 'Conflicts whose booking became conflicted in [from, to), optionally of one city and/or one host (the host of the original, displaced vehicle); totals, per city and per host. Read from the replica when one is configured; the answer may lag the live engine by the sync delay plus the cache time. See docs/conflicts.md, "Tracking".',
      querystring: ConflictsQuery,
      response: { 200: ConflictsAnswer, 400: problem, 401: problem, 403: problem, 404: problem, 503: problem },
    },
  }, async (request, reply) => {
    requireRole(request.actor, 'ops', 'admin');
    const { city, hostId } = request.query;
    const { from, to } = windowOf(request.query);
    if (city !== undefined) servedCity(city);
    const db = analyticsDb('conflict analytics');
    const q = { from, to, ...(city !== undefined ? { city } : {}), ...(hostId !== undefined ? { hostId } : {}) };
    const answer = await conflictsCache.get(JSON.stringify([from, to, city ?? null, hostId ?? null]), () => computeConflicts(db, q));
    return cached(reply, answer, CONFLICTS_CACHE_TTL_MS);
  });

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
    const { from, to } = windowOf(request.query);
    const step = STEP_MS[granularity];
    const first = Math.floor(from / step) * step;
    const buckets = Math.ceil((to - first) / step);
    const max = UTILIZATION_MAX_BUCKETS[granularity];
    if (buckets > max) throw new DomainError('VALIDATION', `at most ${max} ${granularity} buckets per request (asked for ${buckets})`, { buckets, max });
    servedCity(city);
    const db = analyticsDb('utilization');
    const answer = await cache.get(`${city}|${from}|${to}|${granularity}`, () => computeUtilization(db, city, { from, to, granularity, first, buckets }));
    return cached(reply, answer, UTILIZATION_CACHE_TTL_MS);
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
};
