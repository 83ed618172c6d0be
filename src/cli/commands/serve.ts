/**
 * `fleet serve [--demo]`: the whole service. The primary process migrates, seeds the demo, runs the
 * singletons (sync worker, sweeper, resolver, failover monitor) and forks one API process per core
 * (WEB_CONCURRENCY); each API process has its own read model and WebSocket hub (cluster.ts).
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { buildApp } from '../../api/app.ts';
import { authenticator, mintDemoTokens } from '../../api/auth.ts';
import { listen } from '../../api/server.ts';
import { ConfigError, offerPolicy } from '../../config.ts';
import { migrate } from '../../pg/migrate.ts';
import type { FollowingPool } from '../../pg/pool.ts';
import { synchronousStandbyNames } from '../../pg/settings.ts';
import { inspectDurability } from '../../redis/connection.ts';
import { ConflictDesk } from '../../services/conflicts.ts';
import { recordCities } from '../../services/durable.ts';
import type { Inventory } from '../../services/inventory.ts';
import { ReadModel } from '../../services/read-model.ts';
import { RemoteAcks } from '../../services/remote-acks.ts';
import { startSweeper } from '../../workers/sweeper.ts';
import { cityLag, syncedThrough } from '../../workers/sync.ts';
import { ApiWorkers, apiWorkerChannel } from '../cluster.ts';
import { whenStoresAnswer } from '../boot.ts';
import type { CliContext, Command } from '../context.ts';
import {
  jwtSecret,
  newFailoverMonitor,
  newPool,
  newSyncWorker,
  newWebhookDesk,
  newWebhookDispatcher,
  seedAll,
  serveMetrics,
  startConflictResolution,
  summarize,
} from '../wiring.ts';

export const serveCommand: Command = { name: 'serve', run: serve, waitsForStores: true };

async function serve(ctx: CliContext): Promise<void> {
  const { config, inventory, redis, opt } = ctx;
  if (cluster.isWorker) return serveApiProcess(ctx);
  const log = pino({ level: config.LOG_LEVEL });
  await prepareStores({ config, inventory, redis, opt }, log);
  const pool = newPool(config, log);
  await whenStoresAnswer('PostgreSQL cities', () => recordCities(pool, inventory.cities.all()), log);
  if (config.DR_ACK === 'remote') await requireSynchronousStandby(pool, log);
  // SERVE_SYNC=0: the sync runs as its own process (`fleet worker`), supervised apart.
  const sync = config.SERVE_SYNC ? newSyncWorker(config, redis, pool, inventory, log) : undefined;
  sync?.start();
  const sweeper = startSweeper(inventory, {
    intervalMs: config.SWEEP_INTERVAL_MS,
    log,
    trim: {
      everyMs: config.TRIM_INTERVAL_MS,
      retentionMs: config.CALENDAR_RETENTION_MS,
      syncedThrough: (city) => syncedThrough(redis, city),
    },
  });
  // The resolver runs once, here (cli/wiring.ts: its read model, desk, learner, watch and reserve).
  const resolution = await startConflictResolution(config, redis, pool, inventory, log);
  const dispatcher = newWebhookDispatcher(config, redis, pool, inventory, log);
  dispatcher.start();
  // Failovers of either store are noticed here and the affected cities verified (docs/reliability.md).
  const monitor = newFailoverMonitor(config, redis, pool, inventory, log, (city) => resolution.desk.postValidate(city));
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
    api = await startApi(ctx, log, secret);
  }
  const metricsServer = serveMetrics(config, log, workers ? () => workers.metrics() : undefined);
  const url = api.url;
  const demo = await mintDemoTokens(secret, demoHostId(inventory));
  log.info({ url, docs: `${url}/docs`, processes }, 'API listening');
  console.log(
    `\nfleet-inventory API at ${url} on ${processes} process(es) (OpenAPI: ${url}/openapi.json, docs: ${url}/docs, live: ${url.replace('http', 'ws')}/v1/live)\nDemo tokens (24 h):\n  customer: ${demo.customer}\n  host:     ${demo.host}\n  ops:      ${demo.ops}\n  admin:    ${demo.admin}\nTry: curl -H "authorization: Bearer $TOKEN" ${url}/v1/cities\n`,
  );
  const summary = setInterval(() => {
    void summarize(inventory, redis)
      .then((s) => log.info(s, 'fleet status'))
      .catch((err: unknown) => log.error({ err }, 'summary failed'));
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
  await dispatcher.stop();
  await resolution.stop();
  await sweeper.stop();
  // Nothing writes any more: what the streams still hold goes to PostgreSQL before the sync stops
  // (a standby deployment stopped for a failback leaves nothing behind; docs/regions.md).
  await sync?.stop();
  await sync?.drain(15_000).catch((err: unknown) => log.warn({ err }, 'sync not drained at shutdown'));
  await pool.end();
  log.info('stopped');
}

/**
 * DR_ACK=remote promises that an acknowledged write is on the cross-region standby; without a
 * synchronous standby named on the primary, `remote_apply` would wait for nothing. Refused.
 */
async function requireSynchronousStandby(pool: FollowingPool, log: Logger): Promise<void> {
  const names = await whenStoresAnswer('PostgreSQL settings', () => synchronousStandbyNames(pool), log);
  if (!names)
    throw new ConfigError(
      'DR_ACK=remote needs the PostgreSQL primary to name its DR standby in synchronous_standby_names (docs/regions.md)',
    );
  log.info(
    { synchronous_standby_names: names },
    'DR_ACK=remote: writes are acknowledged once the DR standby applied them',
  );
}

/** Before anything serves: the durability check, the migrations and (demo) the seed, each waiting for its store. */
async function prepareStores(
  { config, inventory, redis, opt }: Pick<CliContext, 'config' | 'inventory' | 'redis' | 'opt'>,
  log: Logger,
) {
  const durability = await whenStoresAnswer('Redis durability check', () => inspectDurability(redis), log);
  if (durability.warning) log.warn({ durability }, `Redis durability: ${durability.warning}`);
  else log.info({ durability }, 'Redis durability: acknowledged writes survive a crash (AOF, appendfsync always)');
  log.info(
    await whenStoresAnswer('PostgreSQL migrations', () => migrate(config.DATABASE_URL), log),
    'PostgreSQL migrated',
  );
  if (opt.demo) {
    // API processes (forked below) and this one offer the demo identities to the console.
    process.env.DEMO = '1';
    config.DEMO = 1;
    const perCity = Number(opt['vehicles-per-city'] ?? 200);
    log.info({ perCity }, 'seeding demo fleets into empty cities');
    log.info(await whenStoresAnswer('demo seed', () => seedAll(inventory, redis, perCity), log), 'demo data ready');
  }
}

/** One API process: its own read model, WebSocket hub and connections; the port is shared. */
/** The demo host: the first host of the first city's seeded fleet. */
const demoHostId = (inventory: Inventory) => `host-${inventory.cities.all()[0]?.id ?? 'blr'}-1`;

async function startApi(
  { config, inventory, redis, regions, redisTopology }: CliContext,
  log: Logger,
  secret: Uint8Array,
  metrics?: () => Promise<string>,
) {
  await whenStoresAnswer('region routing', () => regions.refresh(), log);
  regions.start(log);
  const pool = newPool(config, log);
  const replicaPool = config.DATABASE_REPLICA_URL ? newPool(config, log, config.DATABASE_REPLICA_URL) : undefined;
  const readModel = new ReadModel(redis, inventory);
  await whenStoresAnswer('the read model', () => readModel.start(), log);
  // DR_ACK=remote: answers wait until the DR standby has applied the write (docs/regions.md).
  if (config.DR_ACK === 'remote') inventory.remoteAcks = new RemoteAcks(pool, config.DR_ACK_TIMEOUT_MS);
  const app = await buildApp({
    config,
    inventory,
    redis,
    pool,
    ...(replicaPool ? { replicaPool } : {}),
    readModel,
    ...(metrics ? { metrics } : {}),
    ...(redisTopology ? { redisTopology } : {}),
    regions,
    regionFanoutTimeoutMs: config.REGION_FANOUT_TIMEOUT_MS,
    conflicts: new ConflictDesk(redis, inventory, readModel, offerPolicy(config)),
    webhooks: newWebhookDesk(config, pool, inventory),
    ...(config.DEMO ? { demo: { secret, hostId: demoHostId(inventory) } } : {}),
    // API clients' tokens (POST /v1/oauth/token) are signed like the service's own.
    tokenSecret: secret,
    lag: () => Promise.all(inventory.cities.all().map((c) => cityLag(redis, c.id))),
    rateLimits: {
      customer: config.RATE_LIMIT_CUSTOMER,
      host: config.RATE_LIMIT_HOST,
      ops: config.RATE_LIMIT_OPS,
      admin: config.RATE_LIMIT_ADMIN,
      anonymous: config.RATE_LIMIT_ANONYMOUS,
    },
    rateLimitShare: config.RATE_LIMIT_LOCAL_SHARE,
    http: {
      headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnectionsPerIp: config.HTTP_MAX_CONNECTIONS_PER_IP,
    },
    live: {
      maxConnectionsPerCaller: config.WS_MAX_CONNECTIONS_PER_CALLER,
      messagesPerSecond: config.WS_MESSAGES_PER_SECOND,
      messageBurst: config.WS_MESSAGE_BURST,
      maxTopics: config.WS_MAX_TOPICS,
      highWaterBytes: config.WS_HIGH_WATER_BYTES,
      slowConsumerMs: config.WS_SLOW_CONSUMER_MS,
      heartbeatMs: config.WS_HEARTBEAT_MS,
      replayPageSize: config.WS_REPLAY_PAGE_SIZE,
    },
    authenticate: authenticator({ secret, ...(config.JWKS_URL ? { jwksUrl: config.JWKS_URL } : {}) }),
  });
  const url = (await listen(app, config.PORT)).replace('127.0.0.1', 'localhost');
  return {
    url,
    async close() {
      await app.close();
      regions.stop();
      await readModel.stop();
      await pool.end();
      await replicaPool?.end();
    },
  };
}

async function serveApiProcess(ctx: CliContext) {
  const { config, redis } = ctx;
  const log = pino({ level: config.LOG_LEVEL }).child({ process: 'api', pid: process.pid });
  const channel = apiWorkerChannel();
  // The primary passed its JWT secret down (generated or configured): every process checks the same tokens.
  const api = await startApi(ctx, log, new TextEncoder().encode(config.JWT_SECRET), channel.metrics);
  // Ctrl-C reaches every process of the group; the primary orders the shutdown either way.
  process.on('SIGINT', () => undefined);
  process.once('SIGTERM', () => {
    void api.close().then(() => process.exit(0));
  });
  await channel.shutdown;
  await api.close();
  redis.disconnect();
  process.exit(0);
}
