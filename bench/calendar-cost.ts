/**
 * bench/calendar-cost: what a booking costs Redis as a vehicle's calendar grows, for this tree
 * and for a baseline commit (by default the last one that read whole calendars), in one run.
 * For each calendar size, 200 vehicles get that many bookings (an hour every four, from tomorrow
 * on), then 2,000 more bookings land in gaps spread through those calendars; Redis's own
 * accounting (`INFO commandstats`: microseconds spent inside FCALL) gives the script's cost
 * per booking, free of the network and of the client. The baseline is measured by this same
 * file in a temporary git worktree of that commit. Writes the "Calendar size" section of
 * docs/benchmarks.md and bench/results/calendar-latest.json.
 *
 *   npm run bench:calendar          (BASELINE=<commit>, BENCH_SIZES=0,10,100,500, BENCH_MEASURED=2000)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CityCatalog } from '../src/domain/cities.ts';
import { runStamp } from './lib/stamp.ts';
import { measureAgainst, writeSection } from './lib/baseline.ts';
import { Inventory } from '../src/services/inventory.ts';
import { startRedis } from '../test/support/redis.ts';
import { SEDAN, testCity } from '../test/support/engine.ts';
import { Redis } from 'ioredis';

const HOUR = 3_600_000;
const SIZES = (process.env.BENCH_SIZES ?? '0,10,100,500').split(',').map(Number);
const VEHICLES = 200;
const MEASURED = Number(process.env.BENCH_MEASURED ?? 2_000);
const CONCURRENCY = 20;

async function evalUsec(redis: Redis): Promise<{ calls: number; usec: number }> {
  const info = await redis.info('commandstats');
  const m = /cmdstat_fcall:calls=(\d+),usec=(\d+)/.exec(info);
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}

async function pool<T>(items: readonly T[], n: number, f: (x: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++] as T);
    }),
  );
}

async function measure(): Promise<Record<string, number>> {
  const server = await startRedis();
  const redis = new Redis(server.url);
  const out: Record<string, number> = {};
  try {
    for (const size of SIZES) {
      await redis.flushall();
      const city = testCity();
      const inv = new Inventory(redis, { cities: new CityCatalog([city]) });
      const ids: string[] = [];
      for (let i = 0; i < VEHICLES; i++) ids.push((await inv.createVehicle(city.id, SEDAN)).vehicleId);
      const day = Date.now() + 24 * HOUR;
      const base = day - (day % HOUR);
      const fill = ids.flatMap((v) => Array.from({ length: size }, (_, k) => ({ v, k })));
      await pool(fill, CONCURRENCY, ({ v, k }) =>
        inv.book({ vehicleId: v, customerId: 'filler', from: base + k * 4 * HOUR, to: base + k * 4 * HOUR + HOUR }),
      );
      // Gaps spread through the calendar; vehicle i's j-th measured booking takes gap (i*7 + j*13) mod size.
      const measured = Array.from({ length: MEASURED }, (_, n) => {
        const v = n % VEHICLES;
        const j = Math.floor(n / VEHICLES);
        const k = size ? (v * 7 + j * 13) % size : j;
        return { v: ids[v] as string, from: base + k * 4 * HOUR + 2 * HOUR };
      });
      // One gap per vehicle at most once: skip repeats (a small calendar has fewer gaps than bookings).
      const seen = new Set<string>();
      const unique = measured.filter((x) => !seen.has(`${x.v}:${x.from}`) && seen.add(`${x.v}:${x.from}`));
      await redis.config('RESETSTAT');
      const before = await evalUsec(redis);
      await pool(unique, CONCURRENCY, (x) =>
        inv.book({ vehicleId: x.v, customerId: 'measured', from: x.from, to: x.from + HOUR }),
      );
      const after = await evalUsec(redis);
      out[String(size)] = Math.round(((after.usec - before.usec) / Math.max(1, after.calls - before.calls)) * 10) / 10;
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
  return out;
}

const BASELINE = process.env.BASELINE ?? '4e54be8';

async function main() {
  console.error(`calendar cost: this tree, then ${BASELINE}; sizes ${SIZES.join(', ')}`);
  const { now, base } = await measureAgainst<Record<string, number>>(
    BASELINE,
    'bench/calendar-cost.ts',
    'CALENDAR_COST_CHILD',
  );
  const stamp = runStamp();
  const result = { ...stamp, baseline: BASELINE, vehicles: VEHICLES, measured: MEASURED, now, base };
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(path.join('bench', 'results', 'calendar-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rows = SIZES.map((n) => {
    const a = now[String(n)] ?? 0;
    const b = base[String(n)] ?? 0;
    return `| ${n} | ${a} | ${b} | ${b ? (a / b).toFixed(2) : 'n/a'} |`;
  });
  const first = now[String(SIZES[0])] ?? 0;
  const last = now[String(SIZES.at(-1))] ?? 0;
  const bFirst = base[String(SIZES[0])] ?? 0;
  const bLast = base[String(SIZES.at(-1))] ?? 0;
  const section = `## Calendar size (\`npm run bench:calendar\`)

What one booking costs Redis (µs inside FCALL, from \`INFO commandstats\`) when each of ${VEHICLES}
vehicles already has that many bookings and ${MEASURED} more land in gaps spread through the
calendars; this tree against \`${BASELINE}\`, the last commit whose scripts read a vehicle's whole
calendar, measured by the same file in one run.

Last run: commit \`${stamp.commit}\`, ${stamp.date}, node ${process.version}, ${os.cpus().length} cores.

| entries already in the calendar | this tree, µs per booking | ${BASELINE}, µs per booking | ratio |
|---|---|---|---|
${rows.join('\n')}

From ${SIZES[0]} to ${SIZES.at(-1)} entries a booking's cost went from ${first} to ${last} µs here (×${first ? (last / first).toFixed(2) : 'n/a'}), and from ${bFirst} to ${bLast} µs at \`${BASELINE}\` (×${bFirst ? (bLast / bFirst).toFixed(2) : 'n/a'}).
`;
  await writeSection('## Calendar size', section);
  console.log(section);
}

if (process.env.CALENDAR_COST_CHILD) console.log(JSON.stringify(await measure()));
else await main();
