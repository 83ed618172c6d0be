import type { RequestSpec } from 'autocannon';
import { REFERENCE_CITIES } from '../../src/domain/cities.ts';
import { CATEGORIES } from '../../src/domain/vehicle.ts';
import { keys } from '../../src/redis/keys.ts';
import { seedCity } from '../../src/services/demo.ts';
import { Inventory } from '../../src/services/inventory.ts';
import type { Percentiles } from '../lib/stats.ts';
import { HOUR } from '../lib/workload.ts';
import { C, CONNECTIONS, SECRET, child, freshDatabase, measure, privateRedis, profile, rng, stop } from './harness.ts';
import { drained, served } from './as-served.ts';
import { compareAnswers, exportCity } from './pg-only.ts';

// Reads --------------------------------------------------------------------------------------

export function searchPath(city: string, base: number, rand: () => number): string {
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

/** Availability searches in `city` as `searchPath` draws them, one caller's. */
export function availabilityRequest(
  city: string,
  base: number,
  rand: () => number,
  authorization: string,
): RequestSpec {
  return {
    method: 'GET',
    setupRequest: (req) => ({
      ...req,
      method: 'GET',
      path: searchPath(city, base, rand),
      headers: { authorization },
    }),
  };
}

export async function reads(base: number, token: string) {
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
  const searchRequest = (rand: () => number) => availabilityRequest(city.id, base, rand, `Bearer ${token}`);
  const serviceResult = await measure(
    svc.url,
    searchRequest(randB),
    { server: svc.pid, redis: pid },
    { onStart: () => svc.call('stats', { reset: true }) },
  );
  const stats = await svc.call<{ routes: Record<string, Percentiles>; search: Percentiles }>('stats', { reset: true });
  // The cost of one search alone: N searches one after another in the server process, nothing else running.
  const probe = await svc.call<Percentiles>('probe', { city: city.id, n: C.probeN });

  // The PostgreSQL-only service holds the same city (vehicles and calendars copied from ours) and
  // must answer a sample of the same searches with the same vehicles, in the same order.
  const pgDb = await freshDatabase();
  const pg = await child('pg-only-server.ts', { DATABASE_URL: pgDb.url, BENCH_VEHICLES: '0' });
  await pg.call('load', await exportCity(redis, city.id), 300_000);
  const sample = rng(4);
  const answers = await compareAnswers({
    serviceUrl: svc.url,
    pgUrl: pg.url,
    token,
    paths: [
      ...Array.from({ length: C.compareN }, () => searchPath(city.id, base, sample)),
      ...ids.slice(0, Math.ceil(C.compareN / 5)).map((id) => `/v1/vehicles/${id}`),
    ],
  });
  await stop(svc);

  console.error(
    `reads (c'): PostgreSQL only, the same searches (${answers.same} of ${answers.compared} answers the same as ours)`,
  );
  const pgResult = await measure(pg.url, searchRequest(rng(2)), { server: pg.pid }, { store: 'postgres' });
  await stop(pg);

  console.error(`reads (b', served): as \`npm start\` runs it, every part on, the same searches`);
  const db = await freshDatabase();
  const fleet = await served(server.url, db.url);
  await drained(redis);
  const servedResult = await measure(fleet.url, searchRequest(rng(2)), { ...fleet.pids(), redis: pid });
  const servedProcesses = Object.keys(fleet.pids()).length;
  await fleet.stop();

  const prof = await profile('service-server.ts', env, searchRequest(rng(3)), {
    file: 'docs/profiles/search.svg',
    title: `GET /v1/cities/{city}/availability, ${ids.length}-vehicle city, ${CONNECTIONS} clients, ${C.profileSeconds} s: the API process`,
  });
  return {
    vehicles: ids.length,
    floor: floorResult,
    service: {
      ...serviceResult,
      server: { request: stats.routes['GET /v1/cities/:city/availability'], search: stats.search, probe },
    },
    served: { ...servedResult, processes: servedProcesses },
    pgOnly: { ...pgResult, answers },
    profile: prof,
  };
}
