/**
 * PostgreSQL that follows a promotion (issue 10): the sync writes through a multi-host URL
 * (`target_session_attrs=read-write`) while bookings flow. The asynchronous standby falls behind
 * (stopped for a while), then the primary crashes and the standby is promoted without the last
 * transactions. The sync must notice that its cursor went back, replay the lost events from the
 * city stream, and end with every acknowledged booking in the promoted database; the analytics
 * (DATABASE_REPLICA_URL, `prefer-standby`, no standby left) answer from it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { buildApp } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { pgPromote, pgStart, pgStop } from '../../src/ha/local.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { createPool, type FollowingPool } from '../../src/pg/pool.ts';
import { recordCities } from '../../src/services/durable.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startPgCluster, startPgReplica, type PgCluster } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let primary: PgCluster;
let standby: PgCluster;
let server: RedisServer;
let redis: Redis;
let writes: FollowingPool;
let reads: FollowingPool;
const city = testCity();

before(async () => {
  primary = await startPgCluster();
  standby = await startPgReplica(primary);
  const hosts = `127.0.0.1:${primary.port},127.0.0.1:${standby.port}`;
  // The standby first: the writers must skip it while it is one, and land on it once promoted.
  const url = `postgres://postgres@127.0.0.1:${standby.port},127.0.0.1:${primary.port}/fleet?target_session_attrs=read-write`;
  await migrate(url);
  writes = createPool(url, { max: 3, connectionTimeoutMillis: 2_000 });
  writes.on('error', () => {});
  reads = createPool(`postgres://postgres@${hosts}/fleet?target_session_attrs=prefer-standby`, {
    max: 2,
    connectionTimeoutMillis: 2_000,
  });
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
});

after(async () => {
  redis.disconnect();
  await server.stop();
  await writes.end();
  await reads.end();
  await standby.destroy();
  await primary.destroy();
});

const asPgNode = (c: PgCluster) => ({ port: c.port, dataDir: c.dataDir, log: `${c.dataDir}/../pg.log` });

test('primary crashed under load, a lagging standby promoted: the sync replays what it lost, nothing acknowledged is missing', {
  timeout: 180_000,
}, async () => {
  await recordCities(writes, [city]);
  const inv = newInventory(redis, city);
  const vehicles: string[] = [];
  for (let i = 0; i < 20; i++) vehicles.push(await addVehicle(inv, city));
  const sync = new SyncWorker(redis, writes, catalogWith(city), { batchSize: 50 });
  sync.start();

  const acknowledged: string[] = [];
  const starts: number[] = [];
  let loading = true;
  const t = futureHour(HOUR);
  const load = (async () => {
    for (let k = 0; loading; k++) {
      const from = t + Math.floor(k / vehicles.length) * 2 * HOUR;
      try {
        acknowledged.push(
          (
            await inv.book({
              vehicleId: vehicles[k % vehicles.length]!,
              customerId: `c${k % 7}`,
              from,
              to: from + HOUR,
            })
          ).booking.id,
        );
        starts.push(from);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
      await sleep(2);
    }
  })();

  await sleep(1_500);
  // The standby stops streaming (it falls behind); the primary keeps taking the sync's batches.
  await pgStop(asPgNode(standby), 'fast');
  const behindFrom = acknowledged.length;
  await sleep(2_000);
  const syncedOnPrimary = Number((await writes.query('SELECT count(*)::int AS n FROM bookings')).rows[0].n);
  // The primary crashes; the standby comes back and is promoted without the last transactions.
  await primary.stopImmediate();
  await pgStart(asPgNode(standby), '-c hot_standby=on');
  await pgPromote(asPgNode(standby));
  console.log(
    `standby stopped after ${behindFrom} bookings; the primary had ${syncedOnPrimary} synced when it crashed`,
  );
  await sleep(2_000);
  loading = false;
  await load;
  await sync.drain(60_000);
  await sync.stop();

  assert.ok(sync.stats.rewinds >= 1, 'the sync noticed PostgreSQL lost applied batches');
  assert.ok(sync.stats.replayed > 0, `and replayed them from the stream (${sync.stats.replayed})`);
  const { rows } = await writes.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1)', [acknowledged]);
  const present = new Set(rows.map((r) => r.id));
  const missing = acknowledged.filter((id) => !present.has(id));
  console.log(
    `${acknowledged.length} acknowledged, ${sync.stats.replayed} events replayed after the promotion, ${missing.length} missing`,
  );
  assert.deepEqual(missing, [], 'every acknowledged booking is in the promoted database');
  assert.equal(
    (await writes.query('SELECT pg_is_in_recovery() AS r')).rows[0].r,
    false,
    'the writers are on the promoted standby',
  );
  assert.equal(writes.writer?.port, standby.port);

  const secret = new TextEncoder().encode('pg-failover-secret-of-32-bytes-or-more');
  const app = await buildApp({
    inventory: inv,
    redis,
    pool: writes,
    replicaPool: reads,
    authenticate: authenticator({ secret }),
  });
  try {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const token = await mintToken(secret, { sub: 'olga', role: 'ops' });
    const day = Math.floor(t / (24 * HOUR)) * 24 * HOUR;
    const q = new URLSearchParams({
      city: city.id,
      from: new Date(day).toISOString(),
      to: new Date(day + 7 * 24 * HOUR).toISOString(),
      granularity: 'day',
    });
    const r = await fetch(`${base}/v1/analytics/utilization?${q}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    const buckets = ((await r.json()) as { buckets: { bookedHours: number }[] }).buckets;
    const inWindow = starts.filter((s) => s >= day && s < day + 7 * 24 * HOUR).length;
    assert.equal(
      buckets.reduce((n, b) => n + b.bookedHours, 0),
      inWindow,
      'the analytics count every acknowledged booking of the window',
    );
  } finally {
    await app.close();
  }
});
