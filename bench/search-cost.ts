/**
 * bench/search-cost: what one availability search costs as its city grows, for this tree and for
 * a baseline commit (by default the last one that sorted every candidate for for_you and verified
 * twice the page), in one run. For each city size a city is seeded by `seedCity` (some vehicles
 * booked, some blocked) on a private redis-server, a read model loads it (its tail then stopped:
 * nothing changes during the run), and searches of four kinds run one after another in this
 * process, 20 per page, a random window in the next 72 h:
 *   price     cheapest first (a quarter with a category filter, half of those "or better");
 *   nearest   nearest first from a random point of the city;
 *   for_you   a customer's order (a profile of six past trips);
 *   radius    cheapest first within 3 km of a random point.
 * Per search: wall time (p50, p99), this process's CPU (the selection, the verification's client
 * side), Redis's own µs inside FCALL_RO (the verification), and the bytes this process allocated
 * (V8's sampling heap profiler, collected objects included), split by where they were allocated.
 * Writes the "Search cost by city size" section of docs/benchmarks.md and
 * bench/results/search-latest.json.
 *
 *   npm run bench:search            (BASELINE=<commit>, BENCH_SIZES=500,2000,8000, BENCH_SEARCHES=1000)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { CityCatalog, REFERENCE_CITIES } from '../src/domain/cities.ts';
import * as ranking from '../src/domain/ranking.ts';
import { rng } from '../src/domain/random.ts';
import { CATEGORIES } from '../src/domain/vehicle.ts';
import { seedCity } from '../src/services/demo.ts';
import { Inventory } from '../src/services/inventory.ts';
import { ReadModel, type SearchQuery } from '../src/services/read-model.ts';
import { startRedis } from '../test/support/redis.ts';
import { Redis } from 'ioredis';
import { percentiles } from './lib/stats.ts';
import { runStamp } from './lib/stamp.ts';
import { measureAgainst, writeSection } from './lib/baseline.ts';

const HOUR = 3_600_000;
const SIZES = (process.env.BENCH_SIZES ?? '500,2000,8000').split(',').map(Number);
const SEARCHES = Number(process.env.BENCH_SEARCHES ?? 1_000);
const KINDS = ['price', 'nearest', 'for_you', 'radius'] as const;
type Kind = (typeof KINDS)[number];

interface Cost {
  p50: number;
  p99: number;
  cpuUs: number;
  redisUs: number;
  bytes: number;
  /** Bytes per search allocated by the search's own code (read model, indexes, ranking, kd-tree). */
  selectionBytes: number;
  /** By the Redis client (ioredis, its parser, the socket). */
  clientBytes: number;
  hits: number;
}

/** The ranking as the tree under test takes it: an object (score, explain) here, a function before. */
function rankOf(): SearchQuery['rank'] {
  const center = REFERENCE_CITIES[0]?.center ?? { lat: 0, lng: 0 };
  const trips = Array.from({ length: 6 }, (_, i) => ({
    category: CATEGORIES[i % 2 === 0 ? 2 : 1] ?? 'sedan',
    pricePerHour: 9 + i,
    lat: center.lat + 0.01 * i,
    lng: center.lng - 0.01 * i,
    hours: 4,
  }));
  const profile = ranking.profileOf(trips);
  const r = ranking as unknown as Record<string, unknown>;
  if (typeof r.rankingFor === 'function') return (r.rankingFor as (p: typeof profile) => SearchQuery['rank'])(profile);
  return ((v: ranking.Candidate) => ranking.forYou(profile, v)) as unknown as SearchQuery['rank'];
}

function queryOf(kind: Kind, rand: () => number, center: { lat: number; lng: number }): SearchQuery {
  const start = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
  const from = start + Math.floor(rand() * 72) * HOUR;
  const q: SearchQuery = { from, to: from + (2 + Math.floor(rand() * 46)) * HOUR, sort: 'price', limit: 20 };
  const at = { lat: center.lat + (rand() - 0.5) * 0.3, lng: center.lng + (rand() - 0.5) * 0.3 };
  if (kind === 'price' && rand() < 0.25) {
    q.category = CATEGORIES[Math.floor(rand() * CATEGORIES.length)];
    q.orBetter = rand() < 0.5;
  }
  if (kind === 'nearest') Object.assign(q, { near: at, sort: 'distance' });
  if (kind === 'radius') Object.assign(q, { near: at, radiusKm: 3 });
  if (kind === 'for_you') Object.assign(q, { sort: 'for_you', rank: rankOf() });
  return q;
}

async function evalUsec(redis: Redis): Promise<{ calls: number; usec: number }> {
  const m = /cmdstat_fcall_ro:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}

interface ProfileNode {
  callFrame: { url: string; functionName: string };
  selfSize: number;
  children: ProfileNode[];
}

/** Sampled bytes by who allocated them: the nearest frame with a source file decides. */
function allocationsBy(head: ProfileNode): { total: number; selection: number; client: number } {
  const out = { total: 0, selection: 0, client: 0 };
  const walk = (n: ProfileNode, owner: string) => {
    const url = n.callFrame.url || owner;
    out.total += n.selfSize;
    if (/read-model\.ts|search-index\.ts|ranking\.ts|kdbush|tinyqueue/.test(url)) out.selection += n.selfSize;
    else if (/ioredis|redis-parser|node:net|node:internal\/stream/.test(url)) out.client += n.selfSize;
    for (const c of n.children) walk(c, url);
  };
  walk(head, '');
  return out;
}

async function runKind(
  model: ReadModel,
  redis: Redis,
  city: string,
  kind: Kind,
  center: { lat: number; lng: number },
): Promise<Cost> {
  const rand = rng(KINDS.indexOf(kind) + 1);
  const queries = Array.from({ length: SEARCHES }, () => queryOf(kind, rand, center));
  for (const q of queries.slice(0, 300)) await model.search(city, q);
  const times: number[] = [];
  let hits = 0;
  const before = await evalUsec(redis);
  const cpu0 = process.cpuUsage();
  for (const q of queries) {
    const t0 = performance.now();
    hits += (await model.search(city, q)).hits.length;
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const after = await evalUsec(redis);
  // Allocation: the same searches again under the sampling heap profiler.
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    // One sample per 2 KB on average: thousands per kind, and the baseline's for_you (megabytes
    // per search) stays measurable in minutes.
    samplingInterval: 2048,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (const q of queries) await model.search(city, q);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };
  session.disconnect();
  const a = allocationsBy(profile.head);
  const p = percentiles(times);
  const per = (x: number) => Math.round(x / SEARCHES);
  return {
    p50: Math.round(p.p50 * 1000),
    p99: Math.round(p.p99 * 1000),
    cpuUs: per(cpu.user + cpu.system),
    redisUs: Math.round((after.usec - before.usec) / SEARCHES),
    bytes: per(a.total),
    selectionBytes: per(a.selection),
    clientBytes: per(a.client),
    hits: Math.round((hits / SEARCHES) * 10) / 10,
  };
}

async function measure(): Promise<Record<string, Record<Kind, Cost>>> {
  const server = await startRedis();
  const redis = new Redis(server.url);
  const city = REFERENCE_CITIES[0];
  if (!city) throw new Error('no reference city');
  const out: Record<string, Record<Kind, Cost>> = {};
  try {
    for (const size of SIZES) {
      await redis.flushall();
      const inventory = new Inventory(redis, { cities: new CityCatalog([city]) });
      await seedCity(inventory, redis, city, size);
      const model = new ReadModel(redis, inventory);
      await model.start();
      await model.stop();
      const row = {} as Record<Kind, Cost>;
      for (const kind of KINDS) row[kind] = await runKind(model, redis, city.id, kind, city.center);
      out[String(size)] = row;
      console.error(`search cost: ${size} vehicles: ${JSON.stringify(row)}`);
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
  return out;
}

const BASELINE = process.env.BASELINE ?? '01d0a3b';

const kb = (b: number) => (b / 1024).toFixed(1);

function section(
  stamp: { commit: string; date: string },
  now: Record<string, Record<Kind, Cost>>,
  base: Record<string, Record<Kind, Cost>>,
): string {
  const rows = SIZES.flatMap((n) =>
    KINDS.map((k) => {
      const a = now[String(n)]?.[k];
      const b = base[String(n)]?.[k];
      if (!a || !b) return `| ${n} | ${k} | n/a |||||||`;
      return `| ${n} | ${k} | ${a.hits} | ${a.p50} / ${a.p99} | ${b.p50} / ${b.p99} | ${a.cpuUs} | ${b.cpuUs} | ${a.redisUs} | ${b.redisUs} | ${kb(a.bytes)} (${kb(a.selectionBytes)}) | ${kb(b.bytes)} (${kb(b.selectionBytes)}) |`;
    }),
  );
  const small = String(SIZES[0]);
  const large = String(SIZES.at(-1));
  const growth = (t: Record<string, Record<Kind, Cost>>, k: Kind, f: (c: Cost) => number) => {
    const a = t[small]?.[k];
    const b = t[large]?.[k];
    return a && b && f(a) ? (f(b) / f(a)).toFixed(2) : 'n/a';
  };
  const reading = KINDS.map(
    (k) =>
      `${k}: from ${small} to ${large} vehicles the CPU per search grew ×${growth(now, k, (c) => c.cpuUs)} here (×${growth(base, k, (c) => c.cpuUs)} at \`${BASELINE}\`) and the bytes allocated by the search's own code ×${growth(now, k, (c) => c.selectionBytes)} (×${growth(base, k, (c) => c.selectionBytes)}); at ${large} vehicles a search cost ${now[large]?.[k]?.cpuUs ?? 'n/a'} µs of CPU and allocated ${kb(now[large]?.[k]?.bytes ?? 0)} KB here against ${base[large]?.[k]?.cpuUs ?? 'n/a'} µs and ${kb(base[large]?.[k]?.bytes ?? 0)} KB at \`${BASELINE}\`.`,
  );
  const spread = (t: Record<string, Record<Kind, Cost>>, k: Kind) => {
    const xs = SIZES.map((n) => t[String(n)]?.[k]?.selectionBytes ?? 0).filter((x) => x > 0);
    return xs.length ? Math.max(...xs) / Math.min(...xs) : Number.NaN;
  };
  const flat = KINDS.filter((k) => spread(now, k) <= 1.25);
  const summary = `The search's own allocation per search stayed within ×1.25 from ${small} to ${large} vehicles for ${flat.length ? flat.join(', ') : 'no kind'} here${flat.length < KINDS.length ? ` and not for ${KINDS.filter((k) => !flat.includes(k)).join(', ')}` : ''}; at \`${BASELINE}\` for ${KINDS.filter((k) => spread(base, k) <= 1.25).join(', ') || 'no kind'}.`;
  return `## Search cost by city size (\`npm run bench:search\`)

One availability search, 20 per page, in cities of ${SIZES.join(', ')} vehicles seeded by \`seedCity\`,
${SEARCHES} searches of each kind one after another in one process (the read model loaded, its tail
stopped), against a private redis-server; this tree against \`${BASELINE}\` (which sorted every
free vehicle for for_you, and verified twice the page), measured by the same file in one run.
Kinds: price (cheapest first, a quarter filtered by category), nearest (nearest first), for_you
(a customer's order), radius (cheapest within 3 km). CPU is this process's (selection, and the
client side of the verification); Redis µs is Redis's own time inside the verification's
FCALL_RO; bytes are what this process allocated per search (V8's sampling heap profiler, collected
objects included), in brackets the part allocated by the search's own code (read model, indexes,
ranking, kd-tree); the rest is the Redis client's command and reply, the page, and the runtime.
Radius reads the vehicles of the kd-tree's box around its circle (docs/api.md), so it reads more
of them in a denser city, and a smaller city may fill a smaller page (hits column).

Last run: commit \`${stamp.commit}\`, ${stamp.date}, node ${process.version}, ${os.cpus().length} cores.

| vehicles | kind | hits | µs p50 / p99 | ${BASELINE} µs p50 / p99 | CPU µs | ${BASELINE} CPU µs | Redis µs | ${BASELINE} Redis µs | KB allocated (search's own) | ${BASELINE} KB (own) |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${reading.join('\n')}

${summary}
`;
}

async function main() {
  console.error(`search cost: this tree, then ${BASELINE}; sizes ${SIZES.join(', ')}`);
  const { now, base } = await measureAgainst<Record<string, Record<Kind, Cost>>>(
    BASELINE,
    'bench/search-cost.ts',
    'SEARCH_COST_CHILD',
  );
  const stamp = runStamp();
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(
    path.join('bench', 'results', 'search-latest.json'),
    `${JSON.stringify({ ...stamp, baseline: BASELINE, searches: SEARCHES, now, base }, null, 2)}\n`,
  );
  const text = section(stamp, now, base);
  await writeSection('## Search cost by city size', text);
  console.log(text);
}

if (process.env.SEARCH_COST_CHILD) console.log(JSON.stringify(await measure()));
else await main();
