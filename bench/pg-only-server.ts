/**
 * The PostgreSQL-only marketplace service most teams build first, on the same HTTP stack
 * (fastify 5, pg): the whole seed-day workload with the same paths, parameters, status codes and
 * answers as this service's API, one statement (or one function call) per request, all of them
 * prepared (named). Schema and statements: bench/lib/pg-only-sql.ts (a calendar table whose
 * exclusion constraints refuse overlaps, GiST for the window overlap, btree for city/category in
 * price order, cube/earthdistance for nearest-first). No authentication (the Authorization
 * header is ignored: every caller is one customer) and no per-customer hold caps.
 *
 *   GET  /v1/cities/:city/availability?from&to&limit&category&orBetter&minSeats&near&radiusKm&sort&cursor
 *   GET  /v1/vehicles/:id
 *   POST /v1/holds {vehicleId, from, to}     -> 201 (a hold lapsing after HOLD_TTL_MS), 409 when taken
 *   POST /v1/bookings {vehicleId, from, to}  -> 201, 409 when taken
 *   POST /v1/bookings/:id/cancel             -> 200, 409 when not cancellable, 404
 *
 * Env: DATABASE_URL (a fresh database; the schema is created here), BENCH_VEHICLES (plain vehicles
 * of the write city, for bench/pg-only-check.ts's hold lapse), PG_POOL (default: 4 connections per core), HOLD_TTL_MS (default: ours).
 * Started by bench/side-by-side.ts; IPC (bench/lib/child.ts): `cpu`, and
 * `load` {city, vehicles, entries} (bench/side-by-side/pg-only.ts exports a city of ours).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import Fastify, { type FastifyReply } from 'fastify';
import pg from 'pg';
import { defaults } from '../src/config.ts';
import { REFERENCE_CITIES } from '../src/domain/cities.ts';
import { currencyExponent } from '../src/domain/pricing.ts';
import { CATEGORIES } from '../src/domain/vehicle.ts';
import { cpuMs, serveParent } from './lib/child.ts';
import {
  CANCEL,
  type CityExport,
  loadCity,
  SCHEMA,
  type SearchShape,
  searchName,
  searchSql,
  VEHICLE,
} from './lib/pg-only-sql.ts';
import { vehicleIds, WRITE_CITY } from './lib/workload.ts';

const POOL = Number(process.env.PG_POOL ?? Math.max(4, 4 * os.availableParallelism()));
const HOLD_TTL_MS = Number(process.env.HOLD_TTL_MS ?? defaults.HOLD_TTL_MS);
const CUSTOMER = 'pg-only-customer';
// No explicit sort where an index gives the order: in a city of a few hundred vehicles among
// thousands, the planner prices a read of every vehicle of the city (each probing its calendar)
// plus a sort below a walk of the price index that stops at the page, and chooses it (seen in the
// seed day's 25 cities). A sort it cannot avoid (a radius search by price) still happens.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: POOL,
  options: '-c enable_sort=off',
});
const cities = new Map(REFERENCE_CITIES.map((c) => [c.id, { ...c, exponent: currencyExponent(c.currency) }]));

await pool.query(SCHEMA);
await pool.query(
  "INSERT INTO cities SELECT unnest($1::text[]), unnest($2::int[]) * interval '1 ms', unnest($3::text[]), unnest($4::int[])",
  [
    [...cities.keys()],
    [...cities.values()].map((c) => c.turnaroundMs),
    [...cities.values()].map((c) => c.currency),
    [...cities.values()].map((c) => c.exponent),
  ],
);
await pool.query('INSERT INTO vehicles (id, city) SELECT unnest($1::text[]), $2', [
  vehicleIds(Number(process.env.BENCH_VEHICLES ?? 0)),
  WRITE_CITY,
]);
await pool.query('ANALYZE');

const app = Fastify({ logger: false });
const MINUTE = 60_000;
const iso = (t: number) => new Date(t).toISOString();
const problem = (reply: FastifyReply, status: number, code: string, detail = code) =>
  reply.code(status).type('application/problem+json').send({ status, code, detail });

/** The window rules of ours (whole minutes, to after from, at most 30 days, not in the past): else the fault. */
function windowFault(from: number, to: number): string | undefined {
  if (!Number.isFinite(from) || !Number.isFinite(to)) return 'missing';
  if (from % MINUTE !== 0 || to % MINUTE !== 0) return 'minute';
  if (to <= from) return 'order';
  if (to - from > 30 * 24 * 60 * MINUTE) return 'too_long';
  const now = Date.now();
  if (from < now - (now % MINUTE)) return 'past';
  return undefined;
}

// Search -------------------------------------------------------------------------------------

type Query = Record<string, string | undefined>;
const QUERY_KEYS = new Set([
  'from',
  'to',
  'category',
  'orBetter',
  'minSeats',
  'near',
  'radiusKm',
  'sort',
  'limit',
  'cursor',
]);

app.get('/v1/cities/:city/availability', async (request, reply) => {
  const q = request.query as Query;
  const city = cities.get((request.params as { city: string }).city);
  if (Object.keys(q).some((k) => !QUERY_KEYS.has(k))) return problem(reply, 400, 'VALIDATION');
  const from = Date.parse(q.from ?? '');
  const to = Date.parse(q.to ?? '');
  const limit = Number(q.limit ?? 20);
  const tier = q.category === undefined ? -1 : CATEGORIES.indexOf(q.category as (typeof CATEGORIES)[number]);
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= 100) || (q.category !== undefined && tier < 0))
    return problem(reply, 400, 'VALIDATION');
  if (q.sort === 'for_you') return problem(reply, 400, 'VALIDATION', 'sort=for_you is not offered here');
  const fault = windowFault(from, to);
  if (fault) return problem(reply, 400, 'INVALID_INTERVAL', fault);
  if (!city) return problem(reply, 404, 'NOT_FOUND', 'city not found');
  const near = q.near?.split(',').map(Number);
  let after: [number, string] | undefined;
  if (q.cursor) {
    try {
      after = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8'));
    } catch {}
    if (!Array.isArray(after) || typeof after[1] !== 'string') return problem(reply, 400, 'VALIDATION', 'cursor');
  }
  const shape: SearchShape = {
    sort: q.sort === 'distance' || (near && q.sort === undefined) ? 'distance' : 'price',
    ...(tier >= 0 ? (q.orBetter === 'true' ? { category: 'gte', tier } : { category: 'eq' }) : {}),
    ...(q.minSeats ? { minSeats: true } : {}),
    ...(near ? { near: true } : {}),
    ...(near && q.radiusKm ? { radius: true } : {}),
    ...(after ? { after: true } : {}),
  };
  if (shape.sort === 'distance' && !near) return problem(reply, 400, 'VALIDATION', 'sort=distance needs near');
  const values: unknown[] = [
    city.id,
    iso(from),
    iso(to),
    iso(to + city.turnaroundMs),
    limit + 1,
    to - from,
    city.exponent,
    city.currency,
  ];
  if (shape.category === 'eq') values.push(tier);
  if (shape.minSeats) values.push(Number(q.minSeats));
  if (near) values.push(near[0], near[1]);
  if (shape.radius) values.push(Number(q.radiusKm));
  if (after) values.push(after[0], after[1]);
  const { rows } = await pool.query({ name: searchName(shape), text: searchSql(shape), values });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    vehicles: page.map((r) => ({
      vehicleId: r.id,
      category: r.category,
      seats: r.seats,
      make: r.make,
      model: r.model,
      transmission: r.transmission,
      fuel: r.fuel,
      location: { lat: r.lat, lng: r.lng },
      pricePerHour: r.price_per_hour,
      ...(r.price_per_day === null ? {} : { pricePerDay: r.price_per_day }),
      price: { currency: r.currency, total: Number(r.total) },
      ...(r.distance === null ? {} : { distanceKm: Math.round(r.distance * 1000) / 1000 }),
    })),
    cursor: rows.length > limit && last ? Buffer.from(JSON.stringify([last.key, last.id])).toString('base64url') : null,
  };
});

// Vehicles -----------------------------------------------------------------------------------

const PRECEDENCE = ['accident', 'in_trip', 'maintenance', 'delisted', 'blocked', 'booked', 'held'];
app.get('/v1/vehicles/:id', async (request, reply) => {
  const { id } = request.params as { id: string };
  const r = (await pool.query({ name: 'vehicle', text: VEHICLE, values: [id] })).rows[0];
  if (!r) return problem(reply, 404, 'NOT_FOUND', `vehicle ${id} not found`);
  const present = new Set<string>(r.now);
  if (r.listing !== 'active') present.add('delisted');
  return {
    id: r.id,
    city: r.city,
    hostId: r.host_id,
    category: r.category,
    seats: r.seats,
    transmission: r.transmission,
    fuel: r.fuel,
    make: r.make,
    model: r.model,
    location: { lat: r.lat, lng: r.lng },
    pricePerHour: r.price_per_hour,
    ...(r.price_per_day === null ? {} : { pricePerDay: r.price_per_day }),
    listing: r.listing,
    status: PRECEDENCE.find((s) => present.has(s)) ?? 'available',
    version: r.version,
  };
});

// Holds, bookings, cancellations -------------------------------------------------------------

const PLACE = "SELECT * FROM place_trip($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7 * interval '1 ms')";

async function placeTrip(kind: 'hold' | 'booking', body: unknown, reply: FastifyReply) {
  const b = (body ?? {}) as { vehicleId?: unknown; from?: unknown; to?: unknown };
  if (typeof b.vehicleId !== 'string' || typeof b.from !== 'string' || typeof b.to !== 'string')
    return problem(reply, 400, 'VALIDATION');
  const from = Date.parse(b.from);
  const to = Date.parse(b.to);
  const fault = windowFault(from, to);
  if (fault) return problem(reply, 400, 'INVALID_INTERVAL', fault);
  const city = /^veh_([a-z0-9]{2,16})_/.exec(b.vehicleId)?.[1] ?? 'x';
  const id = `${kind === 'hold' ? 'hld' : 'bkg'}_${city}_${randomUUID().replaceAll('-', '')}`;
  let r: { outcome: string; expires: Date | null; currency: string; total: string };
  // A client of its own rather than pool.query: pool.query destroys the connection on any error,
  // and a refused overlap (23P01) is an answer, not a broken connection — a new backend would
  // plan every prepared statement again.
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    r = (
      await client.query({
        name: 'place_trip',
        text: PLACE,
        values: [kind, id, b.vehicleId, CUSTOMER, iso(from), iso(to), HOLD_TTL_MS],
      })
    ).rows[0];
  } catch (err) {
    if ((err as { code?: string }).code === '23P01') return problem(reply, 409, 'NOT_AVAILABLE');
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
  if (r.outcome === 'not_found') return problem(reply, 404, 'NOT_FOUND', `vehicle ${b.vehicleId} not found`);
  if (r.outcome === 'delisted') return problem(reply, 409, 'NOT_AVAILABLE', 'delisted');
  return reply.code(201).send({
    id,
    vehicleId: b.vehicleId,
    customerId: CUSTOMER,
    status: kind === 'hold' ? 'held' : 'confirmed',
    from: iso(from),
    to: iso(to),
    ...(r.expires ? { expiresAt: r.expires.toISOString() } : {}),
    price: { currency: r.currency, total: Number(r.total) },
  });
}

app.post('/v1/holds', (request, reply) => placeTrip('hold', request.body, reply));
app.post('/v1/bookings', (request, reply) => placeTrip('booking', request.body, reply));

app.post('/v1/bookings/:id/cancel', async (request, reply) => {
  const { id } = request.params as { id: string };
  const reason = (request.body as { reason?: string } | undefined)?.reason ?? 'customer';
  const r = (await pool.query({ name: 'cancel', text: CANCEL, values: [id, reason] })).rows[0];
  if (!r) return problem(reply, 404, 'NOT_FOUND', `booking ${id} not found`);
  if (!r.cancelled) return problem(reply, 409, 'INVALID_STATE', `booking ${id} is ${r.status}`);
  return {
    id: r.id,
    vehicleId: r.vehicle_id,
    customerId: r.customer_id,
    status: r.status,
    from: iso(r.from_ms),
    to: iso(r.to_ms),
    cancelReason: r.cancel_reason,
    ...(r.price_total === null ? {} : { price: { currency: r.currency, total: Number(r.price_total) } }),
  };
});

const url = await app.listen({ port: 0, host: '127.0.0.1' });
serveParent(
  url,
  {
    cpu: () => cpuMs(),
    load: (args) => loadCity(pool, args as CityExport),
    pool: () => POOL,
  },
  async () => {
    await app.close();
    await pool.end();
  },
);
