import type { RequestSpec } from 'autocannon';
import { mintToken } from '../../src/api/auth.ts';
import { REFERENCE_CITIES, type City } from '../../src/domain/cities.ts';
import { keys } from '../../src/redis/keys.ts';
import { seedCity } from '../../src/services/demo.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { cpuBetween, cpuSnapshot } from '../lib/cpu.ts';
import { runLoad } from '../lib/load.ts';
import { percentiles, type Percentiles } from '../lib/stats.ts';
import { HOUR } from '../lib/workload.ts';
import {
  C,
  CONNECTIONS,
  READS_PER_WRITE,
  RUN_BUDGET_MS,
  SECRET,
  awaitQuiet,
  child,
  freshDatabase,
  privateRedis,
  serverCores,
  rng,
  runStarted,
  stop,
} from './harness.ts';
import { searchPath } from './reads.ts';
import { drained, served } from './as-served.ts';
import { exportCity } from './pg-only.ts';
import type { Redis } from 'ioredis';

// Seed day -----------------------------------------------------------------------------------

export interface KindStats {
  n: number;
  lat: number[];
  status: Record<string, number>;
}

/** Where the seed day runs: this service (as the bench runs it, or as `npm start` does), or the PostgreSQL-only service. */
export type SeedDayTarget = 'service' | 'served' | 'pg-only';

interface DayServer {
  url: string;
  pids: Record<string, number | undefined>;
  store: 'redis' | 'postgres';
  stats?: () => Promise<{ routes: Record<string, Percentiles> }>;
  stop(): Promise<void>;
}

async function startTarget(
  target: SeedDayTarget,
  cities: { city: City; ids: string[] }[],
  redisUrl: string,
  redis: Redis,
  redisPid: number,
): Promise<DayServer> {
  if (target === 'service') {
    const svc = await child('service-server.ts', { REDIS_URL: redisUrl, JWT_SECRET: SECRET });
    await svc.call('stats', { reset: true });
    return {
      url: svc.url,
      pids: { server: svc.pid, redis: redisPid },
      store: 'redis',
      stats: () => svc.call('stats', { reset: true }),
      stop: () => stop(svc),
    };
  }
  if (target === 'served') {
    const db = await freshDatabase();
    const fleet = await served(redisUrl, db.url);
    await drained(redis);
    return { url: fleet.url, pids: { ...fleet.pids(), redis: redisPid }, store: 'redis', stop: fleet.stop };
  }
  const db = await freshDatabase();
  const pg = await child('pg-only-server.ts', { DATABASE_URL: db.url, BENCH_VEHICLES: '0' });
  for (const { city } of cities) await pg.call('load', await exportCity(redis, city.id), 300_000);
  return { url: pg.url, pids: { server: pg.pid }, store: 'postgres', stop: () => stop(pg) };
}

export async function seedDay(base: number, target: SeedDayTarget = 'service') {
  const { server, redis, pid } = await privateRedis();
  const inventory = new Inventory(redis);
  const t0 = Date.now();
  const cities: { city: City; ids: string[] }[] = [];
  for (const city of REFERENCE_CITIES) {
    await seedCity(inventory, redis, city, C.seedPerCity);
    cities.push({ city, ids: await redis.smembers(keys.vehicles(city.id)) });
  }
  console.error(
    `seed day (${target}): ${cities.length} cities x ${C.seedPerCity} vehicles seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${C.seedOps} operations, ${READS_PER_WRITE} reads per write`,
  );
  const secret = new TextEncoder().encode(SECRET);
  const tokens = await Promise.all(
    Array.from({ length: 500 }, (_, i) => mintToken(secret, { sub: `bench-customer-${i}`, role: 'customer' })),
  );
  const svc = await startTarget(target, cities, server.url, redis, pid);

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
  await svc.stats?.();
  const quietWaitSeconds = await awaitQuiet();
  const before = cpuSnapshot({ loadgen: process.pid, ...svc.pids });
  const deadlineSeconds = Math.max(
    20,
    Math.min(C.seedDeadline, (RUN_BUDGET_MS - (Date.now() - runStarted)) / 1000 - 20),
  );
  const r = await runLoad({ url: svc.url, connections: CONNECTIONS, amount: C.seedOps, deadlineSeconds, request });
  const cores = cpuBetween(before, cpuSnapshot({ loadgen: process.pid, ...svc.pids }));
  const stats = (await svc.stats?.()) ?? { routes: {} };
  await svc.stop();
  const byKind = Object.fromEntries(
    Object.entries(kinds).map(([k, v]) => {
      const p = percentiles(v.lat);
      return [k, { n: v.n, p50: p.p50, p99: p.p99, status: v.status }];
    }),
  );
  return {
    target,
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
      server: Math.round((serverCores(cores) * r.seconds * 1e6) / Math.max(1, r.requests)),
      store: Math.round(((cores[svc.store] ?? 0) * r.seconds * 1e6) / Math.max(1, r.requests)),
    },
  };
}
