import type { Redis } from 'ioredis';
import type { RequestSpec } from 'autocannon';
import { keys } from '../../src/redis/keys.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { cityLag } from '../../src/workers/sync.ts';
import type { ProfileSummary } from '../lib/cpu.ts';
import { percentiles } from '../lib/stats.ts';
import { bookingBody, HOUR, vehicleIds, WRITE_CITY } from '../lib/workload.ts';
import {
  C,
  CONNECTIONS,
  LAG_SAMPLE_MS,
  type Measured,
  SECRET,
  child,
  freshDatabase,
  measure,
  pool,
  privateRedis,
  profile,
  stop,
} from './harness.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { drained, profileServed, type ServedProfiles, served } from './as-served.ts';

export const SPEC = {
  hostId: 'h1',
  category: 'sedan' as const,
  seats: 5,
  transmission: 'automatic' as const,
  fuel: 'petrol' as const,
  make: 'Bench',
  model: 'Car',
  location: { lat: 12.97, lng: 77.59 },
  pricePerHour: 10,
};

/** The benchmark's write vehicles, through the engine (same ids as the floor's and PostgreSQL's). */
export async function seedWriteVehicles(redis: Redis): Promise<void> {
  const inventory = new Inventory(redis);
  await pool(vehicleIds(C.writeVehicles), CONNECTIONS, (id) => inventory.createVehicle(WRITE_CITY, SPEC, { id }));
}

export function bookingRequest(
  path: string,
  ids: readonly string[],
  base: number,
  authorizations: readonly string[] = [],
): RequestSpec {
  let slot = 0;
  return {
    method: 'POST',
    path,
    setupRequest: (req) => {
      // Request i is caller i mod n's: many callers, as in a marketplace, not one token.
      const authorization = authorizations[slot % Math.max(1, authorizations.length)];
      return {
        ...req,
        method: 'POST',
        path,
        body: bookingBody(slot++, ids, base),
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      };
    },
  };
}

// Writes -------------------------------------------------------------------------------------

export async function writes(base: number, tokens: readonly string[]) {
  const ids = vehicleIds(C.writeVehicles);
  const auth = tokens.map((t) => `Bearer ${t}`);
  const out: Record<string, unknown> = {};

  console.error('writes (a): floor');
  {
    const { server, pid } = await privateRedis();
    const c = await child('floor-server.ts', { REDIS_URL: server.url, BENCH_VEHICLES: String(C.writeVehicles) });
    out.floor = await measure(c.url, bookingRequest('/book', ids, base), { server: c.pid, redis: pid });
    await stop(c);
  }

  console.error('writes (b): service, POST /v1/bookings');
  let prof: ProfileSummary | undefined;
  {
    const { server, redis, pid } = await privateRedis();
    await seedWriteVehicles(redis);
    const env = { REDIS_URL: server.url, JWT_SECRET: SECRET };
    const c = await child('service-server.ts', env);
    out.service = await measure(c.url, bookingRequest('/v1/bookings', ids, base, auth), { server: c.pid, redis: pid });
    out.events = await eventBytes(redis, WRITE_CITY);
    await stop(c);
    // Where the server's time goes: the same load against a profiled process (same Redis, later windows).
    prof = await profile('service-server.ts', env, bookingRequest('/v1/bookings', ids, base + 400 * 24 * HOUR, auth), {
      file: 'docs/profiles/booking.svg',
      title: `POST /v1/bookings, ${CONNECTIONS} clients, ${C.profileSeconds} s: the API process`,
    });
  }

  console.error(
    'writes, cost breakdown of (b): without JWT verification, without the read model, with appendfsync everysec',
  );
  out.breakdown = await bookingBreakdown(base + 200 * 24 * HOUR, ids, auth);

  console.error('writes (b+sync): service with the sync worker into a fresh database, lag sampled');
  {
    const { server, redis, pid } = await privateRedis();
    const db = await freshDatabase();
    await seedWriteVehicles(redis);
    const sync = await child('sync-worker.ts', { REDIS_URL: server.url, DATABASE_URL: db.url });
    // The vehicles' own events first: the lag is measured from an empty backlog.
    for (const t0 = Date.now(); (await cityLag(redis, WRITE_CITY)).eventsBehind > 0 && Date.now() - t0 < 120_000; )
      await sleep(100);
    const c = await child('service-server.ts', { REDIS_URL: server.url, JWT_SECRET: SECRET });
    const lagMs: number[] = [];
    const lagEvents: number[] = [];
    let sampling = false;
    let sampler: Promise<void> = Promise.resolve();
    const r = await measure(
      c.url,
      bookingRequest('/v1/bookings', ids, base, auth),
      { server: c.pid, redis: pid, sync: sync.pid },
      {
        onStart: () => {
          sampling = true;
          sampler = (async () => {
            while (sampling) {
              const l = await cityLag(redis, WRITE_CITY);
              lagMs.push(l.secondsBehind * 1000);
              lagEvents.push(l.eventsBehind);
              await sleep(LAG_SAMPLE_MS);
            }
          })();
        },
      },
    );
    sampling = false;
    await sampler;
    const t0 = Date.now();
    while ((await cityLag(redis, WRITE_CITY)).eventsBehind > 0 && Date.now() - t0 < 120_000) await sleep(50);
    const drainSeconds = (Date.now() - t0) / 1000;
    const syncStats = await sync.call('stats');
    await stop(c);
    await stop(sync);
    const lag = percentiles(lagMs);
    out.serviceWithSync = {
      ...r,
      lag: {
        samples: lag.n,
        p50Ms: lag.p50,
        p99Ms: lag.p99,
        maxMs: lag.max,
        p99Events: percentiles(lagEvents).p99,
        drainAfterLoadSeconds: drainSeconds,
        sampleEveryMs: LAG_SAMPLE_MS,
      },
      sync: syncStats,
    };
  }

  console.error('writes (b, served): as `npm start` runs it, every part on, measured from outside');
  {
    const { server, redis, pid } = await privateRedis();
    const db = await freshDatabase();
    await seedWriteVehicles(redis);
    const fleet = await served(server.url, db.url);
    const ready = await drained(redis);
    const r = await measure(fleet.url, bookingRequest('/v1/bookings', ids, base, auth), {
      ...fleet.pids(),
      redis: pid,
    });
    const t0 = Date.now();
    const caughtUp = await drained(redis);
    out.served = {
      ...r,
      processes: Object.keys(fleet.pids()).length,
      backlogDrainedBefore: ready,
      syncCaughtUpSeconds: caughtUp ? (Date.now() - t0) / 1000 : null,
    };
    await fleet.stop();
    // Where each process of the tree spends its time under the same bookings (later windows).
    out.servedProfiles = await profileServed(
      server.url,
      db.url,
      bookingRequest('/v1/bookings', ids, base + 500 * 24 * HOUR, auth),
      'booking',
    );
  }

  console.error('writes (c): PostgreSQL only');
  {
    const db = await freshDatabase();
    const c = await child('pg-only-book-server.ts', {
      DATABASE_URL: db.url,
      BENCH_VEHICLES: String(C.writeVehicles),
      PG_POOL: '20',
    });
    out.pgOnly = {
      ...(await measure(c.url, bookingRequest('/book', ids, base), { server: c.pid }, { store: 'postgres' })),
      pool: 20,
      rows: await c.call('count'),
    };
    await stop(c);
  }
  return { ...out, profile: prof, callers: tokens.length } as {
    callers: number;
    events: EventBytes;
    floor: Measured;
    service: Measured;
    pgOnly: Measured;
    breakdown: BreakdownRow[];
    profile?: ProfileSummary;
    served: Measured & { processes: number; syncCaughtUpSeconds: number | null };
    servedProfiles?: ServedProfiles;
    serviceWithSync: Measured & {
      lag: { p50Ms: number; p99Ms: number; maxMs: number; p99Events: number; drainAfterLoadSeconds: number };
    };
  };
}

/** What a booking's event weighs in the stream, by field: every reader of the stream decodes all of it. */
export interface EventBytes {
  sampled: number;
  bytes: number;
  byField: Record<string, number>;
}

async function eventBytes(redis: Redis, city: string): Promise<EventBytes> {
  const entries = (await redis.xrevrange(keys.events(city), '+', '-', 'COUNT', 2000)) as [string, string[]][];
  const byField: Record<string, number> = {};
  let bytes = 0;
  for (const [, fields] of entries)
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const n = Buffer.byteLength(fields[i] ?? '') + Buffer.byteLength(fields[i + 1] ?? '');
      bytes += n;
      byField[fields[i] ?? '?'] = (byField[fields[i] ?? '?'] ?? 0) + n;
    }
  const per = (x: number) => Math.round(x / Math.max(1, entries.length));
  return {
    sampled: entries.length,
    bytes: per(bytes),
    byField: Object.fromEntries(
      Object.entries(byField)
        .map(([k, v]): [string, number] => [k, per(v)])
        .sort((a, b) => b[1] - a[1]),
    ),
  };
}

export interface BreakdownRow extends Measured {
  variant: string;
}

/**
 * Where a booking's time goes, by taking layers away one at a time from the same app, each run
 * on a fresh private redis-server (shorter runs): JWT verification, then the read
 * model tailing the streams in the API process, then the AOF fsync of every write (everysec).
 * The floor under everysec closes the table. Only for the reading: the compared figures above
 * are all with appendfsync always and the full app.
 */
export async function bookingBreakdown(
  base: number,
  ids: readonly string[],
  auth: readonly string[],
): Promise<BreakdownRow[]> {
  const variants: { variant: string; script: string; env: Record<string, string>; fsync: string; path: string }[] = [
    {
      variant: 'this service (b), as compared',
      script: 'service-server.ts',
      env: {},
      fsync: 'always',
      path: '/v1/bookings',
    },
    {
      variant: 'without JWT verification (a fixed caller)',
      script: 'service-server.ts',
      env: { BENCH_AUTH: 'static' },
      fsync: 'always',
      path: '/v1/bookings',
    },
    {
      variant: 'without JWT verification nor the read model',
      script: 'service-server.ts',
      env: { BENCH_AUTH: 'static', BENCH_READMODEL: '0' },
      fsync: 'always',
      path: '/v1/bookings',
    },
    {
      variant: 'the same, Redis appendfsync everysec',
      script: 'service-server.ts',
      env: { BENCH_AUTH: 'static', BENCH_READMODEL: '0' },
      fsync: 'everysec',
      path: '/v1/bookings',
    },
    {
      variant: 'the floor (a), Redis appendfsync everysec',
      script: 'floor-server.ts',
      env: { BENCH_VEHICLES: String(C.writeVehicles) },
      fsync: 'everysec',
      path: '/book',
    },
  ];
  const rows: BreakdownRow[] = [];
  for (const [k, v] of variants.entries()) {
    // A fresh store each time: the book script's cost grows with a vehicle's calendar.
    const { server, redis, pid } = await privateRedis();
    if (v.script === 'service-server.ts') await seedWriteVehicles(redis);
    await redis.config('SET', 'appendfsync', v.fsync);
    const c = await child(v.script, { REDIS_URL: server.url, JWT_SECRET: SECRET, ...v.env });
    const request = bookingRequest(v.path, ids, base + k * 100 * 24 * HOUR, v.script === 'floor-server.ts' ? [] : auth);
    rows.push({
      variant: v.variant,
      ...(await measure(
        c.url,
        request,
        { server: c.pid, redis: pid },
        { warmup: C.breakdownWarmup, seconds: C.breakdownSeconds },
      )),
    });
    await stop(c);
    redis.disconnect();
    await server.stop();
  }
  return rows;
}
