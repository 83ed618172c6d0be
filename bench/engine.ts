/**
 * bench/engine: bookings per second through the service layer (validation, per-vehicle lock,
 * id generation, result parsing) against the same `book` script called bare (FCALL, as redis/scripts.ts calls it), in one
 * run, same Redis, same concurrency, alternating rounds. Reported as a ratio with p50/p99.
 *
 *   npm run bench            (BENCH_BOOKINGS=20000 BENCH_CONCURRENCY=50 to change the load)
 */
import { runStamp } from './lib/stamp.ts';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { CityCatalog } from '../src/domain/cities.ts';
import { keys } from '../src/redis/keys.ts';
import { runScript } from '../src/redis/scripts.ts';
import { newId } from '../src/services/ids.ts';
import { Inventory } from '../src/services/inventory.ts';
import { startRedis } from '../test/support/redis.ts';

const BOOKINGS = Number(process.env.BENCH_BOOKINGS ?? 40_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const VEHICLES = 2_000;
const ROUNDS = 4;
const HOUR = 3_600_000;

interface Stats {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50: number;
  p99: number;
}

function stats(latencies: number[], seconds: number): Stats {
  const s = [...latencies].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return { ops: s.length, seconds, opsPerSec: s.length / seconds, p50: q(0.5), p99: q(0.99) };
}

function merge(parts: { lat: number[]; seconds: number }[]): Stats {
  return stats(
    parts.flatMap((p) => p.lat),
    parts.reduce((a, p) => a + p.seconds, 0),
  );
}

/** Runs `n` operations with `CONCURRENCY` in flight; returns every latency (ms). */
async function load(n: number, op: (i: number) => Promise<unknown>): Promise<{ lat: number[]; seconds: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await op(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return { lat, seconds: (performance.now() - t0) / 1000 };
}

async function setUp(url: string, cityId: string) {
  const cities = new CityCatalog([
    {
      id: cityId,
      name: 'Bench',
      timeZone: 'UTC',
      turnaroundMs: 30 * 60_000,
      center: { lat: 0, lng: 0 },
      currency: 'INR',
    },
  ]);
  const redis = new Redis(url);
  const inventory = new Inventory(redis, { cities });
  const vehicles: string[] = [];
  await load(VEHICLES, async () => {
    vehicles.push(
      (
        await inventory.createVehicle(cityId, {
          hostId: 'h1',
          category: 'sedan',
          seats: 5,
          transmission: 'automatic',
          fuel: 'petrol',
          make: 'Bench',
          model: 'Car',
          location: { lat: 12.9, lng: 77.6 },
          pricePerHour: 10,
        })
      ).vehicleId,
    );
  });
  return { redis, inventory, vehicles };
}

async function main() {
  const results: Record<string, unknown> = {};
  const started = Date.now();
  const base = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
  // Slot i on vehicle i % VEHICLES: every booking is free, so both sides do the same work.
  const windowOf = (i: number) => base + Math.floor(i / VEHICLES) * 3 * HOUR;

  for (const fsync of ['always', 'everysec'] as const) {
    const server = await startRedis({ external: 'never', appendfsync: fsync });
    try {
      const cityId = 'bench';
      const { redis, inventory, vehicles } = await setUp(server.url, cityId);
      const bare: { lat: number[]; seconds: number }[] = [];
      const service: { lat: number[]; seconds: number }[] = [];
      const perRound = Math.floor(BOOKINGS / ROUNDS);
      let offset = 0;
      const bareBook = (i: number) => {
        const vehicleId = vehicles[i % VEHICLES]!;
        const from = windowOf(i);
        return runScript(
          redis,
          'book',
          [...keys.vehicleKeys(cityId, vehicleId), ...keys.cityScriptKeys(cityId), keys.noIdempotency(cityId)],
          [
            randomUUID(),
            '',
            cityId,
            vehicleId,
            30 * 60_000,
            newId('booking', cityId),
            'c1',
            from,
            from + HOUR,
            '',
            '0',
          ],
        );
      };
      const serviceBook = (i: number) => {
        const from = windowOf(i);
        return inventory.book({ vehicleId: vehicles[i % VEHICLES]!, customerId: 'c1', from, to: from + HOUR });
      };
      // Warm-up (discarded): script cache, JIT, connection.
      await load(2_000, (i) => bareBook(offset + i));
      offset += 2_000;
      await load(2_000, (i) => serviceBook(offset + i));
      offset += 2_000;
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate which side goes first: the machine is noisy and warms up.
        const order =
          r % 2 === 0
            ? ([
                ['bare', bareBook],
                ['service', serviceBook],
              ] as const)
            : ([
                ['service', serviceBook],
                ['bare', bareBook],
              ] as const);
        for (const [name, fn] of order) {
          const o = offset;
          const res = await load(perRound, (i) => fn(o + i));
          offset += perRound;
          (name === 'bare' ? bare : service).push(res);
        }
      }
      const b = merge(bare);
      const s = merge(service);
      results[`appendfsync_${fsync}`] = { bare: b, service: s, ratio: s.opsPerSec / b.opsPerSec };
      redis.disconnect();
    } finally {
      await server.stop();
    }
    if (process.env.BENCH_QUICK) break;
  }

  const fmt = (x: number) => x.toFixed(2);
  const rows: string[] = [];
  for (const [mode, r] of Object.entries(results) as [string, { bare: Stats; service: Stats; ratio: number }][]) {
    for (const [name, s] of [
      ['bare script (FCALL)', r.bare],
      ['service layer', r.service],
    ] as const) {
      rows.push(
        `| ${mode.replace('appendfsync_', '')} | ${name} | ${s.ops} | ${Math.round(s.opsPerSec)} | ${fmt(s.p50)} | ${fmt(s.p99)} |`,
      );
    }
    rows.push(`| ${mode.replace('appendfsync_', '')} | **service / bare** | | **${fmt(r.ratio)}** | | |`);
  }
  const table = [
    '| appendfsync | path | bookings | bookings/s | p50 ms | p99 ms |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  console.log(table);

  const meta = {
    ...runStamp(),
    node: process.version,
    cpus: os.cpus().length,
    bookings: BOOKINGS,
    concurrency: CONCURRENCY,
    vehicles: VEHICLES,
    seconds: (Date.now() - started) / 1000,
  };
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(path.join('bench', 'results', 'engine-latest.json'), JSON.stringify({ ...meta, results }, null, 2));
  const reading = (Object.entries(results) as [string, { bare: Stats; service: Stats; ratio: number }][])
    .map(
      ([mode, r]) =>
        `with ${mode.replace('appendfsync_', '')}, the service layer reached ${fmt(r.ratio)} of the bare script's rate (${Math.round(r.service.opsPerSec)} against ${Math.round(r.bare.opsPerSec)} bookings/s)`,
    )
    .join('; ');
  if (!process.env.BENCH_QUICK) await updateDoc(table, meta, reading);
}

async function updateDoc(table: string, meta: Record<string, unknown>, reading: string) {
  const file = path.join('docs', 'benchmarks.md');
  let doc = await readFile(file, 'utf8').catch(
    () => `# Benchmarks

Measured on this project's machines: 2 cores, 24 GiB, loopback only. Machines are noisy, so each
benchmark reports a ratio against a baseline measured in the same run, plus percentiles.
Run them with \`npm run bench\`; raw results land in \`bench/results/\`.
`,
  );
  const section = `## Engine

Bookings through the service layer (\`Inventory.book\`: validation, per-vehicle lock, id
generation, result parsing) against the same \`book\` Lua script called bare with FCALL, on the
same private redis-server, ${meta.concurrency} in flight, ${meta.vehicles} vehicles, every booking free,
alternating rounds. Redis runs with AOF; \`always\` is the default (an acknowledged booking
survives \`kill -9\`), \`everysec\` is shown for comparison. Latencies are client-side.

Last run: commit \`${meta.commit}\`, ${meta.date}, node ${meta.node}, ${meta.cpus} cores, ${meta.bookings} bookings per path, ${Math.round(Number(meta.seconds))} s.

${table}

Reading it: ${reading}. The script reads only the calendar entries near each booking's window (the calendar
index, docs/engine.md), so its cost does not grow with the entries a vehicle holds: the
"Calendar size" section below measures that.
`;
  doc = /## Engine\n[\s\S]*?(?=\n## |$)/.test(doc)
    ? doc.replace(/## Engine\n[\s\S]*?(?=\n## |$)/, section)
    : `${doc.trimEnd()}\n\n${section}`;
  await writeFile(file, doc);
}

await main();
