/**
 * `fleet`: the operator's command line. Every command goes through the same services as the
 * API and workers; results print as JSON, refusals as `CODE: message` on stderr with exit 2.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { loadConfig, ConfigError, type Config } from '../config.ts';
import { registry } from '../metrics.ts';
import { buildApp } from '../api/app.ts';
import { ROLES, authenticator, mintToken, type Role } from '../api/auth.ts';
import { listen } from '../api/server.ts';
import { BLOCK_REASONS, type BlockReason } from '../domain/calendar.ts';
import { DomainError } from '../domain/errors.ts';
import { CityCatalog, REFERENCE_CITIES } from '../domain/cities.ts';
import { inspectDurability } from '../redis/connection.ts';
import { configureReplication, connectRedis } from '../redis/topology.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { seedCity } from '../services/demo.ts';
import { Inventory } from '../services/inventory.ts';
import { ReadModel } from '../services/read-model.ts';
import { VehicleLocks } from '../services/vehicle-locks.ts';
import { startSweeper, sweepAllCities, trimAllCities } from '../workers/sweeper.ts';
import { SyncWorker, cityLag, syncedThrough, type Failpoint } from '../workers/sync.ts';
import { migrate } from '../pg/migrate.ts';
import { rebuildCity, reconcileCity, recordCities } from '../services/durable.ts';
import type pg from 'pg';
import { createPool, type FollowingPool } from '../pg/pool.ts';
import { ApiWorkers, apiWorkerChannel } from './cluster.ts';
import { haCommand } from './ha.ts';
import { ConflictDesk } from '../services/conflicts.ts';
import { ConflictWorker } from '../workers/resolver.ts';
import { FailoverMonitor } from '../workers/failover-monitor.ts';
import { verifyCity, type FailoverCause } from '../services/failover.ts';
import type { OfferPolicy } from '../domain/offers.ts';

const USAGE = `fleet <command> [options]

Engine
  serve [--demo] [--vehicles-per-city N]   migrate; run the HTTP API (PORT), the sweeper and the sync worker
  token --role R [--sub S] [--host-id H]   mint a dev token (HS256, JWT_SECRET)
  migrate                                  apply PostgreSQL migrations (creates the database)
  worker                                   run the sync worker only (streams -> PostgreSQL)
  lag                                      events not yet in PostgreSQL, per city
  rebuild --city X                         restore a city's Redis state from PostgreSQL
  reconcile [--city X] [--repair] [--json] compare Redis and PostgreSQL; repair from the side ahead
  seed [--vehicles-per-city N] [--city X]  demo fleets for empty cities (default 200 per city)
  durability                               can acknowledged writes be lost on this Redis?
  sweep                                    expire lapsed holds, refresh statuses, once
  trim                                     past, final calendar entries leave Redis once synced (CALENDAR_RETENTION_MS)

Read
  vehicle <vehicleId>                      vehicle, calendar and status now
  counters --city X                        live counts by status and category
  events --city X [--after ID] [--limit N] the city's event stream

Write (times: ISO 8601 or epoch ms; --idempotency-key K on any)
  hold --vehicle V --customer C --from T --to T
  book --vehicle V --customer C --from T --to T [--allow-past] | book --hold H --customer C
  release <holdId> | cancel <bookingId> | start <bookingId> | complete <bookingId>
  extend <bookingId> --to T [--force]
  block --vehicle V --reason accident|maintenance|host [--from T] [--to T] [--note N]
  unblock <blockId> | delist <vehicleId> | relist <vehicleId>

High availability (docs/reliability.md)
  ha up [--dir D] [--base-port P]          Redis primary + 2 replicas + 3 Sentinels, PostgreSQL primary + standby; prints the environment
  ha env | ha promote-pg | ha down         the environment again; promote the PostgreSQL standby; stop it all

Simulation (docs/simulation.md)
  simulate [--cities 25] [--vehicles-per-city 2000] [--duration 60s] [--rate 400] [--concurrency 32] [--seed N] [--out DIR] [--json]
                                           a marketplace against a fresh service (SIM_REDIS_URL, SIM_DATABASE_URL)

  chaos [--duration 10m] [--fault-every 60s] [--faults a,b] [--seed N] [--out DIR] [--update-doc FILE]
                                           the marketplace against the HA topology under a seeded fault schedule (docs/reliability.md)

Conflicts (docs/conflicts.md)
  offers <bookingId>                       a conflicted booking's offers
  accept <bookingId> --offer O | decline <bookingId>
  resolve <bookingId>                      make the offers of a conflicted booking now
  validate [--city X]                      post-validation pass: find overlaps, resolve them

Environment: PORT, JWT_SECRET, JWKS_URL, REDIS_URL, REDIS_CLUSTER_NODES, DATABASE_URL, DATABASE_REPLICA_URL, HOLD_TTL_MS, MAX_LIVE_HOLDS_PER_CUSTOMER,
LOCK_MAX_QUEUE, LOCK_MAX_WAIT_MS, SWEEP_INTERVAL_MS, SYNC_*, STREAM_RETENTION_MS, METRICS_PORT,
LOG_LEVEL (see the README).`;

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    demo: { type: 'boolean' }, 'vehicles-per-city': { type: 'string' }, city: { type: 'string' },
    after: { type: 'string' }, limit: { type: 'string' }, vehicle: { type: 'string' }, customer: { type: 'string' },
    hold: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, reason: { type: 'string' },
    note: { type: 'string' }, force: { type: 'boolean' }, 'allow-past': { type: 'boolean' },
    'idempotency-key': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    repair: { type: 'boolean' }, json: { type: 'boolean' }, dir: { type: 'string' }, 'base-port': { type: 'string' }, 'fault-every': { type: 'string' }, faults: { type: 'string' }, 'update-doc': { type: 'string' }, role: { type: 'string' }, sub: { type: 'string' }, 'host-id': { type: 'string' }, offer: { type: 'string' }, cities: { type: 'string' }, duration: { type: 'string' }, rate: { type: 'string' }, concurrency: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
  },
});

function time(name: string, v: string | undefined): number {
  if (v === undefined) throw new DomainError('VALIDATION', `--${name} is required`, { field: name });
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new DomainError('VALIDATION', `--${name} must be ISO 8601 or epoch ms`, { field: name });
  return t;
}

/** `60s`, `2m`, `500ms` or plain milliseconds. */
function duration(v: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(v);
  if (!m) throw new DomainError('VALIDATION', '--duration is like 60s, 2m or 500ms', { field: 'duration' });
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 's' || m[2] === undefined ? 1_000 : 1);
}

function need(name: string, v: string | undefined): string {
  if (!v) throw new DomainError('VALIDATION', `${name} is required`, { field: name });
  return v;
}

const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));

async function seedAll(inventory: Inventory, redis: RedisConnection, perCity: number, only?: string) {
  const cities = inventory.cities.all().filter((c) => !only || c.id === only);
  const started = Date.now();
  const reports = [];
  for (const c of cities) reports.push(await seedCity(inventory, redis, c, perCity));
  return { cities: reports.filter((r) => !r.skipped).length, skipped: reports.filter((r) => r.skipped).length, vehicles: reports.reduce((a, r) => a + r.vehicles, 0), ms: Date.now() - started };
}

async function serve(config: Config, inventory: Inventory, redis: RedisConnection) {
  if (cluster.isWorker) return serveApiProcess(config, inventory, redis);
  const log = pino({ level: config.LOG_LEVEL });
  const durability = await inspectDurability(redis);
  if (durability.warning) log.warn({ durability }, `Redis durability: ${durability.warning}`);
  else log.info({ durability }, 'Redis durability: acknowledged writes survive a crash (AOF, appendfsync always)');
  log.info(await migrate(config.DATABASE_URL), 'PostgreSQL migrated');
  if (opt.demo) {
    const perCity = Number(opt['vehicles-per-city'] ?? 200);
    log.info({ perCity }, 'seeding demo fleets into empty cities');
    log.info(await seedAll(inventory, redis, perCity), 'demo data ready');
  }
  const pool = newPool(config, log);
  await recordCities(pool, inventory.cities.all());
  // SERVE_SYNC=0: the sync runs as its own process (`fleet worker`), supervised apart.
  const sync = config.SERVE_SYNC ? newSyncWorker(config, redis, pool, inventory, log) : undefined;
  sync?.start();
  const sweeper = startSweeper(inventory, {
    intervalMs: config.SWEEP_INTERVAL_MS, log,
    trim: { everyMs: config.TRIM_INTERVAL_MS, retentionMs: config.CALENDAR_RETENTION_MS, syncedThrough: (city) => syncedThrough(redis, city) },
  });
  // The resolver runs once, here: its own read model finds the alternatives.
  const resolverModel = new ReadModel(redis, inventory);
  await resolverModel.start();
  const resolverDesk = new ConflictDesk(redis, inventory, resolverModel, offerPolicy(config));
  const resolver = new ConflictWorker(redis, resolverDesk, inventory.cities, {
    validateEveryMs: config.POST_VALIDATION_INTERVAL_MS, log,
  });
  resolver.start();
  // Failovers of either store are noticed here and the affected cities verified (docs/reliability.md).
  const monitor = newFailoverMonitor(config, redis, pool, inventory, log, (city) => resolverDesk.postValidate(city));
  monitor.start();
  const secret = jwtSecret(config, log);
  // One API process per core (WEB_CONCURRENCY); with one, the API runs in this process.
  const processes = config.WEB_CONCURRENCY || availableParallelism();
  let api: { url: string; close(): Promise<void> };
  let workers: ApiWorkers | undefined;
  if (processes > 1) {
    workers = new ApiWorkers(processes, log);
    const port = await workers.start();
    const w = workers;
    api = { url: `http://localhost:${port}`, close: () => w.stop() };
  } else {
    api = await startApi(config, inventory, redis, log, secret);
  }
  const metricsServer = serveMetrics(config, log, workers ? () => workers.metrics() : undefined);
  const url = api.url;
  const demo = {
    customer: await mintToken(secret, { sub: 'demo-customer', role: 'customer' }),
    host: await mintToken(secret, { sub: 'demo-host', role: 'host', hostId: `host-${inventory.cities.all()[0]?.id ?? 'blr'}-1` }),
    ops: await mintToken(secret, { sub: 'demo-ops', role: 'ops' }),
  };
  log.info({ url, docs: `${url}/docs`, processes }, 'API listening');
  console.log(`\nfleet-inventory API at ${url} on ${processes} process(es) (OpenAPI: ${url}/openapi.json, docs: ${url}/docs, live: ${url.replace('http', 'ws')}/v1/live)\nDemo tokens (24 h):\n  customer: ${demo.customer}\n  host:     ${demo.host}\n  ops:      ${demo.ops}\nTry: curl -H "authorization: Bearer $TOKEN" ${url}/v1/cities\n`);
  const summary = setInterval(() => {
    void summarize(inventory, redis).then((s) => log.info(s, 'fleet status')).catch((err: unknown) => log.error({ err }, 'summary failed'));
  }, 10_000);
  log.info({ cities: inventory.cities.all().length }, 'fleet engine running; Ctrl-C stops');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping: API first (in-flight requests finish), then the sweeper and the sync');
  clearInterval(summary);
  await api.close();
  metricsServer.close();
  await monitor.stop();
  await resolver.stop();
  await resolverModel.stop();
  await sweeper.stop();
  await sync?.stop();
  await pool.end();
  log.info('stopped');
}

/** One API process: its own read model, WebSocket hub and connections; the port is shared. */
async function startApi(config: Config, inventory: Inventory, redis: RedisConnection, log: Logger, secret: Uint8Array, metrics?: () => Promise<string>) {
  const pool = newPool(config, log);
  const replicaPool = config.DATABASE_REPLICA_URL ? newPool(config, log, config.DATABASE_REPLICA_URL) : undefined;
  const readModel = new ReadModel(redis, inventory);
  await readModel.start();
  const app = await buildApp({
    inventory, redis, pool, ...(replicaPool ? { replicaPool } : {}), readModel, ...(metrics ? { metrics } : {}),
    ...(redisTopology ? { redisTopology } : {}),
    conflicts: new ConflictDesk(redis, inventory, readModel, offerPolicy(config)),
    lag: () => Promise.all(inventory.cities.all().map((c) => cityLag(redis, c.id))),
    rateLimits: { customer: config.RATE_LIMIT_CUSTOMER, host: config.RATE_LIMIT_HOST, ops: config.RATE_LIMIT_OPS, admin: config.RATE_LIMIT_ADMIN, anonymous: config.RATE_LIMIT_ANONYMOUS },
    rateLimitShare: config.RATE_LIMIT_LOCAL_SHARE,
    http: {
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS, maxConnectionsPerIp: config.HTTP_MAX_CONNECTIONS_PER_IP,
    },
    live: {
      maxConnectionsPerCaller: config.WS_MAX_CONNECTIONS_PER_CALLER, messagesPerSecond: config.WS_MESSAGES_PER_SECOND,
      messageBurst: config.WS_MESSAGE_BURST, maxTopics: config.WS_MAX_TOPICS, highWaterBytes: config.WS_HIGH_WATER_BYTES,
      slowConsumerMs: config.WS_SLOW_CONSUMER_MS,
    },
    authenticate: authenticator({ secret, ...(config.JWKS_URL ? { jwksUrl: config.JWKS_URL } : {}) }),
  });
  const url = (await listen(app, config.PORT)).replace('127.0.0.1', 'localhost');
  return {
    url,
    async close() {
      await app.close();
      await readModel.stop();
      await pool.end();
      await replicaPool?.end();
    },
  };
}

async function serveApiProcess(config: Config, inventory: Inventory, redis: RedisConnection) {
  const log = pino({ level: config.LOG_LEVEL }).child({ process: 'api', pid: process.pid });
  const channel = apiWorkerChannel();
  // The primary passed its JWT secret down (generated or configured): every process checks the same tokens.
  const api = await startApi(config, inventory, redis, log, new TextEncoder().encode(config.JWT_SECRET), channel.metrics);
  // Ctrl-C reaches every process of the group; the primary orders the shutdown either way.
  process.on('SIGINT', () => undefined);
  process.once('SIGTERM', () => { void api.close().then(() => process.exit(0)); });
  await channel.shutdown;
  await api.close();
  redis.disconnect();
  process.exit(0);
}

function conflictDesk(config: Config, inventory: Inventory, redis: RedisConnection): ConflictDesk {
  // Reading, accepting and declining offers never searches: the read model stays unloaded.
  return new ConflictDesk(redis, inventory, new ReadModel(redis, inventory), offerPolicy(config));
}

function offerPolicy(config: Config): OfferPolicy {
  return {
    offerTtlMs: config.OFFER_TTL_MS, maxOffers: config.OFFER_COUNT, credit: config.OFFER_CREDIT, farKm: config.OFFER_FAR_KM,
    farCredit: config.OFFER_FAR_CREDIT, noAlternativeCredit: config.NO_ALTERNATIVE_CREDIT, maxDistanceKm: config.OFFER_MAX_DISTANCE_KM,
  };
}

function newPool(config: Config, log: Logger, url = config.DATABASE_URL): FollowingPool {
  const pool = createPool(url, { max: 4, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  // Idle clients die with the server; the sync backs off and reconnects.
  pool.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost'));
  return pool;
}

function newSyncWorker(config: Config, redis: RedisConnection, pool: FollowingPool, inventory: Inventory, log: Logger): SyncWorker {
  const points = new Map(config.FLEET_FAILPOINTS.split(',').filter(Boolean).map((p) => {
    const [name, prob] = p.split(':');
    return [name as Failpoint, Number(prob ?? 1)] as const;
  }));
  const sync = new SyncWorker(redis, pool, inventory.cities, {
    batchSize: config.SYNC_BATCH_SIZE, claimIdleMs: config.SYNC_CLAIM_IDLE_MS, maxAttempts: config.SYNC_MAX_ATTEMPTS,
    retentionMs: config.STREAM_RETENTION_MS, log,
    ...(points.size ? {
      failpoint: (where: Failpoint) => {
        if (Math.random() < (points.get(where) ?? 0)) {
          process.stderr.write(`FAILPOINT ${where}\n`);
          process.kill(process.pid, 'SIGKILL');
        }
      },
    } : {}),
  });
  // A promoted standby may lack the last applied batches: check the cursors against the streams again.
  pool.onWriterChange(() => sync.postgresChanged());
  return sync;
}

function jwtSecret(config: Config, log: Logger): Uint8Array {
  if (config.JWT_SECRET) return new TextEncoder().encode(config.JWT_SECRET);
  const dev = randomBytes(32).toString('base64url');
  log.warn('JWT_SECRET is unset: using a generated development secret (tokens die with this process)');
  process.env.JWT_SECRET = dev;
  return new TextEncoder().encode(dev);
}

/** `GET /metrics` on METRICS_PORT, when set. */
function serveMetrics(config: Config, log: Logger, metrics: () => Promise<string> = () => registry.metrics()): { close(): void } {
  if (!config.METRICS_PORT) return { close() {} };
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
    metrics().then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body), () => res.writeHead(500).end());
  }).listen(config.METRICS_PORT, () => log.info({ port: config.METRICS_PORT }, 'metrics at /metrics'));
  return { close: () => server.close() };
}

async function runWorker(config: Config, inventory: Inventory, redis: RedisConnection) {
  const log = pino({ level: config.LOG_LEVEL });
  const pool = newPool(config, log);
  const sync = newSyncWorker(config, redis, pool, inventory, log);
  sync.start();
  // Without the resolver here, overlaps found after a failover are marked by the next post-validation pass.
  const monitor = newFailoverMonitor(config, redis, pool, inventory, log);
  monitor.start();
  const metricsServer = serveMetrics(config, log);
  log.info({ consumer: sync.consumer }, 'sync worker running; Ctrl-C stops');
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  metricsServer.close();
  await monitor.stop();
  await sync.stop();
  await pool.end();
}

function newFailoverMonitor(config: Config, redis: RedisConnection, pool: FollowingPool, inventory: Inventory, log: Logger,
  postValidate?: (city: string) => Promise<{ conflicted: string[] }>): FailoverMonitor {
  const verify = (city: string, cause: FailoverCause) => verifyCity({
    redis, pool, inventory, log, retentionMs: config.CALENDAR_RETENTION_MS, ...(postValidate ? { postValidate } : {}),
    drained: (c) => waitForSync(redis, c, 30_000),
  }, city, cause);
  return new FailoverMonitor(redis, inventory.cities, verify, { everyMs: config.FAILOVER_CHECK_MS, log, pool });
}

/** Until PostgreSQL has every event of the city, or `timeoutMs`. */
async function waitForSync(redis: RedisConnection, city: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await cityLag(redis, city)).eventsBehind > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
}

async function withPool<T>(config: Config, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = createPool(config.DATABASE_URL, { max: 2 });
  try { return await fn(pool); } finally { await pool.end(); }
}

async function summarize(inventory: Inventory, redis: RedisConnection) {
  const totals: Record<string, number> = {};
  for (const c of inventory.cities.all()) {
    for (const [k, v] of Object.entries(await redis.hgetall(keys.counters(c.id)))) {
      if (k.startsWith('s:')) totals[k.slice(2)] = (totals[k.slice(2)] ?? 0) + Number(v);
    }
  }
  return { byStatus: totals };
}

/** Redis connection errors, logged at most once a second (they come in bursts during a failover). */
const redisErrors = {
  last: 0,
  log(err: Error) {
    if (Date.now() - this.last < 1_000) return;
    this.last = Date.now();
    pino({ level: process.env.LOG_LEVEL ?? 'info' }).warn({ err: err.message }, 'Redis connection error (retrying)');
  },
};

/** How this process reaches Redis (for /readyz), once configured. */
let redisTopology: { mode: string; syncReplicas: number } | undefined;

async function main(): Promise<number> {
  const [command, arg] = positionals;
  if (!command || opt.help) { console.log(USAGE); return command ? 0 : 1; }
  if (command === 'ha') return haCommand(arg, { ...(opt.dir ? { dir: opt.dir } : {}), ...(opt['base-port'] ? { basePort: Number(opt['base-port']) } : {}) });
  const config = loadConfig();
  const redis = connectRedis(config);
  // Connection errors during a failover are expected: commands wait and retry (REDIS_FAILOVER_WAIT_MS).
  redis.on('error', (err: Error) => { redisErrors.log(err); });
  // Commands that need no store (a token, the simulator, the HA topology) do not wait for one.
  if (!['token', 'simulate', 'chaos'].includes(command)) {
    const opened = await configureReplication(redis, config).catch((err: unknown) => { redis.disconnect(); throw err; });
    redisTopology = { mode: opened.mode, syncReplicas: opened.syncReplicas };
  }
  // CITIES narrows the reference cities this process serves (a smaller demo, the simulator).
  const only = config.CITIES.split(',').map((c) => c.trim()).filter(Boolean);
  const cities = new CityCatalog(only.length ? REFERENCE_CITIES.filter((c) => only.includes(c.id)) : REFERENCE_CITIES);
  const inventory = new Inventory(redis, {
    cities,
    holdTtlMs: config.HOLD_TTL_MS, maxLiveHoldsPerCustomer: config.MAX_LIVE_HOLDS_PER_CUSTOMER,
    holdLimits: { maxLiveHoldsTotal: config.MAX_LIVE_HOLDS_PER_CUSTOMER_TOTAL, holdsPerWindow: config.HOLDS_PER_MINUTE_PER_CUSTOMER, holdRateWindowMs: 60_000 },
    locks: new VehicleLocks({ maxQueue: config.LOCK_MAX_QUEUE, maxWaitMs: config.LOCK_MAX_WAIT_MS }),
  });
  const o = { ...(opt['idempotency-key'] ? { idempotencyKey: opt['idempotency-key'], actorId: 'cli' } : {}) };
  try {
    switch (command) {
      case 'serve': await serve(config, inventory, redis); break;
      case 'seed': print(await seedAll(inventory, redis, Number(opt['vehicles-per-city'] ?? 200), opt.city)); break;
      case 'durability': print(await inspectDurability(redis)); break;
      case 'token': {
        const role = need('--role', opt.role) as Role;
        if (!ROLES.includes(role)) throw new DomainError('VALIDATION', `--role must be one of ${ROLES.join(', ')}`, { field: 'role' });
        if (!config.JWT_SECRET) throw new DomainError('VALIDATION', 'set JWT_SECRET (the same as the server\'s) to mint tokens', { field: 'JWT_SECRET' });
        console.log(await mintToken(new TextEncoder().encode(config.JWT_SECRET), {
          sub: opt.sub ?? `${role}-cli`, role, ...(role === 'host' ? { hostId: need('--host-id', opt['host-id']) } : {}),
        }));
        break;
      }
      case 'migrate': {
        const result = await migrate(config.DATABASE_URL);
        await withPool(config, (pool) => recordCities(pool, inventory.cities.all()));
        print(result);
        break;
      }
      case 'worker': await runWorker(config, inventory, redis); break;
      case 'lag': print(await Promise.all(inventory.cities.all().map((c) => cityLag(redis, c.id)))); break;
      case 'rebuild': print(await withPool(config, (pool) => rebuildCity(redis, pool, need('--city', opt.city), config.CALENDAR_RETENTION_MS))); break;
      case 'reconcile': {
        const cities = opt.city ? [opt.city] : inventory.cities.all().map((c) => c.id);
        const reports = await withPool(config, async (pool) => {
          const out = [];
          for (const c of cities) out.push(await reconcileCity(redis, pool, c, { repair: opt.repair ?? false, retentionMs: config.CALENDAR_RETENTION_MS }));
          return out;
        });
        const drift = reports.reduce((n, r) => n + r.drift.length, 0);
        if (opt.json) print({ drift, cities: reports });
        else {
          console.log('city   vehicles(redis/pg)  entries(redis/pg)  drift  repaired(pg/redis)');
          for (const r of reports) console.log(`${r.city.padEnd(6)} ${`${r.vehicles.redis}/${r.vehicles.pg}`.padEnd(19)} ${`${r.entries.redis}/${r.entries.pg}`.padEnd(18)} ${String(r.drift.length).padEnd(6)} ${r.repaired.toPg}/${r.repaired.toRedis}`);
          for (const r of reports) for (const d of r.drift.slice(0, 20)) console.log(`  ${r.city} ${d.vehicleId} ${d.what}${d.entryId ? ` ${d.entryId}` : ''}`);
        }
        if (drift > 0 && !opt.repair) return 3;
        break;
      }
      case 'sweep': print(await sweepAllCities(inventory)); break;
      case 'trim': print({ removed: await trimAllCities(inventory, { retentionMs: config.CALENDAR_RETENTION_MS, syncedThrough: (city) => syncedThrough(redis, city) }) }); break;
      case 'simulate': {
        redis.disconnect();
        const { simulate, DEFAULT_SIM } = await import('../sim/simulate.ts');
        const { report, ok } = await simulate({
          ...DEFAULT_SIM,
          ...(opt.cities ? { cities: Number(opt.cities) } : {}),
          ...(opt['vehicles-per-city'] ? { vehiclesPerCity: Number(opt['vehicles-per-city']) } : {}),
          ...(opt.duration ? { durationMs: duration(opt.duration) } : {}),
          ...(opt.rate ? { rate: Number(opt.rate) } : {}),
          ...(opt.concurrency ? { concurrency: Number(opt.concurrency) } : {}),
          ...(opt.seed ? { seed: Number(opt.seed) } : {}),
          ...(opt.out ? { out: opt.out } : {}),
          ...(process.env.SIM_REDIS_URL ? { redisUrl: process.env.SIM_REDIS_URL } : {}),
          ...(process.env.SIM_DATABASE_URL ? { databaseUrl: process.env.SIM_DATABASE_URL } : {}),
          progress: !opt.json,
        });
        const summary = { throughput: report.throughput, totals: report.totals, invariants: report.invariants, conflicts: report.conflicts, endpoints: report.endpoints };
        print(opt.json ? report : summary);
        console.error(`report: ${path.join(opt.out ?? DEFAULT_SIM.out, 'report.html')} (and report.json); invariants ${ok ? 'hold' : 'VIOLATED'}`);
        return ok ? 0 : 1;
      }
      case 'chaos': {
        redis.disconnect();
        const { chaos, DEFAULT_CHAOS, FAULTS } = await import('../sim/chaos.ts');
        const faults = opt.faults ? opt.faults.split(',') : DEFAULT_CHAOS.faults;
        for (const f of faults) if (!(FAULTS as readonly string[]).includes(f)) throw new DomainError('VALIDATION', `--faults: one of ${FAULTS.join(', ')}`, { field: 'faults' });
        const { report, ok } = await chaos({
          ...DEFAULT_CHAOS, faults: faults as typeof DEFAULT_CHAOS.faults,
          ...(opt.duration ? { durationMs: duration(opt.duration) } : {}),
          ...(opt['fault-every'] ? { faultEveryMs: duration(opt['fault-every']) } : {}),
          ...(opt.cities ? { cities: Number(opt.cities) } : {}),
          ...(opt['vehicles-per-city'] ? { vehiclesPerCity: Number(opt['vehicles-per-city']) } : {}),
          ...(opt.rate ? { rate: Number(opt.rate) } : {}),
          ...(opt.seed ? { seed: Number(opt.seed) } : {}),
          ...(opt.out ? { out: opt.out } : {}),
          ...(opt['update-doc'] ? { updateDoc: opt['update-doc'] } : {}),
          progress: !opt.json,
        });
        const { endpoints: _e, ...summary } = report;
        print(opt.json ? report : summary);
        console.error(`report: ${path.join(opt.out ?? DEFAULT_CHAOS.out, 'report.html')}; acknowledged writes lost, overlaps, drift: ${ok ? 'none' : 'SEE THE REPORT'}`);
        return ok ? 0 : 1;
      }
      case 'offers': print(await conflictDesk(config, inventory, redis).offersOf(need('bookingId', arg))); break;
      case 'accept': print(await conflictDesk(config, inventory, redis).accept(need('bookingId', arg), need('--offer', opt.offer), undefined, o)); break;
      case 'decline': print(await conflictDesk(config, inventory, redis).decline(need('bookingId', arg), undefined, o)); break;
      case 'resolve':
      case 'validate': {
        // Both search for alternatives: they need a loaded read model.
        const model = new ReadModel(redis, inventory, opt.city ? new CityCatalog(inventory.cities.all().filter((c) => c.id === opt.city)) : inventory.cities);
        await model.start();
        const desk = new ConflictDesk(redis, inventory, model, offerPolicy(config));
        try {
          if (command === 'resolve') print(await desk.resolve(need('bookingId', arg)));
          else {
            const out = [];
            for (const c of inventory.cities.all().filter((x) => !opt.city || x.id === opt.city)) out.push({ city: c.id, ...await desk.postValidate(c.id) });
            print(out);
          }
        } finally {
          await model.stop();
        }
        break;
      }
      case 'vehicle': print(await inventory.getVehicleState(need('vehicleId', arg))); break;
      case 'counters': print(await redis.hgetall(keys.counters(need('--city', opt.city)))); break;
      case 'events': {
        const raw = await redis.xrange(keys.events(need('--city', opt.city)), opt.after ? `(${opt.after}` : '-', '+', 'COUNT', Number(opt.limit ?? 50));
        print(raw.map(([id, f]) => ({ id, ...Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])) })));
        break;
      }
      case 'hold': print(await inventory.placeHold({ vehicleId: need('--vehicle', opt.vehicle), customerId: need('--customer', opt.customer), from: time('from', opt.from), to: time('to', opt.to) }, o)); break;
      case 'book':
        print(opt.hold
          ? await inventory.book({ holdId: opt.hold, customerId: need('--customer', opt.customer) }, o)
          : await inventory.book({ vehicleId: need('--vehicle', opt.vehicle), customerId: need('--customer', opt.customer), from: time('from', opt.from), to: time('to', opt.to), allowPast: opt['allow-past'] ?? false }, o));
        break;
      case 'release': print(await inventory.releaseHold(need('holdId', arg), undefined, o)); break;
      case 'cancel': print(await inventory.cancelBooking(need('bookingId', arg), undefined, 'ops', o)); break;
      case 'start': print(await inventory.startTrip(need('bookingId', arg), undefined, o)); break;
      case 'complete': print(await inventory.completeTrip(need('bookingId', arg), undefined, o)); break;
      case 'extend': print(await inventory.extendBooking(need('bookingId', arg), undefined, time('to', opt.to), opt.force ?? false, o)); break;
      case 'block': {
        const reason = need('--reason', opt.reason) as BlockReason;
        if (!BLOCK_REASONS.includes(reason)) throw new DomainError('VALIDATION', '--reason must be accident, maintenance or host', { field: 'reason' });
        print(await inventory.placeBlock({
          vehicleId: need('--vehicle', opt.vehicle), reason,
          ...(opt.from ? { from: time('from', opt.from) } : {}), ...(opt.to ? { to: time('to', opt.to) } : {}),
          ...(opt.note ? { note: opt.note } : {}), allowPast: true,
        }, o));
        break;
      }
      case 'unblock': print(await inventory.removeBlock(need('blockId', arg), o)); break;
      case 'delist': print(await inventory.delist(need('vehicleId', arg), 'cli', o)); break;
      case 'relist': print(await inventory.relist(need('vehicleId', arg), 'cli', o)); break;
      default: console.error(`unknown command ${command}\n\n${USAGE}`); return 1;
    }
    return 0;
  } finally {
    redis.disconnect();
  }
}

main().then((code) => { process.exitCode = code; }).catch((err: unknown) => {
  if (err instanceof DomainError) { console.error(`${err.code}: ${err.message}`); process.exitCode = 2; return; }
  if (err instanceof ConfigError) { console.error(err.message); process.exitCode = 78; return; }
  console.error(err);
  process.exitCode = 1;
});
