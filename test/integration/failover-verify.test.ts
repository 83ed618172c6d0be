/**
 * A write lost on purpose (issue 10): with replication effectively off (the replicas frozen, the
 * service not waiting for them), a booking and a new vehicle are acknowledged by the primary and
 * synced into PostgreSQL; then the primary and the frozen replicas are killed, the replicas come
 * back from their own AOF files, and one that never received the writes is promoted. On the new primary another customer books the same window. The failover monitor
 * notices the new primary; the verification restores the lost vehicle and the lost booking from
 * PostgreSQL — with their events — and the overlap becomes a conflict: the later-made booking
 * yields. The figures are published as `system.failover_verified`.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { haDown, haEnvironment, haUp, startRedisNode, type HaLayout } from '../../src/ha/local.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { keys } from '../../src/redis/keys.ts';
import { openRedis, type OpenedRedis } from '../../src/redis/topology.ts';
import { recordCities } from '../../src/services/durable.ts';
import { verifyCity } from '../../src/services/failover.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { FailoverMonitor } from '../../src/workers/failover-monitor.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, SEDAN, catalogWith, futureHour, newInventory, readEvents, testCity } from '../support/engine.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let layout: HaLayout;
let opened: OpenedRedis;
let db: TestDatabase;
let pool: pg.Pool;

before(async () => {
  layout = await haUp({ dir: await mkdtemp(path.join(tmpdir(), 'fleet-verify-')), postgres: false });
  // Replication off, as far as acknowledgements go: nothing waits for a replica.
  opened = await openRedis(loadConfig({ ...haEnvironment(layout), REDIS_SYNC_REPLICAS: '0' }));
  db = await createTestDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { max: 3 });
});
after(async () => {
  opened?.redis.disconnect();
  await pool?.end();
  await db?.drop();
  if (layout) await haDown(layout.dir);
});

async function primaryPort(): Promise<number> {
  const s = new Redis(layout.redis.sentinels[0]!.port, '127.0.0.1');
  try {
    return Number(((await s.call('SENTINEL', 'get-master-addr-by-name', layout.redis.master)) as string[])[1]);
  } finally {
    s.disconnect();
  }
}

test('a booking and a vehicle lost in a failover are restored from PostgreSQL, and the overlap becomes a conflict', {
  timeout: 120_000,
}, async () => {
  const redis = opened.redis as Redis;
  const city = testCity();
  const inv = newInventory(redis, city);
  await recordCities(pool, [city]);
  const sync = new SyncWorker(redis, pool, catalogWith(city));
  const v1 = (await inv.createVehicle(city.id, { ...SEDAN })).vehicleId;
  await sync.drain();
  const monitor = new FailoverMonitor(redis, catalogWith(city), (c, cause) =>
    verifyCity(
      {
        redis,
        pool,
        inventory: inv,
        postValidate: (x) => desk.postValidate(x),
      },
      c,
      cause,
    ),
  );
  const model = new ReadModel(redis, inv);
  await model.start();
  const desk = new ConflictDesk(redis, inv, model);
  await monitor.check(); // the primary as it is now

  // The replicas freeze: what the primary acknowledges now reaches PostgreSQL but no replica.
  const port = await primaryPort();
  const replicas = layout.redis.nodes.filter((n) => n.port !== port);
  for (const r of replicas) process.kill(r.pid!, 'SIGSTOP');
  const t = futureHour(24 * HOUR);
  const lost = await inv.book({ vehicleId: v1, customerId: 'first', from: t, to: t + 4 * HOUR });
  const v2 = (await inv.createVehicle(city.id, { ...SEDAN, make: 'Lost', model: 'Vehicle' })).vehicleId;
  await sync.drain();
  assert.equal(
    (await pool.query('SELECT count(*)::int AS n FROM bookings WHERE id = $1', [lost.booking.id])).rows[0].n,
    1,
    'PostgreSQL has the booking',
  );

  // The primary dies before anything replicated, and so do the replicas, with what sat unread in
  // their sockets; they come back from their own AOF files, and one of them is promoted.
  const old = layout.redis.nodes.find((n) => n.port === port)!;
  process.kill(old.pid!, 'SIGKILL');
  for (const r of replicas) process.kill(r.pid!, 'SIGKILL');
  for (const r of replicas) await startRedisNode(r, port);
  for (let i = 0; (await primaryPort()) === port; i++) {
    assert.ok(i < 200, 'a replica was promoted');
    await sleep(100);
  }
  await assert.rejects(inv.getEntry(lost.booking.id, 'booking'), /not found/, 'the new primary never had the booking');

  // Another customer books the same window on the new primary: Redis sees it free.
  const later = await inv.book({ vehicleId: v1, customerId: 'second', from: t + HOUR, to: t + 3 * HOUR });

  await monitor.check();
  await monitor.idle();
  const report = monitor.reports.at(-1);
  assert.ok(report, 'the monitor noticed the failover and verified the city');
  assert.equal(report.cause, 'redis');
  assert.equal(report.vehiclesRestored, 1, 'the lost vehicle came back');
  assert.equal(report.entriesRestored, 1, 'the lost booking came back');
  assert.deepEqual(report.conflicts, [later.booking.id], 'the later-made booking yields');

  assert.equal(
    (await inv.getEntry(lost.booking.id, 'booking')).entry.status,
    'confirmed',
    'the acknowledged booking is back, confirmed',
  );
  assert.equal(
    (await inv.getEntry(later.booking.id, 'booking')).entry.status,
    'conflicted',
    'and the overlapping one is conflicted (offers follow)',
  );
  assert.equal((await inv.getVehicleState(v2)).vehicle.make, 'Lost');
  const events = await readEvents(redis, city.id);
  const types = events.map((e) => e.type);
  for (const type of [
    'system.failover_detected',
    'vehicle.restored',
    'booking.restored',
    'booking.conflicted',
    'system.failover_verified',
  ]) {
    assert.ok(types.includes(type), `${type} is in the stream`);
  }
  const verified = events.find((e) => e.type === 'system.failover_verified')!;
  assert.equal(verified.data.entriesRestored, 1);
  assert.deepEqual(verified.data.conflicts, [later.booking.id]);
  // Read models learn all of it from the stream: /readyz goes back to ok.
  for (let i = 0; model.failoverState().status !== 'ok' || !model.failoverState().last; i++) {
    assert.ok(i < 100, 'the read model heard the verification');
    await sleep(50);
  }
  // PostgreSQL gets the restore's events like any others, overlap settled: no dead letter.
  await sync.drain();
  assert.equal((await pool.query('SELECT count(*)::int AS n FROM dead_letters')).rows[0].n, 0);
  assert.equal(
    (await pool.query('SELECT status FROM bookings WHERE id = $1', [later.booking.id])).rows[0].status,
    'conflicted',
  );
  assert.equal(await redis.hget(keys.entries(city.id), lost.booking.id), v1, 'the restored booking is indexed');
  await model.stop();
});
