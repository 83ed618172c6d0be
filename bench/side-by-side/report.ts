/**
 * The benchmark's report: tables, ratios against the floors, the reading of the figures, and
 * the "Side by side" section of docs/benchmarks.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ProfileSummary } from '../lib/cpu.ts';
import {
  C,
  CONNECTIONS,
  LAG_SAMPLE_MS,
  type Measured,
  QUICK,
  READS_PER_WRITE,
  TARGETS,
  privateRedis,
} from './harness.ts';
import type { writes } from './writes.ts';
import type { reads } from './reads.ts';
import type { seedDay } from './seed-day.ts';
import type { memory } from './memory.ts';

// Report -------------------------------------------------------------------------------------

export const f1 = (x: number) => x.toFixed(1);
export const f2 = (x: number) => x.toFixed(2);
export const pct = (x: number) => `${Math.round(x * 100)}%`;
export const okShare = (status: Record<string, number>, n: number) =>
  n
    ? Object.entries(status)
        .filter(([c]) => c.startsWith('2'))
        .reduce((a, [, k]) => a + k, 0) / n
    : 0;
export const coresText = (c: Record<string, number>) =>
  `${Object.entries(c)
    .filter(([k]) => k !== 'machine')
    .map(([k, v]) => `${k} ${f2(v)}`)
    .join(', ')} (machine ${f2(c.machine ?? 0)} of ${os.cpus().length})`;
export const groupsText = (p: ProfileSummary | undefined, n = 5) =>
  p
    ? p.groups
        .filter((g) => g.share >= 0.01)
        .slice(0, n)
        .map((g) => `${g.group} ${pct(g.share)}`)
        .join(', ')
    : 'not profiled';

export type Writes = Awaited<ReturnType<typeof writes>>;
export type Reads = Awaited<ReturnType<typeof reads>>;
export type SeedDay = Awaited<ReturnType<typeof seedDay>>;
export type Memory = Awaited<ReturnType<typeof memory>>;

/** Sequential writes to a private redis-server with appendfsync always: what one fsync costs here. */
export async function fsyncProbe(): Promise<number> {
  const { redis } = await privateRedis();
  for (let i = 0; i < 50; i++) await redis.set('probe', i);
  const t = performance.now();
  const n = QUICK ? 100 : 1_000;
  for (let i = 0; i < n; i++) await redis.set('probe', i);
  return (performance.now() - t) / n;
}

export function tables(
  w: Writes,
  r: Reads,
  s: SeedDay,
  ratios: Record<string, number>,
  days: { served: SeedDay; pgOnly: SeedDay },
) {
  const row = (name: string, x: Measured) =>
    `| ${name} | ${Math.round(x.perSec)} | ${f2(x.p50)} | ${f2(x.p99)} | ${x.requests} | ${pct(okShare(x.status, x.requests))} | ${x.cpuUsPerRequest.server} | ${x.cpuUsPerRequest.store} |`;
  const dayRow = (name: string, d: SeedDay) =>
    `| ${name} | ${Math.round(d.opsPerSec)} | ${f2(d.p50)} | ${f2(d.p99)} | ${d.completed} in ${f1(d.seconds)} s | ${pct(okShare(d.status, d.completed))} | ${d.cpuUsPerRequest.server} | ${d.cpuUsPerRequest.store} |`;
  const main = [
    '| scenario | req/s | p50 ms | p99 ms | requests | 2xx | server CPU µs/req | store CPU µs/req |',
    '|---|---|---|---|---|---|---|---|',
    row('writes (a) floor: fastify + ioredis, one EVALSHA', w.floor),
    row('writes (b) this service: `POST /v1/bookings`', w.service),
    row('writes (b+sync) the same, sync worker running beside it', w.serviceWithSync),
    row('writes (c) PostgreSQL only: one INSERT per booking, exclusion constraint', w.pgOnly),
    row("reads (a') floor: fastify + `HGETALL`", r.floor),
    row(`reads (b') this service: availability search, ${r.vehicles}-vehicle city`, r.service),
    row('writes (b, served) this service as `npm start` runs it, every part on', w.served),
    row(`reads (b', served) the same searches as \`npm start\` runs it`, r.served),
    row(`reads (c') PostgreSQL only: the same searches, same city`, r.pgOnly),
    dayRow(`seed day: ${s.completed} ops, ${s.readsPerWrite} reads per write, ${s.cities} cities`, s),
    dayRow('seed day, as `npm start` runs it', days.served),
    dayRow('seed day, PostgreSQL only', days.pgOnly),
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
    `- writes (b, served): ${coresText(w.served.cores)}`,
    `- reads (b', served): ${coresText(r.served.cores)}`,
    `- reads (c'): ${coresText(r.pgOnly.cores)}`,
    `- seed day: ${coresText(s.cores)}`,
    `- seed day, served: ${coresText(days.served.cores)}`,
    `- seed day, PostgreSQL only: ${coresText(days.pgOnly.cores)}`,
  ].join('\n');
  return { main, ratioTable, server, lagLine, breakdown, seedKinds, cpu };
}

/** The read model's heap, sampled at the end of every tenth simulated day (and the last). */
export function memoryTable(m: Memory): string {
  const rows = m.samples.filter((x, i) => x.day % 10 === 0 || x.day === 1 || i === m.samples.length - 1);
  return [
    '| simulated day | heap after GC, MB (bench process) | calendar entries held | entries per vehicle |',
    '|---|---|---|---|',
    ...rows.map((x) => `| ${x.day} | ${f1(x.heapBytes / 1e6)} | ${x.entries} | ${f2(x.entries / m.vehicles)} |`),
  ].join('\n');
}

/** A function's share of a profile's busy time, as the reading names the hottest ones. */
function hottest(p: ProfileSummary | undefined, n: number): string {
  return p
    ? p.byFunction
        .slice(0, n)
        .map((x) => `${x.fn} ${pct(x.share)}`)
        .join(', ')
    : 'not profiled';
}

/**
 * The reading of this run's figures. Every sentence is written from them, and a sentence that
 * judges (a limit, a target) is chosen by them: none of it can go stale with a new run.
 */
export function reading(
  w: Writes,
  r: Reads,
  s: SeedDay,
  m: Memory,
  ratios: Record<string, number>,
  fsyncMs: number,
): string {
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
    (mx, x) => Math.max(mx, x.cores.other ?? 0),
    s.cores.other ?? 0,
  );
  const p = r.service.server.probe;
  const sv = r.service.server.search;
  const cores = os.cpus().length;
  const machine = (x: { cores: Record<string, number> }) => `${f2(x.cores.machine ?? 0)} of ${cores}`;
  const bUs = b.cpuUsPerRequest.server;
  const redisUs = b.cpuUsPerRequest.store;
  const limit =
    ceiling(redisUs) > ceiling(bUs)
      ? `Redis is not the limit: ${redisUs} µs per booking (a ceiling of ${ceiling(redisUs)}/s)`
      : `Redis is as much a limit as the process: ${redisUs} µs per booking (a ceiling of ${ceiling(redisUs)}/s)`;
  const needFloor = TARGETS.vsFloor * a.perSec;
  const needPg = TARGETS.vsPg * c.perSec;
  const searchNeed = TARGETS.searchVsFloor * r.floor.perSec;
  const seedNeed = s.operations / TARGETS.seedDaySeconds;
  const loadgenShare = (x: Measured) => x.cores.loadgen ?? 0;
  const text: string[] = [];
  text.push(
    `**In short.** Each server under test is one Node.js process, and its CPU time per request sets its ceiling: one core gives it about 1 s / (CPU per request). The floor's process spends ${a.cpuUsPerRequest.server} µs per booking; this service's ${bUs} µs (a ceiling of about ${ceiling(bUs)}/s; it reached ${Math.round(b.perSec)}/s, its process at ${f2(b.cores.server ?? 0)} cores, the machine at ${machine(b)}), ${r.service.cpuUsPerRequest.server} µs per search in a ${r.vehicles}-vehicle city (ceiling ${ceiling(r.service.cpuUsPerRequest.server)}/s) and ${s.cpuUsPerRequest.server} µs per seed-day operation (ceiling ${ceiling(s.cpuUsPerRequest.server)}/s). ${limit}.`,
  );
  text.push(
    `**Bookings against the floor (b/a ${f2(ratios.bookingVsFloor!)}; the target, ${TARGETS.vsFloor}, needs ${Math.round(needFloor)}/s, which at ${bUs} µs per booking ${ceiling(bUs) >= needFloor ? 'one process can reach' : `is beyond one process (${ceiling(bUs)}/s): each booking would have to cost at most ${Math.round(1e6 / needFloor)} µs`}).** The bookings came from ${w.callers} customers' tokens in turn. Taking JWT verification away changes ${jwtUs} µs of the process's CPU per booking (${asIs ? `${asIs.cpuUsPerRequest.server} → ${noJwt?.cpuUsPerRequest.server}` : 'n/a'} µs; ${rel(noJwt)}); the profile puts JWT verification (jose, WebCrypto) at ${pct(w.profile?.groups.find((g) => g.group.startsWith('JWT'))?.share ?? 0)} of the process's busy time. The read model tailing the streams in the API process costs ${readModelUs} µs per booking (without it as well: ${rel(noReadModel)}). Redis spends ${redisUs} µs per booking against the floor's ${a.cpuUsPerRequest.store} µs: the \`book\` script reads the vehicle and only the calendar entries its index places near the window, re-derives the status, keeps the city counters exact and appends an event carrying the entry's full state. With \`appendfsync always\` Redis answers a write only after the fsync of its event-loop turn (${f2(fsyncMs)} ms for a write alone here): with \`everysec\` as well, ${rel(everysec)}; the floor with everysec: ${floorEverysec ? `${Math.round(floorEverysec.perSec)}/s` : 'n/a'}. Where the process's time goes (profile, \`docs/profiles/booking.svg\`): ${groupsText(w.profile, 6)}; the hottest functions: ${hottest(w.profile, 6)}.`,
  );
  text.push(
    `**Bookings against PostgreSQL only (b/c ${f2(ratios.bookingVsPgOnly!)}x).** The PostgreSQL-only service sends one statement per booking; its Node process spends ${c.cpuUsPerRequest.server} µs per booking and PostgreSQL ${c.cpuUsPerRequest.store} µs on ${f2(c.cores.postgres ?? 0)} cores (machine ${machine(c)}), for ${Math.round(c.perSec)}/s. ${TARGETS.vsPg} times that is ${Math.round(needPg)}/s, ${ceiling(bUs) >= needPg ? `within one process of this service at ${bUs} µs per booking (${ceiling(bUs)}/s)` : `more than one process of this service can do at ${bUs} µs per booking (${ceiling(bUs)}/s)${ceiling(a.cpuUsPerRequest.server) >= needPg ? `; the floor's process (${a.cpuUsPerRequest.server} µs) could` : ''}`}. \`fleet serve\` runs one API process per core; this benchmark runs one, like the floor and the PostgreSQL-only service.`,
  );
  text.push(
    `**Booking latency (p99 ${f1(b.p99)} ms).** With ${CONNECTIONS} clients always waiting, the mean latency is ${CONNECTIONS} / throughput (${f1((CONNECTIONS / b.perSec) * 1000)} ms at ${Math.round(b.perSec)}/s): latency follows throughput.`,
  );
  text.push(
    `**Search (b'/a' ${f2(ratios.searchVsFloor!)}; the target, ${TARGETS.searchVsFloor}, needs ${Math.round(searchNeed)}/s, ${ceiling(r.service.cpuUsPerRequest.server) >= searchNeed ? 'within' : 'beyond'} one process at ${r.service.cpuUsPerRequest.server} µs per search).** In a ${r.vehicles}-vehicle city a search costs the process ${r.service.cpuUsPerRequest.server} µs of CPU (target ${TARGETS.searchCpuUs} µs) where an \`HGETALL\` behind fastify costs ${r.floor.cpuUsPerRequest.server} µs, and Redis ${r.service.cpuUsPerRequest.store} µs (the page's verification) against ${r.floor.cpuUsPerRequest.store} µs. One search alone takes ${f2(p.p50)} ms at the median and ${f2(p.p99)} ms at p99 (${p.n} in a row, in-process); under ${CONNECTIONS} clients${sv ? ` the same call measures ${f2(sv.p50)} / ${f2(sv.p99)} ms (p50 / p99)` : ''}, and the whole request ${f1(r.service.p99)} ms at p99 client-side (target ${TARGETS.searchLoadP99Ms} ms): with ${CONNECTIONS} clients always waiting the mean is ${f1((CONNECTIONS / r.service.perSec) * 1000)} ms, so the p99 follows throughput. Where the process's time goes (profile, \`docs/profiles/search.svg\`): ${groupsText(r.profile, 6)}; the hottest functions: ${hottest(r.profile, 6)}.`,
  );
  text.push(
    `**Seed day (${f1(s.seconds)} s, ${Math.round(s.opsPerSec)} ops/s; the target, ${TARGETS.seedDaySeconds} s, needs ${Math.round(seedNeed)}/s).** ${pct(READS_PER_WRITE / (READS_PER_WRITE + 1))} of the operations are reads, mostly searches in ${s.vehiclesPerCity}-vehicle cities; every request is authenticated and counted against its caller's rate limit before its handler runs. The API process used ${f2(s.cores.server ?? 0)} cores (${s.cpuUsPerRequest.server} µs per operation: a ceiling of ${ceiling(s.cpuUsPerRequest.server)}/s), Redis ${f2(s.cores.redis ?? 0)}, the load generator ${f2(s.cores.loadgen ?? 0)}, the machine ${machine(s)}. ${ceiling(s.cpuUsPerRequest.server) >= seedNeed ? 'One process could reach the target rate.' : `Reaching ${Math.round(seedNeed)}/s takes ${Math.ceil(seedNeed / ceiling(s.cpuUsPerRequest.server))} API processes at this cost (\`fleet serve\` starts one per core), each operation at ${s.cpuUsPerRequest.server} µs, on a machine with the cores for them.`}`,
  );
  const lag = w.serviceWithSync.lag;
  text.push(
    `**Sync lag (p99 ${Math.round(lag.p99Ms)} ms, target ${TARGETS.lagP99Ms} ms).** Measured at ${Math.round(w.serviceWithSync.perSec)} bookings/s, the top rate the service reaches with the worker beside it (without it: ${Math.round(b.perSec)}/s); the worker used ${f2(w.serviceWithSync.cores.sync ?? 0)} cores and PostgreSQL ${f2(w.serviceWithSync.cores.postgres ?? 0)}. ${lag.p99Ms <= TARGETS.lagP99Ms ? 'The worker kept up' : `The worker fell behind the bookings for part of the run (p99 ${lag.p99Events} events behind)`}; the backlog was gone ${f1(lag.drainAfterLoadSeconds)} s after the load stopped.`,
  );
  text.push(
    `**Memory.** The read model holds a vehicle in ${Math.round(m.start.bytesPerVehicle)} bytes of heap with ${f2(m.start.entriesPerVehicle)} calendar entries on average (just seeded, ${m.vehicles} vehicles), and in ${Math.round(m.end.bytesPerVehicle)} bytes with ${f2(m.end.entriesPerVehicle)} entries after ${m.days} simulated days (${m.bookings} bookings, ${m.trips} trips, ${m.cancelled} cancellations; ${m.refused} bookings refused: taken). Once the calendars had filled (a day of past and three days ahead), the heap after garbage collection moved by ${f2(m.heapDrift * 100)}% between the first and the second half of the days that followed: ${Math.abs(m.heapDrift) <= 0.05 ? 'flat' : 'not flat'}.`,
  );
  text.push(
    `**The machine.** ${cores} cores for everything: the load generator (autocannon: ${f2(loadgenShare(a))} cores during the floor's run, ${f2(loadgenShare(b))} during the service's), the server under test, redis-server or PostgreSQL, and in (b+sync) the sync worker. ${loadgenShare(a) > loadgenShare(b) ? "The load generator took more of the machine during the floors' runs than during the service's, so the ratios against the floors flatter the service a little." : "The load generator took no more of the machine during the floors' runs than during the service's."} Processes outside the benchmark used up to ${f2(busiest)} cores during a measured run (\`other\`).`,
  );
  return text.join('\n\n');
}

export function section(
  x: ReturnType<typeof tables> & {
    targetTable: string;
    earnedTable: string;
    earnedText: string;
    memoryTable: string;
    text: string;
    w: Writes;
    r: Reads;
    s: SeedDay;
    m: Memory;
    seconds: number;
    date: string;
    commit: string;
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
  counted, the search read model tailing the streams), ${x.w.callers} customers' tokens in turn. (b+sync) the same with
  \`bench/sync-worker.ts\` (the sync worker as \`fleet worker\` runs it) projecting into a fresh
  database. (c) \`bench/pg-only-book-server.ts\`: fastify + pg (pool 20), one statement per booking,
  \`INSERT INTO bookings ... SELECT ... FROM vehicles WHERE id = $2 AND listing = 'active'\`, into a table
  with \`EXCLUDE USING gist (vehicle_id WITH =, period WITH &&)\`: an overlap is refused by the constraint.
- **reads**: a ${x.r.vehicles}-vehicle city seeded by \`seedCity\` (some booked, some blocked). (a') \`HGETALL\`
  of a random vehicle's hash behind fastify; (b') \`GET /v1/cities/{city}/availability\`, a random
  window in the next 72 h, 2 to 48 h long, a quarter with a category filter, 20 per page.
- **seed day**: ${x.s.cities} reference cities x ${x.s.vehiclesPerCity} vehicles (\`seedCity\`), then ${x.s.operations} operations through the
  API with ${CONNECTIONS} clients, ${READS_PER_WRITE} reads per write: reads are availability searches (9 in 10) and
  \`GET /v1/vehicles/{id}\`; writes are bookings (7 in 10), holds (2 in 10) and cancellations (1 in 10) of
  bookings made earlier, by 500 customers, in random cities, vehicles and windows (some refused: taken).
- **memory**: \`bench/side-by-side/memory.ts\`: a ${x.m.vehicles}-vehicle city and a read model in the bench
  process; then ${x.m.days} simulated days on a shifted clock (an hour of the simulator's time, which plays
  a day a minute): bookings every simulated hour, trips started and returned, cancellations, the
  past trimmed daily; the heap sampled after garbage collection at the end of each day.

Latencies are client-side and count every answer. CPU per request is the process's CPU time over
the measured run divided by its requests (\`store\`: redis-server, or every PostgreSQL backend).
**The machine has ${os.cpus().length} cores, shared by the load generator, the server process, redis-server,
PostgreSQL and in (b+sync) the sync worker**: absolute figures are lower than on separate machines.

Last run: commit \`${x.commit}\`, ${x.date}, node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}).

${x.main}

${x.ratioTable}

${x.server}

${x.lagLine}

Seed day by kind: ${x.seedKinds}.

### Targets

${x.targetTable}

### Against PostgreSQL only, and as \`npm start\` runs it

Every scenario of this service runs twice: as above (one API process, \`bench/service-server.ts\`), and
as \`npm start\` runs it (\`served\`: \`fleet serve --demo\`, its real process tree started from outside:
the primary with the sync, resolver, webhook dispatcher, sweeper and failover monitor, one API
process per core, each with its read model and live hub; rate limits raised out of the way, the
only change). (c') and the PostgreSQL-only seed day run \`bench/pg-only-server.ts\`, the whole
seed-day workload on PostgreSQL alone, loaded with the same vehicles and calendars as ours; ${x.r.pgOnly.answers.same} of
${x.r.pgOnly.answers.compared} sampled answers were the same as ours (same vehicles, same order).

${x.earnedTable}

${x.earnedText}

### Where the time goes

${x.breakdown}

CPU profiles (\`--cpu-prof\`) of the service's server process under the same load, ${C.profileSeconds} s each, self time
as a share of its busy time: bookings (b): ${groupsText(x.w.profile, 8)}; search (b'): ${groupsText(x.r.profile, 8)}.
Flame graphs of the same profiles: [bookings](profiles/booking.svg), [search](profiles/search.svg).

${x.memoryTable}

Cores used during each measured run (CPU seconds per second from /proc; \`other\`: processes outside the benchmark):

${x.cpu}

${x.text}

### Reproduce

\`\`\`
npm run bench                  # this section and bench/results/latest.json (~20 min; BENCH_SECONDS=15, BENCH_PROFILE=0, BENCH_FAILOVER=0)
npm run bench -- --quick       # every scenario at tiny scale in under a minute (or BENCH_QUICK=1); writes nothing in the tree
npm run bench:engine           # the Engine section; npm run bench:sync: the Sync section
\`\`\`

Needs \`redis-server\` on the PATH and PostgreSQL at \`DATABASE_URL\` (default \`postgres://postgres@127.0.0.1:5432/postgres\`).
`;
}

/** Replaces only this benchmark's section of docs/benchmarks.md (as bench/engine.ts and bench/sync.ts do theirs). */
export async function updateDoc(section: string) {
  const file = path.join('docs', 'benchmarks.md');
  const doc = await readFile(file, 'utf8');
  const re = /## Side by side\n[\s\S]*?(?=\n## |$)/;
  await writeFile(file, re.test(doc) ? doc.replace(re, () => section) : `${doc.trimEnd()}\n\n${section}`);
}
