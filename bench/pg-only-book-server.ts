/**
 * The PostgreSQL-only booking service most teams build first, on the same HTTP stack (fastify 5):
 * a bookings table with an exclusion constraint on (vehicle_id WITH =, period WITH &&) using
 * btree_gist, and per booking one statement (`INSERT ... SELECT` from the listed vehicle), which
 * the constraint serialises per vehicle: what a competent team writes, one round trip per
 * booking. A constraint violation is a 409. No authentication or validation either.
 *
 *   POST /book  {vehicleId, from, to} (ISO) -> 201 or 409
 *
 * Env: DATABASE_URL (a fresh database; the schema is created here), BENCH_VEHICLES, PG_POOL (20).
 * writes (c) of the side-by-side run: the strongest PostgreSQL-only booking path (one INSERT, no
 * prices, holds or blocks); bench/pg-only-server.ts is the whole seed-day workload.
 * Started by bench/side-by-side.ts; talks to it over IPC (bench/lib/child.ts).
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { cpuMs, serveParent } from './lib/child.ts';
import { vehicleIds, WRITE_CITY } from './lib/workload.ts';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.PG_POOL ?? 20) });
await pool.query(`
  CREATE EXTENSION IF NOT EXISTS btree_gist;
  CREATE TABLE vehicles (id text PRIMARY KEY, city text NOT NULL, listing text NOT NULL DEFAULT 'active');
  CREATE TABLE bookings (
    id          uuid PRIMARY KEY,
    vehicle_id  text NOT NULL REFERENCES vehicles (id),
    customer_id text NOT NULL,
    period      tstzrange NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (vehicle_id WITH =, period WITH &&)
  );`);
await pool.query('INSERT INTO vehicles (id, city) SELECT unnest($1::text[]), $2', [
  vehicleIds(Number(process.env.BENCH_VEHICLES ?? 0)),
  WRITE_CITY,
]);
await pool.query('ANALYZE vehicles');

const app = Fastify({ logger: false });
app.post('/book', async (request, reply) => {
  const b = request.body as { vehicleId: string; from: string; to: string };
  const id = randomUUID();
  try {
    // One statement, one round trip, its own transaction: the exclusion constraint refuses an
    // overlap (the turnaround, 30 min, is part of the occupied range, as in the engine), and the
    // SELECT inserts nothing for an unknown or delisted vehicle.
    const r = await pool.query(
      `INSERT INTO bookings (id, vehicle_id, customer_id, period)
       SELECT $1, v.id, $3, tstzrange($4::timestamptz, $5::timestamptz + interval '30 minutes')
       FROM vehicles v WHERE v.id = $2 AND v.listing = 'active'`,
      [id, b.vehicleId, 'c1', b.from, b.to],
    );
    if (r.rowCount === 0) return reply.code(404).send({ code: 'NOT_FOUND' });
  } catch (err) {
    if ((err as { code?: string }).code === '23P01') return reply.code(409).send({ code: 'NOT_AVAILABLE' });
    throw err;
  }
  return reply.code(201).send({ id, vehicleId: b.vehicleId, from: b.from, to: b.to });
});

const url = await app.listen({ port: 0, host: '127.0.0.1' });
serveParent(
  url,
  {
    cpu: () => cpuMs(),
    count: async () => Number((await pool.query('SELECT count(*) AS n FROM bookings')).rows[0].n),
  },
  async () => {
    await app.close();
    await pool.end();
  },
);
