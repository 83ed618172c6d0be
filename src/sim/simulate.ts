/**
 * `fleet simulate` / `npm run simulate`: a marketplace day in a minute. Starts the service
 * (`fleet serve`, its own Redis database and PostgreSQL database), drives the real HTTP API and
 * WebSocket with the marketplace model, shows live figures, then checks the invariants once the
 * sync has drained and writes a JSON and an HTML report.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { CityCatalog, REFERENCE_CITIES, type City } from '../domain/cities.ts';
import { bookingsPresent, deadLetterCount, overlappingTrips } from '../pg/audit.ts';
import { createPool } from '../pg/pool.ts';
import { recreateDatabase } from '../pg/settings.ts';
import { keys } from '../redis/keys.ts';
import { reconcileCity } from '../services/durable.ts';
import { SyncWorker, cityLag } from '../workers/sync.ts';
import { Marketplace, rng, type Api, type Offer } from './marketplace.ts';
import { renderHtml } from './report.ts';
import { httpApi } from './api.ts';
import { runStamp, writeSection } from './stamp.ts';
import { Recorder, round } from './stats.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SimOptions {
  cities: number;
  vehiclesPerCity: number;
  durationMs: number;
  /** Target marketplace operations per second. */
  rate: number;
  /** Most operations in flight at once. */
  concurrency: number;
  seed: number;
  out: string;
  redisUrl: string;
  databaseUrl: string;
  port: number;
  /** How long offers stay open in the simulated service (short, so lapses happen in a run). */
  offerTtlMs: number;
  progress: boolean;
  /** Rewrite the generated section of this file (docs/simulation.md) with this run's figures. */
  updateDoc?: string;
}

export const DEFAULT_SIM: SimOptions = {
  cities: 25,
  vehiclesPerCity: 2000,
  durationMs: 60_000,
  rate: 400,
  concurrency: 32,
  seed: 42,
  out: 'sim-report',
  redisUrl: 'redis://127.0.0.1:6379/15',
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/fleet_sim',
  port: 0,
  offerTtlMs: 20_000,
  progress: true,
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'fleet-simulator-secret-of-32-bytes-or-more';

export async function simulate(o: SimOptions): Promise<{ report: Record<string, unknown>; ok: boolean }> {
  const cities = REFERENCE_CITIES.slice(0, Math.max(1, Math.min(REFERENCE_CITIES.length, o.cities)));
  const log = (line: string) => {
    if (o.progress) process.stderr.write(`${line}\n`);
  };

  // Fresh stores: the simulator's own Redis database and PostgreSQL database, emptied first.
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 2 });
  await redis.flushdb();
  await recreateDatabase(o.databaseUrl);
  const port = o.port || 30_000 + Math.floor(Math.random() * 20_000);
  const base = `http://127.0.0.1:${port}`;

  log(`starting the service: ${cities.length} cities x ${o.vehiclesPerCity} vehicles ...`);
  const seedStarted = Date.now();
  const server = await startService(
    o,
    cities.map((c) => c.id),
    port,
  );
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  log(`service ready in ${seedSeconds.toFixed(1)} s (migrate + seed)`);

  const recorder = new Recorder();
  const api = httpApi(base, recorder, SECRET);
  const rand = rng(o.seed);
  const market = new Marketplace(api, recorder, cities, rand, 5_000);

  const { ws, liveEvents, decisions } = await watchLive(base, api, cities, market, rand);
  log(`driving ${o.rate} operations/s for ${o.durationMs / 1000} s ...`);
  const { started, shortfall } = await drive(o, market, recorder, redis, cities);
  const elapsed = (Date.now() - started) / 1000;
  await market.finishTrips(Date.now(), true);
  await Promise.all(decisions);
  if (o.progress) process.stderr.write('\n');

  log('stopping the service, draining the sync and checking the invariants ...');
  ws.close();
  const pool = createPool(o.databaseUrl, { max: 4 });
  // Drained by the service first (the conflict figures read PostgreSQL), then stopped; whatever its
  // sweeper and resolver wrote while stopping is drained here, so the stores are still when compared.
  await waitForSync(
    redis,
    cities.map((c) => c.id),
  );
  const conflictsFromApi = await api.call(
    await api.token('ops', 'sim-ops'),
    'GET',
    `/v1/analytics/conflicts?from=${new Date(started - 3_600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`,
    'GET /v1/analytics/conflicts',
  );
  await stopService(server);
  const catalog = new CityCatalog(cities);
  await new SyncWorker(redis, pool, catalog).drain();
  const invariants = await checkInvariants(
    redis,
    pool,
    cities.map((c) => c.id),
    market.acknowledged,
  );
  await pool.end();
  redis.disconnect();

  const { report, ok } = reportOf({
    o,
    recorder,
    market,
    liveEvents,
    invariants,
    seedSeconds,
    elapsed,
    shortfall,
    conflictsFromApi,
  });
  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(o.out, 'report.html'), renderHtml(report));
  if (o.updateDoc) writeSection(o.updateDoc, 'simulate', simulationSection(report, ok));
  return { report, ok };
}

/** The promises the marketplace depends on, checked after the sync drained. */
export async function checkInvariants(
  redis: Redis,
  pool: pg.Pool,
  cities: string[],
  acknowledged: Map<string, string>,
) {
  let overlapping = 0;
  let vehicles = 0;
  for (const city of cities) {
    const ids = await redis.smembers(keys.vehicles(city));
    vehicles += ids.length;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hvals(keys.calendar(city, id));
    for (const [, raw] of (await pipe.exec()) ?? []) {
      const trips = (raw as string[])
        .map((j) => JSON.parse(j) as { kind: string; status: string; from: number; to: number })
        .filter((e) => e.kind === 'booking' && (e.status === 'confirmed' || e.status === 'active'))
        .sort((a, b) => a.from - b.from);
      trips.forEach((t, i) => {
        const before = trips[i - 1];
        if (before && t.from < before.to) overlapping++;
      });
    }
  }
  // PostgreSQL's exclusion constraint already refuses two bookings on one window; what it does not
  // hold is the turnaround between trips (nor a completed trip's): checked here, so this can fail.
  overlapping += await overlappingTrips(pool);
  const deadLetters = await deadLetterCount(pool);
  const ackIds = [...acknowledged.keys()];
  let missingRedis = 0;
  for (const city of cities) {
    const mine = ackIds.filter((id) => id.startsWith(`bkg_${city}_`));
    if (!mine.length) continue;
    const present = await redis.hmget(keys.entries(city), ...mine);
    missingRedis += present.filter((v) => v === null).length;
  }
  const inPg = await bookingsPresent(pool, ackIds);
  let drift = 0;
  for (const city of cities) drift += (await reconcileCity(redis, pool, city)).drift.length;
  return {
    vehiclesChecked: vehicles,
    acknowledgedBookings: ackIds.length,
    overlappingConfirmedBookings: overlapping,
    acknowledgedMissingFromRedis: missingRedis,
    acknowledgedMissingFromPostgres: ackIds.length - inPg.size,
    driftAfterSync: drift,
    deadLetters,
  };
}

async function waitForSync(redis: Redis, cities: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lag = await Promise.all(cities.map((c) => cityLag(redis, c)));
    if (lag.every((l) => l.eventsBehind === 0)) return;
    await sleep(100);
  }
}

/** `fleet serve` with the simulator's stores, one API process (the load generator needs the other core). */
async function startService(o: SimOptions, cities: string[], port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'src/cli/main.ts'),
      'serve',
      '--demo',
      '--vehicles-per-city',
      String(o.vehiclesPerCity),
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        REDIS_URL: o.redisUrl,
        DATABASE_URL: o.databaseUrl,
        JWT_SECRET: SECRET,
        CITIES: cities.join(','),
        WEB_CONCURRENCY: '1',
        LOG_LEVEL: 'warn',
        OFFER_TTL_MS: String(o.offerTtlMs),
        POST_VALIDATION_INTERVAL_MS: '10000',
        RATE_LIMIT_CUSTOMER: '1000000',
        RATE_LIMIT_HOST: '1000000',
        RATE_LIMIT_OPS: '1000000',
        RATE_LIMIT_ADMIN: '1000000',
        MAX_LIVE_HOLDS_PER_CUSTOMER: '20',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const deadline = Date.now() + 600_000;
  while (!output.includes('Demo tokens')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the service did not start:\n${output.slice(-3000)}`);
    await sleep(100);
  }
  return child;
}

async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

function redact(url: string): string {
  const u = new URL(url);
  u.password = u.password ? '***' : '';
  return u.toString();
}

/** Operations watch every city live; displaced customers hear of their offers the same way, and decide. */
async function watchLive(base: string, api: Api, cities: readonly City[], market: Marketplace, rand: () => number) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/live?access_token=${await api.token('ops', 'sim-ops')}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const liveEvents = new Map<string, number>();
  const decisions: Promise<void>[] = [];
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString()) as {
      type: string;
      event?: { type: string; subject: string; data: Record<string, unknown> };
    };
    if (m.type !== 'event' || !m.event) return;
    liveEvents.set(m.event.type, (liveEvents.get(m.event.type) ?? 0) + 1);
    const e = m.event;
    if (e.type === 'booking.conflicted') market.funnel.conflicts++;
    if (e.type === 'booking.cancelled' && e.data.reason === 'NO_ALTERNATIVE') market.funnel.noAlternative++;
    if (e.type === 'booking.cancelled' && e.data.reason === 'offers_lapsed') market.funnel.lapsed++;
    if (e.type === 'conflict.offers_ready') {
      market.funnel.offered++;
      const customer = String(e.data.customerId);
      // A customer takes a moment to choose.
      decisions.push(
        sleep(200 + rand() * 2_000).then(() => market.decide(e.subject, customer, e.data.offers as Offer[])),
      );
    }
  });
  for (const c of cities) ws.send(JSON.stringify({ type: 'subscribe', topic: `city:${c.id}` }));

  return { ws, liveEvents, decisions };
}

/** Open loop at the target rate, bounded by the concurrency: a slow service shows as latency and shortfall. */
async function drive(o: SimOptions, market: Marketplace, recorder: Recorder, redis: Redis, cities: readonly City[]) {
  const started = Date.now();
  let inFlight = 0;
  let shortfall = 0;
  let due = 0;
  const running = new Set<Promise<void>>();
  let nextSample = started + 1_000;
  let lastTripSweep = started;
  while (Date.now() - started < o.durationMs) {
    const now = Date.now();
    due += (o.rate * 10) / 1000;
    while (due >= 1) {
      due--;
      if (inFlight >= o.concurrency) {
        shortfall++;
        continue;
      }
      inFlight++;
      const p: Promise<void> = market
        .step()
        .catch(() => undefined) // the recorder counted the failure
        .finally(() => {
          inFlight--;
          running.delete(p);
        });
      running.add(p);
    }
    if (now - lastTripSweep > 1_000) {
      lastTripSweep = now;
      void market.finishTrips(now);
    }
    if (now >= nextSample) {
      nextSample += 1_000;
      const lag = await Promise.all(cities.map((c) => cityLag(redis, c.id)));
      const s = recorder.sample(
        Math.round((now - started) / 1000),
        Math.round(Math.max(0, ...lag.map((l) => l.secondsBehind)) * 1000),
        lag.reduce((a, l) => a + l.eventsBehind, 0),
      );
      if (o.progress) {
        const done = Math.min(1, (now - started) / o.durationMs);
        process.stderr.write(
          `\r[${'#'.repeat(Math.round(done * 30)).padEnd(30)}] ${s.t}s ${s.ops} ops/s p99 ${s.p99Ms} ms  lag ${s.syncLagMs} ms  conflicts ${market.funnel.conflicts} accepted ${market.funnel.accepted}   `,
        );
      }
    }
    await sleep(10);
  }
  await Promise.all(running);
  return { started, shortfall };
}

interface RunFigures {
  o: SimOptions;
  recorder: Recorder;
  market: Marketplace;
  liveEvents: Map<string, number>;
  invariants: Awaited<ReturnType<typeof checkInvariants>>;
  seedSeconds: number;
  elapsed: number;
  shortfall: number;
  conflictsFromApi: { status: number; json: Record<string, unknown> };
}

/** The run's report, and whether every invariant held with no server error. */
function reportOf({
  o,
  recorder,
  market,
  liveEvents,
  invariants,
  seedSeconds,
  elapsed,
  shortfall,
  conflictsFromApi,
}: RunFigures) {
  const f = market.funnel;
  const stamp = runStamp();
  const report = {
    generatedAt: stamp.date,
    commit: stamp.commit,
    options: { ...o, redisUrl: redact(o.redisUrl), databaseUrl: redact(o.databaseUrl) },
    seedSeconds: round(seedSeconds),
    durationSeconds: round(elapsed),
    totals: {
      requests: recorder.total,
      operations: [...recorder.operations.values()].reduce((a, b) => a + b, 0),
      shortfall,
      serverErrors: recorder.serverErrors,
    },
    throughput: { requestsPerSecond: round(recorder.total / elapsed) },
    operations: Object.fromEntries([...recorder.operations].sort((a, b) => b[1] - a[1])),
    endpoints: recorder.endpoints(),
    outcomes: Object.fromEntries([...recorder.codes].sort((a, b) => b[1] - a[1])),
    liveEvents: Object.fromEntries([...liveEvents].sort((a, b) => b[1] - a[1])),
    conflicts: {
      ...f,
      resolutionRate: f.conflicts ? round(f.accepted / f.conflicts) : null,
      analytics: conflictsFromApi.status === 200 ? conflictsFromApi.json.totals : null,
    },
    invariants,
    series: recorder.series,
  };
  const ok =
    invariants.overlappingConfirmedBookings === 0 &&
    invariants.acknowledgedMissingFromRedis === 0 &&
    invariants.acknowledgedMissingFromPostgres === 0 &&
    invariants.driftAfterSync === 0 &&
    invariants.deadLetters === 0 &&
    recorder.serverErrors === 0;
  return { report, ok };
}

type SimReport = ReturnType<typeof reportOf>['report'];

/** The "latest run" section of docs/simulation.md, every figure from `report`. */
export function simulationSection(r: SimReport, ok: boolean): string {
  const o = r.options;
  const at = (endpoint: string) => r.endpoints.find((e) => e.endpoint === endpoint);
  const latency = (endpoint: string) => {
    const e = at(endpoint);
    return e ? `p50 ${e.p50Ms} ms, p95 ${e.p95Ms} ms, p99 ${e.p99Ms} ms (${e.count})` : 'not called';
  };
  const c = r.conflicts;
  const ttfo = (c.analytics as { timeToFirstOffer?: { p50Ms: number | null; p99Ms: number | null } } | null)
    ?.timeToFirstOffer;
  const inv = r.invariants;
  return [
    `Latest run: commit \`${r.commit}\`, ${r.generatedAt}: \`npm run simulate -- --cities ${o.cities} --vehicles-per-city ${o.vehiclesPerCity} --duration ${o.durationMs / 1000}s --rate ${o.rate} --seed ${o.seed}\` (2 cores shared by the service, Redis, PostgreSQL and the simulator).`,
    '',
    '| | |',
    '|---|---|',
    `| seeding (${o.cities} cities × ${o.vehiclesPerCity} vehicles) | ${r.seedSeconds} s |`,
    `| requests | ${r.totals.requests} in ${r.durationSeconds} s (${r.throughput.requestsPerSecond}/s), ${r.totals.serverErrors} server errors, ${r.totals.shortfall} operations not started (shortfall) |`,
    `| availability search | ${latency('GET /v1/cities/{city}/availability')} |`,
    `| \`GET /v1/vehicles/{id}\` | ${latency('GET /v1/vehicles/{id}')} |`,
    `| \`GET /v1/bookings/{id}\` | ${latency('GET /v1/bookings/{id}')} |`,
    `| \`POST /v1/bookings\` | ${latency('POST /v1/bookings')} |`,
    `| conflicts | ${c.conflicts}: ${c.offered} offered, ${c.accepted} accepted, ${c.declined} declined, ${c.lapsed} lapsed, ${c.noAlternative} without an alternative; accepted / conflicts ${c.resolutionRate === null ? '-' : `${Math.round(c.resolutionRate * 100)}%`} |`,
    `| time to first offer (PostgreSQL) | ${ttfo ? `p50 ${ttfo.p50Ms ?? '-'} ms, p99 ${ttfo.p99Ms ?? '-'} ms` : 'not read'} |`,
    `| invariants | overlapping confirmed bookings ${inv.overlappingConfirmedBookings}; acknowledged bookings (${inv.acknowledgedBookings}) missing from Redis ${inv.acknowledgedMissingFromRedis}, from PostgreSQL ${inv.acknowledgedMissingFromPostgres}; drift after sync ${inv.driftAfterSync}; dead letters ${inv.deadLetters} |`,
    '',
    ok
      ? 'Every invariant held, with no server error.'
      : 'AN INVARIANT WAS VIOLATED or a server error occurred (the run exited 1).',
  ].join('\n');
}
