/**
 * `npm run chaos`: the simulator's marketplace traffic against the highly available topology
 * (src/ha/local.ts) under a seeded, replayable schedule of faults — kill -9 of the Redis primary,
 * kill of a replica, SIGSTOP of the primary for 5 s, a crash of the PostgreSQL primary with the
 * standby promoted, kill of an API process, kill of the sync worker. A supervisor brings back
 * what was killed, as systemd or Kubernetes would. The report: availability (requests answered
 * without a 5xx or a network failure, over all requests), failover windows (from each fault to the
 * next acknowledged write), acknowledged writes lost, overlaps, drift after the sync drains, and
 * the conflicts failovers raised with how they ended (docs/reliability.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { CityCatalog, REFERENCE_CITIES, type City } from '../domain/cities.ts';
import {
  asPostgres,
  haDown,
  haEnvironment,
  haUp,
  pgPromote,
  pgStart,
  pgStop,
  startRedisNode,
  PG_BIN,
  type HaLayout,
  type PgNodeLayout,
  type RedisNodeLayout,
} from '../ha/local.ts';
import { createPool } from '../pg/pool.ts';
import { keys } from '../redis/keys.ts';
import { createRedis } from '../redis/connection.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { SyncWorker, cityLag } from '../workers/sync.ts';
import { Marketplace, rng } from './marketplace.ts';
import { checkInvariants } from './simulate.ts';
import { httpApi } from './api.ts';
import { Recorder, percentile, round } from './stats.ts';
import { messageOf } from '../domain/errors.ts';
import { fieldMap } from '../redis/events.ts';
import { commitStamp, writeSection } from './stamp.ts';

export const FAULTS = [
  'redis-primary-kill',
  'redis-replica-kill',
  'redis-primary-stop',
  'postgres-primary-crash',
  'api-process-kill',
  'sync-worker-kill',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  durationMs: number;
  /** Time between faults. */
  faultEveryMs: number;
  faults: readonly Fault[];
  cities: number;
  vehiclesPerCity: number;
  rate: number;
  concurrency: number;
  seed: number;
  out: string;
  /** Rewrite the generated section of this file (docs/reliability.md). */
  updateDoc?: string;
  progress: boolean;
  /** Targets: the run fails (exit 1) below this availability, or when a failover window is longer. */
  minAvailability: number;
  maxFailoverWindowMs: number;
}

export const DEFAULT_CHAOS: ChaosOptions = {
  durationMs: 600_000,
  faultEveryMs: 60_000,
  faults: FAULTS,
  cities: 3,
  vehiclesPerCity: 200,
  rate: 150,
  concurrency: 24,
  seed: 7,
  out: 'chaos-report',
  progress: true,
  minAvailability: 0.999,
  maxFailoverWindowMs: 10_000,
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'fleet-chaos-secret-of-at-least-32-bytes!';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FaultRecord {
  kind: Fault;
  at: number;
  detail: string;
  recoveredAt?: number;
  windowMs?: number;
}

/** An exit of a supervised process that no fault caused: a bug (a store dying must never end a process). */
export interface UnexpectedExit {
  process: 'fleet serve' | 'fleet worker';
  atSecond: number;
  code: number | null;
  signal: string | null;
  /** The last lines it printed. */
  lastWords: string;
}

/**
 * The processes the supervisor keeps alive, as systemd or Kubernetes would: the service (`fleet
 * serve`) and the sync worker (`fleet worker`). A fault kills the worker on purpose; any other exit
 * is recorded (the run fails on it) and the process started again.
 */
class Supervisor {
  service?: ChildProcess;
  worker?: ChildProcess;
  private output = '';
  private workerOutput = '';
  private stopping = false;
  private perCity = 0;
  readonly unexpectedExits: UnexpectedExit[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly started: () => number,
  ) {}

  async startService(perCity: number): Promise<void> {
    this.perCity = perCity;
    const service = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'src/cli/main.ts'),
        'serve',
        '--demo',
        '--vehicles-per-city',
        String(perCity),
      ],
      {
        cwd: ROOT,
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.service = service;
    const mark = this.output.length;
    const hear = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    service.stdout!.on('data', hear);
    service.stderr!.on('data', hear);
    service.once('exit', (code, signal) => {
      if (this.stopping || this.service !== service) return;
      this.recordExit('fleet serve', code, signal, this.output);
      void this.startService(this.perCity).catch(() => undefined);
    });
    const deadline = Date.now() + 600_000;
    while (!this.output.slice(Math.max(0, mark - 20)).includes('Demo tokens')) {
      if (service.exitCode !== null || Date.now() > deadline)
        throw new Error(`the service did not start:\n${this.output.slice(-3000)}`);
      await sleep(100);
    }
  }

  startWorker(): void {
    const worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
      cwd: ROOT,
      env: this.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.worker = worker;
    worker.stderr!.on('data', (d: Buffer) => {
      this.workerOutput = (this.workerOutput + d.toString()).slice(-20_000);
    });
    worker.once('exit', (code, signal) => {
      // A fault's kill is SIGKILL from here (killWorker); anything else is unexpected.
      if (this.stopping || this.worker !== worker || worker.killedOnPurpose) return;
      this.recordExit('fleet worker', code, signal, this.workerOutput);
      this.startWorker();
    });
  }

  /** The fault: kill -9 of the sync worker, restarted after a second. */
  async killWorker(): Promise<void> {
    const worker = this.worker;
    if (worker) {
      worker.killedOnPurpose = true;
      worker.kill('SIGKILL');
    }
    await sleep(1_000);
    this.startWorker();
  }

  private recordExit(name: UnexpectedExit['process'], code: number | null, signal: string | null, out: string) {
    this.unexpectedExits.push({
      process: name,
      atSecond: round((Date.now() - this.started()) / 1000),
      code,
      signal,
      lastWords: out.slice(-1500),
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const child of [this.worker, this.service]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
  }

  get log(): string {
    return this.output;
  }
}

declare module 'node:child_process' {
  interface ChildProcess {
    /** Set by the supervisor before a fault kills the process. */
    killedOnPurpose?: boolean;
  }
}

async function sentinelPrimary(layout: HaLayout): Promise<RedisNodeLayout> {
  for (const s of layout.redis.sentinels) {
    const c = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
    c.on('error', () => {});
    try {
      await c.connect();
      const [, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', layout.redis.master)) as [string, string];
      const node = layout.redis.nodes.find((n) => n.port === Number(port));
      if (node) return node;
    } catch {
      // the next Sentinel
    } finally {
      c.disconnect();
    }
  }
  throw new Error('no Sentinel names a primary');
}

async function waitForPromotion(layout: HaLayout, old: RedisNodeLayout, timeoutMs = 30_000): Promise<RedisNodeLayout> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await sentinelPrimary(layout).catch(() => old);
    if (p.port !== old.port) return p;
    if (Date.now() > deadline) throw new Error('no Redis failover');
    await sleep(100);
  }
}

/** A new standby from the (new) primary, in place of the one that died. */
async function rebuildStandby(primary: PgNodeLayout, standby: PgNodeLayout): Promise<void> {
  await pgStop(standby, 'immediate');
  await asPostgres('rm', ['-rf', standby.dataDir]);
  await asPostgres(`${PG_BIN}/pg_basebackup`, [
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-D',
    standby.dataDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  await pgStart(standby, '-c hot_standby=on');
}

/** Injects one fault and has the supervisor repair what was killed. Returns what it did. */
async function inject(
  kind: Fault,
  layout: HaLayout,
  sup: Supervisor,
  apiPids: () => number[],
  rand: () => number,
): Promise<string> {
  switch (kind) {
    case 'redis-primary-kill': {
      const p = await sentinelPrimary(layout);
      process.kill(p.pid!, 'SIGKILL');
      const promoted = await waitForPromotion(layout, p);
      await startRedisNode(p); // back as a primary: the Sentinels turn it into a replica
      return `Redis primary :${p.port} killed; :${promoted.port} promoted; :${p.port} restarted`;
    }
    case 'redis-replica-kill': {
      const p = await sentinelPrimary(layout);
      const replicas = layout.redis.nodes.filter((n) => n.port !== p.port);
      const r = replicas[Math.floor(rand() * replicas.length)]!;
      process.kill(r.pid!, 'SIGKILL');
      await sleep(2_000);
      await startRedisNode(r, p.port);
      return `Redis replica :${r.port} killed and restarted after 2 s`;
    }
    case 'redis-primary-stop': {
      const p = await sentinelPrimary(layout);
      process.kill(p.pid!, 'SIGSTOP');
      await sleep(5_000);
      process.kill(p.pid!, 'SIGCONT');
      return `Redis primary :${p.port} stopped (SIGSTOP) for 5 s`;
    }
    case 'postgres-primary-crash': {
      const pg = layout.pg!;
      await pgStop(pg.primary, 'immediate');
      await pgPromote(pg.standby);
      const [oldPrimary, promoted] = [pg.primary, pg.standby];
      pg.primary = promoted;
      pg.standby = oldPrimary;
      await rebuildStandby(pg.primary, pg.standby);
      return `PostgreSQL primary :${oldPrimary.port} crashed; standby :${promoted.port} promoted; a new standby on :${oldPrimary.port}`;
    }
    case 'api-process-kill': {
      const pids = apiPids();
      const pid = pids[Math.floor(rand() * pids.length)];
      if (!pid) return 'no API process known yet';
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return `API process ${pid} already gone`;
      }
      return `API process ${pid} killed (the service starts another)`;
    }
    case 'sync-worker-kill': {
      await sup.killWorker();
      return 'sync worker killed; restarted after 1 s';
    }
  }
}

/** The environment `fleet serve` and `fleet worker` run with under chaos: the topology, two API processes, no limits. */
function serviceEnvironment(
  o: ChaosOptions,
  ha: Record<string, string>,
  port: number,
  cities: readonly { id: string }[],
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...ha,
    PORT: String(port),
    JWT_SECRET: SECRET,
    CITIES: cities.map((c) => c.id).join(','),
    WEB_CONCURRENCY: '2',
    SERVE_SYNC: '0',
    LOG_LEVEL: 'warn',
    OFFER_TTL_MS: '20000',
    POST_VALIDATION_INTERVAL_MS: '10000',
    RATE_LIMIT_CUSTOMER: '1000000',
    RATE_LIMIT_HOST: '1000000',
    RATE_LIMIT_OPS: '1000000',
    RATE_LIMIT_ADMIN: '1000000',
    MAX_LIVE_HOLDS_PER_CUSTOMER: '20',
    // Events stay in the streams long enough for the sync to replay what a promoted standby lost.
    STREAM_RETENTION_MS: String(Math.max(600_000, o.durationMs)),
  };
}

/** Once the traffic stopped: the sync drained (the service stopped), then the invariants and the verifications' figures. */
async function checkAfterRun(
  redis: RedisConnection,
  ha: Record<string, string>,
  cities: readonly City[],
  sup: Supervisor,
  market: Marketplace,
) {
  const catalog = new CityCatalog(cities);
  await waitFor(
    async () => (await Promise.all(cities.map((c) => cityLag(redis, c.id)))).every((l) => l.eventsBehind === 0),
    120_000,
  );
  await sup.stop();
  const pool = createPool(ha.DATABASE_URL!, { max: 4, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => {});
  // The checks use a connection of their own: the run's long-lived one went through every failover
  // (once, under a loaded CI machine, it was found closed for good here; cause not found).
  const checker = createRedis({ sentinels: ha.REDIS_SENTINELS!, sentinelMaster: ha.REDIS_SENTINEL_MASTER! });
  checker.on('error', () => {});
  try {
    await new SyncWorker(checker, pool, catalog).drain(120_000);
    const invariants = await checkInvariants(
      checker as Redis,
      pool,
      cities.map((c) => c.id),
      market.acknowledged,
    );
    const failoverConflicts = await conflictsOfFailovers(
      checker,
      cities.map((c) => c.id),
    );
    return { invariants, failoverConflicts };
  } finally {
    checker.disconnect();
    await pool.end();
  }
}

export async function chaos(o: ChaosOptions): Promise<{ report: Record<string, unknown>; ok: boolean }> {
  const log = (line: string) => {
    if (o.progress) process.stderr.write(`${line}\n`);
  };
  const rand = rng(o.seed);
  const cities = REFERENCE_CITIES.slice(0, Math.max(1, Math.min(REFERENCE_CITIES.length, o.cities)));
  const dir = await mkdtemp(path.join(tmpdir(), 'fleet-chaos-'));
  log('starting the topology: Redis primary + 2 replicas + 3 Sentinels, PostgreSQL primary + standby ...');
  const layout = await haUp({ dir });
  const port = 30_000 + Math.floor(rand() * 20_000);
  const base = `http://127.0.0.1:${port}`;
  const ha = haEnvironment(layout);
  const env = serviceEnvironment(o, ha, port, cities);
  let started = Date.now();
  const sup = new Supervisor(env, () => started);
  const faults: FaultRecord[] = [];
  const redis = createRedis({ sentinels: ha.REDIS_SENTINELS!, sentinelMaster: ha.REDIS_SENTINEL_MASTER! });
  redis.on('error', () => {});
  try {
    log(
      `starting the service (2 API processes) and the sync worker: ${cities.length} cities x ${o.vehiclesPerCity} vehicles ...`,
    );
    await sup.startService(o.vehiclesPerCity);
    sup.startWorker();

    const recorder = new Recorder();
    const writeAcks: number[] = [];
    const pids = new Set<number>();
    const api = httpApi(base, recorder, SECRET, { timeoutMs: 15_000, onWrite: () => writeAcks.push(Date.now()) });
    const market = new Marketplace(api, recorder, cities, rand, 2_000);
    // The API processes, as they answer: the fault injector kills one of them.
    const pidProbe = setInterval(() => {
      void fetch(`${base}/healthz`)
        .then((r) => r.json())
        .then((j) => pids.add(Number((j as { pid: number }).pid)))
        .catch(() => undefined);
    }, 200);

    log(
      `driving ${o.rate} operations/s for ${o.durationMs / 1000} s; a fault every ${o.faultEveryMs / 1000} s (seed ${o.seed}) ...`,
    );
    started = Date.now();
    await trafficUnderFaults({
      o,
      market,
      faults,
      inject: (kind) => inject(kind, layout, sup, () => [...pids], rand),
      rand,
      log,
      started,
    });
    clearInterval(pidProbe);
    await market.finishTrips(Date.now(), true);
    for (const f of faults) {
      f.recoveredAt = writeAcks.find((t) => t > f.at);
      if (f.recoveredAt) f.windowMs = f.recoveredAt - f.at;
    }
    const elapsed = (Date.now() - started) / 1000;

    log('draining the sync, then checking the invariants ...');
    const { invariants, failoverConflicts } = await checkAfterRun(redis, ha, cities, sup, market);
    const { report, ok } = chaosReport({
      o,
      recorder,
      faults,
      invariants,
      failoverConflicts,
      started,
      elapsed,
      unexpectedExits: sup.unexpectedExits,
    });
    mkdirSync(o.out, { recursive: true });
    writeFileSync(path.join(o.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(o.out, 'report.html'), renderChaosHtml(report));
    if (o.updateDoc) updateDoc(o.updateDoc, report);
    return { report, ok };
  } catch (err) {
    process.stderr.write(`${sup.log.slice(-4000)}\n`);
    throw err;
  } finally {
    redis.disconnect();
    await sup.stop().catch(() => undefined);
    if (process.env.CHAOS_KEEP) {
      process.stderr.write(`CHAOS_KEEP: the topology stays up in ${dir} (${JSON.stringify(haEnvironment(layout))})\n`);
    } else {
      await haDown(dir).catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

interface TrafficRun {
  o: ChaosOptions;
  market: Marketplace;
  faults: FaultRecord[];
  inject: (kind: Fault) => Promise<string>;
  rand: () => number;
  log: (line: string) => void;
  started: number;
}

/** The marketplace's traffic at the target rate, and a fault every `faultEveryMs`, one at a time, in a seeded order. */
async function trafficUnderFaults({ o, market, faults, inject, rand, log, started }: TrafficRun): Promise<void> {
  let inFlight = 0;
  let due = 0;
  const running = new Set<Promise<void>>();
  let nextFault = started + o.faultEveryMs;
  let faultIndex = 0;
  const order = [...o.faults].sort(() => rand() - 0.5);
  let injecting: Promise<void> | undefined;
  let lastTrip = started;
  while (Date.now() - started < o.durationMs) {
    const now = Date.now();
    due += (o.rate * 10) / 1000;
    while (due >= 1) {
      due--;
      if (inFlight >= o.concurrency) continue;
      inFlight++;
      const p: Promise<void> = market
        .step()
        .catch(() => undefined)
        .finally(() => {
          inFlight--;
          running.delete(p);
        });
      running.add(p);
    }
    if (now - lastTrip > 1_000) {
      lastTrip = now;
      void market.finishTrips(now);
    }
    if (!injecting && now >= nextFault && order.length > 0) {
      const kind = order[faultIndex++ % order.length]!;
      const record: FaultRecord = { kind, at: now, detail: '' };
      faults.push(record);
      log(`  +${Math.round((now - started) / 1000)} s  ${kind} ...`);
      injecting = inject(kind)
        .then((detail) => {
          record.detail = detail;
          log(`  +${Math.round((Date.now() - started) / 1000)} s  ${detail}`);
        })
        .catch((err: unknown) => {
          record.detail = `failed: ${messageOf(err)}`;
          log(`  fault ${kind} failed: ${messageOf(err)}`);
        })
        .finally(() => {
          injecting = undefined;
          nextFault = Date.now() + o.faultEveryMs;
        });
    }
    await sleep(10);
  }
  await injecting;
  await Promise.all(running);
}

interface ChaosFigures {
  o: ChaosOptions;
  recorder: Recorder;
  faults: FaultRecord[];
  invariants: Awaited<ReturnType<typeof checkInvariants>>;
  failoverConflicts: Awaited<ReturnType<typeof conflictsOfFailovers>>;
  started: number;
  elapsed: number;
  unexpectedExits: UnexpectedExit[];
}

/**
 * The run's report, and whether it met every target: nothing acknowledged lost, nothing overlapping,
 * nothing drifting, no process ended by a fault it was not the target of, availability at least
 * `minAvailability`, and every failover window within `maxFailoverWindowMs`. `missed` says which not.
 */
function chaosReport(figures: ChaosFigures) {
  const { o, recorder, faults, invariants, failoverConflicts, started, elapsed, unexpectedExits } = figures;
  const windows = faults
    .map((f) => f.windowMs)
    .filter((w): w is number => w !== undefined)
    .sort((a, b) => a - b);
  const failovers = faults.filter(
    (f) => f.kind === 'redis-primary-kill' || f.kind === 'redis-primary-stop' || f.kind === 'postgres-primary-crash',
  ).length;
  const failed = recorder.serverErrors;
  const availability = recorder.total ? 1 - failed / recorder.total : 1;
  const report = {
    generatedAt: new Date().toISOString(),
    commit: commitStamp(),
    options: { ...o },
    durationSeconds: round(elapsed),
    requests: recorder.total,
    availability: Math.floor(availability * 1e6) / 1e6,
    failedRequests: failed,
    outcomes: Object.fromEntries([...recorder.codes].sort((a, b) => b[1] - a[1])),
    faults: faults.map((f) => ({
      kind: f.kind,
      atSecond: round((f.at - started) / 1000),
      detail: f.detail,
      windowMs: f.windowMs ?? null,
    })),
    failovers,
    failoverWindowMs: { p50: percentile(windows, 50), p99: percentile(windows, 99), max: windows.at(-1) ?? 0 },
    acknowledgedWritesLost: invariants.acknowledgedMissingFromRedis + invariants.acknowledgedMissingFromPostgres,
    invariants,
    failoverConflicts,
    unexpectedExits,
    targets: { minAvailability: o.minAvailability, maxFailoverWindowMs: o.maxFailoverWindowMs },
    missed: [] as string[],
    endpoints: recorder.endpoints(),
  };
  const missed = report.missed;
  if (report.acknowledgedWritesLost > 0) missed.push(`${report.acknowledgedWritesLost} acknowledged writes lost`);
  if (invariants.overlappingConfirmedBookings > 0)
    missed.push(`${invariants.overlappingConfirmedBookings} overlapping confirmed bookings`);
  if (invariants.driftAfterSync > 0) missed.push(`drift after the sync drained: ${invariants.driftAfterSync}`);
  if (availability < o.minAvailability)
    missed.push(
      `availability ${(report.availability * 100).toFixed(3)}% is below ${(o.minAvailability * 100).toFixed(3)}% (${failed} of ${recorder.total} requests failed)`,
    );
  // A fault in the run's last seconds may have no write after it to measure by: not a miss.
  const measurable = (f: { atSecond: number }) => f.atSecond * 1000 < elapsed * 1000 - o.maxFailoverWindowMs;
  const slow = report.faults.filter((f) => (f.windowMs === null ? measurable(f) : f.windowMs > o.maxFailoverWindowMs));
  for (const f of slow)
    missed.push(
      `${f.kind} at ${f.atSecond} s: ${f.windowMs === null ? 'no acknowledged write after it' : `acknowledgements stopped for ${f.windowMs} ms`} (limit ${o.maxFailoverWindowMs} ms)`,
    );
  for (const e of unexpectedExits)
    missed.push(
      `${e.process} exited at ${e.atSecond} s (code ${e.code}, signal ${e.signal}) without a fault aimed at it`,
    );
  return { report, ok: missed.length === 0 };
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond().catch(() => false)) return;
    await sleep(200);
  }
}

/** The bookings failover verifications displaced, and what became of each. */
async function conflictsOfFailovers(redis: ReturnType<typeof createRedis>, cities: string[]) {
  const verifications: Record<string, unknown>[] = [];
  const outcomes: Record<string, number> = {};
  for (const city of cities) {
    for (const [, fields] of await redis.xrange(keys.events(city), '-', '+')) {
      const f = fieldMap(fields);
      if (f.type !== 'system.failover_verified') continue;
      const data = JSON.parse(f.data ?? '{}') as { conflicts?: string[] };
      verifications.push(data);
      for (const id of Array.isArray(data.conflicts) ? data.conflicts : []) {
        const vehicle = await redis.hget(keys.entries(city), id);
        const raw = vehicle ? await redis.hget(keys.calendar(city, vehicle), id) : null;
        const status = raw ? String((JSON.parse(raw) as { status: string }).status) : 'gone';
        outcomes[status] = (outcomes[status] ?? 0) + 1;
      }
    }
  }
  const sum = (k: string) => verifications.reduce((n, v) => n + (Number(v[k]) || 0), 0);
  return {
    verifications: verifications.length,
    vehiclesRestored: sum('vehiclesRestored'),
    entriesRestored: sum('entriesRestored'),
    repairedInPg: sum('repairedInPg'),
    conflicts: Object.values(outcomes).reduce((a, b) => a + b, 0),
    outcomes,
  };
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function renderChaosHtml(
  r: Record<string, unknown> & {
    faults: { kind: string; atSecond: number; detail: string; windowMs: number | null }[];
  },
): string {
  const rows = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`)
      .join('');
  const { faults, endpoints: _e, options: _o, outcomes, invariants, failoverConflicts, ...top } = r;
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>fleet-inventory chaos run</title>
<style>body{font:14px system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>
<h1>Chaos run</h1><table>${rows(top)}</table>
<h2>Faults</h2><table><tr><th>at (s)</th><th>fault</th><th>what happened</th><th>window (ms)</th></tr>${faults.map((f) => `<tr><td>${f.atSecond}</td><td>${esc(f.kind)}</td><td>${esc(f.detail)}</td><td>${f.windowMs ?? '-'}</td></tr>`).join('')}</table>
<h2>Invariants</h2><table>${rows(invariants as Record<string, unknown>)}</table>
<h2>Conflicts raised by failovers</h2><table>${rows(failoverConflicts as Record<string, unknown>)}</table>
<h2>Outcomes</h2><table>${rows(outcomes as Record<string, unknown>)}</table></html>\n`;
}

/** Rewrites the part of `file` between the chaos markers with this run's figures. */
function updateDoc(file: string, r: Record<string, unknown>): void {
  const f = r as {
    commit: string;
    generatedAt: string;
    durationSeconds: number;
    requests: number;
    availability: number;
    failedRequests: number;
    failovers: number;
    failoverWindowMs: { p50: number; p99: number; max: number };
    acknowledgedWritesLost: number;
    invariants: { overlappingConfirmedBookings: number; driftAfterSync: number; acknowledgedBookings: number };
    failoverConflicts: {
      verifications: number;
      entriesRestored: number;
      vehiclesRestored: number;
      repairedInPg: number;
      conflicts: number;
      outcomes: Record<string, number>;
    };
    faults: { kind: string; atSecond: number; detail: string; windowMs: number | null }[];
    targets: { minAvailability: number; maxFailoverWindowMs: number };
    missed: string[];
    unexpectedExits: UnexpectedExit[];
  };
  const lines = [
    `Latest run: commit \`${f.commit}\`, ${f.generatedAt}, ${f.durationSeconds} s, ${f.faults.length} faults (${f.failovers} store failovers).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| requests | ${f.requests} |`,
    `| answered without a 5xx or a network failure | ${(f.availability * 100).toFixed(3)}% (${f.failedRequests} failed) |`,
    `| failover window p50 / p99 / max | ${f.failoverWindowMs.p50} / ${f.failoverWindowMs.p99} / ${f.failoverWindowMs.max} ms |`,
    `| acknowledged bookings | ${f.invariants.acknowledgedBookings} |`,
    `| acknowledged writes lost | ${f.acknowledgedWritesLost} |`,
    `| overlapping confirmed bookings | ${f.invariants.overlappingConfirmedBookings} |`,
    `| drift after the sync drained | ${f.invariants.driftAfterSync} |`,
    `| verifications / entries restored / vehicles restored / repaired in PostgreSQL | ${f.failoverConflicts.verifications} / ${f.failoverConflicts.entriesRestored} / ${f.failoverConflicts.vehiclesRestored} / ${f.failoverConflicts.repairedInPg} |`,
    `| conflicts raised by failovers (how they ended) | ${f.failoverConflicts.conflicts} ${JSON.stringify(f.failoverConflicts.outcomes)} |`,
    `| processes that exited without a fault aimed at them | ${f.unexpectedExits.length} |`,
    '',
    f.missed.length === 0
      ? `Every target was met: availability at least ${(f.targets.minAvailability * 100).toFixed(1)}%, every failover window within ${f.targets.maxFailoverWindowMs / 1000} s, nothing acknowledged lost, no overlap, no drift, no process ended by a store's failure.`
      : `Targets missed (the run exited non-zero): ${f.missed.join('; ')}.`,
    '',
    '| at (s) | fault | what happened | window (ms) |',
    '|---|---|---|---|',
    ...f.faults.map((x) => `| ${x.atSecond} | ${x.kind} | ${x.detail} | ${x.windowMs ?? '-'} |`),
  ];
  writeSection(file, 'chaos', lines.join('\n'));
}
