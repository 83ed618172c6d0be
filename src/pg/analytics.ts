/**
 * The analytics PostgreSQL answers (routes/analytics.ts serves them): utilization per bucket and
 * how conflicts ended, computed set-wise from the projected tables — on a read replica when one
 * is configured.
 */
import type pg from 'pg';
import { DomainError, storeUnreachable } from '../domain/errors.ts';
import { HOUR_MS, localIso, type Granularity } from '../domain/local-time.ts';

export type { Granularity };

export interface UtilizationBucket {
  start: string;
  end: string;
  vehicles: number;
  bookedHours: number;
  blockedHours: number;
  utilization: number;
  blockedShare: number;
}
export interface UtilizationAnswer {
  city: string;
  timeZone: string;
  from: string;
  to: string;
  granularity: Granularity;
  buckets: UtilizationBucket[];
}

export interface ConflictFigures {
  conflicts: number;
  byCause: Record<string, number>;
  offersMade: number;
  accepted: number;
  declined: number;
  lapsed: number;
  noAlternative: number;
  cancelled: number;
  open: number;
  acceptanceRate: number | null;
  timeToFirstOffer: { p50Ms: number | null; p99Ms: number | null };
  incentiveCost: number;
}
export interface ConflictsAnswer {
  from: string;
  to: string;
  filters: { city?: string; hostId?: string };
  totals: ConflictFigures;
  byCity: ({ city: string } & ConflictFigures)[];
  byHost: ({ hostId: string | null } & ConflictFigures)[];
  conversion: Conversion;
}

/** A read for analytics: the rows, or UNAVAILABLE (503) when the database cannot be reached. */
export async function query<R extends pg.QueryResultRow>(db: pg.Pool, sql: string, params: unknown[]): Promise<R[]> {
  try {
    return (await db.query<R>(sql, params)).rows;
  } catch (err) {
    if (storeUnreachable(err))
      throw new DomainError('UNAVAILABLE', 'the analytics database is unavailable; retry shortly');
    throw err;
  }
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * One row per bucket. $1 city, $2 the buckets' bounds (epoch ms, n + 1 for n buckets: any year,
 * 0000 included; local days and hours are cut in src/domain/local-time.ts), $3 one host's fleet
 * or null (the whole city). Only vehicles counted in a bucket contribute hours to it, so
 * utilization never exceeds 1.
 */
const UTILIZATION_SQL = `
WITH bounds AS (
  SELECT b.i, to_timestamp(b.t / 1000) AS t FROM unnest($2::float8[]) WITH ORDINALITY AS b(t, i)
), buckets AS (
  SELECT a.i, tstzrange(a.t, z.t, '[)') AS r FROM bounds a JOIN bounds z ON z.i = a.i + 1
), fleet AS (
  SELECT id, created_at FROM vehicles WHERE city = $1 AND listing = 'active' AND ($3::text IS NULL OR host_id = $3::text)
)
SELECT
  (SELECT count(*) FROM fleet f WHERE f.created_at < upper(b.r))::int AS vehicles,
  (SELECT COALESCE(sum(extract(epoch FROM upper(k.period * b.r) - lower(k.period * b.r))), 0)
     FROM bookings k JOIN fleet f ON f.id = k.vehicle_id AND f.created_at < upper(b.r)
     WHERE k.city = $1 AND k.status IN ('confirmed', 'active', 'completed') AND k.period && b.r)::float8 / 3600 AS booked_hours,
  (SELECT COALESCE(sum(extract(epoch FROM upper(k.period * b.r) - lower(k.period * b.r))), 0)
     FROM blocks k JOIN fleet f ON f.id = k.vehicle_id AND f.created_at < upper(b.r)
     WHERE k.city = $1 AND k.status IN ('active', 'cleared') AND k.period && b.r)::float8 / 3600 AS blocked_hours
FROM buckets b ORDER BY b.i`;

/**
 * Utilization per bucket; `bounds` are the buckets' n + 1 bounds in `timeZone`, whose local time
 * and offset the answer's times are written in.
 */
export async function computeUtilization(
  db: pg.Pool,
  city: string,
  q: {
    from: number;
    to: number;
    granularity: Granularity;
    timeZone: string;
    bounds: readonly number[];
    hostId?: string;
  },
): Promise<UtilizationAnswer> {
  const rows = await query<{ vehicles: number; booked_hours: number; blocked_hours: number }>(db, UTILIZATION_SQL, [
    city,
    q.bounds,
    q.hostId ?? null,
  ]);
  const at = (t: number) => localIso(q.timeZone, t);
  return {
    city,
    ...(q.hostId !== undefined ? { hostId: q.hostId } : {}),
    timeZone: q.timeZone,
    from: at(q.from),
    to: at(q.to),
    granularity: q.granularity,
    buckets: rows.map((r, i) => {
      const start = q.bounds[i] ?? Number.NaN;
      const end = q.bounds[i + 1] ?? Number.NaN;
      // A local day is 23 or 25 hours long when the clocks change.
      const capacity = r.vehicles * ((end - start) / HOUR_MS);
      return {
        start: at(start),
        end: at(end),
        vehicles: r.vehicles,
        bookedHours: round6(r.booked_hours),
        blockedHours: round6(r.blocked_hours),
        utilization: capacity > 0 ? round6(r.booked_hours / capacity) : 0,
        blockedShare: capacity > 0 ? round6(r.blocked_hours / capacity) : 0,
      };
    }),
  };
}

/** A conflicts row's stream position, (ms, seq), for ordering. */
const POS = (t: string) =>
  `split_part(${t}.stream_id, '-', 1)::bigint DESC, split_part(${t}.stream_id, '-', 2)::bigint DESC`;

/**
 * Figures for the whole selection, per city and per host, in one statement. $1 from, $2 to
 * (epoch ms; conflicted_at in [from, to)), $3 cities or null (all), $4 host or null.
 * - An offer belongs to the latest conflict of its booking at or before the offer was made.
 * - The first offer is the `conflict.offers_ready` time (offers.created_at); a NO_ALTERNATIVE
 *   conflict's is its cancellation (resolved_at). Times go through epoch seconds (numeric), so the
 *   difference is exact to the ms.
 * - The cost is the accepted offer's incentive amount, or the NO_ALTERNATIVE credit (the
 *   cancelled booking's document keeps it).
 */
/** The conflicts of the selection: $1 from, $2 to (epoch ms), $3 cities or null, $4 host or null. */
const SELECTED = `  SELECT c.booking_id, c.stream_id, c.city, COALESCE(c.host_id, v.host_id) AS host_id, c.cause, c.conflicted_at, c.resolution, c.resolved_at
  FROM conflicts c LEFT JOIN vehicles v ON v.id = c.vehicle_id
  WHERE c.conflicted_at >= to_timestamp($1::float8 / 1000) AND c.conflicted_at < to_timestamp($2::float8 / 1000)
    AND ($3::text[] IS NULL OR c.city = ANY($3::text[]))
    AND ($4::text IS NULL OR COALESCE(c.host_id, v.host_id) = $4::text)
`;

const CONFLICTS_SQL = `
WITH sel AS (
${SELECTED}), offered AS (
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
  dim: 'total' | 'city' | 'host';
  key: string | null;
  conflicts: number;
  offers_made: number;
  accepted: number;
  declined: number;
  lapsed: number;
  no_alternative: number;
  cancelled: number;
  open: number;
  p50: string | null;
  p99: string | null;
  cost: string;
  by_cause: Record<string, number>;
}

function figuresOf(r: FigureRow | undefined): ConflictFigures {
  if (!r) {
    return {
      conflicts: 0,
      byCause: {},
      offersMade: 0,
      accepted: 0,
      declined: 0,
      lapsed: 0,
      noAlternative: 0,
      cancelled: 0,
      open: 0,
      acceptanceRate: null,
      timeToFirstOffer: { p50Ms: null, p99Ms: null },
      incentiveCost: 0,
    };
  }
  const closed = r.accepted + r.declined + r.lapsed + r.no_alternative;
  return {
    conflicts: r.conflicts,
    byCause: r.by_cause,
    offersMade: r.offers_made,
    accepted: r.accepted,
    declined: r.declined,
    lapsed: r.lapsed,
    noAlternative: r.no_alternative,
    cancelled: r.cancelled,
    open: r.open,
    acceptanceRate: closed > 0 ? round6(r.accepted / closed) : null,
    timeToFirstOffer: { p50Ms: r.p50 === null ? null : Number(r.p50), p99Ms: r.p99 === null ? null : Number(r.p99) },
    incentiveCost: round2(Number(r.cost)),
  };
}

/**
 * Conversion of the offers made for the selected conflicts, per kind of alternative
 * (same_category, upgrade, shifted; `unknown` for offers made before kinds were recorded) and
 * per incentive (kind and amount).
 */
const CONVERSION_SQL = `
WITH sel AS (
${SELECTED}), o AS (
  SELECT COALESCE(o.alternative, 'unknown') AS alternative, COALESCE(o.incentive->>'kind', 'none') AS incentive,
    COALESCE((o.incentive->>'amount')::numeric, 0) AS amount, o.status
  FROM offers o WHERE o.booking_id IN (SELECT booking_id FROM sel)
)
SELECT CASE WHEN GROUPING(alternative) = 0 THEN 'alternative' ELSE 'incentive' END AS dim,
  alternative, incentive, amount, count(*)::int AS offered, count(*) FILTER (WHERE status = 'accepted')::int AS accepted
FROM o GROUP BY GROUPING SETS ((alternative), (incentive, amount))
ORDER BY dim, alternative, incentive, amount`;

export interface Conversion {
  byAlternative: { alternative: string; offered: number; accepted: number; conversion: number }[];
  byIncentive: { incentive: string; amount: number; offered: number; accepted: number; conversion: number }[];
}

async function computeConversion(db: pg.Pool, params: unknown[]): Promise<Conversion> {
  const rows = await query<{
    dim: 'alternative' | 'incentive';
    alternative: string | null;
    incentive: string | null;
    amount: string | null;
    offered: number;
    accepted: number;
  }>(db, CONVERSION_SQL, params);
  const rate = (r: { offered: number; accepted: number }) => (r.offered > 0 ? round6(r.accepted / r.offered) : 0);
  return {
    byAlternative: rows
      .filter((r) => r.dim === 'alternative')
      .map((r) => ({
        alternative: r.alternative ?? '',
        offered: r.offered,
        accepted: r.accepted,
        conversion: rate(r),
      })),
    byIncentive: rows
      .filter((r) => r.dim === 'incentive')
      .map((r) => ({
        incentive: r.incentive ?? '',
        amount: Number(r.amount ?? 0),
        offered: r.offered,
        accepted: r.accepted,
        conversion: rate(r),
      })),
  };
}

export async function computeConflicts(
  db: pg.Pool,
  q: { from: number; to: number; city?: string; hostId?: string; cities?: readonly string[] },
): Promise<ConflictsAnswer> {
  const cities = q.city !== undefined ? [q.city] : q.cities ? [...q.cities] : null;
  const params = [q.from, q.to, cities, q.hostId ?? null];
  const [rows, conversion] = await Promise.all([
    query<FigureRow>(db, CONFLICTS_SQL, params),
    computeConversion(db, params),
  ]);
  const byKey = (a: FigureRow, b: FigureRow) =>
    (a.key ?? '') < (b.key ?? '') ? -1 : (a.key ?? '') > (b.key ?? '') ? 1 : 0;
  return {
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    filters: {
      ...(q.city !== undefined ? { city: q.city } : {}),
      ...(q.hostId !== undefined ? { hostId: q.hostId } : {}),
    },
    totals: figuresOf(rows.find((r) => r.dim === 'total')),
    byCity: rows
      .filter((r) => r.dim === 'city')
      .sort(byKey)
      .map((r) => ({ city: r.key ?? '', ...figuresOf(r) })),
    byHost: rows
      .filter((r) => r.dim === 'host')
      .sort(byKey)
      .map((r) => ({ hostId: r.key, ...figuresOf(r) })),
    conversion,
  };
}
