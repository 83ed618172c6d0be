/**
 * This service's HTTP API as `fleet serve` runs one API process (src/cli/main.ts startApi): the
 * real buildApp with the JWT authenticator, per-caller rate limits in Redis (raised so they never
 * refuse, but still checked on every request), the search read model loaded and tailing the
 * streams. Nothing is changed for the benchmark; it only adds, from outside the app, an
 * `onResponse` hook that records each request's server time (reply.elapsedTime) and a timer
 * around readModel.search (memory + the verification round trip to Redis).
 *
 * Env: REDIS_URL, JWT_SECRET. For the cost breakdown only (never in the compared figures):
 * BENCH_AUTH=static (every request is one fixed customer, no JWT verification) and
 * BENCH_READMODEL=0 (no read model in the process; search then answers 503).
 * Started by bench/side-by-side.ts; talks to it over IPC:
 *   stats {reset}        server times (ms, p50/p99/max) per route since the last reset, and of the searches
 *   probe {city, n}      n searches one after another in this process, unloaded: their p50/p99/max
 *   cpu                  this process's CPU ms so far
 */
import { buildApp } from '../src/api/app.ts';
import { authenticator, type Actor } from '../src/api/auth.ts';
import { CATEGORIES } from '../src/domain/vehicle.ts';
import { createRedis } from '../src/redis/connection.ts';
import { Inventory } from '../src/services/inventory.ts';
import { ReadModel, type SearchQuery } from '../src/services/read-model.ts';
import { cpuMs, serveParent } from './lib/child.ts';
import { percentiles } from './lib/stats.ts';
import { firstSlot, HOUR } from './lib/workload.ts';

const UNLIMITED = { customer: 1e9, host: 1e9, ops: 1e9, admin: 1e9 };
const secret = new TextEncoder().encode(process.env.JWT_SECRET ?? '');
if (secret.length < 32) throw new Error('JWT_SECRET (32+ bytes) is required');

const redis = createRedis({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const inventory = new Inventory(redis);
const withReadModel = process.env.BENCH_READMODEL !== '0';
const readModel = new ReadModel(redis, inventory);
if (withReadModel) await readModel.start();

let routeTimes = new Map<string, number[]>();
let searchTimes: number[] = [];
const search = readModel.search.bind(readModel);
readModel.search = async (city: string, q: SearchQuery) => {
  const t = performance.now();
  try {
    return await search(city, q);
  } finally {
    searchTimes.push(performance.now() - t);
  }
};

const staticCaller: Actor = { id: 'bench-customer', role: 'customer' };
const app = await buildApp({
  inventory,
  redis,
  rateLimits: UNLIMITED,
  ...(withReadModel ? { readModel } : {}),
  authenticate: process.env.BENCH_AUTH === 'static' ? async () => staticCaller : authenticator({ secret }),
});
app.addHook('onResponse', async (request, reply) => {
  const route = `${request.method} ${request.routeOptions.url ?? '?'}`;
  let xs = routeTimes.get(route);
  if (!xs) {
    xs = [];
    routeTimes.set(route, xs);
  }
  xs.push(reply.elapsedTime);
});

/** Searches one at a time, nothing else running: the cost of one search, without queueing. */
async function probe(args: unknown) {
  const { city, n } = args as { city: string; n: number };
  const base = firstSlot();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const from = base + ((i * 7) % 72) * HOUR;
    const q: SearchQuery = {
      from,
      to: from + (2 + ((i * 13) % 46)) * HOUR,
      sort: 'price',
      limit: 20,
      ...(i % 4 === 1 ? { category: CATEGORIES[i % CATEGORIES.length]!, orBetter: i % 8 === 1 } : {}),
    };
    const t = performance.now();
    await search(city, q);
    times.push(performance.now() - t);
  }
  return percentiles(times);
}

const url = await app.listen({ port: 0, host: '127.0.0.1' });
serveParent(
  url,
  {
    cpu: () => cpuMs(),
    stats: (args) => {
      const out = {
        routes: Object.fromEntries([...routeTimes].map(([k, v]) => [k, percentiles(v)])),
        search: percentiles(searchTimes),
      };
      if ((args as { reset?: boolean } | undefined)?.reset) {
        routeTimes = new Map();
        searchTimes = [];
      }
      return out;
    },
    probe,
  },
  async () => {
    await app.close();
    if (withReadModel) await readModel.stop();
    redis.disconnect();
  },
);
