/**
 * A real PostgreSQL streaming replica (pg_basebackup -R, hot standby): the sync writes the
 * primary; the analytics read the replica (DATABASE_REPLICA_URL) and see the primary's data once
 * it has streamed over; the replica refuses writes, so nothing else can have gone there.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { buildApp } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { recordCities } from '../../src/services/durable.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startPgCluster, startPgReplica, type PgCluster } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let primary: PgCluster;
let replica: PgCluster;
let server: RedisServer;
let redis: Redis;
let writes: pg.Pool;
let reads: pg.Pool;
const city = testCity();

before(async () => {
  primary = await startPgCluster();
  const fleetUrl = primary.url.replace(/\/postgres$/, '/fleet');
  await migrate(fleetUrl);
  replica = await startPgReplica(primary);
  writes = new pg.Pool({ connectionString: fleetUrl, max: 2 });
  reads = new pg.Pool({ connectionString: replica.url.replace(/\/postgres$/, '/fleet'), max: 2 });
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
});

after(async () => {
  redis.disconnect();
  await server.stop();
  await writes.end();
  await reads.end();
  await replica.destroy();
  await primary.destroy();
});

test('the sync writes the primary; analytics read the streaming replica', { timeout: 120_000 }, async () => {
  assert.equal((await reads.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true, 'a hot standby');
  await assert.rejects(reads.query('CREATE TABLE nope (x int)'), /read-only/);

  await recordCities(writes, [city]);
  const inv = newInventory(redis, city);
  const v = await addVehicle(inv, city);
  const day = Math.floor(futureHour(48 * HOUR) / (24 * HOUR)) * 24 * HOUR;
  await inv.book({ vehicleId: v, customerId: 'alice', from: day + 10 * HOUR, to: day + 16 * HOUR });
  await new SyncWorker(redis, writes, catalogWith(city)).drain();

  // Streaming replication: the rows arrive on the replica shortly after the primary commits.
  for (let i = 0; (await reads.query('SELECT count(*)::int AS n FROM bookings')).rows[0].n < 1; i++) {
    assert.ok(i < 100, 'the replica caught up');
    await sleep(50);
  }

  const secret = new TextEncoder().encode('replica-test-secret-of-32-bytes-or-more');
  // The main pool points at a dead port: any read sent there instead of the replica would fail.
  const nowhere = new pg.Pool({
    connectionString: 'postgres://postgres@127.0.0.1:1/fleet',
    max: 1,
    connectionTimeoutMillis: 500,
  });
  const app = await buildApp({
    inventory: inv,
    redis,
    pool: nowhere,
    replicaPool: reads,
    authenticate: authenticator({ secret }),
  });
  try {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const token = await mintToken(secret, { sub: 'olga', role: 'ops' });
    const q = new URLSearchParams({
      city: city.id,
      from: new Date(day).toISOString(),
      to: new Date(day + 24 * HOUR).toISOString(),
      granularity: 'day',
    });
    const r = await fetch(`${base}/v1/analytics/utilization?${q}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    const bucket = ((await r.json()) as { buckets: { vehicles: number; bookedHours: number; utilization: number }[] })
      .buckets[0]!;
    assert.deepEqual([bucket.vehicles, bucket.bookedHours, bucket.utilization], [1, 6, 0.25]);
    const c = await fetch(
      `${base}/v1/analytics/conflicts?${new URLSearchParams({ from: new Date(day - 7 * 24 * HOUR).toISOString(), to: new Date(day).toISOString() })}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal(c.status, 200, await c.clone().text());
  } finally {
    await app.close();
    await nowhere.end();
  }
});
