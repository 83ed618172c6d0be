/**
 * The same service on a real Redis Cluster (three masters, a replica each: every write waits for
 * its replica): cities hash to different nodes, and
 * every script, pipeline, stream read and consumer group works unchanged because every key of a
 * city shares its hash tag and comes through KEYS. Bookings, holds, a conflict turned into offers
 * and accepted, the sweeper, search, the API with its rate limits, the sync into PostgreSQL and a
 * clean reconcile — all against the cluster.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Cluster } from 'ioredis';
import type pg from 'pg';
import { buildApp } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { createRedis, inspectDurability } from '../../src/redis/connection.ts';
import { keys } from '../../src/redis/keys.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { reconcileCity, recordCities } from '../../src/services/durable.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ConflictWorker } from '../../src/workers/resolver.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, SEDAN, futureHour, testCity } from '../support/engine.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let cluster: RedisCluster;
let redis: Cluster;
let db: TestDatabase;
let pool: pg.Pool;
const cities = Array.from({ length: 4 }, () => testCity());

before(async () => {
  cluster = await startRedisCluster(3, 1);
  redis = createRedis({ clusterNodes: cluster.nodes }) as Cluster;
  db = await createTestDatabase();
  await migrate(db.url);
  pool = createPool(db.url, { max: 4 });
  await recordCities(pool, cities);
});

after(async () => {
  redis.disconnect();
  await pool.end();
  await db.drop();
  await cluster.stop();
});

test('the whole flow on a three-node Redis Cluster', { timeout: 120_000 }, async () => {
  // The cities land on more than one node: a city is one slot, cities spread.
  const owners = new Set<string>();
  for (const c of cities) {
    const slot = Number(await redis.cluster('KEYSLOT', keys.events(c.id)));
    for (const k of [keys.vehicles(c.id), keys.counters(c.id), keys.calendar(c.id, 'veh_x_1'), keys.offers(c.id)]) {
      assert.equal(Number(await redis.cluster('KEYSLOT', k)), slot, `${k} shares the city's slot`);
    }
    // The owner is the master's node id (CLUSTER SLOTS: [start, end, [host, port, id], ...replicas]).
    for (const [start, end, master] of await redis.cluster('SLOTS'))
      if (master && slot >= start && slot <= end) owners.add(master[2]);
  }
  assert.ok(owners.size >= 2, `cities spread over ${owners.size} node(s)`);
  assert.equal((await inspectDurability(redis)).durable, true);

  const inv = new Inventory(redis, { cities: new CityCatalog(cities) });
  const t = futureHour(48 * HOUR);
  const victims: string[] = [];
  const bookings: string[] = [];
  for (const c of cities) {
    const v = (await inv.createVehicle(c.id, { ...SEDAN, hostId: `host-${c.id}` })).vehicleId;
    await inv.createVehicle(c.id, { ...SEDAN, hostId: `host-${c.id}` });
    victims.push(v);
    const hold = await inv.placeHold({ vehicleId: v, customerId: 'alice', from: t, to: t + 2 * HOUR });
    bookings.push((await inv.book({ holdId: hold.hold.id, customerId: 'alice' })).booking.id);
  }
  const readModel = new ReadModel(redis, inv);
  await readModel.start();
  const desk = new ConflictDesk(redis, inv, readModel);
  const resolver = new ConflictWorker(redis, desk, inv.cities, { validateEveryMs: 0 });
  resolver.start();
  try {
    // A conflict in each city becomes offers; the customer accepts: the booking moves, atomically.
    for (const [i, c] of cities.entries()) {
      await inv.placeBlock({ vehicleId: victims[i]!, reason: 'accident' });
      let record: { offers: { id: string; vehicleId: string }[] } | undefined;
      for (let n = 0; n < 200 && !record; n++) {
        const raw = await redis.hget(keys.offers(c.id), bookings[i]!);
        record = raw ? (JSON.parse(raw) as { offers: { id: string; vehicleId: string }[] }) : undefined;
        if (!record) await sleep(10);
      }
      assert.ok(record?.offers.length, `offers in ${c.id}`);
      const moved = await desk.accept(bookings[i]!, record.offers[0]!.id, 'alice');
      assert.equal((await inv.getEntry(moved.booking.id, 'booking')).vehicle.id, record.offers[0]!.vehicleId);
    }
    const pass = await desk.postValidate(cities[0]!.id);
    assert.deepEqual(pass.conflicted, []);
    await inv.sweepCity(cities[0]!.id);
    const search = await readModel.search(cities[1]!.id, {
      from: t + 10 * HOUR,
      to: t + 12 * HOUR,
      sort: 'price',
      limit: 10,
    });
    assert.equal(search.hits.length, 1, 'the free vehicle (the other is in an accident)');

    // The API on the cluster: auth, the batched rate-limit store, a booking.
    const secret = new TextEncoder().encode('cluster-test-secret-of-32-bytes-or-more');
    const app = await buildApp({
      inventory: inv,
      redis,
      readModel,
      conflicts: desk,
      authenticate: authenticator({ secret }),
    });
    try {
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      const token = await mintToken(secret, { sub: 'bob', role: 'customer' });
      const r = await fetch(`${base}/v1/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          vehicleId: search.hits[0]!.vehicleId,
          from: new Date(t + 10 * HOUR).toISOString(),
          to: new Date(t + 12 * HOUR).toISOString(),
        }),
      });
      assert.equal(r.status, 201, await r.text());
      assert.ok(r.headers.get('ratelimit-remaining') ?? r.headers.get('ratelimit'), 'rate limited through the cluster');
    } finally {
      await app.close();
    }
  } finally {
    await resolver.stop();
    await readModel.stop();
  }

  // The sync reads every city's stream from its own node; PostgreSQL ends up equal to Redis.
  await new SyncWorker(redis, pool, inv.cities).drain();
  for (const c of cities) assert.deepEqual((await reconcileCity(redis, pool, c.id)).drift, [], `no drift in ${c.id}`);
});
