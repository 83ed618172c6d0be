/**
 * `GET /v1/analytics/forecast` end to end, on five weeks of history written as the sync would
 * have left it: SUVs are taken all day everywhere, sedans all day in the north-east and hardly in
 * the south-west, and SUV searches come up short every morning. The forecast must see the
 * SUVs and the north-eastern sedans selling out, suggest sending south-western sedans
 * north-east, carry the unserved searches, report its backtested accuracy; search then flags an
 * SUV window as likely to sell out, and counts searches into `search_demand`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import type { CityForecast } from '../../src/services/forecast.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, addVehicle, newInventory, testCity } from '../support/engine.ts';

const SECRET = new TextEncoder().encode('forecast-secret-of-at-least-32-bytes!!');
const DAY = 24 * HOUR;
const LIMITS = { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 };
const city = testCity();
const iso = (ms: number) => new Date(ms).toISOString();

let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let noDb: App;
const tok: Record<string, string> = {};

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  const at = (dLat: number, dLng: number) => ({ lat: city.center.lat + dLat, lng: city.center.lng + dLng });
  const fleet: { id: string; busy: boolean }[] = [];
  for (let i = 0; i < 6; i++) {
    fleet.push({ id: await addVehicle(inv, city, { category: 'suv', location: at(0.05, 0.05) }), busy: true });
    fleet.push({ id: await addVehicle(inv, city, { category: 'suv', location: at(-0.05, -0.05) }), busy: true });
    fleet.push({ id: await addVehicle(inv, city, { category: 'sedan', location: at(0.05, 0.05) }), busy: true });
    fleet.push({ id: await addVehicle(inv, city, { category: 'sedan', location: at(-0.05, -0.05) }), busy: i === 0 });
  }
  await new SyncWorker(stores.redis, stores.pool, new CityCatalog([city])).drain();
  // Five weeks of daily trips, 07:00 to 21:00 UTC, as the sync leaves completed ones.
  const today = Math.floor(Date.now() / DAY) * DAY;
  const rows: unknown[] = [];
  for (let d = 35; d >= 0; d--) {
    for (const v of fleet.filter((x) => x.busy)) {
      const from = today - d * DAY + 7 * HOUR;
      rows.push({ id: `bkg_${city.id}_h${d}_${v.id.slice(-8)}`, vehicle: v.id, from, to: from + 14 * HOUR });
    }
  }
  await stores.pool.query(
    `INSERT INTO bookings (id, city, vehicle_id, customer_id, status, period, doc, created_at, updated_at)
     SELECT x.id, $2, x.vehicle, 'history', 'completed',
            tstzrange(to_timestamp(x."from"::float8 / 1000), to_timestamp(x."to"::float8 / 1000)), '{}'::jsonb, now(), now()
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, vehicle text, "from" bigint, "to" bigint)`,
    [JSON.stringify(rows), city.id],
  );
  await stores.pool.query(
    `INSERT INTO search_demand (city, category, hour, searches, short, empty)
     SELECT $1, 'suv', to_timestamp(($2::float8 - d::float8 * 86400000 + h::float8 * 3600000) / 1000), 10, 6, 2
     FROM generate_series(0, 35) d, generate_series(8, 9) h`,
    [city.id, today],
  );
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  const common = {
    inventory: inv,
    redis: stores.redis,
    readModel,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: LIMITS,
  };
  app = await buildApp({ ...common, pool: stores.pool });
  noDb = await buildApp(common);
  tok.ops = await mintToken(SECRET, { sub: 'olga', role: 'ops' });
  tok.customer = await mintToken(SECRET, { sub: 'alice', role: 'customer' });
  tok.host = await mintToken(SECRET, { sub: 'h', role: 'host', hostId: 'host-1' });
});

after(async () => {
  await app?.close();
  await noDb?.close();
  await readModel?.stop();
  await stores?.stop();
});

async function forecastOf(a: App, token: string, horizonHours = '48') {
  const res = await a.inject({
    method: 'GET',
    url: `/v1/analytics/forecast?${new URLSearchParams({ city: city.id, horizonHours })}`,
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.statusCode, json: res.json() as CityForecast & { code?: string } };
}

test('sees the sell-outs coming, suggests fleet moves, carries unserved searches, reports its accuracy', async () => {
  const { status, json } = await forecastOf(app, tok.ops!);
  assert.equal(status, 200, JSON.stringify(json));
  const suv = json.categories.find((c) => c.category === 'suv');
  const sedan = json.categories.find((c) => c.category === 'sedan');
  assert.ok(suv && sedan);
  assert.equal(suv.fleet, 12);
  assert.equal(suv.hours.length, 48);
  const hourOf = (h: { start: string }) => new Date(h.start).getUTCHours();
  const peak = suv.hours.filter((h) => hourOf(h) >= 8 && hourOf(h) < 20);
  const night = suv.hours.filter((h) => hourOf(h) >= 22 || hourOf(h) < 6);
  assert.ok(
    peak.every((h) => h.utilization >= 0.9),
    `SUVs taken all day: ${peak.map((h) => h.utilization)}`,
  );
  assert.ok(
    night.every((h) => h.utilization <= 0.1),
    'and free at night',
  );
  assert.ok(
    suv.hours.some((h) => hourOf(h) === 8 && h.unservedSearches > 0),
    'morning searches that came up short',
  );
  assert.ok(json.shortfalls.some((s) => s.category === 'suv'));
  assert.ok(json.shortfalls.some((s) => s.category === 'sedan' && s.area === 'NE'));
  assert.ok(!json.shortfalls.some((s) => s.category === 'sedan' && s.area === 'SW'));
  const move = json.moves.find((m) => m.category === 'sedan');
  assert.ok(move, JSON.stringify(json.moves));
  assert.deepEqual([move.from, move.to], ['SW', 'NE']);
  assert.ok(move.vehicles >= 1 && move.vehicles <= 5);
  assert.ok(!json.moves.some((m) => m.category === 'suv'), 'no area has SUVs to spare');
  assert.ok(json.accuracy.length >= 2 && json.accuracy.every((a) => a.points > 0));
  const nextDay = json.accuracy.find((a) => a.horizonHours === 24);
  assert.ok(nextDay && nextDay.mape <= nextDay.naiveMape, JSON.stringify(json.accuracy));
});

test('search flags a window likely to sell out, and counts itself into search_demand', async () => {
  await forecastOf(app, tok.ops!, '168');
  const tomorrow = Math.floor(Date.now() / DAY) * DAY + DAY;
  const search = async (category: string, from: number) => {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/cities/${city.id}/availability?${new URLSearchParams({ from: iso(from), to: iso(from + 2 * HOUR), category })}`,
      headers: { authorization: `Bearer ${tok.customer}` },
    });
    assert.equal(res.statusCode, 200);
    return res.json() as { vehicles: unknown[]; likelyToSellOut?: boolean };
  };
  assert.equal((await search('suv', tomorrow + 10 * HOUR)).likelyToSellOut, true);
  assert.equal((await search('suv', tomorrow + 2 * HOUR)).likelyToSellOut, false);
  await app.close();
  const { rows } = await stores.pool.query(
    'SELECT category, searches FROM search_demand WHERE city = $1 AND hour >= to_timestamp($2::float8 / 1000)',
    [city.id, tomorrow],
  );
  assert.equal(
    rows.reduce((a, r) => a + Number(r.searches), 0),
    2,
    'both searches counted (flushed on close)',
  );
});

test('staff only; 503 without PostgreSQL', async () => {
  const fresh = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: LIMITS,
  });
  try {
    assert.equal((await forecastOf(fresh, tok.customer!)).status, 403);
    assert.equal((await forecastOf(fresh, tok.host!)).status, 403);
    assert.equal((await forecastOf(fresh, tok.ops!, '169')).status, 400);
    // What the learning offer policy learnt: staff only; nothing yet on this history.
    const learned = async (token: string) =>
      fresh.inject({ method: 'GET', url: '/v1/analytics/incentives', headers: { authorization: `Bearer ${token}` } });
    const ok = await learned(tok.ops!);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { enabled: true, target: 0.8, maxLevel: 2, learned: [] });
    assert.equal((await learned(tok.customer!)).statusCode, 403);
  } finally {
    await fresh.close();
  }
  const none = await forecastOf(noDb, tok.ops!);
  assert.equal(none.status, 503);
});
