/**
 * bench/side-by-side: this service against its floor and against the PostgreSQL-only service
 * most teams build first, in one run, with the same load generator (autocannon, 50 keep-alive
 * clients, loopback) and the same workload. Every server under test runs in its own child process
 * with its own private redis-server or fresh database, all cleaned up at the end.
 *
 *   writes  (a)  floor: bare fastify + ioredis, one booking-shaped EVALSHA (bench/floor-server.ts)
 *           (b)  this service: POST /v1/bookings through the real app (auth, rate limits, read model)
 *           (b+) the same with the sync worker projecting into PostgreSQL beside it; sync lag sampled
 *           (c)  PostgreSQL only: fastify + pg, one INSERT ... SELECT per booking under an exclusion
 *                constraint (bench/pg-only-server.ts)
 *           every booking from one of many customers' tokens, in turn
 *           and a breakdown of (b): JWT verification, the read model, the AOF fsync taken away in turn
 *   reads   (a') floor: HGETALL of a vehicle hash behind fastify
 *           (b') this service: GET /v1/cities/{city}/availability in a 2,000-vehicle city, plus
 *                its server-side time (in-process)
 *           (c') PostgreSQL only: the same searches on bench/pg-only-server.ts, loaded with the
 *                same city; a sample of answers compared with ours
 *   served   (b) and (b') again with this service as `npm start` runs it (fleet serve's real tree,
 *            every part on, started from outside), with flame graphs of its processes
 *   seed day  300,000 API operations, 50 reads per write, 25 cities, as fast as they go: this
 *            service as above, as `npm start` runs it, and the PostgreSQL-only service
 *   issue 27  WAIT's cost (bench/replication.ts) and the failover window (bench/failover.ts), run
 *            from here, so that every target is judged from one run
 *   memory    the read model's bytes per vehicle, and its heap over 60 simulated days (memory.ts)
 *   profiles  flame graphs of the API process under the bookings and the searches (docs/profiles/)
 *
 * Prints a table with ratios and targets, writes bench/results/latest.json and the "Side by side"
 * section of docs/benchmarks.md, every result stamped with the commit and the date.
 *
 *   npm run bench                  (~20 min, the seed days bounded to 20; BENCH_SECONDS=15 per scenario, BENCH_PROFILE=0 to skip profiles,
 *                                  BENCH_FAILOVER=0 to skip the 10 Redis primary kills)
 *   npm run bench -- --quick       (or BENCH_QUICK=1: every scenario at tiny scale, < 1 min, writes nothing in the tree)
 */
import { runStamp } from './lib/stamp.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../src/api/auth.ts';
import { firstSlot } from './lib/workload.ts';
import { C, CONNECTIONS, QUICK, SECRET, TARGETS, WRITE_CALLERS, cleanUp } from './side-by-side/harness.ts';
import { writes } from './side-by-side/writes.ts';
import {
  earn,
  earnReading,
  earnTable,
  type FailoverResult,
  type ReplicationResult,
  subBench,
} from './side-by-side/earn.ts';
import { reads } from './side-by-side/reads.ts';
import { seedDay } from './side-by-side/seed-day.ts';
import { memory } from './side-by-side/memory.ts';
import {
  f1,
  f2,
  fsyncProbe,
  groupsText,
  memoryTable,
  reading,
  section,
  tables,
  updateDoc,
} from './side-by-side/report.ts';

async function main() {
  const started = Date.now();
  const base = firstSlot();
  const secret = new TextEncoder().encode(SECRET);
  // Bookings come from many customers' tokens, as in a marketplace (each verified once, then remembered).
  const tokens = await Promise.all(
    Array.from({ length: WRITE_CALLERS }, (_, i) =>
      mintToken(secret, { sub: `bench-customer-${i}`, role: 'customer' }),
    ),
  );
  const token = tokens[0] ?? '';
  console.error(
    `side-by-side benchmark${QUICK ? ' (quick)' : ''}: ${CONNECTIONS} clients, ${C.seconds} s per scenario after ${C.warmup} s warm-up, ${os.cpus().length} cores shared by load generator and servers`,
  );

  const fsyncMs = await fsyncProbe();
  const w = await writes(base, tokens);
  const r = await reads(base, token);
  const s = await seedDay(base, 'service');
  const sServed = await seedDay(base, 'served');
  const sPg = await seedDay(base, 'pg-only');
  console.error(`memory: the read model over a ${C.memoryDays}-day simulated run`);
  const m = await memory();
  await cleanUp();
  // Two figures the issue-27 targets need, each from its own bench, in this same run.
  console.error('replication: what WAIT costs a booking at 50 in flight (bench/replication.ts)');
  // (A quick run writes nothing in the tree, and these two write their results and sections.)
  const replication = QUICK
    ? { ok: false, note: 'not run in a quick run' }
    : await subBench<ReplicationResult>(
        'bench/replication.ts',
        { BENCH_CONCURRENCY: '50' },
        'bench/results/replication-latest.json',
      );
  console.error('failover: 10 kill -9 of the Redis primary under bookings (bench/failover.ts)');
  const failover =
    QUICK || process.env.BENCH_FAILOVER === '0'
      ? { ok: false, note: QUICK ? 'not run in a quick run' : 'skipped (BENCH_FAILOVER=0)' }
      : await subBench<FailoverResult>('bench/failover.ts', {}, 'bench/results/failover-latest.json');
  const earned = earn(w, r, { service: s, served: sServed, pgOnly: sPg }, replication, failover);

  const ratios = {
    bookingVsFloor: w.service.perSec / w.floor.perSec,
    bookingVsPgOnly: w.service.perSec / w.pgOnly.perSec,
    bookingWithSyncVsFloor: w.serviceWithSync.perSec / w.floor.perSec,
    bookingWithSyncVsPgOnly: w.serviceWithSync.perSec / w.pgOnly.perSec,
    searchVsFloor: r.service.perSec / r.floor.perSec,
  };
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
      target: `search throughput >= ${TARGETS.searchVsFloor}x the bare read floor in a ${r.vehicles}-vehicle city (b'/a')`,
      value: f2(ratios.searchVsFloor),
      met: ratios.searchVsFloor >= TARGETS.searchVsFloor,
    },
    {
      target: `server CPU per search <= ${TARGETS.searchCpuUs} µs (b')`,
      value: `${r.service.cpuUsPerRequest.server} µs`,
      met: r.service.cpuUsPerRequest.server <= TARGETS.searchCpuUs,
    },
    {
      target: `search p99 <= ${TARGETS.searchLoadP99Ms} ms under the ${CONNECTIONS}-client load (b', client-side)`,
      value: `${f1(r.service.p99)} ms`,
      met: r.service.p99 <= TARGETS.searchLoadP99Ms,
    },
    {
      target: `seed day (${s.operations} ops through HTTP) <= ${TARGETS.seedDaySeconds} s`,
      value: `${f1(s.seconds)} s${s.finished ? '' : ` (stopped at ${s.completed} ops)`}`,
      met: s.finished && s.seconds <= TARGETS.seedDaySeconds,
    },
    {
      target: `read model memory flat over ${m.days} simulated days (heap drift within 5%, ${Math.round(m.end.bytesPerVehicle)} bytes per vehicle)`,
      value: `${f2(m.heapDrift * 100)}%`,
      met: Math.abs(m.heapDrift) <= 0.05,
    },
    {
      target: `sync lag p99 <= ${TARGETS.lagP99Ms} ms at the top booking rate, worker beside the service (b+sync)`,
      value: `${Math.round(w.serviceWithSync.lag.p99Ms)} ms`,
      met: w.serviceWithSync.lag.p99Ms <= TARGETS.lagP99Ms,
    },
  ];
  const t = tables(w, r, s, ratios, { served: sServed, pgOnly: sPg });
  const targetTable = [
    '| target | measured | |',
    '|---|---|---|',
    ...targets.map((x) => `| ${x.target} | ${x.value} | ${x.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  const text = reading(w, r, s, m, ratios, fsyncMs);
  const earnedTable = earnTable(earned);
  const earnedText = earnReading(earned);
  console.log(
    `\n${t.main}\n\n${t.ratioTable}\n\n${t.server}\n\n${t.lagLine}\n\n${t.breakdown}\n\nSeed day by kind: ${t.seedKinds}\n\nCores used during each measured run:\n${t.cpu}\n\nProfiles: bookings: ${groupsText(w.profile, 8)}; search: ${groupsText(r.profile, 8)}\n\n${targetTable}\n\n${earnedTable}\n\n${earnedText}\n`,
  );

  const seconds = (Date.now() - started) / 1000;
  const cpus = os.cpus();
  const result = {
    ...runStamp(),
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
    seedDayServed: sServed,
    seedDayPgOnly: sPg,
    memory: m,
    ratios: { ...ratios, ...earned.ratios },
    targets: [...targets, ...earned.targets.map(({ target, value, met }) => ({ target, value, met }))],
    replication: replication.result ? { ok: replication.ok } : replication,
    failover: failover.result ?? failover,
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
  await updateDoc(
    section({
      ...t,
      targetTable,
      earnedTable,
      earnedText,
      memoryTable: memoryTable(m),
      text,
      w,
      r,
      s,
      m,
      seconds,
      date: result.date,
      commit: result.commit,
    }),
  );
  console.error(`done in ${seconds.toFixed(0)} s: bench/results/latest.json, docs/benchmarks.md (Side by side)`);
  const missed = [...targets, ...earned.targets].filter((x) => !x.met);
  if (missed.length > 0) {
    console.error(`${missed.length} target(s) missed:\n${missed.map((x) => `  - ${x.target}: ${x.value}`).join('\n')}`);
    process.exitCode = 1;
  }
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
