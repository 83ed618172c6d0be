/**
 * The sync worker as `fleet worker` runs it (src/cli/main.ts runWorker): every city stream into
 * PostgreSQL through the consumer group, batches of 500, a pool of 4. Its own process, beside the
 * API process, as in a deployment.
 *
 * Env: REDIS_URL, DATABASE_URL (migrated here). Started by bench/side-by-side.ts (IPC).
 */
import pg from 'pg';
import { migrate } from '../src/pg/migrate.ts';
import { createRedis } from '../src/redis/connection.ts';
import { recordCities } from '../src/services/durable.ts';
import { Inventory } from '../src/services/inventory.ts';
import { SyncWorker } from '../src/workers/sync.ts';
import { cpuMs, serveParent } from './lib/child.ts';

const url = process.env.DATABASE_URL ?? '';
await migrate(url);
const redis = createRedis({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const inventory = new Inventory(redis);
const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
await recordCities(pool, inventory.cities.all());
const worker = new SyncWorker(redis, pool, inventory.cities, { batchSize: 500 });
worker.start();

serveParent(
  '',
  {
    cpu: () => cpuMs(),
    stats: () => worker.stats,
  },
  async () => {
    await worker.stop();
    await pool.end();
    redis.disconnect();
  },
);
