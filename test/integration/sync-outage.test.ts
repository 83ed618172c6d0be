/**
 * PostgreSQL goes away for 30 s (`pg_ctl -m immediate`, a private cluster) under a booking load:
 * commands keep succeeding (they never touch PostgreSQL), the sync worker backs off instead of
 * spinning, and after the restart the backlog drains with nothing lost.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { DomainError } from '../../src/domain/errors.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { keys } from '../../src/redis/keys.ts';
import { reconcileCity } from '../../src/services/durable.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { startPgCluster, type PgCluster } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, addVehicle, catalogWith, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const OUTAGE_MS = 30_000;

let server: RedisServer;
let redis: Redis;
let cluster: PgCluster;

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  cluster = await startPgCluster();
});
after(async () => {
  redis.disconnect();
  await cluster.destroy();
  await server.stop();
});

test('PostgreSQL down for 30 s under load: bookings keep succeeding, the backlog drains, nothing is lost', {
  timeout: 180_000,
}, async () => {
  const url = cluster.url.replace(/\/postgres$/, '/fleet');
  await migrate(url);
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2_000, query_timeout: 10_000 });
  pool.on('error', () => {}); // idle clients die with the server: expected here
  const city = testCity();
  const inv = newInventory(redis, city);
  const vehicles: string[] = [];
  for (let i = 0; i < 50; i++) vehicles.push(await addVehicle(inv, city));
  const worker = new SyncWorker(redis, pool, catalogWith(city), { batchSize: 200, claimIdleMs: 1_000 });
  worker.start();

  let phase: 'before' | 'outage' | 'after' = 'before';
  const ok = { before: 0, outage: 0, after: 0 };
  let loading = true;
  const t = futureHour();
  const load = (async () => {
    for (let slot = 0; loading; slot++) {
      const from = t + Math.floor(slot / vehicles.length) * 2 * HOUR;
      try {
        await inv.book({ vehicleId: vehicles[slot % vehicles.length]!, customerId: 'c1', from, to: from + HOUR });
        ok[phase]++;
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
      if (slot % 20 === 0) await sleep(10);
    }
  })();

  let peakEvents = 0;
  let peakSeconds = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [lag] = await worker.lag();
      peakEvents = Math.max(peakEvents, lag?.eventsBehind ?? 0);
      peakSeconds = Math.max(peakSeconds, lag?.secondsBehind ?? 0);
      await sleep(200);
    }
  })();

  let drainMs = 0;
  let retriesDuring = 0;
  try {
    await sleep(3_000);
    await cluster.stopImmediate();
    phase = 'outage';
    const retriesBefore = worker.stats.retries;
    await sleep(OUTAGE_MS);
    retriesDuring = worker.stats.retries - retriesBefore;
    await cluster.start();
    const restarted = Date.now();
    phase = 'after';
    await sleep(2_000);
    loading = false;
    await load;
    // Drain: the running worker catches up by itself.
    for (;;) {
      const [lag] = await worker.lag();
      if (lag?.eventsBehind === 0) break;
      await sleep(100);
    }
    drainMs = Date.now() - restarted;
  } finally {
    // Whatever happened, stop every loop: a failure must report, never hang the run.
    loading = false;
    sampling = false;
    await Promise.allSettled([load, sampler]);
    await worker.stop();
  }
  console.log(
    `outage: bookings before/during/after = ${ok.before}/${ok.outage}/${ok.after}; peak lag ${peakEvents} events, ${peakSeconds.toFixed(1)} s; drained ${(drainMs / 1000).toFixed(1)} s after restart; ${retriesDuring} backed-off retries in ${OUTAGE_MS / 1000} s`,
  );
  assert.ok(ok.outage > 100, 'bookings kept succeeding while PostgreSQL was down');
  assert.ok(retriesDuring < OUTAGE_MS / 100, `backed off, no tight loop (${retriesDuring} retries)`);
  assert.ok(peakSeconds >= OUTAGE_MS / 1000 - 2, 'the lag showed the outage');
  const streamLength = await redis.xlen(keys.events(city.id));
  const counted = await pool.query<{ n: string; applied: string }>(
    'SELECT (SELECT count(*) FROM events WHERE city = $1) AS n, (SELECT applied FROM sync_cursors WHERE city = $1) AS applied',
    [city.id],
  );
  assert.equal(Number(counted.rows[0]!.n), streamLength, 'nothing lost');
  assert.equal(Number(counted.rows[0]!.applied), streamLength, 'nothing applied twice');
  assert.deepEqual((await reconcileCity(redis, pool, city.id)).drift, [], 'zero drift');
  await pool.end();
});
