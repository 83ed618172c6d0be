/**
 * bench/replication: what synchronous replication costs a booking. One Redis primary with two
 * replicas (AOF always, as `fleet ha up` starts them); the service layer books with
 * REDIS_SYNC_REPLICAS=0 (acknowledged once the primary's AOF has it) and =1 (and once a replica
 * holds it: WAIT, group-committed), in alternating rounds of the same run, same connection count,
 * same concurrency. Reported as a ratio with p50/p99, stamped with the commit and the date, into
 * bench/results/replication-latest.json and the generated section of docs/reliability.md.
 *
 *   npm run bench:replication     (BENCH_BOOKINGS=40000 BENCH_CONCURRENCY=50,200)
 */
import { commitStamp } from './lib/stamp.ts';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { CityCatalog } from '../src/domain/cities.ts';
import { haDown, haUp } from '../src/ha/local.ts';
import { createRedis } from '../src/redis/connection.ts';
import { SyncReplication } from '../src/redis/replication.ts';
import { setConnectionPolicy } from '../src/redis/scripts.ts';
import { Inventory } from '../src/services/inventory.ts';
import { metrics } from '../src/metrics.ts';

const BOOKINGS = Number(process.env.BENCH_BOOKINGS ?? 40_000);
/** In flight at once: the usual 50 (latency shows as throughput in a closed loop), and saturation. */
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '50,200').split(',').map(Number);
let CONCURRENCY = CONCURRENCIES[0]!;
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

function stats(parts: { lat: number[]; seconds: number }[]): Stats {
  const s = parts.flatMap((p) => p.lat).sort((a, b) => a - b);
  const seconds = parts.reduce((a, p) => a + p.seconds, 0);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return { ops: s.length, seconds, opsPerSec: s.length / seconds, p50: q(0.5), p99: q(0.99) };
}

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

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-repl-'));
  const layout = await haUp({ dir, postgres: false });
  const sentinels = layout.redis.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  const cityId = 'bench';
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
  // One connection per side, as one API process has: the same work, only the WAIT differs.
  const plain = createRedis({ sentinels }) as Redis;
  const waited = createRedis({ sentinels }) as Redis;
  setConnectionPolicy(plain, { failoverWaitMs: 10_000 });
  const replication = new SyncReplication(waited, { replicas: 1, timeoutMs: 1_000 });
  setConnectionPolicy(waited, { failoverWaitMs: 10_000, replication });
  const sides = { replicas0: new Inventory(plain, { cities }), replicas1: new Inventory(waited, { cities }) };
  try {
    const vehicles: string[] = [];
    await load(VEHICLES, async () => {
      vehicles.push(
        (
          await sides.replicas0.createVehicle(cityId, {
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
    const base = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
    const windowOf = (i: number) => base + Math.floor(i / VEHICLES) * 3 * HOUR;
    let offset = 0;
    const book = (inv: Inventory) => (i: number) => {
      const from = windowOf(offset + i);
      return inv.book({ vehicleId: vehicles[(offset + i) % VEHICLES]!, customerId: 'c1', from, to: from + HOUR });
    };
    for (const inv of Object.values(sides)) {
      await load(2_000, book(inv));
      offset += 2_000;
    }
    const levels = [];
    for (const concurrency of CONCURRENCIES) {
      CONCURRENCY = concurrency;
      const parts: Record<keyof typeof sides, { lat: number[]; seconds: number }[]> = { replicas0: [], replicas1: [] };
      const perRound = Math.floor(BOOKINGS / ROUNDS);
      const roundsBefore = (await metrics.replicationRounds.get()).values[0]?.value ?? 0;
      // Where the time goes: CPU of this process (the service layer), the primary and the replicas, per side.
      const pids = {
        service: process.pid,
        primary: layout.redis.nodes[0]!.pid!,
        replicas: layout.redis.nodes.slice(1).map((n) => n.pid!),
      };
      const cpu: Record<keyof typeof sides, { service: number; primary: number; replicas: number }> = {
        replicas0: { service: 0, primary: 0, replicas: 0 },
        replicas1: { service: 0, primary: 0, replicas: 0 },
      };
      const sample = () => ({
        service: cpuSeconds(pids.service),
        primary: cpuSeconds(pids.primary),
        replicas: pids.replicas.reduce((a, p) => a + cpuSeconds(p), 0),
      });
      for (let r = 0; r < ROUNDS; r++) {
        const order = (r % 2 === 0 ? ['replicas0', 'replicas1'] : ['replicas1', 'replicas0']) as (keyof typeof sides)[];
        for (const name of order) {
          const before = sample();
          parts[name].push(await load(perRound, book(sides[name])));
          const after = sample();
          for (const k of ['service', 'primary', 'replicas'] as const) cpu[name][k] += after[k] - before[k];
          offset += perRound;
        }
      }
      const rounds = ((await metrics.replicationRounds.get()).values[0]?.value ?? 0) - roundsBefore;
      const a = stats(parts.replicas0);
      const b = stats(parts.replicas1);
      const perBooking = (c: { service: number; primary: number; replicas: number }, n: number) => ({
        serviceUs: Math.round((c.service / n) * 1e6),
        primaryUs: Math.round((c.primary / n) * 1e6),
        replicasUs: Math.round((c.replicas / n) * 1e6),
      });
      levels.push({
        concurrency,
        noWait: a,
        waitOneReplica: b,
        throughputRatio: b.opsPerSec / a.opsPerSec,
        writesPerWait: b.ops / Math.max(1, rounds),
        cpuPerBooking: { noWait: perBooking(cpu.replicas0, a.ops), waitOneReplica: perBooking(cpu.replicas1, b.ops) },
      });
    }
    const result = {
      commit: commitStamp(),
      date: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`.trim(),
      bookings: BOOKINGS,
      topology: 'primary + 2 replicas + 3 Sentinels, AOF always',
      levels,
    };
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/replication-latest.json', `${JSON.stringify(result, null, 2)}\n`);
    await updateDoc('docs/reliability.md', result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    plain.disconnect();
    waited.disconnect();
    replication.close();
    await haDown(dir);
  }
}

interface Cpu {
  serviceUs: number;
  primaryUs: number;
  replicasUs: number;
}
interface Level {
  concurrency: number;
  noWait: Stats;
  waitOneReplica: Stats;
  throughputRatio: number;
  writesPerWait: number;
  cpuPerBooking: { noWait: Cpu; waitOneReplica: Cpu };
}

async function updateDoc(
  file: string,
  r: { commit: string; date: string; machine: string; bookings: number; levels: Level[] },
) {
  const start = '<!-- replication:start -->';
  const end = '<!-- replication:end -->';
  const text = await readFile(file, 'utf8').catch(() => '');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return;
  const f = (n: number) => n.toFixed(2);
  const lines = [
    start,
    `Latest run: commit \`${r.commit}\`, ${r.date}, ${r.machine}; ${r.bookings} bookings per side and level, alternating rounds.`,
    '',
    '| in flight | REDIS_SYNC_REPLICAS | bookings/s | p50 ms | p99 ms | writes per WAIT |',
    '|---|---|---|---|---|---|',
    ...r.levels.flatMap((l) => [
      `| ${l.concurrency} | 0 (AOF always only) | ${Math.round(l.noWait.opsPerSec)} | ${f(l.noWait.p50)} | ${f(l.noWait.p99)} | - |`,
      `| ${l.concurrency} | 1 (WAIT, group commit) | ${Math.round(l.waitOneReplica.opsPerSec)} | ${f(l.waitOneReplica.p50)} | ${f(l.waitOneReplica.p99)} | ${l.writesPerWait.toFixed(1)} |`,
    ]),
    '',
    ...r.levels.map(
      (l) =>
        `With ${l.concurrency} in flight the throughput ratio is ${f(l.throughputRatio)}: ${
          l.throughputRatio < 1
            ? `WAIT costs ${((1 - l.throughputRatio) * 100).toFixed(1)}% of booking throughput (target: at most 15%)`
            : 'no throughput cost measurable in this run'
        }; p50 ${l.waitOneReplica.p50 >= l.noWait.p50 ? '+' : ''}${f(l.waitOneReplica.p50 - l.noWait.p50)} ms. ` +
        `CPU per booking without / with WAIT: service ${l.cpuPerBooking.noWait.serviceUs} / ${l.cpuPerBooking.waitOneReplica.serviceUs} µs, ` +
        `primary ${l.cpuPerBooking.noWait.primaryUs} / ${l.cpuPerBooking.waitOneReplica.primaryUs} µs, both replicas ${l.cpuPerBooking.noWait.replicasUs} / ${l.cpuPerBooking.waitOneReplica.replicasUs} µs ` +
        `(${os.cpus().length} cores for all of them and the load).`,
    ),
    end,
  ];
  await writeFile(file, text.slice(0, i) + lines.join('\n') + text.slice(j + end.length));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
