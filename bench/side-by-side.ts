/**
 * bench/side-by-side: this service against its floor and against the PostgreSQL-only service
 * most teams build first, in one run, with the same load generator (autocannon, 50 keep-alive
 * clients, loopback) and the same workload. Every server under test runs in its own child process
 * with its own private redis-server or fresh database, all cleaned up at the end.
 *
 *   writes  (a)  floor: bare fastify + ioredis, one booking-shaped EVALSHA (bench/floor-server.ts)
 *           (b)  this service: POST /v1/bookings through the real app (auth, rate limits, read model)
 *           (b+) the same with the sync worker projecting into PostgreSQL beside it; sync lag sampled
 *           (c)  PostgreSQL only: fastify + pg, SELECT ... FOR UPDATE + INSERT under an exclusion
 *                constraint (bench/pg-only-server.ts)
 *           and a breakdown of (b): JWT verification, the read model, the AOF fsync taken away in turn
 *   reads   (a') floor: HGETALL of a vehicle hash behind fastify
 *           (b') this service: GET /v1/cities/{city}/availability in a 2,000-vehicle city, plus
 *                its server-side time (in-process)
 *   seed day  300,000 API operations, 50 reads per write, 25 cities, as fast as they go
 *
 * Prints a table with ratios and targets, writes bench/results/latest.json and the "Side by side"
 * section of docs/benchmarks.md.
 *
 *   npm run bench                  (~6 min, bounded to 10; BENCH_SECONDS=15 per scenario, BENCH_PROFILE=0 to skip profiles)
 *   npm run bench -- --quick       (or BENCH_QUICK=1: every scenario at tiny scale, < 1 min, writes nothing in the tree)
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { RequestSpec } from 'autocannon';
import { mintToken } from '../src/api/auth.ts';
import { REFERENCE_CITIES, type City } from '../src/domain/cities.ts';
import { CATEGORIES } from '../src/domain/vehicle.ts';
import { keys } from '../src/redis/keys.ts';
import { seedCity } from '../src/services/demo.ts';
import { Inventory } from '../src/services/inventory.ts';
import { cityLag } from '../src/workers/sync.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { startRedis, type RedisServer } from '../test/support/redis.ts';
import { spawnChild, type Child } from './lib/child.ts';
import { cpuBetween, cpuSnapshot, machineBusy, summarizeProfile, type ProfileSummary } from './lib/cpu.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { percentiles, type Percentiles } from './lib/stats.ts';
import { bookingBody, firstSlot, HOUR, vehicleIds, WRITE_CITY } from './lib/workload.ts';

const QUICK = process.argv.includes('--quick') || (!!process.env.BENCH_QUICK && process.env.BENCH_QUICK !== '0');
const CONNECTIONS = 50;
const C = QUICK
  ? {
      writeVehicles: 200,
      readVehicles: 100,
      seedPerCity: 20,
      seedOps: 3_000,
      warmup: 0,
      seconds: 1,
      breakdownWarmup: 0,
      breakdownSeconds: 1,
      probeN: 200,
      profileSeconds: process.env.BENCH_PROFILE === '1' ? 1 : 0,
      seedDeadline: 30,
      maxQuietWait: 0,
    }
  : {
      writeVehicles: 10_000,
      readVehicles: 2_000,
      seedPerCity: 200,
      seedOps: 300_000,
      warmup: 5,
      seconds: Number(process.env.BENCH_SECONDS ?? 15),
      breakdownWarmup: 2,
      breakdownSeconds: 8,
      probeN: 2_000,
      profileSeconds: process.env.BENCH_PROFILE === '0' ? 0 : 6,
      seedDeadline: 240,
      maxQuietWait: 60,
    };
const READS_PER_WRITE = 50;
const LAG_SAMPLE_MS = 100;
const SECRET = 'side-by-side-bench-secret-0123456789abcdef';
/** The whole run is bounded: the seed day (the only open-ended part) is cut short to stay within it. */
const RUN_BUDGET_MS = QUICK ? 120_000 : 570_000;
const runStarted = Date.now();
const TARGETS = { vsFloor: 0.6, vsPg: 5, bookingP99Ms: 25, searchP99Ms: 5, seedDaySeconds: 30, lagP99Ms: 500 };

// Everything started here is released at the end, or on Ctrl-C.
const cleanups: (() => Promise<unknown>)[] = [];
async function cleanUp() {
  while (cleanups.length)
    await cleanups.pop()!().catch((err: unknown) => console.error('cleanup:', (err as Error).message));
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanUp().finally(() => process.exit(130));
  });

async function privateRedis(): Promise<{ server: RedisServer; redis: Redis; pid: number }> {
  const server = await startRedis({ external: 'never' });
  const redis = new Redis(server.url, { maxRetriesPerRequest: 3 });
  cleanups.push(async () => {
    redis.disconnect();
    await server.stop();
  });
  const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0);
  return { server, redis, pid };
}

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  return db;
}

async function child(script: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Child> {
  const c = await spawnChild(script, env, { nodeArgs });
  cleanups.push(() => c.stop());
  return c;
}

/** Stops a child now (its cleanup entry then finds it gone). */
const stop = (c: Child) => c.stop();

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** A small deterministic generator, so two runs send the same requests. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Measured extends LoadResult {
  /** Cores each process used during the measured run (see lib/cpu.ts). */
  cores: Record<string, number>;
  /** CPU microseconds per request of the server process and of its store (redis-server or PostgreSQL). */
  cpuUsPerRequest: { server: number; store: number };
  quietWaitSeconds: number;
}

let quietBudget = C.maxQuietWait;
/** Another process busy on the machine (a test run, say) skews everything: wait a little for it. */
async function awaitQuiet(): Promise<number> {
  const t0 = Date.now();
  while (quietBudget > 0 && (await machineBusy(1000)) > 0.3) quietBudget--;
  return Math.round((Date.now() - t0) / 100) / 10;
}

/** Warm-up (discarded), then the measured run, with the CPU each process used during it. */
async function measure(
  url: string,
  request: RequestSpec,
  pids: Record<string, number | undefined>,
  o: { warmup?: number; seconds?: number; onStart?: () => unknown; store?: 'redis' | 'postgres' } = {},
): Promise<Measured> {
  const quietWaitSeconds = await awaitQuiet();
  const warmup = o.warmup ?? C.warmup;
  if (warmup > 0) await runLoad({ url, connections: CONNECTIONS, duration: warmup, request });
  await o.onStart?.();
  const before = cpuSnapshot({ loadgen: process.pid, ...pids });
  const r = await runLoad({ url, connections: CONNECTIONS, duration: o.seconds ?? C.seconds, request });
  const cores = cpuBetween(before, cpuSnapshot({ loadgen: process.pid, ...pids }));
  const us = (c: number | undefined) => (r.requests ? Math.round(((c ?? 0) * r.seconds * 1e6) / r.requests) : 0);
  return {
    ...r,
    cores,
    cpuUsPerRequest: { server: us(cores.server), store: us(cores[o.store ?? 'redis']) },
    quietWaitSeconds,
  };
}

const SPEC = {
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
async function seedWriteVehicles(redis: Redis): Promise<void> {
  const inventory = new Inventory(redis);
  await pool(vehicleIds(C.writeVehicles), CONNECTIONS, (id) => inventory.createVehicle(WRITE_CITY, SPEC, { id }));
}

function bookingRequest(path: string, ids: readonly string[], base: number, authorization?: string): RequestSpec {
  let slot = 0;
  return {
    method: 'POST',
    path,
    setupRequest: (req) => ({
      ...req,
      method: 'POST',
      path,
      body: bookingBody(slot++, ids, base),
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    }),
  };
}

async function profile(
  script: string,
  env: Record<string, string>,
  request: RequestSpec,
): Promise<ProfileSummary | undefined> {
  if (!C.profileSeconds) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-prof-'));
  try {
    const c = await child(script, env, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500']);
    await runLoad({ url: c.url, connections: CONNECTIONS, duration: 2, request });
    // The profile covers the whole process; the start-up part is small next to the load.
    await runLoad({ url: c.url, connections: CONNECTIONS, duration: C.profileSeconds, request });
    await stop(c);
    const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
    return file ? await summarizeProfile(path.join(dir, file)) : undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Writes -------------------------------------------------------------------------------------

async function writes(base: number, token: string) {
  const ids = vehicleIds(C.writeVehicles);
  const auth = `Bearer ${token}`;
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
    await stop(c);
    // Where the server's time goes: the same load against a profiled process (same Redis, later windows).
    prof = await profile('service-server.ts', env, bookingRequest('/v1/bookings', ids, base + 400 * 24 * HOUR, auth));
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

  console.error('writes (c): PostgreSQL only');
  {
    const db = await freshDatabase();
    const c = await child('pg-only-server.ts', {
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
  return { ...out, profile: prof } as {
    floor: Measured;
    service: Measured;
    pgOnly: Measured;
    breakdown: BreakdownRow[];
    profile?: ProfileSummary;
    serviceWithSync: Measured & {
      lag: { p50Ms: number; p99Ms: number; maxMs: number; p99Events: number; drainAfterLoadSeconds: number };
    };
  };
}

interface BreakdownRow extends Measured {
  variant: string;
}

/**
 * Where a booking's time goes, by taking layers away one at a time from the same app, each run
 * on a fresh private redis-server (shorter runs): JWT verification, then the read
 * model tailing the streams in the API process, then the AOF fsync of every write (everysec).
 * The floor under everysec closes the table. Only for the reading: the compared figures above
 * are all with appendfsync always and the full app.
 */
async function bookingBreakdown(base: number, ids: readonly string[], auth: string): Promise<BreakdownRow[]> {
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
    const request = bookingRequest(
      v.path,
      ids,
      base + k * 100 * 24 * HOUR,
      v.script === 'floor-server.ts' ? undefined : auth,
    );
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

// Reads --------------------------------------------------------------------------------------

function searchPath(city: string, base: number, rand: () => number): string {
  const from = base + Math.floor(rand() * 72) * HOUR;
  const q = new URLSearchParams({
    from: new Date(from).toISOString(),
    to: new Date(from + (2 + Math.floor(rand() * 46)) * HOUR).toISOString(),
    limit: '20',
  });
  const r = rand();
  if (r < 0.25) {
    q.set('category', CATEGORIES[Math.floor(rand() * CATEGORIES.length)]!);
    if (rand() < 0.5) q.set('orBetter', 'true');
  }
  return `/v1/cities/${city}/availability?${q}`;
}

async function reads(base: number, token: string) {
  const city = REFERENCE_CITIES[0]!;
  const { server, redis, pid } = await privateRedis();
  const inventory = new Inventory(redis);
  await seedCity(inventory, redis, city, C.readVehicles);
  const ids = await redis.smembers(keys.vehicles(city.id));

  console.error(`reads (a'): floor, HGETALL of a vehicle hash (${ids.length} vehicles)`);
  const floor = await child('floor-server.ts', {
    REDIS_URL: server.url,
    HASH_PREFIX: keys.vehicle(city.id, ''),
    BENCH_VEHICLES: '0',
  });
  const randA = rng(1);
  const floorResult = await measure(
    floor.url,
    {
      method: 'GET',
      setupRequest: (req) => ({
        ...req,
        method: 'GET',
        path: `/vehicles/${ids[Math.floor(randA() * ids.length)]}`,
        headers: {},
      }),
    },
    { server: floor.pid, redis: pid },
  );
  await stop(floor);

  console.error(`reads (b'): service, availability search in a ${ids.length}-vehicle city`);
  const env = { REDIS_URL: server.url, JWT_SECRET: SECRET };
  const svc = await child('service-server.ts', env);
  const randB = rng(2);
  const searchRequest = (rand: () => number): RequestSpec => ({
    method: 'GET',
    setupRequest: (req) => ({
      ...req,
      method: 'GET',
      path: searchPath(city.id, base, rand),
      headers: { authorization: `Bearer ${token}` },
    }),
  });
  const serviceResult = await measure(
    svc.url,
    searchRequest(randB),
    { server: svc.pid, redis: pid },
    { onStart: () => svc.call('stats', { reset: true }) },
  );
  const stats = await svc.call<{ routes: Record<string, Percentiles>; search: Percentiles }>('stats', { reset: true });
  // The cost of one search alone: N searches one after another in the server process, nothing else running.
  const probe = await svc.call<Percentiles>('probe', { city: city.id, n: C.probeN });
  await stop(svc);
  const prof = await profile('service-server.ts', env, searchRequest(rng(3)));
  return {
    vehicles: ids.length,
    floor: floorResult,
    service: {
      ...serviceResult,
      server: { request: stats.routes['GET /v1/cities/:city/availability'], search: stats.search, probe },
    },
    profile: prof,
  };
}

// Seed day -----------------------------------------------------------------------------------

interface KindStats {
  n: number;
  lat: number[];
  status: Record<string, number>;
}

async function seedDay(base: number) {
  const { server, redis, pid } = await privateRedis();
  const inventory = new Inventory(redis);
  const t0 = Date.now();
  const cities: { city: City; ids: string[] }[] = [];
  for (const city of REFERENCE_CITIES) {
    await seedCity(inventory, redis, city, C.seedPerCity);
    cities.push({ city, ids: await redis.smembers(keys.vehicles(city.id)) });
  }
  console.error(
    `seed day: ${cities.length} cities x ${C.seedPerCity} vehicles seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${C.seedOps} operations, ${READS_PER_WRITE} reads per write`,
  );
  const secret = new TextEncoder().encode(SECRET);
  const tokens = await Promise.all(
    Array.from({ length: 500 }, (_, i) => mintToken(secret, { sub: `bench-customer-${i}`, role: 'customer' })),
  );
  const svc = await child('service-server.ts', { REDIS_URL: server.url, JWT_SECRET: SECRET });

  const rand = rng(42);
  const kinds: Record<string, KindStats> = {};
  const booked: { id: string; auth: string }[] = [];
  let op = 0;
  let writesN = 0;
  let readsN = 0;
  const iso = (ms: number) => new Date(ms).toISOString();
  const window = (aheadHours: number, maxHours: number) => {
    const from = base + Math.floor(rand() * aheadHours) * HOUR;
    return { from: iso(from), to: iso(from + (2 + Math.floor(rand() * (maxHours - 1))) * HOUR) };
  };
  const request: RequestSpec = {
    setupRequest: (req, ctx) => {
      const i = op++;
      const { city, ids } = cities[Math.floor(rand() * cities.length)]!;
      const auth = `Bearer ${tokens[Math.floor(rand() * tokens.length)]}`;
      const vehicleId = ids[Math.floor(rand() * ids.length)]!;
      let kind: string;
      let method = 'GET';
      let path: string;
      let body: string | undefined;
      let authorization = auth;
      if (i % (READS_PER_WRITE + 1) === READS_PER_WRITE) {
        const w = writesN++ % 10;
        method = 'POST';
        const cancel = w === 9 ? booked.splice(Math.floor(rand() * booked.length), 1)[0] : undefined;
        if (cancel) {
          kind = 'cancel';
          path = `/v1/bookings/${cancel.id}/cancel`;
          body = '{}';
          authorization = cancel.auth;
        } else if (w >= 7) {
          kind = 'hold';
          path = '/v1/holds';
          body = JSON.stringify({ vehicleId, ...window(24 * 28, 24) });
        } else {
          kind = 'book';
          path = '/v1/bookings';
          body = JSON.stringify({ vehicleId, ...window(24 * 28, 24) });
        }
      } else if (readsN++ % 10 === 9) {
        kind = 'vehicle';
        path = `/v1/vehicles/${vehicleId}`;
      } else {
        kind = 'search';
        path = searchPath(city.id, base, rand);
      }
      ctx.kind = kind;
      ctx.auth = authorization;
      ctx.t = performance.now();
      return {
        ...req,
        method,
        path,
        headers: { authorization, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body } : { body: '' }),
      };
    },
    onResponse: (status, body, ctx) => {
      kinds[ctx.kind as string] ??= { n: 0, lat: [], status: {} };
      const k = kinds[ctx.kind as string]!;
      k.n++;
      k.lat.push(performance.now() - (ctx.t as number));
      k.status[status] = (k.status[status] ?? 0) + 1;
      if (ctx.kind === 'book' && status === 201)
        booked.push({ id: (JSON.parse(body) as { id: string }).id, auth: ctx.auth as string });
    },
  };
  // A short warm-up of searches only (JIT, connections), not counted.
  const warm = rng(7);
  if (C.warmup > 0)
    await runLoad({
      url: svc.url,
      connections: CONNECTIONS,
      duration: C.warmup,
      request: {
        setupRequest: (req) => ({
          ...req,
          method: 'GET',
          path: searchPath(cities[Math.floor(warm() * cities.length)]!.city.id, base, warm),
          headers: { authorization: `Bearer ${tokens[0]}` },
        }),
      },
    });
  await svc.call('stats', { reset: true });
  const quietWaitSeconds = await awaitQuiet();
  const before = cpuSnapshot({ loadgen: process.pid, server: svc.pid, redis: pid });
  const deadlineSeconds = Math.max(
    20,
    Math.min(C.seedDeadline, (RUN_BUDGET_MS - (Date.now() - runStarted)) / 1000 - 20),
  );
  const r = await runLoad({ url: svc.url, connections: CONNECTIONS, amount: C.seedOps, deadlineSeconds, request });
  const cores = cpuBetween(before, cpuSnapshot({ loadgen: process.pid, server: svc.pid, redis: pid }));
  const stats = await svc.call<{ routes: Record<string, Percentiles> }>('stats', { reset: true });
  await stop(svc);
  const byKind = Object.fromEntries(
    Object.entries(kinds).map(([k, v]) => {
      const p = percentiles(v.lat);
      return [k, { n: v.n, p50: p.p50, p99: p.p99, status: v.status }];
    }),
  );
  return {
    cities: cities.length,
    vehiclesPerCity: C.seedPerCity,
    operations: C.seedOps,
    completed: r.requests,
    readsPerWrite: READS_PER_WRITE,
    seconds: r.seconds,
    opsPerSec: r.perSec,
    p50: r.p50,
    p99: r.p99,
    status: r.status,
    errors: r.errors,
    timeouts: r.timeouts,
    finished: r.requests >= C.seedOps,
    byKind,
    serverMs: stats.routes,
    cores,
    quietWaitSeconds,
    cpuUsPerRequest: {
      server: Math.round(((cores.server ?? 0) * r.seconds * 1e6) / Math.max(1, r.requests)),
      store: Math.round(((cores.redis ?? 0) * r.seconds * 1e6) / Math.max(1, r.requests)),
    },
  };
}

// Report -------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const pct = (x: number) => `${Math.round(x * 100)}%`;
const okShare = (status: Record<string, number>, n: number) =>
  n
    ? Object.entries(status)
        .filter(([c]) => c.startsWith('2'))
        .reduce((a, [, k]) => a + k, 0) / n
    : 0;
const coresText = (c: Record<string, number>) =>
  `${Object.entries(c)
    .filter(([k]) => k !== 'machine')
    .map(([k, v]) => `${k} ${f2(v)}`)
    .join(', ')} (machine ${f2(c.machine ?? 0)} of ${os.cpus().length})`;
const groupsText = (p: ProfileSummary | undefined, n = 5) =>
  p
    ? p.groups
        .filter((g) => g.share >= 0.01)
        .slice(0, n)
        .map((g) => `${g.group} ${pct(g.share)}`)
        .join(', ')
    : 'not profiled';

type Writes = Awaited<ReturnType<typeof writes>>;
type Reads = Awaited<ReturnType<typeof reads>>;
type SeedDay = Awaited<ReturnType<typeof seedDay>>;

/** Sequential writes to a private redis-server with appendfsync always: what one fsync costs here. */
async function fsyncProbe(): Promise<number> {
  const { redis } = await privateRedis();
  for (let i = 0; i < 50; i++) await redis.set('probe', i);
  const t = performance.now();
  const n = QUICK ? 100 : 1_000;
  for (let i = 0; i < n; i++) await redis.set('probe', i);
  return (performance.now() - t) / n;
}

function tables(w: Writes, r: Reads, s: SeedDay, ratios: Record<string, number>) {
  const row = (name: string, x: Measured) =>
    `| ${name} | ${Math.round(x.perSec)} | ${f2(x.p50)} | ${f2(x.p99)} | ${x.requests} | ${pct(okShare(x.status, x.requests))} | ${x.cpuUsPerRequest.server} | ${x.cpuUsPerRequest.store} |`;
  const main = [
    '| scenario | req/s | p50 ms | p99 ms | requests | 2xx | server CPU µs/req | store CPU µs/req |',
    '|---|---|---|---|---|---|---|---|',
    row('writes (a) floor: fastify + ioredis, one EVALSHA', w.floor),
    row('writes (b) this service: `POST /v1/bookings`', w.service),
    row('writes (b+sync) the same, sync worker running beside it', w.serviceWithSync),
    row('writes (c) PostgreSQL only: `FOR UPDATE` + INSERT, exclusion constraint', w.pgOnly),
    row("reads (a') floor: fastify + `HGETALL`", r.floor),
    row(`reads (b') this service: availability search, ${r.vehicles}-vehicle city`, r.service),
    `| seed day: ${s.completed} ops, ${s.readsPerWrite} reads per write, ${s.cities} cities | ${Math.round(s.opsPerSec)} | ${f2(s.p50)} | ${f2(s.p99)} | ${s.completed} in ${f1(s.seconds)} s | ${pct(okShare(s.status, s.completed))} | ${s.cpuUsPerRequest.server} | ${s.cpuUsPerRequest.store} |`,
  ].join('\n');
  const ratioTable = [
    '| ratio (throughput) | value |',
    '|---|---|',
    `| **b/a** bookings vs floor | **${f2(ratios.bookingVsFloor!)}** |`,
    `| **b/c** bookings vs PostgreSQL only | **${f2(ratios.bookingVsPgOnly!)}x** |`,
    `| (b+sync)/a, (b+sync)/c | ${f2(ratios.bookingWithSyncVsFloor!)}, ${f2(ratios.bookingWithSyncVsPgOnly!)}x |`,
    `| **b'/a'** search vs floor read | **${f2(ratios.searchVsFloor!)}** |`,
  ].join('\n');
  const sv = r.service.server;
  const probe = sv.probe;
  const server = [
    '| server-side time, availability search | p50 ms | p99 ms | max ms | n |',
    '|---|---|---|---|---|',
    `| one search alone (readModel.search + verification, ${probe.n} in a row, in-process) | ${f2(probe.p50)} | ${f2(probe.p99)} | ${f2(probe.max)} | ${probe.n} |`,
    ...(sv.search
      ? [
          `| the same during the ${CONNECTIONS}-client load (event-loop queueing included) | ${f2(sv.search.p50)} | ${f2(sv.search.p99)} | ${f2(sv.search.max)} | ${sv.search.n} |`,
        ]
      : []),
    ...(sv.request
      ? [
          `| whole request during the load (onResponse reply.elapsedTime: auth, rate limit, search, serialization) | ${f2(sv.request.p50)} | ${f2(sv.request.p99)} | ${f2(sv.request.max)} | ${sv.request.n} |`,
        ]
      : []),
  ].join('\n');
  const lag = w.serviceWithSync.lag;
  const lagLine = `Sync lag during (b+sync), sampled every ${LAG_SAMPLE_MS} ms from the consumer group (${Math.round(w.serviceWithSync.perSec)} bookings/s): p50 ${Math.round(lag.p50Ms)} ms, p99 ${Math.round(lag.p99Ms)} ms, max ${Math.round(lag.maxMs)} ms (p99 ${lag.p99Events} events behind); caught up ${f1(lag.drainAfterLoadSeconds)} s after the load stopped.`;
  const breakdown = [
    `| (b) with a layer taken away, ${C.breakdownSeconds} s each | req/s | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req |`,
    '|---|---|---|---|---|---|',
    ...w.breakdown.map(
      (x) =>
        `| ${x.variant} | ${Math.round(x.perSec)} | ${f2(x.p50)} | ${f2(x.p99)} | ${x.cpuUsPerRequest.server} | ${x.cpuUsPerRequest.store} |`,
    ),
  ].join('\n');
  const seedKinds = Object.entries(s.byKind)
    .map(
      ([k, v]) =>
        `${k} ${v.n} (p50 ${f2(v.p50)} / p99 ${f2(v.p99)} ms; ${Object.entries(v.status)
          .map(([c, n]) => `${c}: ${n}`)
          .join(', ')})`,
    )
    .join('; ');
  const cpu = [
    `- writes (a): ${coresText(w.floor.cores)}`,
    `- writes (b): ${coresText(w.service.cores)}`,
    `- writes (b+sync): ${coresText(w.serviceWithSync.cores)}`,
    `- writes (c): ${coresText(w.pgOnly.cores)}`,
    `- reads (a'): ${coresText(r.floor.cores)}`,
    `- reads (b'): ${coresText(r.service.cores)}`,
    `- seed day: ${coresText(s.cores)}`,
  ].join('\n');
  return { main, ratioTable, server, lagLine, breakdown, seedKinds, cpu };
}

/** The reading of this run's figures, written from them (so it never goes stale). */
function reading(w: Writes, r: Reads, s: SeedDay, ratios: Record<string, number>, fsyncMs: number): string {
  const a = w.floor;
  const b = w.service;
  const c = w.pgOnly;
  const [asIs, noJwt, noReadModel, everysec, floorEverysec] = w.breakdown;
  const rel = (x?: Measured) =>
    x && asIs
      ? `${Math.round(x.perSec)}/s (${x.perSec >= asIs.perSec ? '+' : ''}${Math.round((x.perSec / asIs.perSec - 1) * 100)}%)`
      : 'n/a';
  const ceiling = (us: number) => (us > 0 ? Math.round(1e6 / us) : 0);
  const jwtUs = asIs && noJwt ? asIs.cpuUsPerRequest.server - noJwt.cpuUsPerRequest.server : 0;
  const readModelUs = noJwt && noReadModel ? noJwt.cpuUsPerRequest.server - noReadModel.cpuUsPerRequest.server : 0;
  const busiest = [a, b, w.serviceWithSync, c, r.floor, r.service].reduce(
    (m, x) => Math.max(m, x.cores.other ?? 0),
    s.cores.other ?? 0,
  );
  const p = r.service.server.probe;
  const sv = r.service.server.search;
  const machine = (x: { cores: Record<string, number> }) => `${f2(x.cores.machine ?? 0)} of ${os.cpus().length}`;
  return [
    `**In short.** Each server under test is one Node.js process, and its CPU time per request sets its ceiling: one core gives it about 1 s / (CPU per request), a little more since the garbage collector and the thread pool run beside its JavaScript thread. The floor's process spends ${a.cpuUsPerRequest.server} µs per booking; this service's ${b.cpuUsPerRequest.server} µs (a ceiling of about ${ceiling(b.cpuUsPerRequest.server)}/s; it reached ${Math.round(b.perSec)}/s, its process at ${f2(b.cores.server ?? 0)} cores, the machine at ${machine(b)}), ${r.service.cpuUsPerRequest.server} µs per search in a ${r.vehicles}-vehicle city (ceiling ${ceiling(r.service.cpuUsPerRequest.server)}/s) and ${s.cpuUsPerRequest.server} µs per seed-day operation (ceiling ${ceiling(s.cpuUsPerRequest.server)}/s, where the ${TARGETS.seedDaySeconds} s target needs ${Math.round(s.operations / TARGETS.seedDaySeconds)}/s). Redis is not the limit: ${b.cpuUsPerRequest.store} µs per booking (${ceiling(b.cpuUsPerRequest.store)}/s).`,
    `**Bookings against the floor (b/a ${f2(ratios.bookingVsFloor!)}).** JWT verification no longer weighs: \`authenticator\` (src/api/auth.ts) imports the HMAC key once and remembers a verified token for up to a minute (never past its \`exp\`), so taking it away changes ${jwtUs} µs of the process's CPU per booking (${asIs ? `${asIs.cpuUsPerRequest.server} → ${noJwt?.cpuUsPerRequest.server}` : 'n/a'} µs; ${rel(noJwt)}); the profile shows JWT verification (jose, WebCrypto) at ${pct(w.profile?.groups.find((g) => g.group.startsWith('JWT'))?.share ?? 0)} of the process's busy time. The read model tailing the streams in the API process costs ${readModelUs} µs per booking (without it as well: ${rel(noReadModel)}). The rest is the request's path itself: per-caller rate limiting (counted in process, added up in Redis every 50 ms), schema validation and serialization, the service layer (per-vehicle queue, idempotency, result parsing) and one Redis round trip to the \`book\` script — a much bigger script than the floor's: it loads and decodes the vehicle's whole calendar, re-derives the status, keeps the city counters exact and appends an event that carries the entry's full state. It is a write, which with \`appendfsync always\` Redis answers only after the fsync of its event-loop turn (${f2(fsyncMs)} ms for a write alone here): with \`everysec\` as well, ${rel(everysec)}; the floor with everysec: ${floorEverysec ? `${Math.round(floorEverysec.perSec)}/s` : 'n/a'}. Profile of the process under the bookings: ${groupsText(w.profile, 6)}.`,
    `**Bookings against PostgreSQL only (b/c ${f2(ratios.bookingVsPgOnly!)}x).** The PostgreSQL-only service's Node process does little per booking (${c.cpuUsPerRequest.server} µs, four round trips), and PostgreSQL, which group-commits its 20 connections' transactions, spends ${c.cpuUsPerRequest.store} µs per booking on ${f2(c.cores.postgres ?? 0)} cores (machine ${machine(c)}): it reaches ${Math.round(c.perSec)}/s with about all the machine has left after the load generator. Five times that is ${Math.round(5 * c.perSec)}/s, more than one Node process spending ${b.cpuUsPerRequest.server} µs per booking can do (about ${ceiling(b.cpuUsPerRequest.server)}/s); the floor's process (${a.cpuUsPerRequest.server} µs) could. \`fleet serve\` runs one API process per core; this benchmark runs one, like the floor and the PostgreSQL-only service.`,
    `**Booking latency (p99 ${f1(b.p99)} ms).** With ${CONNECTIONS} clients always waiting, the mean latency is ${CONNECTIONS} / throughput (${f1((CONNECTIONS / b.perSec) * 1000)} ms at ${Math.round(b.perSec)}/s): latency follows throughput.`,
    `**Search (b'/a' ${f2(ratios.searchVsFloor!)}).** In a ${r.vehicles}-vehicle city a search costs the process ${r.service.cpuUsPerRequest.server} µs of CPU where an \`HGETALL\` behind fastify costs ${r.floor.cpuUsPerRequest.server} µs. For each search the read model scans every vehicle of the city in memory (filters, then the vehicle's calendar against the window), sorts the free ones, and only then builds and verifies one page against Redis; the profile: ${groupsText(r.profile, 5)}. One search alone takes ${f2(p.p50)} ms at the median and ${f2(p.p99)} ms at p99 (${p.n} in a row, in-process); under ${CONNECTIONS} clients${sv ? ` the same call measures ${f2(sv.p50)} / ${f2(sv.p99)} ms (p50 / p99)` : ''}, queueing behind the other searches on one event loop.`,
    `**Seed day (${f1(s.seconds)} s, ${Math.round(s.opsPerSec)} ops/s).** ${pct(READS_PER_WRITE / (READS_PER_WRITE + 1))} of the operations are reads, mostly searches in ${s.vehiclesPerCity}-vehicle cities. Every request, reads included, is authenticated (a remembered token) and counted against its caller's rate limit (in process; Redis every 50 ms) before its handler runs. The process used ${f2(s.cores.server ?? 0)} cores (${s.cpuUsPerRequest.server} µs per operation), Redis ${f2(s.cores.redis ?? 0)}, the load generator ${f2(s.cores.loadgen ?? 0)}: the API process is the limit.`,
    `**Sync lag (p99 ${Math.round(w.serviceWithSync.lag.p99Ms)} ms).** Measured at ${Math.round(w.serviceWithSync.perSec)} bookings/s: with the sync worker (${f2(w.serviceWithSync.cores.sync ?? 0)} cores) and PostgreSQL (${f2(w.serviceWithSync.cores.postgres ?? 0)}) on the same cores, bookings drop from ${Math.round(b.perSec)}/s to that${w.serviceWithSync.lag.p99Ms < TARGETS.lagP99Ms ? ', and the worker keeps up' : `; the worker, left ${f2(w.serviceWithSync.cores.sync ?? 0)} cores by the rest, drains fewer events per second than the bookings make, so the lag grows for as long as bookings come at that rate (it is bounded by the run, and gone ${f1(w.serviceWithSync.lag.drainAfterLoadSeconds ?? 0)} s after the load stops). On its own the worker drains faster (see Sync above); a deployment gives PostgreSQL and the worker cores of their own, and spreads cities over several workers`}.`,
    `**The machine.** ${os.cpus().length} cores for everything: the load generator (autocannon: ${f2(a.cores.loadgen ?? 0)} cores during the floor's run, ${f2(b.cores.loadgen ?? 0)} during the service's), the server under test, redis-server or PostgreSQL, and in (b+sync) the sync worker. The floors are partly held back by the load generator, so the ratios against them flatter the service a little; on separate machines every figure would be higher. Processes outside the benchmark used up to ${f2(busiest)} cores during a measured run (\`other\`).`,
  ].join('\n\n');
}

async function main() {
  const started = Date.now();
  const base = firstSlot();
  const token = await mintToken(new TextEncoder().encode(SECRET), { sub: 'bench-customer', role: 'customer' });
  console.error(
    `side-by-side benchmark${QUICK ? ' (quick)' : ''}: ${CONNECTIONS} clients, ${C.seconds} s per scenario after ${C.warmup} s warm-up, ${os.cpus().length} cores shared by load generator and servers`,
  );

  const fsyncMs = await fsyncProbe();
  const w = await writes(base, token);
  const r = await reads(base, token);
  const s = await seedDay(base);
  await cleanUp();

  const ratios = {
    bookingVsFloor: w.service.perSec / w.floor.perSec,
    bookingVsPgOnly: w.service.perSec / w.pgOnly.perSec,
    bookingWithSyncVsFloor: w.serviceWithSync.perSec / w.floor.perSec,
    bookingWithSyncVsPgOnly: w.serviceWithSync.perSec / w.pgOnly.perSec,
    searchVsFloor: r.service.perSec / r.floor.perSec,
  };
  const probe = r.service.server.probe;
  const targets = [
    {
      target: `booking throughput >= ${TARGETS.vsFloor * 100}% of the floor (b/a)`,
      value: f2(ratios.bookingVsFloor),
      met: ratios.bookingVsFloor >= TARGETS.vsFloor,
    },
    {
      target: `booking throughput >= ${TARGETS.vsPg}x the PostgreSQL-only service (b/c)`,
      value: `${f2(ratios.bookingVsPgOnly)}x`,
      met: ratios.bookingVsPgOnly >= TARGETS.vsPg,
    },
    {
      target: `booking p99 < ${TARGETS.bookingP99Ms} ms at ${CONNECTIONS} clients (b)`,
      value: `${f1(w.service.p99)} ms`,
      met: w.service.p99 < TARGETS.bookingP99Ms,
    },
    {
      target: `search server p99 < ${TARGETS.searchP99Ms} ms in a ${r.vehicles}-vehicle city (one search alone, in-process, ${probe.n} in a row)`,
      value: `${f2(probe.p99)} ms`,
      met: probe.p99 < TARGETS.searchP99Ms,
    },
    {
      target: `seed day (${s.operations} ops) < ${TARGETS.seedDaySeconds} s`,
      value: `${f1(s.seconds)} s${s.finished ? '' : ` (stopped at ${s.completed} ops)`}`,
      met: s.finished && s.seconds < TARGETS.seedDaySeconds,
    },
    {
      target: `sync lag p99 < ${TARGETS.lagP99Ms} ms (during b+sync)`,
      value: `${Math.round(w.serviceWithSync.lag.p99Ms)} ms`,
      met: w.serviceWithSync.lag.p99Ms < TARGETS.lagP99Ms,
    },
  ];
  const t = tables(w, r, s, ratios);
  const targetTable = [
    '| target | measured | |',
    '|---|---|---|',
    ...targets.map((x) => `| ${x.target} | ${x.value} | ${x.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  const text = reading(w, r, s, ratios, fsyncMs);
  console.log(
    `\n${t.main}\n\n${t.ratioTable}\n\n${t.server}\n\n${t.lagLine}\n\n${t.breakdown}\n\nSeed day by kind: ${t.seedKinds}\n\nCores used during each measured run:\n${t.cpu}\n\nProfiles: bookings: ${groupsText(w.profile, 8)}; search: ${groupsText(r.profile, 8)}\n\n${targetTable}\n`,
  );

  const seconds = (Date.now() - started) / 1000;
  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    mode: QUICK ? 'quick' : 'full',
    seconds: Math.round(seconds),
    machine: {
      cpus: cpus.length,
      model: cpus[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
      redisFsyncMs: fsyncMs,
    },
    load: {
      generator: 'autocannon, in the bench process, apart from every server',
      connections: CONNECTIONS,
      pipelining: 1,
      warmupSeconds: C.warmup,
      seconds: C.seconds,
    },
    config: C,
    writes: w,
    reads: r,
    seedDay: s,
    ratios,
    targets,
  };
  const json = JSON.stringify(
    result,
    (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v),
    2,
  );
  if (QUICK) {
    const file = process.env.BENCH_QUICK_OUT ?? path.join(os.tmpdir(), 'fleet-side-by-side-quick.json');
    await writeFile(file, json);
    console.error(`quick run: ${seconds.toFixed(0)} s; results in ${file} (the tree is left alone)`);
    return;
  }
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(path.join('bench', 'results', 'latest.json'), `${json}\n`);
  await updateDoc(section({ ...t, targetTable, text, w, r, s, seconds, date: result.date }));
  console.error(`done in ${seconds.toFixed(0)} s: bench/results/latest.json, docs/benchmarks.md (Side by side)`);
}

function section(
  x: ReturnType<typeof tables> & {
    targetTable: string;
    text: string;
    w: Writes;
    r: Reads;
    s: SeedDay;
    seconds: number;
    date: string;
  },
): string {
  return `## Side by side

This service next to its floor and next to the PostgreSQL-only service most teams build first, in
one run (\`npm run bench\`, ${Math.round(x.seconds)} s), with the same load generator (autocannon, ${CONNECTIONS} keep-alive clients,
one request in flight each, loopback only), ${C.warmup} s of warm-up then ${C.seconds} s per scenario. Every server
under test is its own child process (\`node --import tsx bench/<x>.ts\`) with its own private
redis-server (AOF, \`appendfsync always\`) or fresh database (PostgreSQL 15, \`fsync\` and
\`synchronous_commit\` on): every acknowledged booking is durable on all three.

- **writes**: ${C.writeVehicles} vehicles in one city; request *i* books vehicle *i mod ${C.writeVehicles}* for 2 h in the
  *i div ${C.writeVehicles}*-th 3-hour slot, the same sequence for (a), (b), (c), so every booking can succeed.
  (a) \`bench/floor-server.ts\`: fastify + ioredis, one EVALSHA (vehicle exists? does the nearest earlier
  interval of the vehicle's sorted set overlap, turnaround included? ZADD + XADD), no auth or
  validation. (b) \`bench/service-server.ts\`: the real \`buildApp\` as \`fleet serve\` runs one API
  process (JWT authenticator, per-caller rate limits in Redis raised out of the way but still
  counted, the search read model tailing the streams), one customer's token. (b+sync) the same with
  \`bench/sync-worker.ts\` (the sync worker as \`fleet worker\` runs it) projecting into a fresh
  database. (c) \`bench/pg-only-server.ts\`: fastify + pg (pool 20), \`BEGIN; SELECT ... FROM vehicles
  WHERE id = $1 FOR UPDATE; INSERT\` into a table with \`EXCLUDE USING gist (vehicle_id WITH =, period WITH &&)\`; \`COMMIT\`.
- **reads**: a ${x.r.vehicles}-vehicle city seeded by \`seedCity\` (some booked, some blocked). (a') \`HGETALL\`
  of a random vehicle's hash behind fastify; (b') \`GET /v1/cities/{city}/availability\`, a random
  window in the next 72 h, 2 to 48 h long, a quarter with a category filter, 20 per page.
- **seed day**: ${x.s.cities} reference cities x ${x.s.vehiclesPerCity} vehicles (\`seedCity\`), then ${x.s.operations} operations through the
  API with ${CONNECTIONS} clients, ${READS_PER_WRITE} reads per write: reads are availability searches (9 in 10) and
  \`GET /v1/vehicles/{id}\`; writes are bookings (7 in 10), holds (2 in 10) and cancellations (1 in 10) of
  bookings made earlier, by 500 customers, in random cities, vehicles and windows (some refused: taken).

Latencies are client-side and count every answer. CPU per request is the process's CPU time over
the measured run divided by its requests (\`store\`: redis-server, or every PostgreSQL backend).
**The machine has ${os.cpus().length} cores, shared by the load generator, the server process, redis-server,
PostgreSQL and in (b+sync) the sync worker**: absolute figures are lower than on separate machines.

Last run: ${x.date}, node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}).

${x.main}

${x.ratioTable}

${x.server}

${x.lagLine}

Seed day by kind: ${x.seedKinds}.

### Targets

${x.targetTable}

### Where the time goes

${x.breakdown}

CPU profiles (\`--cpu-prof\`) of the service's server process under the same load, ${C.profileSeconds} s each, self time
as a share of its busy time: bookings (b): ${groupsText(x.w.profile, 8)}; search (b'): ${groupsText(x.r.profile, 8)}.

Cores used during each measured run (CPU seconds per second from /proc; \`other\`: processes outside the benchmark):

${x.cpu}

${x.text}

### Reproduce

\`\`\`
npm run bench                  # this section and bench/results/latest.json (~6 min, at most 10; BENCH_SECONDS=15, BENCH_PROFILE=0)
npm run bench -- --quick       # every scenario at tiny scale in under a minute (or BENCH_QUICK=1); writes nothing in the tree
npm run bench:engine           # the Engine section; npm run bench:sync: the Sync section
\`\`\`

Needs \`redis-server\` on the PATH and PostgreSQL at \`DATABASE_URL\` (default \`postgres://postgres@127.0.0.1:5432/postgres\`).
`;
}

/** Replaces only this benchmark's section of docs/benchmarks.md (as bench/engine.ts and bench/sync.ts do theirs). */
async function updateDoc(section: string) {
  const file = path.join('docs', 'benchmarks.md');
  const doc = await readFile(file, 'utf8');
  const re = /## Side by side\n[\s\S]*?(?=\n## |$)/;
  await writeFile(file, re.test(doc) ? doc.replace(re, () => section) : `${doc.trimEnd()}\n\n${section}`);
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
// autocannon and ioredis may keep timers alive for a moment: leave now, nothing is left running.
process.exit(process.exitCode ?? 0);
