/**
 * Durable truth in PostgreSQL: the sync worker projects every city stream, `reconcile` finds no
 * drift after a drain, `rebuild` restores a wiped Redis, and an event PostgreSQL refuses (an
 * overlap Redis should never have accepted) is dead-lettered loudly while the rest flows on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Redis } from 'ioredis';
import type { City } from '../../src/domain/cities.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { loadMigrations, migrate } from '../../src/pg/migrate.ts';
import { keys } from '../../src/redis/keys.ts';
import { reconcileCity, recordCities } from '../../src/services/durable.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Inventory } from '../../src/services/inventory.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { registry } from '../../src/metrics.ts';
import type { TestDatabase } from '../support/postgres.ts';
import type { RedisServer } from '../support/redis.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, MINUTE, addVehicle, futureHour, newInventory, testCity, wipeCity } from '../support/engine.ts';
import { seeded } from '../support/random.ts';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every draw of this file comes from here: TEST_SEED replays a run. */
const random = seeded('sync');

let server: RedisServer;
let redis: Redis;
let db: TestDatabase;
let pool: pg.Pool;
let stores: Stores;

before(async () => {
  stores = await startStores();
  ({ server, redis, db, pool } = stores);
});
after(async () => {
  await stores.stop();
});

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

/** A few seconds of mixed marketplace traffic on a handful of vehicles. */
async function traffic(inv: Inventory, vehicles: string[], ms: number): Promise<number> {
  const t = futureHour();
  const deadline = Date.now() + ms;
  let ok = 0;
  const bookings: string[] = [];
  const holds: string[] = [];
  const blocks: string[] = [];
  await Promise.all(
    Array.from({ length: 20 }, async (_, n) => {
      const customer = `c${n}`;
      while (Date.now() < deadline) {
        const vehicleId = pick(vehicles);
        const from = t + Math.floor(random() * 200) * 30 * MINUTE;
        const r = random();
        try {
          if (r < 0.35)
            bookings.push((await inv.book({ vehicleId, customerId: customer, from, to: from + 2 * HOUR })).booking.id);
          else if (r < 0.5)
            holds.push((await inv.placeHold({ vehicleId, customerId: customer, from, to: from + HOUR })).hold.id);
          else if (r < 0.6 && holds.length)
            bookings.push((await inv.book({ holdId: pick(holds), customerId: pick(['c0', customer]) })).booking.id);
          else if (r < 0.7 && bookings.length) await inv.cancelBooking(pick(bookings), undefined);
          else if (r < 0.78 && bookings.length)
            await inv.extendBooking(pick(bookings), undefined, from + 3 * HOUR, random() < 0.3);
          else if (r < 0.85)
            blocks.push(
              (
                await inv.placeBlock({
                  vehicleId,
                  reason: pick(['maintenance', 'host'] as const),
                  from,
                  to: from + HOUR,
                })
              ).block.id,
            );
          else if (r < 0.9 && blocks.length) await inv.removeBlock(pick(blocks));
          else if (r < 0.93)
            await inv.updateVehicle(vehicleId, { pricePerHour: 10 + Math.floor(random() * 20) }, undefined);
          else await inv.releaseHold(pick(holds.length ? holds : ['hld_x_000000']), undefined);
          ok++;
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
        }
      }
    }),
  );
  return ok;
}

/** Asserts the worker dead-lettered nothing (traffic the engine accepted must always apply). */
function noAlarms(alarms: string[]): void {
  assert.deepEqual(alarms, [], 'no event was dead-lettered');
}

async function setup(
  vehicleCount: number,
): Promise<{ city: City; inv: Inventory; vehicles: string[]; worker: SyncWorker; alarms: string[] }> {
  const city = testCity();
  const inv = newInventory(redis, city, { maxLiveHoldsPerCustomer: 50 });
  const vehicles: string[] = [];
  for (let i = 0; i < vehicleCount; i++)
    vehicles.push(await addVehicle(inv, city, { category: pick(['sedan', 'suv', 'hatchback'] as const) }));
  const alarms: string[] = [];
  // Tiny batches: batch boundaries fall inside commands' runs of events all the time. No failover
  // verification runs here: an overlap PostgreSQL refuses is dead-lettered without waiting for one.
  const worker = new SyncWorker(redis, pool, new CityCatalog([city]), {
    batchSize: 7,
    maxAttempts: 3,
    overlapGraceMs: 0,
    onDeadLetter: (_c, e) => alarms.push(e.id),
  });
  return { city, inv, vehicles, worker, alarms };
}

async function count(sql: string, city: string): Promise<number> {
  return Number((await pool.query<{ n: string }>(sql, [city])).rows[0]!.n);
}

describe('sync, reconcile, rebuild', () => {
  test('after traffic and a drain: zero drift, and row counts match the stream', { timeout: 120_000 }, async () => {
    const { city, inv, vehicles, worker, alarms } = await setup(8);
    const ok = await traffic(inv, vehicles, 3_000);
    await worker.drain();
    noAlarms(alarms);
    const report = await reconcileCity(redis, pool, city.id);
    assert.deepEqual(report.drift, [], 'no drift');
    assert.equal(report.vehicles.pg, 8);
    const streamLength = await redis.xlen(keys.events(city.id));
    assert.equal(
      await count('SELECT count(*) AS n FROM events WHERE city = $1', city.id),
      streamLength,
      'every event once in the log',
    );
    assert.equal(
      await count('SELECT applied AS n FROM sync_cursors WHERE city = $1', city.id),
      streamLength,
      'applied exactly once each',
    );
    const redisBookings = report.entries.redis;
    assert.equal(redisBookings, report.entries.pg);
    assert.ok(ok > 100, `traffic succeeded (${ok} commands)`);
    // Re-delivery is harmless: replay the whole stream through a fresh consumer group.
    await redis.xgroup('SETID', keys.events(city.id), 'pg-sync', '0');
    await worker.drain();
    assert.equal(
      await count('SELECT applied AS n FROM sync_cursors WHERE city = $1', city.id),
      streamLength,
      're-delivered events were skipped',
    );
    assert.deepEqual((await reconcileCity(redis, pool, city.id)).drift, []);
  });

  test('Redis wiped, rebuild: zero drift, and new bookings respect the restored calendars', {
    timeout: 120_000,
  }, async () => {
    const { city, inv, vehicles, worker } = await setup(5);
    const t = futureHour();
    const b = await inv.book({ vehicleId: vehicles[0]!, customerId: 'c1', from: t, to: t + 2 * HOUR });
    await inv.placeBlock({ vehicleId: vehicles[1]!, reason: 'accident' });
    await traffic(inv, vehicles, 1_500);
    await worker.drain();
    const before = await reconcileCity(redis, pool, city.id);
    assert.deepEqual(before.drift, []);

    await wipeCity(redis, city.id);
    assert.equal(await redis.exists(keys.vehicle(city.id, vehicles[0]!)), 0);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'rebuild', '--city', city.id],
      {
        env: { ...process.env, REDIS_URL: server.url, DATABASE_URL: db.url },
      },
    );
    assert.equal((JSON.parse(stdout) as { vehicles: number }).vehicles, 5, 'fleet rebuild restored every vehicle');
    // Each restore wrote its event (vehicle.restored, with the next version): the sync carries it.
    await worker.drain();
    const after = await reconcileCity(redis, pool, city.id);
    assert.deepEqual(after.drift, [], 'zero drift after rebuild');
    assert.deepEqual(after.entries, before.entries);

    const state = await inv.getVehicleState(vehicles[0]!);
    if (state.entries.find((e) => e.id === b.booking.id)?.status === 'confirmed') {
      await assert.rejects(
        inv.book({ vehicleId: vehicles[0]!, customerId: 'c2', from: t + HOUR, to: t + 3 * HOUR }),
        (e: unknown) => e instanceof DomainError && e.code === 'NOT_AVAILABLE',
      );
    }
    await assert.rejects(
      inv.book({ vehicleId: vehicles[1]!, customerId: 'c2', from: t + 100 * HOUR, to: t + 101 * HOUR }),
      (e: unknown) => e instanceof DomainError && e.code === 'NOT_AVAILABLE',
      'the accident is restored',
    );
    // Life goes on: new commands are synced after the rebuild (the stream was wiped too).
    const fresh = await inv.book({
      vehicleId: vehicles[2]!,
      customerId: 'c9',
      from: t + 500 * HOUR,
      to: t + 501 * HOUR,
    });
    await worker.drain();
    assert.equal(await count('SELECT count(*) AS n FROM bookings WHERE id = $1', fresh.booking.id), 1);
    assert.deepEqual((await reconcileCity(redis, pool, city.id)).drift, []);
  });

  test('an overlapping event is dead-lettered, the alarm fires, later events still sync, reconcile reports it', {
    timeout: 60_000,
  }, async () => {
    const { city, inv, vehicles, worker, alarms } = await setup(2);
    const t = futureHour();
    const real = await inv.book({ vehicleId: vehicles[0]!, customerId: 'c1', from: t, to: t + 2 * HOUR });
    await worker.drain();
    // Redis "accepts" an overlap behind the engine's back (as a lost write after a failover could).
    const forged = {
      ...real.booking,
      id: `bkg_${city.id}_FORGED0000000000000`,
      customerId: 'c2',
      from: t + HOUR,
      to: t + 3 * HOUR,
    };
    const poison = await redis.xadd(
      keys.events(city.id),
      '*',
      'type',
      'booking.confirmed',
      'city',
      city.id,
      'vehicle',
      vehicles[0]!,
      'subject',
      forged.id,
      'version',
      99,
      'time',
      Date.now(),
      'status',
      'available',
      'cmd',
      'forged',
      'data',
      '{}',
      'state',
      JSON.stringify(forged),
    );
    await redis.hset(keys.calendar(city.id, vehicles[0]!), forged.id, JSON.stringify(forged));
    const after1 = await inv.book({ vehicleId: vehicles[1]!, customerId: 'c3', from: t, to: t + HOUR });
    await worker.drain();
    assert.deepEqual(alarms, [poison], 'the alarm fired for the forged event');
    const dl = await pool.query('SELECT stream_id, sqlstate, attempts FROM dead_letters WHERE city = $1', [city.id]);
    assert.deepEqual(dl.rows, [{ stream_id: poison, sqlstate: '23P01', attempts: 3 }]);
    assert.equal(
      await count('SELECT count(*) AS n FROM bookings WHERE id = $1', after1.booking.id),
      1,
      'the event after it synced',
    );
    assert.equal(await count('SELECT count(*) AS n FROM bookings WHERE id = $1', forged.id), 0);
    assert.equal(worker.stats.deadLettered, 1);
    const metric = (await registry.getSingleMetric('fleet_sync_dead_letters_total')!.get()).values.find(
      (v) => v.labels.city === city.id,
    );
    assert.equal(metric?.value, 1, 'the dead-letter metric counts it');
    const lag = await worker.lag();
    assert.deepEqual(
      lag.map((l) => l.eventsBehind),
      [0],
      'nothing stuck behind it',
    );
    const report = await reconcileCity(redis, pool, city.id);
    assert.deepEqual(
      report.drift.map((d) => [d.what, d.entryId, d.pg]),
      [['entry', forged.id, undefined]],
      'reconcile reports the overlap Redis holds',
    );
  });

  test('malformed events are dead-lettered too, without stopping the city', async () => {
    const { city, inv, vehicles, worker, alarms } = await setup(1);
    const bad = await redis.xadd(keys.events(city.id), '*', 'type', 'booking.confirmed', 'data', '{not json');
    const t = futureHour();
    const good = await inv.book({ vehicleId: vehicles[0]!, customerId: 'c1', from: t, to: t + HOUR });
    await worker.drain();
    assert.deepEqual(alarms, [bad]);
    assert.equal(await count('SELECT count(*) AS n FROM bookings WHERE id = $1', good.booking.id), 1);
  });

  test('lag counts what PostgreSQL has not applied yet', async () => {
    const { city, inv, vehicles, worker } = await setup(1);
    await worker.ensureGroups();
    await worker.drain();
    const t = futureHour();
    for (let i = 0; i < 5; i++)
      await inv.book({
        vehicleId: vehicles[0]!,
        customerId: 'c1',
        from: t + i * 2 * HOUR,
        to: t + i * 2 * HOUR + HOUR,
      });
    const [lag] = await worker.lag();
    assert.equal(lag?.eventsBehind, 5);
    assert.ok((lag?.secondsBehind ?? -1) >= 0);
    await worker.drain();
    assert.equal((await worker.lag())[0]?.eventsBehind, 0);
    void city;
  });

  test('streams are trimmed only below what the group acknowledged', async () => {
    const { city, inv, vehicles } = await setup(1);
    const claimIdleMs = 100;
    const worker = new SyncWorker(redis, pool, new CityCatalog([city]), { retentionMs: 0, claimIdleMs });
    const stream = keys.events(city.id);
    const t = futureHour();
    const book = (i: number) =>
      inv.book({ vehicleId: vehicles[0]!, customerId: 'c1', from: t + i * 2 * HOUR, to: t + i * 2 * HOUR + HOUR });
    for (let i = 0; i < 5; i++) await book(i);
    await worker.drain();
    await worker.trim(city.id);
    assert.ok((await redis.xlen(stream)) <= 1, 'acknowledged entries are trimmed');
    for (let i = 5; i < 8; i++) await book(i);
    await worker.trim(city.id);
    assert.ok((await redis.xlen(stream)) >= 3, 'undelivered entries stay');
    // Delivered to another consumer but never acknowledged (it died): they stay too.
    await redis.xreadgroup('GROUP', 'pg-sync', 'dead-consumer', 'COUNT', 10, 'STREAMS', stream, '>');
    await worker.trim(city.id);
    assert.ok((await redis.xlen(stream)) >= 3, 'pending entries stay');
    // The worker takes them over once they have been idle for claimIdleMs: until Redis says they have.
    for (const deadline = Date.now() + 5_000; ; ) {
      const idle = (await redis.xpending(stream, 'pg-sync', 'IDLE', claimIdleMs, '-', '+', 10)) as unknown[];
      if (idle.length === 3) break;
      assert.ok(Date.now() < deadline, `the dead consumer's entries idle for ${claimIdleMs} ms (${idle.length} of 3)`);
      await sleep(10);
    }
    await worker.drain();
    assert.equal(
      await count('SELECT applied AS n FROM sync_cursors WHERE city = $1', city.id),
      9,
      "the dead consumer's entries were reclaimed and applied",
    );
    await worker.trim(city.id);
    assert.ok((await redis.xlen(stream)) <= 1);
  });

  test('reconcile --repair mends drift from the side that is ahead', async () => {
    const { city, inv, vehicles, worker } = await setup(3);
    const t = futureHour();
    const a = await inv.book({ vehicleId: vehicles[0]!, customerId: 'c1', from: t, to: t + HOUR });
    await inv.book({ vehicleId: vehicles[1]!, customerId: 'c1', from: t, to: t + HOUR });
    await worker.drain();
    // PostgreSQL behind: a row lost. Redis behind: a vehicle's calendar lost (a failover's lost write).
    await pool.query('DELETE FROM bookings WHERE id = $1', [a.booking.id]);
    await redis.del(keys.calendar(city.id, vehicles[1]!));
    await redis.hset(keys.vehicle(city.id, vehicles[1]!), 'version', 0);
    const before = await reconcileCity(redis, pool, city.id);
    assert.deepEqual(new Set(before.drift.map((d) => d.vehicleId)), new Set([vehicles[0], vehicles[1]]));
    const repaired = await reconcileCity(redis, pool, city.id, { repair: true });
    assert.deepEqual(repaired.repaired, { toPg: 1, toRedis: 1 });
    // The restore wrote its event (vehicle.restored): PostgreSQL learns the new version through the sync.
    await worker.drain();
    assert.deepEqual((await reconcileCity(redis, pool, city.id)).drift, [], 'no drift after repair');
    await assert.rejects(
      inv.book({ vehicleId: vehicles[1]!, customerId: 'c2', from: t, to: t + HOUR }),
      (e: unknown) => e instanceof DomainError && e.code === 'NOT_AVAILABLE',
      'the restored calendar holds',
    );
  });
});

describe('cities', () => {
  test('the served cities are recorded, idempotently', async () => {
    const c = testCity();
    await recordCities(pool, [c]);
    await recordCities(pool, [{ ...c, turnaroundMs: 45 * 60_000 }]);
    const { rows } = await pool.query('SELECT time_zone, turnaround_ms FROM cities WHERE id = $1', [c.id]);
    assert.deepEqual(rows, [{ time_zone: 'UTC', turnaround_ms: 45 * 60_000 }]);
  });
});

describe('migrations', () => {
  test('two starters at once: applied once, recorded with a checksum; re-running is a no-op', async () => {
    const name = `fleet_mig_${randomUUID().slice(0, 8)}`;
    const url = db.url.replace(/\/[^/]+$/, `/${name}`);
    try {
      const [x, y] = await Promise.all([migrate(url), migrate(url)]);
      const every = loadMigrations().map((m) => `${String(m.version).padStart(3, '0')}_${m.name}`);
      assert.ok(every.length >= 1);
      assert.deepEqual([...x.applied, ...y.applied].sort(), every, 'each migration applied once, by one of the two');
      assert.deepEqual(await migrate(url), { applied: [] });
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const { rows } = await c.query(
        'SELECT version, name, length(checksum) AS len FROM schema_migrations ORDER BY version',
      );
      await c.end();
      assert.deepEqual(
        rows,
        loadMigrations().map((m) => ({ version: m.version, name: m.name, len: 64 })),
      );
    } finally {
      const admin = new pg.Client({ connectionString: db.url });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
