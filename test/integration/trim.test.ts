/**
 * Redis holds the present and the future (architecture.md §3): past, final calendar entries leave it once
 * their window is older than the retention and PostgreSQL has their last change — and not before.
 * Status, counters and versions do not move; reconcile sees no drift; a past booking is still
 * readable over the API, from PostgreSQL; a rebuild does not bring history back into Redis.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { keys } from '../../src/redis/keys.ts';
import { rebuildCity, reconcileCity, recordCities } from '../../src/services/durable.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { SyncWorker, syncedThrough } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';

const DAY = 24 * HOUR;
const RETENTION = 7 * DAY;
const city = testCity();
let stores: Stores;
let inv: Inventory;

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  await recordCities(stores.pool, [city]);
});
after(async () => {
  await stores.stop();
});

const calendarIds = async (v: string) => (await stores.redis.hkeys(keys.calendar(city.id, v))).sort();

test('past, final entries leave Redis once synced; nothing else moves', async () => {
  const v = await addVehicle(inv, city, { hostId: 'host-a' });
  const long = Math.floor((Date.now() - 20 * DAY) / HOUR) * HOUR;
  const past = (await inv.book({ vehicleId: v, customerId: 'alice', from: long, to: long + 2 * HOUR, allowPast: true }))
    .booking.id;
  await inv.cancelBooking(past, undefined, 'no_show');
  const recentPast = Math.floor((Date.now() - 2 * DAY) / HOUR) * HOUR;
  const recent = (
    await inv.book({ vehicleId: v, customerId: 'alice', from: recentPast, to: recentPast + HOUR, allowPast: true })
  ).booking.id;
  await inv.cancelBooking(recent, undefined, 'no_show');
  const oldBlock = (
    await inv.placeBlock({
      vehicleId: v,
      reason: 'maintenance',
      from: long + 5 * HOUR,
      to: long + 6 * HOUR,
      allowPast: true,
    })
  ).block.id;
  await inv.removeBlock(oldBlock);
  const stillConfirmed = (
    await inv.book({ vehicleId: v, customerId: 'bob', from: long + 10 * HOUR, to: long + 11 * HOUR, allowPast: true })
  ).booking.id;
  const future = (await inv.book({ vehicleId: v, customerId: 'bob', from: futureHour(), to: futureHour() + HOUR }))
    .booking.id;
  const hash = await stores.redis.hgetall(keys.vehicle(city.id, v));
  const counters = await stores.redis.hgetall(keys.counters(city.id));

  // Not yet in PostgreSQL: nothing may go.
  assert.equal(await syncedThrough(stores.redis, city.id), 0, 'no sync has run');
  assert.equal(await inv.trimCity(city.id, Date.now() - RETENTION, await syncedThrough(stores.redis, city.id)), 0);
  // Synced only through an instant before their last change: still nothing.
  assert.equal(await inv.trimCity(city.id, Date.now() - RETENTION, 1), 0);

  const sync = new SyncWorker(stores.redis, stores.pool, catalogWith(city));
  await sync.drain();
  const removed = await inv.trimCity(city.id, Date.now() - RETENTION, await syncedThrough(stores.redis, city.id));
  assert.equal(removed, 2, 'the cancelled booking and the cleared block of three weeks ago');
  assert.deepEqual(
    await calendarIds(v),
    [recent, stillConfirmed, future].sort(),
    'recent history, a non-final entry and the future stay',
  );
  assert.equal(await stores.redis.hexists(keys.entries(city.id), past), 0, 'the index forgets them too');
  const { version, updatedAt: _u, ...rest } = await stores.redis.hgetall(keys.vehicle(city.id, v));
  const { version: v0, updatedAt: _u0, ...rest0 } = hash;
  assert.deepEqual([version, rest], [v0, rest0], 'status and version unchanged');
  assert.deepEqual(await stores.redis.hgetall(keys.counters(city.id)), counters, 'counters unchanged');

  const report = await reconcileCity(stores.redis, stores.pool, city.id, { retentionMs: RETENTION });
  assert.deepEqual(report.drift, [], 'trimmed history is not drift');

  // The customer still sees the past booking, from PostgreSQL.
  const secret = new TextEncoder().encode('trim-test-secret-of-at-least-32-bytes!!');
  const app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    authenticate: authenticator({ secret }),
  });
  try {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const read = async (sub: string) =>
      fetch(`${base}/v1/bookings/${past}`, {
        headers: { authorization: `Bearer ${await mintToken(secret, { sub, role: 'customer' })}` },
      });
    const mine = await read('alice');
    assert.equal(mine.status, 200);
    assert.deepEqual(((await mine.json()) as { status: string; cancelReason: string }).cancelReason, 'no_show');
    assert.equal((await read('bob')).status, 404, "not another customer's");
  } finally {
    await app.close();
  }

  // A rebuild from PostgreSQL restores the present and the future, not the trimmed history.
  await rebuildCity(stores.redis, stores.pool, city.id, RETENTION);
  assert.deepEqual(await calendarIds(v), [recent, stillConfirmed, future].sort());
});
