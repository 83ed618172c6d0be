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
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../src/api/auth.ts';
import { firstSlot } from './lib/workload.ts';
import { C, CONNECTIONS, QUICK, SECRET, TARGETS, cleanUp } from './side-by-side/harness.ts';
import { writes } from './side-by-side/writes.ts';
import { reads } from './side-by-side/reads.ts';
import { seedDay } from './side-by-side/seed-day.ts';
import { f1, f2, fsyncProbe, groupsText, reading, section, tables, updateDoc } from './side-by-side/report.ts';

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
