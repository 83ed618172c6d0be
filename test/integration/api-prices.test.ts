/**
 * Prices over the API (docs/api.md, "Prices"): a search hit carries its window's total; a hold and
 * a booking carry the price fixed when they were made, whatever the host does to the rates after;
 * an extension prices the added time at the rates of its moment; an offer states the
 * alternative's price and what the customer pays, and accepting it makes that the booking's price;
 * PostgreSQL gets every price through the sync, and a rebuild from it brings them back; amounts
 * are integers in minor units of the city's currency (a JPY city prices in whole yen and refuses
 * fractional rates).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { windowTotal } from '../../src/domain/pricing.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { rebuildCity, reconcileCity } from '../../src/services/durable.ts';
import { keys } from '../../src/redis/keys.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, MINUTE, addVehicle, futureHour, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { tenantTokens } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const LIMITS = { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 };
const city = testCity();
const tokyo = { ...testCity(), currency: 'JPY' };
const iso = (ms: number) => new Date(ms).toISOString();

let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let desk: ConflictDesk;
let app: App;
let base: string;
const tok: Record<string, string> = {};

interface PriceBody {
  currency: string;
  total: number;
  breakdown: { from: string; to: string; hours: number; unitAmount: number; amount: number; kind: string }[];
  adjustment?: { amount: number; offerId: string };
}

async function call(token: string | undefined, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token ?? ''}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const priceOf = (json: Record<string, unknown>): PriceBody => {
  const p = json.price;
  assert.ok(p && typeof p === 'object', `a price: ${JSON.stringify(json)}`);
  return p as PriceBody;
};

async function hitTotal(vehicleId: string, from: number, to: number): Promise<{ currency: string; total: number }> {
  const r = await call(
    tok.alice,
    'GET',
    `/v1/cities/${city.id}/availability?from=${iso(from)}&to=${iso(to)}&limit=100`,
  );
  assert.equal(r.status, 200);
  const hit = (r.json.vehicles as { vehicleId: string; price: { currency: string; total: number } }[]).find(
    (h) => h.vehicleId === vehicleId,
  );
  assert.ok(hit, `${vehicleId} is found free`);
  return hit.price;
}

before(async () => {
  stores = await startStores();
  inv = new Inventory(stores.redis, { cities: new CityCatalog([city, tokyo]) });
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  desk = new ConflictDesk(stores.redis, inv, readModel);
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    readModel,
    conflicts: desk,
    pool: stores.pool,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: LIMITS,
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  Object.assign(tok, await tenantTokens(SECRET));
});

after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

test('cities state their currency and its minor units', async () => {
  const r = await call(tok.alice, 'GET', '/v1/cities');
  const cities = r.json.cities as { id: string; currency: { code: string; exponent: number } }[];
  assert.deepEqual(cities.find((c) => c.id === city.id)?.currency, { code: 'INR', exponent: 2 });
  assert.deepEqual(cities.find((c) => c.id === tokyo.id)?.currency, { code: 'JPY', exponent: 0 });
});

test('hold, booking, extension: each price fixed at its moment, in paise', async () => {
  const t = futureHour(3 * HOUR);
  const created = await call(tok.hostA, 'POST', '/v1/vehicles', {
    city: city.id,
    category: 'sedan',
    seats: 5,
    make: 'Toyota',
    model: 'Corolla',
    transmission: 'automatic',
    fuel: 'petrol',
    location: { lat: 12.97, lng: 77.59 },
    pricePerHour: 12.5,
    pricePerDay: 100,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const v = String(created.json.vehicleId ?? created.json.id);
  const vehicle = await call(tok.alice, 'GET', `/v1/vehicles/${v}`);
  assert.equal(vehicle.json.pricePerDay, 100);

  // A search hit: 3 h at 12.50 is 3,750 paise; 26 h is a capped day (10,000) and 2 h (2,500).
  assert.deepEqual(await hitTotal(v, t, t + 3 * HOUR), { currency: 'INR', total: 3750 });
  assert.deepEqual(await hitTotal(v, t, t + 26 * HOUR), { currency: 'INR', total: 12_500 });

  const hold = await call(tok.alice, 'POST', '/v1/holds', { vehicleId: v, from: iso(t), to: iso(t + 26 * HOUR) });
  assert.equal(hold.status, 201);
  assert.deepEqual(priceOf(hold.json), {
    currency: 'INR',
    total: 12_500,
    breakdown: [
      { from: iso(t), to: iso(t + 24 * HOUR), hours: 24, unitAmount: 10_000, amount: 10_000, kind: 'daily_cap' },
      { from: iso(t + 24 * HOUR), to: iso(t + 26 * HOUR), hours: 2, unitAmount: 1250, amount: 2500, kind: 'hourly' },
    ],
  });

  // The host raises the rate and drops the cap: the hold keeps its price, and so does its booking.
  const patched = await call(tok.hostA, 'PATCH', `/v1/vehicles/${v}`, { pricePerHour: 20 });
  assert.equal(patched.status, 200, JSON.stringify(patched.json));
  const uncapped = await call(tok.hostA, 'PATCH', `/v1/vehicles/${v}`, { pricePerDay: null });
  assert.equal(uncapped.status, 200, JSON.stringify(uncapped.json));
  const vehicleAfter = await call(tok.alice, 'GET', `/v1/vehicles/${v}`);
  assert.equal(vehicleAfter.json.pricePerHour, 20);
  assert.equal(vehicleAfter.json.pricePerDay, undefined, 'the cap is gone');
  const booked = await call(tok.alice, 'POST', '/v1/bookings', { holdId: hold.json.id });
  assert.equal(booked.status, 201);
  assert.deepEqual(priceOf(booked.json), priceOf(hold.json), "the booking carries its hold's price");
  const id = String(booked.json.id);

  // 90 more minutes: two started hours at the rate of now (20.00), added to what was fixed.
  const extended = await call(tok.alice, 'POST', `/v1/bookings/${id}/extend`, { to: iso(t + 26 * HOUR + 90 * MINUTE) });
  assert.equal(extended.status, 200, JSON.stringify(extended.json));
  const p = priceOf(extended.json);
  assert.equal(p.total, 12_500 + 4000);
  assert.deepEqual(p.breakdown.at(-1), {
    from: iso(t + 26 * HOUR),
    to: iso(t + 26 * HOUR + 90 * MINUTE),
    hours: 2,
    unitAmount: 2000,
    amount: 4000,
    kind: 'hourly',
  });
  assert.deepEqual(priceOf((await call(tok.alice, 'GET', `/v1/bookings/${id}`)).json), p);

  // The read model knows the cap is gone: 26 h by the hour now.
  assert.deepEqual(await hitTotal(v, t + 40 * HOUR, t + 66 * HOUR), { currency: 'INR', total: 52_000 });

  // A direct booking of 61 minutes: two started hours at 20.00.
  const later = t + 40 * HOUR;
  assert.deepEqual(await hitTotal(v, later, later + 61 * MINUTE), { currency: 'INR', total: 4000 });
  const direct = await call(tok.bob, 'POST', '/v1/bookings', {
    vehicleId: v,
    from: iso(later),
    to: iso(later + 61 * MINUTE),
  });
  assert.equal(priceOf(direct.json).total, 4000);

  // PostgreSQL: the same prices, through the events.
  await new SyncWorker(stores.redis, stores.pool, inv.cities).drain();
  const { rows } = await stores.pool.query<{ id: string; currency: string; price_total: string }>(
    'SELECT id, currency, price_total FROM bookings WHERE vehicle_id = $1 ORDER BY id',
    [v],
  );
  assert.deepEqual(
    new Map(rows.map((r) => [r.id, [r.currency, Number(r.price_total)]])),
    new Map([
      [id, ['INR', 16_500]],
      [String(direct.json.id), ['INR', 4000]],
    ]),
  );
  const holdRow = await stores.pool.query<{ price_total: string }>('SELECT price_total FROM holds WHERE id = $1', [
    hold.json.id,
  ]);
  assert.equal(Number(holdRow.rows[0]?.price_total), 12_500);
  const vehicleRow = await stores.pool.query<{ price_per_day: string | null }>(
    'SELECT price_per_day FROM vehicles WHERE id = $1',
    [v],
  );
  assert.equal(vehicleRow.rows[0]?.price_per_day, null, 'the cap removed in PostgreSQL too');
});

test('an offer states the alternative’s price and what the customer pays; accepting it fixes that', async () => {
  const t = futureHour(48 * HOUR);
  const victim = await addVehicle(inv, city, { hostId: 'host-a', pricePerHour: 10 });
  const same = await addVehicle(inv, city, { hostId: 'host-b', pricePerHour: 12, pricePerDay: 50 });
  const upgrade = await addVehicle(inv, city, { hostId: 'host-b', category: 'suv', pricePerHour: 20 });
  const booked = await call(tok.carol, 'POST', '/v1/bookings', {
    vehicleId: victim,
    from: iso(t),
    to: iso(t + 5 * HOUR),
  });
  const id = String(booked.json.id);
  assert.equal(priceOf(booked.json).total, 5000);
  await inv.placeBlock({ vehicleId: victim, reason: 'maintenance', from: t - HOUR, to: t + 8 * HOUR });
  assert.equal((await desk.resolve(id)).outcome, 'offered');

  const offers = await call(tok.carol, 'GET', `/v1/bookings/${id}/offers`);
  type OfferBody = {
    id: string;
    vehicleId: string;
    incentive: { kind: string; amount: number };
    price: PriceBody;
    customerPays: { currency: string; total: number };
  };
  const list = offers.json.offers as OfferBody[];
  const byVehicle = new Map(list.map((o) => [o.vehicleId, o]));
  const sameOffer = byVehicle.get(same);
  const upgradeOffer = byVehicle.get(upgrade);
  assert.ok(sameOffer && upgradeOffer, JSON.stringify(list));
  // The alternatives' own prices for the window: 5 h at 12.00 capped at 50.00; 5 h at 20.00.
  assert.equal(sameOffer.price.total, windowTotal(1200, 5000, t, t + 5 * HOUR));
  assert.equal(sameOffer.price.total, 5000);
  assert.equal(upgradeOffer.price.total, 10_000);
  // A free upgrade is paid at the booked price; a credit comes off it.
  assert.deepEqual(upgradeOffer.customerPays, { currency: 'INR', total: 5000 });
  assert.equal(sameOffer.incentive.kind, 'credit');
  assert.deepEqual(sameOffer.customerPays, {
    currency: 'INR',
    total: 5000 - Math.round(sameOffer.incentive.amount * 100),
  });

  const accepted = await call(tok.carol, 'POST', `/v1/bookings/${id}/offers/${upgradeOffer.id}/accept`, {});
  assert.equal(accepted.status, 200, JSON.stringify(accepted.json));
  const moved = priceOf((await call(tok.carol, 'GET', `/v1/bookings/${id}`)).json);
  assert.equal(moved.total, 5000, 'the customer pays what they booked');
  assert.deepEqual(moved.breakdown, upgradeOffer.price.breakdown, "the trip's breakdown is the upgrade's");
  assert.deepEqual(moved.adjustment, { amount: -5000, offerId: upgradeOffer.id });

  await new SyncWorker(stores.redis, stores.pool, inv.cities).drain();
  const { rows } = await stores.pool.query<{ vehicle_id: string; price_total: string; customer_pays: string }>(
    'SELECT vehicle_id, price_total, customer_pays FROM offers WHERE booking_id = $1',
    [id],
  );
  for (const r of rows) {
    const o = byVehicle.get(r.vehicle_id);
    assert.equal(Number(r.price_total), o?.price.total);
    assert.equal(Number(r.customer_pays), o?.customerPays.total);
  }
});

test('a JPY city prices in whole yen and refuses fractional rates', async () => {
  const spec = {
    city: tokyo.id,
    category: 'sedan',
    seats: 5,
    make: 'Toyota',
    model: 'Prius',
    transmission: 'automatic',
    fuel: 'hybrid',
    location: { lat: 35.68, lng: 139.65 },
  };
  const refused = await call(tok.hostA, 'POST', '/v1/vehicles', { ...spec, pricePerHour: 1500.5 });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.code, 'VALIDATION');
  const created = await call(tok.hostA, 'POST', '/v1/vehicles', { ...spec, pricePerHour: 1500, pricePerDay: 9000 });
  assert.equal(created.status, 201);
  const t = futureHour(3 * HOUR);
  const hold = await call(tok.alice, 'POST', '/v1/holds', {
    vehicleId: created.json.vehicleId ?? created.json.id,
    from: iso(t),
    to: iso(t + 7 * HOUR),
  });
  assert.equal(hold.status, 201);
  assert.deepEqual(
    { currency: priceOf(hold.json).currency, total: priceOf(hold.json).total },
    { currency: 'JPY', total: 9000 },
  );
});

test('rebuilt from PostgreSQL, every rate and price is as it was', async () => {
  await new SyncWorker(stores.redis, stores.pool, inv.cities).drain();
  const ids = await stores.redis.smembers(keys.vehicles(city.id));
  assert.ok(ids.length >= 4);
  const seen = async () =>
    Promise.all(
      ids.sort().map(async (id) => {
        const s = await inv.getVehicleState(id);
        return {
          id,
          rates: [s.vehicle.pricePerHour, s.vehicle.pricePerDay],
          prices: s.entries.map((e) => [e.id, e.kind === 'block' ? null : (e.price ?? null)]),
        };
      }),
    );
  const before = await seen();
  assert.ok(before.some((v) => v.rates[1] !== undefined) && before.some((v) => v.rates[1] === undefined));
  await rebuildCity(stores.redis, stores.pool, city.id);
  assert.deepEqual(await seen(), before);
  await new SyncWorker(stores.redis, stores.pool, inv.cities).drain();
  assert.deepEqual((await reconcileCity(stores.redis, stores.pool, city.id)).drift, []);
});
