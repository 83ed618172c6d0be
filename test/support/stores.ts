/** Both stores for a test file: a private Redis and a migrated throw-away database with a pool. */
import { createPool } from '../../src/pg/pool.ts';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { migrate } from '../../src/pg/migrate.ts';
import { connect } from './engine.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { startRedis, type RedisServer } from './redis.ts';

export interface Stores {
  server: RedisServer;
  redis: Redis;
  db: TestDatabase;
  pool: pg.Pool;
  stop(): Promise<void>;
}

export async function startStores(opts: { redis?: Parameters<typeof startRedis>[0] } = {}): Promise<Stores> {
  const server = await startRedis(opts.redis);
  const redis = connect(server.url);
  const db = await createTestDatabase();
  await migrate(db.url);
  const pool = createPool(db.url, { max: 4 });
  return {
    server,
    redis,
    db,
    pool,
    async stop() {
      redis.disconnect();
      await pool.end();
      await db.drop();
      await server.stop();
    },
  };
}
