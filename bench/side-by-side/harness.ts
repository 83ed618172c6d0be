/**
 * Shared by every scenario of the side-by-side benchmark: its scale (quick or full), the
 * private stores and child servers it starts (and cleans up), and the measured run.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { RequestSpec } from 'autocannon';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.ts';
import { startRedis, type RedisServer } from '../../test/support/redis.ts';
import { spawnChild, type Child } from '../lib/child.ts';
import { cpuBetween, cpuSnapshot, machineBusy, summarizeProfile, type ProfileSummary } from '../lib/cpu.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import { writeFlameGraph } from '../lib/flamegraph.ts';

export const QUICK = process.argv.includes('--quick') || (!!process.env.BENCH_QUICK && process.env.BENCH_QUICK !== '0');
export const CONNECTIONS = 50;
export const C = QUICK
  ? {
      writeVehicles: 200,
      readVehicles: 100,
      seedPerCity: 20,
      seedOps: 3_000,
      warmup: 0,
      seconds: 1,
      breakdownWarmup: 0,
      breakdownSeconds: 1,
      probeN: 200,
      compareN: 50,
      profileSeconds: process.env.BENCH_PROFILE === '1' ? 1 : 0,
      seedDeadline: 30,
      maxQuietWait: 0,
      memoryVehicles: 50,
      memoryDays: 3,
    }
  : {
      writeVehicles: 10_000,
      readVehicles: 2_000,
      seedPerCity: 200,
      seedOps: 300_000,
      warmup: 5,
      seconds: Number(process.env.BENCH_SECONDS ?? 15),
      breakdownWarmup: 2,
      breakdownSeconds: 8,
      probeN: 2_000,
      compareN: 300,
      profileSeconds: process.env.BENCH_PROFILE === '0' ? 0 : 6,
      seedDeadline: 240,
      maxQuietWait: 60,
      memoryVehicles: 500,
      memoryDays: 60,
    };
export const READS_PER_WRITE = 50;
export const LAG_SAMPLE_MS = 100;
export const SECRET = 'side-by-side-bench-secret-0123456789abcdef';
/** The whole run is bounded: the seed day (the only open-ended part) is cut short to stay within it. */
export const RUN_BUDGET_MS = QUICK ? 150_000 : 1_200_000;
export const runStarted = Date.now();
export const TARGETS = {
  vsFloor: 0.6,
  vsPg: 5,
  searchVsFloor: 0.5,
  searchCpuUs: 100,
  searchLoadP99Ms: 10,
  seedDaySeconds: 20,
  lagP99Ms: 500,
};
/** Bookings in the write scenarios come from this many customers' tokens, in turn. */
export const WRITE_CALLERS = QUICK ? 20 : 500;

// Everything started here is released at the end, or on Ctrl-C.
export const cleanups: (() => Promise<unknown>)[] = [];
export async function cleanUp() {
  while (cleanups.length)
    await cleanups.pop()!().catch((err: unknown) => console.error('cleanup:', (err as Error).message));
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanUp().finally(() => process.exit(130));
  });

export async function privateRedis(): Promise<{ server: RedisServer; redis: Redis; pid: number }> {
  const server = await startRedis({ external: 'never' });
  const redis = new Redis(server.url, { maxRetriesPerRequest: 3 });
  cleanups.push(async () => {
    redis.disconnect();
    await server.stop();
  });
  const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0);
  return { server, redis, pid };
}

export async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  return db;
}

export async function child(script: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Child> {
  const c = await spawnChild(script, env, { nodeArgs });
  cleanups.push(() => c.stop());
  return c;
}

/** Stops a child now (its cleanup entry then finds it gone). */
export const stop = (c: Child) => c.stop();

export async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** The one seeded generator (src/domain/random.ts): two runs send the same requests. */
export { rng } from '../../src/domain/random.ts';

export interface Measured extends LoadResult {
  /** Cores each process used during the measured run (see lib/cpu.ts). */
  cores: Record<string, number>;
  /** CPU microseconds per request of the server process and of its store (redis-server or PostgreSQL). */
  cpuUsPerRequest: { server: number; store: number };
  quietWaitSeconds: number;
}

export let quietBudget = C.maxQuietWait;
/** Another process busy on the machine (a test run, say) skews everything: wait a little for it. */
export async function awaitQuiet(): Promise<number> {
  const t0 = Date.now();
  while (quietBudget > 0 && (await machineBusy(1000)) > 0.3) quietBudget--;
  return Math.round((Date.now() - t0) / 100) / 10;
}

/** The service's cores: its one process, or (as `fleet serve` runs) every process of its tree (`server:*`). */
export function serverCores(cores: Record<string, number>): number {
  let sum = 0;
  for (const [k, v] of Object.entries(cores)) if (k === 'server' || k.startsWith('server:')) sum += v;
  return sum;
}

/** Warm-up (discarded), then the measured run, with the CPU each process used during it. */
export async function measure(
  url: string,
  request: RequestSpec,
  pids: Record<string, number | undefined>,
  o: { warmup?: number; seconds?: number; onStart?: () => unknown; store?: 'redis' | 'postgres' } = {},
): Promise<Measured> {
  const quietWaitSeconds = await awaitQuiet();
  const warmup = o.warmup ?? C.warmup;
  if (warmup > 0) await runLoad({ url, connections: CONNECTIONS, duration: warmup, request });
  await o.onStart?.();
  const before = cpuSnapshot({ loadgen: process.pid, ...pids });
  const r = await runLoad({ url, connections: CONNECTIONS, duration: o.seconds ?? C.seconds, request });
  const cores = cpuBetween(before, cpuSnapshot({ loadgen: process.pid, ...pids }));
  const us = (c: number | undefined) => (r.requests ? Math.round(((c ?? 0) * r.seconds * 1e6) / r.requests) : 0);
  return {
    ...r,
    cores,
    cpuUsPerRequest: { server: us(serverCores(cores)), store: us(cores[o.store ?? 'redis']) },
    quietWaitSeconds,
  };
}

/**
 * The load against a server started by `start` with `--cpu-prof` (2 s of warm-up, then
 * `profileSeconds` profiled), stopped, then `read` given the main threads' profiles (a file name
 * carries its process id; a worker thread writes one of its own, left out) before they are removed.
 */
export async function underProfile<T>(
  start: (nodeArgs: string[]) => Promise<{ url: string; stop(): Promise<void> }>,
  request: RequestSpec,
  read: (files: string[]) => Promise<T>,
): Promise<T | undefined> {
  if (!C.profileSeconds) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-prof-'));
  try {
    const server = await start(['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500']);
    await runLoad({ url: server.url, connections: CONNECTIONS, duration: 2, request });
    // The profile covers the whole process; the start-up part is small next to the load.
    await runLoad({ url: server.url, connections: CONNECTIONS, duration: C.profileSeconds, request });
    await server.stop();
    const files = (await readdir(dir)).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f));
    return await read(files.map((f) => path.join(dir, f)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A profile's summary, and its flame graph in the tree (a quick run writes nothing there). */
export async function summarized(file: string, flame?: { file: string; title: string }): Promise<ProfileSummary> {
  if (flame && !QUICK) await writeFlameGraph(file, flame.file, flame.title);
  return summarizeProfile(file);
}

export function profile(
  script: string,
  env: Record<string, string>,
  request: RequestSpec,
  flame?: { file: string; title: string },
): Promise<ProfileSummary | undefined> {
  return underProfile(
    async (nodeArgs) => {
      const c = await child(script, env, nodeArgs);
      return { url: c.url, stop: () => stop(c) };
    },
    request,
    async ([file]) => (file ? summarized(file, flame) : undefined),
  );
}
