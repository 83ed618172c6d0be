/**
 * The PostgreSQL-only service's schema and statements (bench/pg-only-server.ts), as a competent
 * team writes them:
 * - `calendar`: holds, bookings and blocks of every vehicle. `period` is the entry's own window
 *   [from, to); `span` is what a trip takes: [from, to + turnaround) (a block: its period). Two
 *   exclusion constraints (btree_gist) refuse overlaps in the database: trip against trip by their
 *   spans (a < d + t and c < b + t: the turnaround between them), trip against block by their
 *   periods (no turnaround next to a block; blocks may overlap each other). A hold counts until
 *   it is marked expired: `place_trip` marks the vehicle's lapsed holds first, in the same call.
 * - a GiST index (vehicle_id, span) of the entries that take time, for the search's overlap probe;
 *   btree indexes on (city, price, id) and (city, tier, price, id) of the listed vehicles, read in
 *   the answer's order; a GiST index on ll_to_earth(lat, lng) (cube/earthdistance) for nearest-first.
 * - prices in SQL (`window_total`): the same rule as the service's (src/domain/pricing.ts).
 */

/** Entry statuses that take a vehicle's time (a hold: until it lapses). */
export const LIVE = `('held', 'confirmed', 'active', 'completed')`;

export const SCHEMA = `
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;
CREATE TABLE cities (
  id         text COLLATE "C" PRIMARY KEY,
  turnaround interval NOT NULL,
  currency   text NOT NULL,
  exponent   int NOT NULL
);
CREATE TABLE vehicles (
  id             text COLLATE "C" PRIMARY KEY,
  city           text COLLATE "C" NOT NULL REFERENCES cities (id),
  host_id        text NOT NULL DEFAULT 'h1',
  category       text NOT NULL DEFAULT 'sedan',
  tier           smallint NOT NULL DEFAULT 1,
  seats          smallint NOT NULL DEFAULT 5,
  transmission   text NOT NULL DEFAULT 'automatic',
  fuel           text NOT NULL DEFAULT 'petrol',
  make           text NOT NULL DEFAULT 'Bench',
  model          text NOT NULL DEFAULT 'Car',
  lat            float8 NOT NULL DEFAULT 12.97,
  lng            float8 NOT NULL DEFAULT 77.59,
  price_per_hour float8 NOT NULL DEFAULT 10,
  price_per_day  float8,
  listing        text NOT NULL DEFAULT 'active',
  version        int NOT NULL DEFAULT 1
);
CREATE INDEX vehicles_by_price ON vehicles (city, price_per_hour, id) WHERE listing = 'active';
CREATE INDEX vehicles_by_category ON vehicles (city, tier, price_per_hour, id) WHERE listing = 'active';
CREATE INDEX vehicles_geo ON vehicles USING gist (ll_to_earth(lat, lng)) WHERE listing = 'active';
CREATE TABLE calendar (
  id            text COLLATE "C" PRIMARY KEY,
  vehicle_id    text COLLATE "C" NOT NULL REFERENCES vehicles (id),
  kind          text NOT NULL CHECK (kind IN ('hold', 'booking', 'block')),
  status        text NOT NULL,
  customer_id   text,
  reason        text,
  period        tstzrange NOT NULL,
  span          tstzrange NOT NULL,
  expires_at    timestamptz,
  currency      text,
  price_total   bigint,
  cancel_reason text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT trips_apart EXCLUDE USING gist (vehicle_id WITH =, span WITH &&)
    WHERE (kind <> 'block' AND status IN ${LIVE}),
  CONSTRAINT trips_off_blocks EXCLUDE USING gist (vehicle_id WITH =, kind WITH <>, period WITH &&)
    WHERE (status IN ${LIVE})
);
CREATE INDEX calendar_busy ON calendar USING gist (vehicle_id, span) WHERE status IN ${LIVE};
CREATE INDEX calendar_live_holds ON calendar (vehicle_id) WHERE kind = 'hold' AND status = 'held';

-- A price in the currency's major unit to minor units, rounded to the nearest (toMinor).
CREATE FUNCTION minor(p float8, e int) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT floor(p * power(10::float8, e) + 0.5)::bigint $$;
-- The pricing rule (windowTotal): 24 h periods from the start, each its started hours x the
-- hourly rate, capped by the daily rate when there is one.
CREATE FUNCTION window_total(h bigint, d bigint, ms bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (ms / 86400000) * (CASE WHEN d < 24 * h THEN d ELSE 24 * h END)
       + (CASE WHEN ms % 86400000 = 0 THEN 0
               WHEN d < ((ms % 86400000) + 3599999) / 3600000 * h THEN d
               ELSE ((ms % 86400000) + 3599999) / 3600000 * h END)
$$;

-- A hold or a booking: one call, one round trip. An overlap is the constraints' 23P01.
CREATE FUNCTION place_trip(p_kind text, p_id text, p_vehicle text, p_customer text,
                           p_from timestamptz, p_to timestamptz, p_ttl interval)
RETURNS TABLE (outcome text, expires timestamptz, currency text, total bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v record;
BEGIN
  SELECT x.listing, x.price_per_hour, x.price_per_day, c.turnaround, c.currency, c.exponent INTO v
    FROM vehicles x JOIN cities c ON c.id = x.city WHERE x.id = p_vehicle;
  IF NOT FOUND THEN RETURN QUERY SELECT 'not_found', NULL::timestamptz, NULL, NULL::bigint; RETURN; END IF;
  IF v.listing <> 'active' THEN RETURN QUERY SELECT 'delisted', NULL::timestamptz, NULL, NULL::bigint; RETURN; END IF;
  -- Lapsed holds no longer count: mark them so the constraints see it.
  UPDATE calendar SET status = 'expired'
   WHERE vehicle_id = p_vehicle AND kind = 'hold' AND status = 'held' AND expires_at <= now();
  RETURN QUERY
  INSERT INTO calendar AS n (id, vehicle_id, kind, status, customer_id, period, span, expires_at, currency, price_total)
  VALUES (p_id, p_vehicle, p_kind, CASE p_kind WHEN 'hold' THEN 'held' ELSE 'confirmed' END, p_customer,
          tstzrange(p_from, p_to), tstzrange(p_from, p_to + v.turnaround),
          CASE p_kind WHEN 'hold' THEN now() + p_ttl END, v.currency,
          window_total(minor(v.price_per_hour, v.exponent), minor(v.price_per_day, v.exponent),
                       (extract(epoch FROM p_to - p_from) * 1000)::bigint))
  RETURNING 'ok'::text, n.expires_at, n.currency, n.price_total;
END $$;
`;

/** Epoch ms of a timestamptz, for the answers. */
const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;

/** The entry columns a hold or booking answer is made of. */
export const ENTRY_COLUMNS = `id, vehicle_id, customer_id, status, ${ms('lower(period)')} AS from_ms,
  ${ms('upper(period)')} AS to_ms, cancel_reason, currency, price_total`;

/** Cancel a booking not yet started; else its current status (409), or no row (404). One statement. */
export const CANCEL = `
WITH done AS (
  UPDATE calendar SET status = 'cancelled', cancel_reason = $2
   WHERE id = $1 AND kind = 'booking' AND status IN ('confirmed', 'conflicted')
  RETURNING ${ENTRY_COLUMNS}, true AS cancelled)
SELECT * FROM done
UNION ALL
SELECT ${ENTRY_COLUMNS}, false FROM calendar WHERE id = $1 AND kind = 'booking' AND NOT EXISTS (SELECT 1 FROM done)`;

/** A vehicle, with the statuses its calendar gives it now (the answer picks by precedence). */
export const VEHICLE = `
SELECT v.*, ARRAY(
  SELECT CASE WHEN c.kind = 'booking' AND c.status = 'active' THEN 'in_trip'
              WHEN c.kind = 'block' THEN CASE c.reason WHEN 'accident' THEN 'accident'
                                                       WHEN 'maintenance' THEN 'maintenance' ELSE 'blocked' END
              WHEN c.kind = 'booking' THEN 'booked' ELSE 'held' END
    FROM calendar c
   WHERE c.vehicle_id = v.id AND c.status IN ('held', 'confirmed', 'active')
     AND (c.kind <> 'hold' OR c.expires_at > now())
     AND (c.period @> now() OR (c.kind = 'booking' AND c.status = 'active'))) AS now
FROM vehicles v WHERE v.id = $1`;

export interface SearchShape {
  /** eq: the tier ($9); gte: this tier or better, each tier read in order and merged (no parameter). */
  category?: 'eq' | 'gte';
  tier?: number;
  minSeats?: boolean;
  near?: boolean;
  radius?: boolean;
  sort: 'price' | 'distance';
  after?: boolean;
}

const haversine = (lat: string, lng: string) =>
  `(2 * 6371 * asin(least(1, sqrt(sin(radians(v.lat - ${lat}) / 2) ^ 2
     + cos(radians(${lat})) * cos(radians(v.lat)) * sin(radians(v.lng - ${lng}) / 2) ^ 2))))`;

/**
 * One statement per query shape (each prepared once): the city's listed vehicles read in the
 * answer's order (the price index, the category index per tier, or the GiST nearest-first), each
 * skipped when an entry is in its way (one probe of calendar_busy, kept a per-row subplan so that
 * the walk stops at the page whatever plan the statement caches), `limit` rows (one more than
 * the page: whether there is a next one). Params: $1 city, $2 from, $3 to, $4 to + turnaround,
 * $5 limit, $6 window ms, $7 exponent, $8 currency, then the shape's.
 */
export function searchSql(s: SearchShape): string {
  let n = 8;
  const p = () => `$${++n}`;
  const where = [`v.city = $1`, `v.listing = 'active'`];
  if (s.category === 'eq') where.push(`v.tier = ${p()}`);
  if (s.minSeats) where.push(`v.seats >= ${p()}`);
  let lat = '';
  let lng = '';
  let dist = 'NULL::float8';
  if (s.near) {
    lat = `${p()}::float8`;
    lng = `${p()}::float8`;
    dist = haversine(lat, lng);
  }
  if (s.radius) {
    const r = p();
    // The box (earth() is 6378.168 km; our distances are on a 6371 km sphere), then the circle.
    where.push(`earth_box(ll_to_earth(${lat}, ${lng}), ${r}::float8 * 1000 * 6378.168 / 6371 * 1.01)
      @> ll_to_earth(v.lat, v.lng)`);
    where.push(`${dist} <= ${r}::float8`);
  }
  const key = s.sort === 'distance' ? dist : 'v.price_per_hour';
  if (s.after) where.push(`(${key}, v.id) > (${p()}::float8, ${p()}::text)`);
  where.push(`(SELECT c.id FROM calendar c
      WHERE c.vehicle_id = v.id AND c.status IN ${LIVE}
        AND c.span && tstzrange($2::timestamptz, $4::timestamptz)
        AND (c.kind <> 'block' OR lower(c.span) < $3::timestamptz)
        AND (c.kind <> 'hold' OR c.expires_at > now())
      LIMIT 1) IS NULL`);
  // Nearest first by the GiST index's own distance (the chord: the same order), then exactly.
  const order =
    s.sort === 'distance' ? `ll_to_earth(v.lat, v.lng) <-> ll_to_earth(${lat}, ${lng})` : 'v.price_per_hour, v.id';
  const tiers = s.category === 'gte' ? Array.from({ length: 5 - (s.tier ?? 0) }, (_, i) => (s.tier ?? 0) + i) : [-1];
  const branch = (t: number) => `(
  SELECT v.*, ${dist} AS distance, ${key} AS key FROM vehicles v
   WHERE ${[...where, ...(t >= 0 ? [`v.tier = ${t}`] : [])].join('\n     AND ')}
   ORDER BY ${order} LIMIT $5)`;
  return `
SELECT x.id, x.category, x.seats, x.make, x.model, x.transmission, x.fuel, x.lat, x.lng,
       x.price_per_hour, x.price_per_day, x.distance, x.key,
       window_total(minor(x.price_per_hour, $7), minor(x.price_per_day, $7), $6) AS total, $8::text AS currency
  FROM (${tiers.map(branch).join('\n  UNION ALL ')}) x
 ORDER BY x.key, x.id LIMIT $5`;
}

export const searchName = (s: SearchShape) =>
  `search:${s.sort}:${s.category ?? '-'}${s.category === 'gte' ? s.tier : ''}:${s.minSeats ? 's' : '-'}:${s.near ? 'n' : '-'}:${s.radius ? 'r' : '-'}:${s.after ? 'a' : '-'}`;

/** A city of ours as plain JSON (bench/side-by-side/pg-only.ts exportCity), for the `load` call. */
export interface CityExport {
  city: string;
  vehicles: {
    id: string;
    hostId: string;
    category: string;
    tier: number;
    seats: number;
    transmission: string;
    fuel: string;
    make: string;
    model: string;
    lat: number;
    lng: number;
    pricePerHour: number;
    pricePerDay: number | null;
    listing: string;
    version: number;
  }[];
  entries: {
    id: string;
    vehicleId: string;
    kind: string;
    status: string;
    customerId: string | null;
    reason: string | null;
    from: number;
    to: number | null;
    expiresAt: number | null;
    currency: string | null;
    priceTotal: number | null;
  }[];
}

interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** Inserts a city's vehicles and calendars (one INSERT ... SELECT FROM unnest per table), then ANALYZE. */
export async function loadCity(db: Queryable, x: CityExport): Promise<{ vehicles: number; entries: number }> {
  const v = x.vehicles;
  const e = x.entries;
  const ts = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  await db.query(
    `INSERT INTO vehicles (id, city, host_id, category, tier, seats, transmission, fuel, make, model, lat, lng,
                           price_per_hour, price_per_day, listing, version)
     SELECT u.id, $1, u.host, u.category, u.tier, u.seats, u.transmission, u.fuel, u.make, u.model, u.lat, u.lng,
            u.pph, u.ppd, u.listing, u.version
       FROM unnest($2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[], $7::text[], $8::text[],
                   $9::text[], $10::text[], $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::text[],
                   $16::int[])
         AS u(id, host, category, tier, seats, transmission, fuel, make, model, lat, lng, pph, ppd, listing, version)`,
    [
      x.city,
      ...(
        [
          'id',
          'hostId',
          'category',
          'tier',
          'seats',
          'transmission',
          'fuel',
          'make',
          'model',
          'lat',
          'lng',
          'pricePerHour',
          'pricePerDay',
          'listing',
          'version',
        ] as const
      ).map((k) => v.map((r) => r[k])),
    ],
  );
  // A trip's span carries the city's turnaround after it; an open-ended block runs to infinity.
  await db.query(
    `INSERT INTO calendar (id, vehicle_id, kind, status, customer_id, reason, period, span, expires_at, currency,
                           price_total)
     SELECT u.id, u.vehicle, u.kind, u.status, u.customer, u.reason, tstzrange(u.f, u.t),
            tstzrange(u.f, u.t + CASE WHEN u.kind = 'block' THEN interval '0' ELSE c.turnaround END),
            u.expires, u.currency, u.total
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                   $9::timestamptz[], $10::timestamptz[], $11::text[], $12::bigint[])
         AS u(id, vehicle, kind, status, customer, reason, f, t, expires, currency, total)
       JOIN cities c ON c.id = $1`,
    [
      x.city,
      e.map((r) => r.id),
      e.map((r) => r.vehicleId),
      e.map((r) => r.kind),
      e.map((r) => r.status),
      e.map((r) => r.customerId),
      e.map((r) => r.reason),
      e.map((r) => ts(r.from)),
      e.map((r) => ts(r.to)),
      e.map((r) => ts(r.expiresAt)),
      e.map((r) => r.currency),
      e.map((r) => r.priceTotal),
    ],
  );
  await db.query('ANALYZE vehicles, calendar');
  return { vehicles: v.length, entries: e.length };
}
