/**
 * How `serve` and `worker` put the service together from the configuration: pools, the sync
 * worker, the failover monitor, the offer policy, the metrics port, the JWT secret.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type pg from 'pg';
import type { Logger } from 'pino';
import { atRiskPolicy, learningPolicy, offerPolicy, reservePolicy, type Config } from '../config.ts';
import { CityCatalog } from '../domain/cities.ts';
import { registry } from '../metrics.ts';
import { createPool, type FollowingPool } from '../pg/pool.ts';
import { readCityCounts } from '../redis/counters.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { ConflictDesk } from '../services/conflicts.ts';
import { seedCity } from '../services/demo.ts';
import { verifyCity, type FailoverCause } from '../services/failover.ts';
import type { Inventory } from '../services/inventory.ts';
import { ReadModel } from '../services/read-model.ts';
import { IncentiveLearner } from '../services/incentives.ts';
import { LateReturnWatch } from '../services/late-returns.ts';
import { ReservePlanner } from '../services/reserve.ts';
import { ConflictWorker } from '../workers/resolver.ts';
import { survived } from '../log.ts';
import { whenStoresAnswer } from './boot.ts';
import { FailoverMonitor } from '../workers/failover-monitor.ts';
import { SyncWorker, cityLag, type Failpoint } from '../workers/sync.ts';
import { WebhookDispatcher } from '../workers/webhooks.ts';
import { EventMatcher, WebhookDesk } from '../services/webhooks.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export async function seedAll(inventory: Inventory, redis: RedisConnection, perCity: number, only?: string) {
  const cities = inventory.cities.all().filter((c) => !only || c.id === only);
  const started = Date.now();
  const reports = [];
  for (const c of cities) reports.push(await seedCity(inventory, redis, c, perCity));
  return {
    cities: reports.filter((r) => !r.skipped).length,
    skipped: reports.filter((r) => r.skipped).length,
    vehicles: reports.reduce((a, r) => a + r.vehicles, 0),
    ms: Date.now() - started,
  };
}

export function conflictDesk(config: Config, inventory: Inventory, redis: RedisConnection): ConflictDesk {
  // Reading, accepting and declining offers never searches: the read model stays unloaded.
  return new ConflictDesk(redis, inventory, new ReadModel(redis, inventory), offerPolicy(config));
}

/** A desk whose read model is loaded (resolving searches for alternatives), for the length of `fn`. */
export async function withConflictDesk<T>(
  config: Config,
  inventory: Inventory,
  redis: RedisConnection,
  city: string | undefined,
  fn: (desk: ConflictDesk) => Promise<T>,
): Promise<T> {
  const cities = city ? new CityCatalog(inventory.cities.all().filter((c) => c.id === city)) : inventory.cities;
  const model = new ReadModel(redis, inventory, cities);
  await model.start();
  try {
    return await fn(new ConflictDesk(redis, inventory, model, offerPolicy(config)));
  } finally {
    await model.stop();
  }
}

export function newPool(config: Config, log: Logger, url = config.DATABASE_URL): FollowingPool {
  // The sync's parallel cities, the webhook dispatcher's lock, the resolver and analytics share it.
  const pool = createPool(url, { max: 8, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  // Idle clients die with the server; the sync backs off and reconnects.
  pool.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost'));
  return pool;
}

export function newSyncWorker(
  config: Config,
  redis: RedisConnection,
  pool: FollowingPool,
  inventory: Inventory,
  log: Logger,
): SyncWorker {
  const points = new Map(
    config.FLEET_FAILPOINTS.split(',')
      .filter(Boolean)
      .map((p) => {
        const [name, prob] = p.split(':');
        return [name as Failpoint, Number(prob ?? 1)] as const;
      }),
  );
  const sync = new SyncWorker(redis, pool, inventory.cities, {
    batchSize: config.SYNC_BATCH_SIZE,
    parallel: config.SYNC_PARALLEL,
    lingerMs: config.SYNC_LINGER_MS,
    claimIdleMs: config.SYNC_CLAIM_IDLE_MS,
    maxAttempts: config.SYNC_MAX_ATTEMPTS,
    retentionMs: config.STREAM_RETENTION_MS,
    remoteApply: config.DR_ACK === 'remote',
    log,
    ...(points.size
      ? {
          failpoint: (where: Failpoint) => {
            if (Math.random() < (points.get(where) ?? 0)) {
              process.stderr.write(`FAILPOINT ${where}\n`);
              process.kill(process.pid, 'SIGKILL');
            }
          },
        }
      : {}),
  });
  // A promoted standby may lack the last applied batches: check the cursors against the streams again.
  pool.onWriterChange(() => sync.postgresChanged());
  return sync;
}

export function jwtSecret(config: Config, log: Logger): Uint8Array {
  if (config.JWT_SECRET) return new TextEncoder().encode(config.JWT_SECRET);
  const dev = randomBytes(32).toString('base64url');
  log.warn('JWT_SECRET is unset: using a generated development secret (tokens die with this process)');
  process.env.JWT_SECRET = dev;
  return new TextEncoder().encode(dev);
}

/** `GET /metrics` on METRICS_PORT, when set. */
export function serveMetrics(
  config: Config,
  log: Logger,
  metrics: () => Promise<string> = () => registry.metrics(),
): { close(): void } {
  if (!config.METRICS_PORT) return { close() {} };
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  }).listen(config.METRICS_PORT, () => log.info({ port: config.METRICS_PORT }, 'metrics at /metrics'));
  return { close: () => server.close() };
}

export function newFailoverMonitor(
  config: Config,
  redis: RedisConnection,
  pool: FollowingPool,
  inventory: Inventory,
  log: Logger,
  postValidate?: (city: string) => Promise<{ conflicted: string[] }>,
): FailoverMonitor {
  const verify = (city: string, cause: FailoverCause) =>
    verifyCity(
      {
        redis,
        pool,
        inventory,
        log,
        retentionMs: config.CALENDAR_RETENTION_MS,
        ...(postValidate ? { postValidate } : {}),
        drained: (c) => waitForSync(redis, c, 30_000),
      },
      city,
      cause,
    );
  return new FailoverMonitor(redis, inventory.cities, verify, { everyMs: config.FAILOVER_CHECK_MS, log, pool });
}

/** Until PostgreSQL has every event of the city, or `timeoutMs`. */
export async function waitForSync(redis: RedisConnection, city: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await cityLag(redis, city)).eventsBehind > 0 && Date.now() < deadline) await sleep(200);
}

export async function withPool<T>(config: Config, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = createPool(config.DATABASE_URL, { max: 2 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

export async function summarize(inventory: Inventory, redis: RedisConnection) {
  const totals: Record<string, number> = {};
  for (const c of inventory.cities.all()) {
    for (const [status, n] of Object.entries((await readCityCounts(redis, c.id)).byStatus))
      totals[status] = (totals[status] ?? 0) + n;
  }
  return { byStatus: totals };
}

/** The webhook dispatcher: one leader at a time across every process that runs one. */
export function newWebhookDispatcher(
  config: Config,
  redis: RedisConnection,
  pool: pg.Pool,
  inventory: Inventory,
  log: Logger,
): WebhookDispatcher {
  return new WebhookDispatcher(redis, pool, inventory, {
    retry: {
      baseMs: config.WEBHOOK_RETRY_BASE_MS,
      maxMs: config.WEBHOOK_RETRY_MAX_MS,
      horizonMs: config.WEBHOOK_RETRY_HORIZON_MS,
    },
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE === 1,
    pollMs: config.WEBHOOK_POLL_MS,
    log,
  });
}

export function newWebhookDesk(config: Config, pool: pg.Pool, inventory: Inventory): WebhookDesk {
  return new WebhookDesk(pool, inventory.cities, new EventMatcher(inventory), {
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE === 1,
    secretGraceMs: config.WEBHOOK_SECRET_GRACE_MS,
  });
}

/**
 * The conflict resolution of a deployment (one per deployment, in `fleet serve`'s primary): its own
 * read model finds the alternatives; the learning incentives read every process's outcomes from
 * PostgreSQL (again every 5 minutes); the late-return watch and, with RESERVE=on, the reserve.
 */
export async function startConflictResolution(
  config: Config,
  redis: RedisConnection,
  pool: pg.Pool,
  inventory: Inventory,
  log: Logger,
): Promise<{ desk: ConflictDesk; stop(): Promise<void> }> {
  const model = new ReadModel(redis, inventory);
  await whenStoresAnswer("the resolver's read model", () => model.start(), log);
  const learner = new IncentiveLearner(pool, learningPolicy(config));
  learner.enabled = config.INCENTIVE_LEARNING === 1;
  await learner.refresh().catch((err: unknown) => log.warn({ err }, 'incentive levels not read yet'));
  const learnerTimer = setInterval(
    () => void learner.refresh().catch((err) => survived('incentives.refresh', err)),
    5 * 60_000,
  );
  learnerTimer.unref();
  const desk = new ConflictDesk(redis, inventory, model, offerPolicy(config), learner);
  const worker = new ConflictWorker(redis, desk, inventory.cities, {
    validateEveryMs: config.POST_VALIDATION_INTERVAL_MS,
    lapseEveryMs: config.RESOLVER_LAPSE_INTERVAL_MS,
    claimIdleMs: config.RESOLVER_CLAIM_IDLE_MS,
    concurrency: config.RESOLVER_CONCURRENCY,
    atRiskEveryMs: config.AT_RISK_SCAN_INTERVAL_MS,
    ...(config.RESERVE === 'on'
      ? {
          reserve: new ReservePlanner(redis, inventory, model, reservePolicy(config), desk.policy),
          reserveEveryMs: config.RESERVE_EVERY_MS,
        }
      : {}),
    watch: new LateReturnWatch(redis, inventory, model, desk, pool, atRiskPolicy(config)),
    log,
  });
  worker.start();
  return {
    desk,
    async stop() {
      clearInterval(learnerTimer);
      await worker.stop();
      await model.stop();
    },
  };
}
