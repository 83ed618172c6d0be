/**
 * `npm run dr:drill` (`fleet dr drill`): the loss of a whole region, rehearsed and measured on this
 * machine (docs/regions.md). Two regions split the 25 cities; each has its Redis primary, a replica
 * and three Sentinels, its PostgreSQL primary and standby, and a DR standby in the other region
 * that streams through a delay proxy (`--rtt`, 60 ms round trip); each runs `fleet serve`, and the
 * regions reach each other through delay proxies too. For each acknowledgement mode (DR_ACK=local,
 * then remote): bookings at full speed on region a (the price of the mode), marketplace traffic on
 * both regions, then every process of region a is killed with kill -9 at once, `fleet dr failover`
 * moves a's cities to b, and the standby deployment serves them. Measured: RTO, RPO (acknowledged
 * bookings of a missing afterwards, and when they were acknowledged), region b's p99 before and
 * during the loss, the invariants after the failover; then a point-in-time restore between two
 * bookings. Writes its section of docs/regions.md and exits 1 when a target is missed.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { mintToken } from '../api/auth.ts';
import { REFERENCE_CITIES } from '../domain/cities.ts';
import { startDelayProxy, type DelayProxy } from '../ha/delay-proxy.ts';
import {
  DR_STANDBY_NAME,
  setSynchronousDrStandby,
  startDrStandby,
  waitForDrStandby,
  writeRegionsFile,
} from '../ha/dr-standby.ts';
import { freePort, haDown, haUp, ownedByPostgres, pgStop, type HaLayout, type PgNodeLayout } from '../ha/local.ts';
import { bookingsPresent, syncAgeMs } from '../pg/audit.ts';
import { createPool } from '../pg/pool.ts';
import { standbyState, withServer } from '../pg/settings.ts';
import { createRedis } from '../redis/connection.ts';
import { checkInvariants } from './simulate.ts';
import { percentile, round } from './stats.ts';
import { runStamp, writeSection } from './stamp.ts';
import { pitrCheck, type PitrFigures } from './dr-pitr.ts';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'fleet-dr-drill-secret-of-32-bytes-or-more';
const HOUR = 3_600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type AckMode = 'local' | 'remote';

export interface DrillOptions {
  rttMs: number;
  vehiclesPerCity: number;
  /** Closed-loop bookings on region a, for the price of the mode. */
  priceMs: number;
  priceConcurrency: number;
  /** Open-loop traffic on both regions before the loss, and after it. */
  baselineMs: number;
  outageMs: number;
  /** Operations per second per region (half of a's are bookings, a fifth of b's). */
  rate: number;
  modes: readonly AckMode[];
  updateDoc?: string;
  progress: boolean;
}

export const DEFAULT_DRILL: DrillOptions = {
  rttMs: 60,
  vehiclesPerCity: 10,
  priceMs: 10_000,
  priceConcurrency: 16,
  baselineMs: 20_000,
  outageMs: 20_000,
  rate: 40,
  modes: ['local', 'remote'],
  progress: true,
};

/** Targets (docs/regions.md): reported whether met or not. */
export const DRILL_TARGETS = { rtoMs: 60_000, remoteLost: 0, bP99Ratio: 1.5 } as const;

interface Sample {
  region: 'a' | 'b';
  op: 'search' | 'book';
  /** Before the kill; from the kill until a's cities take bookings again; after that, a still down. */
  phase: 'baseline' | 'failover' | 'outage';
  ms: number;
  ok: boolean;
}

interface Ack {
  id: string;
  at: number;
  customer: string;
}

/** One region on this machine: its stores, its service, the proxies the other region reaches it by. */
interface RegionRig {
  name: 'a' | 'b';
  layout: HaLayout;
  cities: string[];
  servePort: number;
  serve?: ChildProcess;
  /** Its DR standby (in the other region), streaming through a proxy. */
  drStandby?: PgNodeLayout;
}

export interface ModeFigures {
  mode: AckMode;
  price: { bookings: number; perSecond: number; p50Ms: number; p99Ms: number };
  rtoMs: number | null;
  acknowledgedInA: number;
  lost: number;
  /** ms before the kill of the earliest and latest lost acknowledgement. */
  lostWindowMs: { earliest: number; latest: number } | null;
  syncLagAtKillMs: number | null;
  replicationLagAtKillMs: number | null;
  bP99: { baselineMs: number; failoverMs: number; outageMs: number };
  invariants: { overlappingConfirmedBookings: number; driftAfterSync: number };
  failover: { promotedMs: number; rebuiltMs: number; publishedMs: number } | null;
}

export async function drill(
  o: DrillOptions,
): Promise<{ ok: boolean; figures: ModeFigures[]; pitr: PitrFigures; missed: string[] }> {
  const log = (line: string) => {
    if (o.progress) process.stderr.write(`${line}\n`);
  };
  const figures: ModeFigures[] = [];
  for (const mode of o.modes) figures.push(await drillMode(o, mode, log));
  log('point-in-time restore ...');
  const pitr = await pitrCheck();
  const missed = targetsMissed(figures, pitr);
  if (o.updateDoc) writeSection(o.updateDoc, 'drill', drillSection(figures, pitr, missed, o));
  return { ok: missed.length === 0, figures, pitr, missed };
}

interface Rig {
  rigs: Record<'a' | 'b', RegionRig>;
  urls: { a: string; b: string; standbyA: string };
  regionsFile: string;
  standbyPort: number;
}

/** Both regions' stores, each region's DR standby in the other one, the proxies between, the regions file. */
async function buildRegions(root: string, mode: AckMode, o: DrillOptions, proxies: DelayProxy[], rigs: Rig['rigs']) {
  for (const r of [rigs.a, rigs.b]) {
    r.layout = await haUp({ dir: path.join(root, r.name), replicas: 1, sentinels: 3 });
    r.servePort = await freePort();
  }
  const via = async (port: number) => {
    const p = await startDelayProxy({ port }, o.rttMs);
    proxies.push(p);
    return `http://127.0.0.1:${p.port}`;
  };
  // Each region's DR standby lives in the other one, a round trip away from its primary.
  for (const [r, other] of [
    [rigs.a, rigs.b],
    [rigs.b, rigs.a],
  ] as const) {
    const toPrimary = await startDelayProxy({ port: r.layout.pg!.primary.port }, o.rttMs);
    proxies.push(toPrimary);
    const drRoot = path.join(other.layout.dir, 'pg-dr');
    await ownedByPostgres(drRoot);
    r.drStandby = await startDrStandby({
      viaPort: toPrimary.port,
      dataDir: path.join(drRoot, `dr-${r.name}`),
      port: await freePort(),
      log: path.join(drRoot, `dr-${r.name}.log`),
    });
    const primaryUrl = `postgres://postgres@127.0.0.1:${r.layout.pg!.primary.port}/postgres`;
    await setSynchronousDrStandby(primaryUrl, mode === 'remote');
    await waitForDrStandby(primaryUrl, mode === 'remote');
  }
  const standbyPort = await freePort();
  const urls = { a: await via(rigs.a.servePort), b: await via(rigs.b.servePort), standbyA: await via(standbyPort) };
  const regionsFile = path.join(root, 'regions.json');
  await writeRegionsFile(regionsFile, {
    a: {
      cities: rigs.a.cities,
      url: urls.a,
      standby: {
        region: 'b',
        url: urls.standbyA,
        database: `postgres://postgres@127.0.0.1:${rigs.a.drStandby!.port}/fleet`,
      },
    },
    b: { cities: rigs.b.cities, url: urls.b },
  });
  return { urls, regionsFile, standbyPort };
}

async function drillMode(o: DrillOptions, mode: AckMode, log: (l: string) => void): Promise<ModeFigures> {
  const root = await mkdtemp(path.join(tmpdir(), `fleet-drill-${mode}-`));
  await chmod(root, 0o755); // PostgreSQL, as `postgres`, reaches its directories inside
  const proxies: DelayProxy[] = [];
  const half = Math.ceil(REFERENCE_CITIES.length / 2);
  const rigs: Rig['rigs'] = {
    a: {
      name: 'a',
      layout: undefined as unknown as HaLayout,
      cities: REFERENCE_CITIES.slice(0, half).map((c) => c.id),
      servePort: 0,
    },
    b: {
      name: 'b',
      layout: undefined as unknown as HaLayout,
      cities: REFERENCE_CITIES.slice(half).map((c) => c.id),
      servePort: 0,
    },
  };
  let standby: ChildProcess | undefined;
  try {
    log(`[${mode}] two regions: Redis primary + replica + 3 Sentinels, PostgreSQL primary + standby each ...`);
    const { urls, regionsFile, standbyPort } = await buildRegions(root, mode, o, proxies, rigs);
    log(`[${mode}] starting fleet serve in each region (${o.vehiclesPerCity} vehicles per city) ...`);
    await Promise.all([rigs.a, rigs.b].map((r) => startRegionServe(r, regionsFile, mode, o.vehiclesPerCity)));
    const direct = { a: `http://127.0.0.1:${rigs.a.servePort}`, b: `http://127.0.0.1:${rigs.b.servePort}` };

    log(`[${mode}] the price: bookings at full speed on region a for ${o.priceMs / 1000} s ...`);
    const price = await bookingBurst(direct.a, rigs.a.cities, o.priceConcurrency, o.priceMs, `${mode}-price`);

    const traffic = new Traffic(direct, urls.b, rigs, o.rate, mode);
    traffic.start('baseline');
    log(`[${mode}] traffic on both regions for ${o.baselineMs / 1000} s ...`);
    await sleep(o.baselineMs);
    const lags = await lagsAtKill(rigs.a);
    log(`[${mode}] kill -9 of every process of region a ...`);
    const killedAt = Date.now();
    traffic.phase = 'failover';
    await killRegion(rigs.a);
    const failover = await runFailover(regionsFile, rigs.b);
    log(`[${mode}] failed over (${JSON.stringify(failover?.timings ?? {})}); the standby deployment starts ...`);
    standby = await startStandbyServe(regionsFile, rigs.b, rigs.a.drStandby!, standbyPort);
    const rtoAt = await firstBookingThrough(urls.b, rigs.a.cities, killedAt + 120_000);
    log(`[${mode}] a's cities take bookings again through b after ${rtoAt ? rtoAt - killedAt : '-'} ms`);
    traffic.phase = 'outage';
    await sleep(o.outageMs);
    await traffic.stop();
    const checks = await afterFailover(rigs, traffic.acks, killedAt);
    return {
      mode,
      price,
      rtoMs: rtoAt ? rtoAt - killedAt : null,
      acknowledgedInA: traffic.acks.a.filter((x) => x.at <= killedAt).length,
      lost: checks.lost.length,
      lostWindowMs: checks.lost.length
        ? {
            earliest: killedAt - Math.min(...checks.lost.map((x) => x.at)),
            latest: killedAt - Math.max(...checks.lost.map((x) => x.at)),
          }
        : null,
      syncLagAtKillMs: lags.syncMs,
      replicationLagAtKillMs: lags.replicationMs,
      bP99: traffic.p99Of('b'),
      invariants: checks.invariants,
      failover: failover?.timings ?? null,
    };
  } finally {
    for (const child of [standby, rigs.a.serve, rigs.b.serve]) killGroup(child);
    for (const p of proxies) await p.close();
    for (const r of [rigs.a, rigs.b]) {
      if (r.drStandby) await pgStop(r.drStandby, 'immediate');
      if (r.layout) await haDown(r.layout.dir, r.layout).catch(() => undefined);
    }
    await rm(root, { recursive: true, force: true });
  }
}

function serveEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JWT_SECRET: SECRET,
    WEB_CONCURRENCY: '1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_CUSTOMER: '1000000',
    RATE_LIMIT_OPS: '1000000',
    MAX_LIVE_HOLDS_PER_CUSTOMER: '50',
    REGION_FANOUT_TIMEOUT_MS: '1000',
    ...extra,
  };
}

async function spawnServe(env: NodeJS.ProcessEnv, args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  });
  const deadline = Date.now() + 300_000;
  while (!out.includes('Demo tokens')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`fleet serve did not start:\n${out.slice(-3000)}`);
    await sleep(100);
  }
  return child;
}

const sentinelsOf = (l: HaLayout) => l.redis.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
const pgUrlOf = (l: HaLayout) =>
  `postgres://postgres@127.0.0.1:${l.pg!.primary.port},127.0.0.1:${l.pg!.standby.port}/fleet?target_session_attrs=read-write`;

async function startRegionServe(r: RegionRig, regionsFile: string, mode: AckMode, perCity: number): Promise<void> {
  r.serve = await spawnServe(
    serveEnv({
      PORT: String(r.servePort),
      REGION: r.name,
      REGIONS_FILE: regionsFile,
      REDIS_SENTINELS: sentinelsOf(r.layout),
      DATABASE_URL: pgUrlOf(r.layout),
      DR_ACK: mode,
    }),
    ['--demo', '--vehicles-per-city', String(perCity)],
  );
}

/** Region a's standby deployment: a's name, b's Redis, a's promoted DR standby. */
function startStandbyServe(regionsFile: string, b: RegionRig, dr: PgNodeLayout, port: number): Promise<ChildProcess> {
  return spawnServe(
    serveEnv({
      PORT: String(port),
      REGION: 'a',
      REGIONS_FILE: regionsFile,
      REDIS_SENTINELS: sentinelsOf(b.layout),
      DATABASE_URL: `postgres://postgres@127.0.0.1:${dr.port}/fleet`,
    }),
    [],
  );
}

function killGroup(child: ChildProcess | undefined): void {
  try {
    if (child?.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Every process of the region at once: the service's process group, Redis and Sentinels, PostgreSQL. */
async function killRegion(r: RegionRig): Promise<void> {
  killGroup(r.serve);
  for (const n of [...r.layout.redis.nodes, ...r.layout.redis.sentinels]) {
    try {
      if (n.pid) process.kill(n.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await Promise.all([pgStop(r.layout.pg!.primary, 'immediate'), pgStop(r.layout.pg!.standby, 'immediate')]);
}

async function runFailover(
  regionsFile: string,
  b: RegionRig,
): Promise<{ timings: { promotedMs: number; rebuiltMs: number; publishedMs: number } } | undefined> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'dr', 'failover', '--region', 'a', '--to', 'b'],
    {
      cwd: ROOT,
      env: serveEnv({
        REGION: 'b',
        REGIONS_FILE: regionsFile,
        REDIS_SENTINELS: sentinelsOf(b.layout),
        DATABASE_URL: pgUrlOf(b.layout),
      }),
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout) as { timings: { promotedMs: number; rebuiltMs: number; publishedMs: number } };
}

/** The sync's lag on region a and its DR standby's replay lag, just before the kill. */
async function lagsAtKill(a: RegionRig): Promise<{ syncMs: number | null; replicationMs: number | null }> {
  const url = `postgres://postgres@127.0.0.1:${a.layout.pg?.primary.port}/fleet`;
  try {
    const [standby, syncMs] = await Promise.all([
      standbyState(url, DR_STANDBY_NAME),
      withServer(url, (c) => syncAgeMs(c)),
    ]);
    return { syncMs: round(syncMs), replicationMs: round(standby?.replayLagMs ?? 0) };
  } catch {
    return { syncMs: null, replicationMs: null }; // the report prints "unknown"
  }
}

/** Books through region b (following the 307 with the token) until one of a's cities takes a booking. */
async function firstBookingThrough(b: string, aCities: string[], deadline: number): Promise<number | undefined> {
  const headers = await customerHeaders('rto-probe');
  let k = 0;
  while (Date.now() < deadline) {
    const city = aCities[k++ % aCities.length]!;
    const vehicle = await freeVehicle(b, city, headers, 200 * HOUR + k * 2 * HOUR).catch(() => undefined);
    if (vehicle) {
      const r = await book(b, headers, vehicle.id, vehicle.from).catch(() => undefined);
      if (r?.status === 201) return Date.now();
    }
    await sleep(250);
  }
  return undefined;
}

const secretKey = new TextEncoder().encode(SECRET);
async function customerHeaders(sub: string): Promise<Record<string, string>> {
  return {
    authorization: `Bearer ${await mintToken(secretKey, { sub, role: 'customer' })}`,
    'content-type': 'application/json',
  };
}

/** fetch that follows a region's 307 with its credentials (fetch drops them across origins). */
async function call(url: string, init: RequestInit): Promise<Response> {
  let target = url;
  for (let hop = 0; hop < 3; hop++) {
    const res = await fetch(target, { ...init, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    const next = res.headers.get('location');
    if (res.status !== 307 || !next) return res;
    await res.arrayBuffer();
    target = new URL(next, target).toString();
  }
  return fetch(target, { ...init, signal: AbortSignal.timeout(15_000) });
}

async function freeVehicle(
  base: string,
  city: string,
  headers: Record<string, string>,
  aheadMs: number,
): Promise<{ id: string; from: number } | undefined> {
  const from = Math.ceil((Date.now() + aheadMs) / HOUR) * HOUR;
  const q = `from=${new Date(from).toISOString()}&to=${new Date(from + HOUR).toISOString()}&limit=5`;
  const r = await call(`${base}/v1/cities/${city}/availability?${q}`, { headers });
  if (r.status !== 200) {
    await r.arrayBuffer();
    return undefined;
  }
  const hits = ((await r.json()) as { vehicles: { vehicleId: string }[] }).vehicles;
  const hit = hits[Math.floor(Math.random() * hits.length)];
  return hit ? { id: hit.vehicleId, from } : undefined;
}

function book(base: string, headers: Record<string, string>, vehicleId: string, from: number): Promise<Response> {
  return call(`${base}/v1/bookings`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ vehicleId, from: new Date(from).toISOString(), to: new Date(from + HOUR).toISOString() }),
  });
}

/** `concurrency` customers booking as fast as they can on one region, for `ms`. */
async function bookingBurst(
  base: string,
  cities: string[],
  concurrency: number,
  ms: number,
  tag: string,
): Promise<ModeFigures['price']> {
  const latencies: number[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      const headers = await customerHeaders(`${tag}-${c}`);
      for (let k = 0; Date.now() < until; k++) {
        const city = cities[(c + k) % cities.length]!;
        // Far apart in time: every booking finds its window free.
        const vehicle = await freeVehicle(base, city, headers, (400 + c * 500 + k * 3) * HOUR).catch(() => undefined);
        if (!vehicle) continue;
        const started = performance.now();
        const r = await book(base, headers, vehicle.id, vehicle.from).catch(() => undefined);
        if (r?.status === 201) latencies.push(performance.now() - started);
        await r?.arrayBuffer();
      }
    }),
  );
  latencies.sort((x, y) => x - y);
  return {
    bookings: latencies.length,
    perSecond: round(latencies.length / (ms / 1000)),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

/** Open-loop marketplace traffic on both regions: searches and bookings of their own cities. */
class Traffic {
  phase: Sample['phase'] = 'baseline';
  readonly samples: Sample[] = [];
  readonly acks: Record<'a' | 'b', Ack[]> = { a: [], b: [] };
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly direct: Record<'a' | 'b', string>,
    private readonly bUrl: string,
    private readonly rigs: Record<'a' | 'b', RegionRig>,
    private readonly rate: number,
    private readonly tag: string,
  ) {}

  start(phase: Sample['phase']): void {
    this.phase = phase;
    this.running = true;
    // a's customers keep coming; once a is lost they come through b (307 to the standby deployment).
    this.loops = (['a', 'b'] as const).flatMap((region) => Array.from({ length: 4 }, (_, w) => this.loop(region, w)));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private base(region: 'a' | 'b'): string {
    return region === 'a' && this.phase !== 'baseline' ? this.bUrl : this.direct[region];
  }

  private async loop(region: 'a' | 'b', worker: number): Promise<void> {
    const customer = `${this.tag}-${region}-${worker}`;
    const headers = await customerHeaders(customer);
    const cities = this.rigs[region].cities;
    const everyMs = (4 * 1000) / this.rate;
    for (let k = 0; this.running; k++) {
      const next = Date.now() + everyMs;
      const city = cities[(worker + k) % cities.length]!;
      const phase = this.phase;
      const started = performance.now();
      let ok = false;
      // Region a books heavily (half its operations), so that its loss catches bookings in flight.
      const isBooking = region === 'a' ? k % 2 === 1 : k % 5 === 4;
      try {
        const vehicle = await freeVehicle(this.base(region), city, headers, (20 + worker * 300 + k) * HOUR);
        ok = vehicle !== undefined;
        if (isBooking && vehicle) {
          const bookStarted = performance.now();
          const r = await book(this.base(region), headers, vehicle.id, vehicle.from);
          const body = (await r.json()) as { id?: string };
          if (r.status === 201 && body.id) this.acks[region].push({ id: body.id, at: Date.now(), customer });
          this.samples.push({ region, op: 'book', phase, ms: performance.now() - bookStarted, ok: r.status < 500 });
        }
      } catch {
        ok = false;
      }
      this.samples.push({ region, op: 'search', phase, ms: performance.now() - started, ok });
      await sleep(Math.max(0, next - Date.now()));
    }
  }

  p99Of(region: 'a' | 'b'): ModeFigures['bP99'] {
    const of = (phase: Sample['phase']) =>
      this.samples
        .filter((s) => s.region === region && s.phase === phase && s.ok)
        .map((s) => s.ms)
        .sort((x, y) => x - y);
    return {
      baselineMs: round(percentile(of('baseline'), 99)),
      failoverMs: round(percentile(of('failover'), 99)),
      outageMs: round(percentile(of('outage'), 99)),
    };
  }
}

/** After the traffic: a's acknowledged bookings missing from its new home, and the invariants everywhere. */
async function afterFailover(rigs: Record<'a' | 'b', RegionRig>, acks: Record<'a' | 'b', Ack[]>, killedAt: number) {
  const redis = createRedis({ sentinels: sentinelsOf(rigs.b.layout), sentinelMaster: rigs.b.layout.redis.master });
  redis.on('error', () => {});
  const aPool = createPool(`postgres://postgres@127.0.0.1:${rigs.a.drStandby!.port}/fleet`, { max: 2 });
  const bPool = createPool(pgUrlOf(rigs.b.layout), { max: 2 });
  for (const p of [aPool, bPool]) p.on('error', () => {});
  try {
    // What was acknowledged before the kill and is not in a's database now is lost.
    const before = acks.a.filter((x) => x.at <= killedAt);
    const present = await bookingsPresent(
      aPool,
      before.map((x) => x.id),
    );
    const lost = before.filter((x) => !present.has(x.id));
    await sleep(3_000); // the syncs of b and of the standby deployment drain
    const ackMap = (list: Ack[]) => new Map(list.map((x) => [x.id, x.customer]));
    const [ia, ib] = await Promise.all([
      checkInvariants(redis as Redis, aPool, rigs.a.cities, ackMap(acks.a.filter((x) => x.at > killedAt))),
      checkInvariants(redis as Redis, bPool, rigs.b.cities, ackMap(acks.b)),
    ]);
    return {
      lost,
      invariants: {
        overlappingConfirmedBookings: ia.overlappingConfirmedBookings + ib.overlappingConfirmedBookings,
        driftAfterSync: ia.driftAfterSync + ib.driftAfterSync,
      },
    };
  } finally {
    redis.disconnect();
    await Promise.all([aPool.end(), bPool.end()]);
  }
}

function targetsMissed(figures: ModeFigures[], pitr: PitrFigures): string[] {
  const missed: string[] = [];
  for (const f of figures) {
    if (f.rtoMs === null || f.rtoMs > DRILL_TARGETS.rtoMs)
      missed.push(
        `[${f.mode}] RTO ${f.rtoMs === null ? 'not reached' : `${f.rtoMs} ms`} (target ${DRILL_TARGETS.rtoMs} ms)`,
      );
    if (f.mode === 'remote' && f.lost > DRILL_TARGETS.remoteLost)
      missed.push(`[remote] ${f.lost} acknowledged bookings lost (target 0)`);
    if (f.mode === 'local' && f.lostWindowMs && f.syncLagAtKillMs !== null) {
      const bound = (f.syncLagAtKillMs ?? 0) + (f.replicationLagAtKillMs ?? 0) + 1_000;
      if (f.lostWindowMs.earliest > bound)
        missed.push(
          `[local] lost acknowledgements reach ${f.lostWindowMs.earliest} ms before the kill, past the lag bound ${bound} ms`,
        );
    }
    if (f.bP99.outageMs > DRILL_TARGETS.bP99Ratio * f.bP99.baselineMs)
      missed.push(
        `[${f.mode}] region b's p99 ${f.bP99.outageMs} ms while a is down against ${f.bP99.baselineMs} ms before (target ${DRILL_TARGETS.bP99Ratio}x)`,
      );
    if (f.invariants.overlappingConfirmedBookings || f.invariants.driftAfterSync)
      missed.push(`[${f.mode}] invariants: ${JSON.stringify(f.invariants)}`);
  }
  if (!pitr.firstThere || pitr.secondThere) missed.push(`point-in-time restore: ${JSON.stringify(pitr)}`);
  return missed;
}

/** The drill's section of docs/regions.md, every figure from this run. */
export function drillSection(figures: ModeFigures[], pitr: PitrFigures, missed: string[], o: DrillOptions): string {
  const stamp = runStamp();
  const by = (m: AckMode) => figures.find((f) => f.mode === m);
  const local = by('local');
  const remote = by('remote');
  const row = (f: ModeFigures) =>
    `| ${f.mode} | ${f.rtoMs ?? '-'} ms | ${f.acknowledgedInA} | ${f.lost}${f.lostWindowMs ? ` (acknowledged ${f.lostWindowMs.latest}-${f.lostWindowMs.earliest} ms before the kill)` : ''} | ${f.syncLagAtKillMs ?? '-'} / ${f.replicationLagAtKillMs ?? '-'} ms | ${f.bP99.baselineMs} / ${f.bP99.failoverMs} / ${f.bP99.outageMs} ms | ${f.price.perSecond}/s, p50 ${f.price.p50Ms} ms, p99 ${f.price.p99Ms} ms | ${f.invariants.overlappingConfirmedBookings} / ${f.invariants.driftAfterSync} |`;
  const lines = [
    `Latest run: commit \`${stamp.commit}\`, ${stamp.date}: \`npm run dr:drill\`, round trip between regions ${o.rttMs} ms, ${o.vehiclesPerCity} vehicles per city, both regions and every store on this machine's 2 cores.`,
    '',
    '| DR_ACK | RTO | bookings acknowledged in a | lost | sync / DR replication lag at the kill | b p99 before / failing over / a down | bookings on a at full speed | overlaps / drift after |',
    '|---|---|---|---|---|---|---|---|',
    ...figures.map(row),
    '',
  ];
  if (local && remote)
    lines.push(
      `The price of DR_ACK=remote in this run: ${round(remote.price.perSecond / Math.max(local.price.perSecond, 0.01))}x the bookings per second of local (${remote.price.perSecond} against ${local.price.perSecond}), p50 ${remote.price.p50Ms} ms against ${local.price.p50Ms} ms, p99 ${remote.price.p99Ms} ms against ${local.price.p99Ms} ms (${o.priceConcurrency} customers booking at once on region a).`,
      '',
    );
  for (const f of figures)
    if (f.failover)
      lines.push(
        `[${f.mode}] \`fleet dr failover\`: DR standby promoted after ${f.failover.promotedMs} ms, ${REFERENCE_CITIES.length - Math.floor(REFERENCE_CITIES.length / 2)} cities rebuilt and verified after ${f.failover.rebuiltMs} ms, routing published after ${f.failover.publishedMs} ms; the rest of the RTO is the standby deployment starting.`,
      );
  lines.push(
    '',
    `Point-in-time restore: a base backup, two bookings ${pitr.gapMs} ms apart, restored to the moment between them in ${pitr.restoreMs} ms: the first booking ${pitr.firstThere ? 'is there' : 'IS MISSING'}, the second ${pitr.secondThere ? 'IS THERE' : 'is not'}.`,
    '',
    missed.length === 0
      ? `Every target was met: RTO within ${DRILL_TARGETS.rtoMs / 1000} s, no acknowledged booking lost with DR_ACK=remote, with local the loss within the lags at the kill, region b's p99 within ${DRILL_TARGETS.bP99Ratio}x of its own baseline, no overlap, no drift.`
      : `Targets missed (the drill exited 1): ${missed.join('; ')}.`,
  );
  return lines.join('\n');
}
