/**
 * GBFS 3.1 feeds: every file validates against the official schema of its version (Ajv),
 * `vehicle_status` and `vehicle_availability` agree with the live calendars in Redis, and
 * `system_pricing_plans` states the prices the engine charges.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { freeWindows } from '../../src/domain/calendar.ts';
import { REFERENCE_CITIES } from '../../src/domain/cities.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { GBFS_FEEDS } from '../../src/services/gbfs.ts';
import { currencyExponent, ratesOf, windowTotal } from '../../src/domain/pricing.ts';
import { HOUR, MINUTE, addVehicle, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';

const SCHEMAS = new URL('../fixtures/gbfs-json-schema/v3.1-RC3/', import.meta.url);
// A city in a zone of its own (not UTC), which system_information must name.
const city = { ...testCity(), timeZone: 'America/Los_Angeles' };
let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let base: string;
const vehicles: string[] = [];

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  // Two rates: 12.50 an hour (SEDAN's), and 12.50 capped at 100.00 a day.
  for (const [i, fuel] of (['petrol', 'electric', 'diesel', 'hybrid', 'cng', 'petrol'] as const).entries())
    vehicles.push(
      await addVehicle(inv, city, { fuel, hostId: `host-${i % 2}`, ...(i % 2 ? { pricePerDay: 100 } : {}) }),
    );
  const t = futureHour();
  const [free, booked, held, broken, renting, delisted] = vehicles as [string, string, string, string, string, string];
  void free;
  await inv.book({ vehicleId: booked, customerId: 'alice', from: t, to: t + 2 * HOUR });
  await inv.book({ vehicleId: booked, customerId: 'bob', from: t + 5 * HOUR, to: t + 6 * HOUR });
  const now = Math.floor(Date.now() / MINUTE) * MINUTE;
  await inv.placeHold({ vehicleId: held, customerId: 'carol', from: now, to: now + HOUR, allowPast: true });
  await inv.placeBlock({ vehicleId: broken, reason: 'accident' });
  const trip = await inv.book({ vehicleId: renting, customerId: 'dave', from: now, to: now + HOUR, allowPast: true });
  await inv.startTrip(trip.booking.id, undefined);
  await inv.delist(delisted);
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    readModel,
    authenticate: authenticator({ secret: new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!') }),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

async function feed(name: string) {
  const res = await fetch(`${base}/gbfs/${city.id}/${name}.json`);
  assert.equal(res.status, 200, name);
  return (await res.json()) as { version: string; last_updated: string; data: Record<string, unknown> };
}

test('every GBFS file validates against the official 3.1 schema, without a token', async () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const discovery = await feed('gbfs');
  const listed = (discovery.data.feeds as { name: string; url: string }[]).map((f) => f.name);
  assert.deepEqual(listed, ['gbfs', ...GBFS_FEEDS]);
  for (const name of ['gbfs', ...GBFS_FEEDS]) {
    const doc = await feed(name);
    const schema = JSON.parse(readFileSync(new URL(`${name}.json`, SCHEMAS), 'utf8')) as object;
    const validate = ajv.compile(schema);
    assert.ok(validate(doc), `${name}: ${JSON.stringify(validate.errors)}`);
    assert.equal(doc.version, '3.1-RC3');
  }
  for (const f of discovery.data.feeds as { url: string }[])
    assert.equal((await fetch(f.url)).status, 200, `${f.url} is served`);
  assert.equal((await fetch(`${base}/gbfs/zz404/gbfs.json`)).status, 404);
  assert.equal((await fetch(`${base}/gbfs/${city.id}/free_bike_status.json`)).status, 400);
});

test("system_information names the city's time zone, and every reference city's zone is one GBFS knows", async () => {
  assert.equal((await feed('system_information')).data.timezone, 'America/Los_Angeles');
  const schema = JSON.parse(readFileSync(new URL('system_information.json', SCHEMAS), 'utf8')) as {
    properties: { data: { properties: { timezone: { enum: string[] } } } };
  };
  const zones = new Set(schema.properties.data.properties.timezone.enum);
  assert.deepEqual(
    REFERENCE_CITIES.filter((c) => !zones.has(c.timeZone)).map((c) => c.timeZone),
    [],
  );
});

test('vehicle_status and vehicle_availability agree with the live calendars', async () => {
  const status = new Map(
    (
      (await feed('vehicle_status')).data.vehicles as {
        vehicle_id: string;
        is_reserved: boolean;
        is_disabled: boolean;
      }[]
    ).map((v) => [v.vehicle_id, v]),
  );
  const availabilityFeed = await feed('vehicle_availability');
  const at = Date.parse(availabilityFeed.last_updated);
  const availability = new Map(
    (
      availabilityFeed.data.vehicles as { vehicle_id: string; availabilities: { from: string; until?: string }[] }[]
    ).map((v) => [v.vehicle_id, v.availabilities]),
  );
  for (const id of vehicles) {
    const state = await inv.getVehicleState(id);
    const s = state.status;
    if (state.vehicle.listing !== 'active') {
      assert.ok(!status.has(id) && !availability.has(id), `${id} (${state.vehicle.listing}) is not published`);
      continue;
    }
    if (s === 'in_trip') assert.ok(!status.has(id), 'a vehicle on a rental is not in vehicle_status');
    else {
      assert.equal(status.get(id)?.is_reserved, s === 'booked' || s === 'held', `${id} ${s}`);
      assert.equal(
        status.get(id)?.is_disabled,
        s === 'accident' || s === 'maintenance' || s === 'blocked',
        `${id} ${s}`,
      );
    }
    // The windows are those the calendar leaves free (checked at the feed's own instant).
    const windows = availability.get(id) ?? [];
    if (s === 'accident') {
      assert.deepEqual(windows, [], 'an accident takes the vehicle until cleared');
      continue;
    }
    const expected = freeWindows(state.entries, city.turnaroundMs, at).map((w) => ({
      from: new Date(w.from).toISOString().replace('.000Z', 'Z'),
      ...(w.until !== undefined ? { until: new Date(w.until).toISOString().replace('.000Z', 'Z') } : {}),
    }));
    assert.deepEqual(windows, expected, id);
  }
  // A booking made now shows at once.
  const free = vehicles[0] ?? '';
  const t = futureHour(10 * HOUR);
  await inv.book({ vehicleId: free, customerId: 'erin', from: t, to: t + HOUR });
  const after = (
    (await feed('vehicle_availability')).data.vehicles as { vehicle_id: string; availabilities: unknown[] }[]
  ).find((v) => v.vehicle_id === free);
  assert.equal(after?.availabilities.length, 2, 'the new booking splits the free time');
});

test('system_pricing_plans: the prices the engine charges, named by each listed vehicle and its type', async () => {
  const { plans } = (await feed('system_pricing_plans')).data as {
    plans: {
      plan_id: string;
      currency: string;
      price: number;
      per_min_pricing: { start: number; rate: number; interval: number }[];
      fare_capping?: { duration: number; price: number };
    }[];
  };
  assert.deepEqual(
    plans.map((p) => p.plan_id),
    ['hourly-1250', 'hourly-1250-daily-10000'],
  );
  const types = (await feed('vehicle_types')).data.vehicle_types as {
    vehicle_type_id: string;
    default_pricing_plan_id: string;
    pricing_plan_ids: string[];
  }[];
  const status = (await feed('vehicle_status')).data.vehicles as { vehicle_id: string; pricing_plan_id: string }[];
  const byId = new Map(plans.map((p) => [p.plan_id, p]));
  for (const t of types) {
    assert.ok(byId.has(t.default_pricing_plan_id), `${t.vehicle_type_id}: its default plan is published`);
    assert.ok(t.pricing_plan_ids.includes(t.default_pricing_plan_id));
  }
  const exponent = currencyExponent(city.currency);
  for (const v of status) {
    const plan = byId.get(v.pricing_plan_id);
    assert.ok(plan, `${v.vehicle_id}: its plan is published`);
    assert.equal(plan.currency, city.currency);
    // The plan, read as GBFS defines it, charges what the engine charges for any window.
    const state = await inv.getVehicleState(v.vehicle_id);
    const { hour, day } = ratesOf(state.vehicle, exponent);
    for (const minutes of [1, 59, 60, 61, 600, 1439, 1440, 1441, 3000, 43_200]) {
      const seg = plan.per_min_pricing[0];
      assert.ok(seg && plan.per_min_pricing.length === 1);
      const cap = plan.fare_capping;
      let gbfs: number = plan.price;
      for (let m = 0; m < minutes; m += cap?.duration ?? minutes) {
        const span = Math.min(minutes - m, cap?.duration ?? minutes);
        const byTime = Math.ceil(span / seg.interval) * seg.rate;
        gbfs += cap ? Math.min(byTime, cap.price) : byTime;
      }
      const engine = windowTotal(hour, day, 0, minutes * MINUTE);
      assert.equal(Math.round(gbfs * 10 ** exponent), engine, `${v.vehicle_id} for ${minutes} min`);
    }
  }
});
