/** The test spawners themselves: a crash-safe Redis, a throw-away database, a private cluster. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startRedis } from '../support/redis.ts';
import { createTestDatabase, startPgCluster } from '../support/postgres.ts';

test('a spawned redis keeps an acknowledged write across kill -9 (AOF, appendfsync always)', async () => {
  const server = await startRedis({ external: 'never' });
  try {
    const a = new Redis(server.url);
    await a.set('k', 'v');
    a.disconnect();
    await server.kill9();
    await server.restart();
    const b = new Redis(server.url);
    assert.equal(await b.get('k'), 'v');
    assert.deepEqual(await b.config('GET', 'appendfsync'), ['appendfsync', 'always']);
    b.disconnect();
  } finally {
    await server.stop();
  }
});

test('a throw-away database is created and dropped', async () => {
  const db = await createTestDatabase();
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  assert.equal((await c.query('select current_database() as d')).rows[0].d, db.name);
  await c.end();
  await db.drop();
});

test('a private PostgreSQL cluster survives an immediate stop', { timeout: 60_000 }, async () => {
  const cluster = await startPgCluster();
  try {
    const q = async (sql: string) => {
      const c = new pg.Client({ connectionString: cluster.url });
      await c.connect();
      try {
        return await c.query(sql);
      } finally {
        await c.end();
      }
    };
    await q('create table t (x int); insert into t values (1)');
    await cluster.stopImmediate();
    await cluster.start();
    assert.equal((await q('select count(*)::int as n from t')).rows[0].n, 1);
  } finally {
    await cluster.destroy();
  }
});
