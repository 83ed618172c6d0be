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
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
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
import { round } from './stats.ts';
import { writeSection } from './stamp.ts';
import { pitrCheck, type PitrFigures } from './dr-pitr.ts';
import type { AckMode, DrillOptions, ModeFigures } from './dr-drill-types.ts';
import { drillSection, targetsMissed } from './dr-report.ts';
import { SECRET, Traffic, bookingBurst, firstBookingThrough, type Ack } from './dr-traffic.ts';

export { DEFAULT_DRILL, DRILL_TARGETS, type AckMode, type DrillOptions, type ModeFigures } from './dr-drill-types.ts';
export { drillSection } from './dr-report.ts';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One region on this machine: its stores, its service, the proxies the other region reaches it by. */
/** The PostgreSQL of a region's topology (a drill's topologies always run one). */
function pgOf(l: HaLayout): NonNullable<HaLayout['pg']> {
  if (!l.pg) throw new Error(`the topology in ${l.dir} has no PostgreSQL`);
  return l.pg;
}

function drStandbyOf(r: RegionRig): PgNodeLayout {
  if (!r.drStandby) throw new Error(`region ${r.name} has no DR standby yet`);
  return r.drStandby;
}

interface RegionRig {
  name: 'a' | 'b';
  layout: HaLayout;
  cities: string[];
  servePort: number;
  serve?: ChildProcess;
  /** Its DR standby (in the other region), streaming through a proxy. */
  drStandby?: PgNodeLayout;
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
    const toPrimary = await startDelayProxy({ port: pgOf(r.layout).primary.port }, o.rttMs);
    proxies.push(toPrimary);
    const drRoot = path.join(other.layout.dir, 'pg-dr');
    await ownedByPostgres(drRoot);
    r.drStandby = await startDrStandby({
      viaPort: toPrimary.port,
      dataDir: path.join(drRoot, `dr-${r.name}`),
      port: await freePort(),
      log: path.join(drRoot, `dr-${r.name}.log`),
    });
    const primaryUrl = `postgres://postgres@127.0.0.1:${pgOf(r.layout).primary.port}/postgres`;
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
        database: `postgres://postgres@127.0.0.1:${drStandbyOf(rigs.a).port}/fleet`,
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

    const traffic = new Traffic(direct, urls.b, { a: rigs.a.cities, b: rigs.b.cities }, o.rate, mode);
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
    standby = await startStandbyServe(regionsFile, rigs.b, drStandbyOf(rigs.a), standbyPort);
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
      if (r.layout) await haDown(r.layout.dir, r.layout).catch(() => undefined); // the drill's result is what is reported
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
  `postgres://postgres@127.0.0.1:${pgOf(l).primary.port},127.0.0.1:${pgOf(l).standby.port}/fleet?target_session_attrs=read-write`;

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
  await Promise.all([pgStop(pgOf(r.layout).primary, 'immediate'), pgStop(pgOf(r.layout).standby, 'immediate')]);
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

/** After the traffic: a's acknowledged bookings missing from its new home, and the invariants everywhere. */
async function afterFailover(rigs: Record<'a' | 'b', RegionRig>, acks: Record<'a' | 'b', Ack[]>, killedAt: number) {
  const redis = createRedis({ sentinels: sentinelsOf(rigs.b.layout), sentinelMaster: rigs.b.layout.redis.master });
  redis.on('error', () => {});
  const aPool = createPool(`postgres://postgres@127.0.0.1:${drStandbyOf(rigs.a).port}/fleet`, { max: 2 });
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
