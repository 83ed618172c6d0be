/**
 * `GET /v1/analytics/utilization` end to end: commands go to Redis, the sync worker projects them
 * into a fresh PostgreSQL database, and the API computes exact figures from the projection —
 * from the replica pool when one is given, from the main pool otherwise, cached for 10 s.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, addVehicle, newInventory, testCity } from '../support/engine.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const DAY = 24 * HOUR;
const LIMITS = { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 };
const city = testCity();
/** A UTC midnight at least two days ahead: every window below is in the future. */
const D = Math.ceil((Date.now() + 2 * DAY) / DAY) * DAY;
const iso = (ms: number) => new Date(ms).toISOString();

let stores: Stores;
let inv: Inventory;
let replica: pg.Pool;
let app: App; // main pool only
let replicaApp: App; // main pool + replica
let noDbApp: App; // no PostgreSQL at all
const tok: Record<string, string> = {};

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  const v1 = await addVehicle(inv, city);
  const v2 = await addVehicle(inv, city);
  const v3 = await addVehicle(inv, city);
  // Counted: a 3-hour booking across midnight (2 h before, 1 h after) and a 2-hour maintenance block.
  await inv.book({ vehicleId: v1, customerId: 'alice', from: D - 2 * HOUR, to: D + HOUR });
  await inv.placeBlock({ vehicleId: v2, reason: 'maintenance', from: D + 4 * HOUR, to: D + 6 * HOUR });
  // Not counted: a cancelled booking, a cancelled block, a hold, and a delisted vehicle.
  const cancelled = await inv.book({ vehicleId: v2, customerId: 'bob', from: D - 2 * HOUR, to: D });
  await inv.cancelBooking(cancelled.booking.id, undefined);
  const removed = await inv.placeBlock({ vehicleId: v1, reason: 'host', from: D + 10 * HOUR, to: D + 12 * HOUR });
  await inv.removeBlock(removed.block.id);
  await inv.placeHold({ vehicleId: v2, customerId: 'carol', from: D + 10 * HOUR, to: D + 11 * HOUR });
  await inv.delist(v3);
  await new SyncWorker(stores.redis, stores.pool, new CityCatalog([city])).drain();

  replica = createPool(stores.db.url, { max: 2 });
  const common = {
    inventory: inv,
    redis: stores.redis,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: LIMITS,
  };
  app = await buildApp({ ...common, pool: stores.pool });
  replicaApp = await buildApp({ ...common, pool: stores.pool, replicaPool: replica });
  noDbApp = await buildApp(common);
  tok.ops = await mintToken(SECRET, { sub: 'olga', role: 'ops' });
  tok.admin = await mintToken(SECRET, { sub: 'adam', role: 'admin' });
  tok.customer = await mintToken(SECRET, { sub: 'alice', role: 'customer' });
});

after(async () => {
  await app?.close();
  await replicaApp?.close();
  await noDbApp?.close();
  await replica?.end();
  await stores?.stop();
});

async function get(a: App, query: Record<string, string>, token = tok.ops!) {
  const res = await a.inject({
    method: 'GET',
    url: `/v1/analytics/utilization?${new URLSearchParams(query)}`,
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.statusCode, json: res.json() as Record<string, unknown>, headers: res.headers };
}

const q = (from: number | string, to: number | string, granularity = 'day') => ({
  city: city.id,
  from: typeof from === 'number' ? iso(from) : from,
  to: typeof to === 'number' ? iso(to) : to,
  granularity,
});

function assertProblem(r: Awaited<ReturnType<typeof get>>, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.equal(r.json.code, code);
}

const DAY_BUCKETS = [
  {
    start: iso(D - DAY),
    end: iso(D),
    vehicles: 2,
    bookedHours: 2,
    blockedHours: 0,
    utilization: 0.041667,
    blockedShare: 0,
  },
  {
    start: iso(D),
    end: iso(D + DAY),
    vehicles: 2,
    bookedHours: 1,
    blockedHours: 2,
    utilization: 0.020833,
    blockedShare: 0.041667,
  },
];

describe('GET /v1/analytics/utilization', () => {
  test('day buckets: exact figures from the projection, then a cache hit', async () => {
    const first = await get(app, q(D - DAY, D + DAY));
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.deepEqual(first.json, {
      city: city.id,
      timeZone: 'UTC',
      from: iso(D - DAY),
      to: iso(D + DAY),
      granularity: 'day',
      buckets: DAY_BUCKETS,
    });
    assert.equal(first.headers['x-cache'], 'miss');
    assert.match(String(first.headers['cache-control']), /max-age=10\b/);

    const second = await get(app, q(D - DAY, D + DAY), tok.admin);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-cache'], 'hit');
    assert.match(String(second.headers['cache-control']), /max-age=\d+/);
    assert.deepEqual(second.json, first.json);

    // The same instants spelled with another offset share the entry; another granularity does not.
    const sameInstants = await get(app, q(iso(D - DAY).replace('Z', '+00:00'), iso(D + DAY).replace('Z', '+00:00')));
    assert.equal(sameInstants.headers['x-cache'], 'hit');
    assert.equal((await get(app, q(D - DAY, D + DAY, 'hour'))).headers['x-cache'], 'miss');
  });

  test('hour buckets are whole hours of the city (in UTC here) covering [from, to)', async () => {
    // from 02:30 before midnight, in +05:30: the first bucket starts at the whole hour before it.
    const from = new Date(D - 3 * HOUR + 30 * 60_000);
    const local = new Date(from.getTime() + 5.5 * HOUR).toISOString().replace('Z', '+05:30');
    const r = await get(app, q(local, D + HOUR, 'hour'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.from, iso(from.getTime()));
    const buckets = r.json.buckets as {
      start: string;
      end: string;
      vehicles: number;
      bookedHours: number;
      blockedHours: number;
      utilization: number;
      blockedShare: number;
    }[];
    assert.deepEqual(
      buckets.map((b) => b.start),
      [iso(D - 3 * HOUR), iso(D - 2 * HOUR), iso(D - HOUR), iso(D)],
    );
    assert.deepEqual(
      buckets.map((b) => b.end),
      [iso(D - 2 * HOUR), iso(D - HOUR), iso(D), iso(D + HOUR)],
    );
    assert.deepEqual(
      buckets.map((b) => b.vehicles),
      [2, 2, 2, 2],
    );
    assert.deepEqual(
      buckets.map((b) => b.bookedHours),
      [0, 1, 1, 1],
    );
    assert.deepEqual(
      buckets.map((b) => b.utilization),
      [0, 0.5, 0.5, 0.5],
    );
    assert.deepEqual(
      buckets.map((b) => b.blockedHours),
      [0, 0, 0, 0],
    );

    const block = await get(app, q(D + 4 * HOUR, D + 7 * HOUR, 'hour'));
    assert.deepEqual(
      (block.json.buckets as { blockedHours: number; blockedShare: number }[]).map((b) => [
        b.blockedHours,
        b.blockedShare,
      ]),
      [
        [1, 0.5],
        [1, 0.5],
        [0, 0],
      ],
    );
  });

  test('before the vehicles existed: no vehicles, utilization 0', async () => {
    const r = await get(app, q('2001-01-01T00:00:00Z', '2001-01-03T00:00:00Z'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual((r.json.buckets as unknown[]).length, 2);
    for (const b of r.json.buckets as { vehicles: number; utilization: number; blockedShare: number }[]) {
      assert.deepEqual([b.vehicles, b.utilization, b.blockedShare], [0, 0, 0]);
    }
    // The ends of the ISO range are answered too (PostgreSQL has no year 0: times go as epoch ms).
    const first = await get(app, q('0000-01-01T00:30:00Z', '0000-01-01T02:00:00Z', 'hour'));
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.deepEqual(
      (first.json.buckets as { start: string }[]).map((x) => x.start),
      ['0000-01-01T00:00:00.000Z', '0000-01-01T01:00:00.000Z'],
    );
    const last = await get(app, q('9999-12-30T00:00:00Z', '9999-12-31T23:59:59Z'));
    assert.equal(last.status, 200, JSON.stringify(last.json));
    assert.equal((last.json.buckets as unknown[]).length, 2);
  });

  test('reads from the replica pool when one is given, never the main pool', async () => {
    let onReplica = 0;
    let onMain = 0;
    const countReplica = () => {
      onReplica++;
    };
    const countMain = () => {
      onMain++;
    };
    replica.on('acquire', countReplica);
    stores.pool.on('acquire', countMain);
    try {
      const r = await get(replicaApp, q(D - DAY, D + DAY));
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.headers['x-cache'], 'miss', 'each app has its own cache');
      assert.deepEqual(r.json.buckets, DAY_BUCKETS);
    } finally {
      replica.off('acquire', countReplica);
      stores.pool.off('acquire', countMain);
    }
    assert.ok(onReplica >= 1, 'the replica answered');
    assert.equal(onMain, 0, 'the main pool was not used');
  });

  test('refusals: customer 403, unknown city 404, bad input 400, no database 503', async () => {
    assertProblem(await get(app, q(D - DAY, D + DAY), tok.customer), 403, 'FORBIDDEN');
    assertProblem(await get(app, { ...q(D - DAY, D + DAY), city: 'zz404' }), 404, 'NOT_FOUND');
    assertProblem(await get(app, q(D - DAY, D + DAY, 'week')), 400, 'VALIDATION');
    assertProblem(await get(app, q(D, D)), 400, 'INVALID_INTERVAL');
    assertProblem(await get(app, q(D + DAY, D)), 400, 'INVALID_INTERVAL');
    assertProblem(await get(app, q(D, D + 93 * DAY, 'hour')), 400, 'VALIDATION');
    assert.equal((await get(app, q(D, D + 92 * DAY, 'hour'))).status, 200, '92 days of hours is the most');
    assertProblem(await get(app, q('2000-01-01T00:00:00Z', '2011-01-01T00:00:00Z')), 400, 'VALIDATION');
    assertProblem(await get(app, q('yesterday', D)), 400, 'VALIDATION');
    assertProblem(await get(app, { ...q(D - DAY, D + DAY), extra: '1' }), 400, 'VALIDATION');
    const { granularity: _g, ...noGranularity } = q(D - DAY, D + DAY);
    assertProblem(await get(app, noGranularity), 400, 'VALIDATION');
    const res = await app.inject({
      method: 'GET',
      url: `/v1/analytics/utilization?${new URLSearchParams(q(D - DAY, D + DAY))}`,
    });
    assert.equal(res.statusCode, 401);
    assertProblem(await get(noDbApp, q(D - DAY, D + DAY)), 503, 'UNAVAILABLE');
  });
});
