/**
 * Late returns seen coming, end to end on real Redis and PostgreSQL. A host whose trips have run
 * two hours late has a car out on a trip, and the car's next booking starts half an hour after
 * that trip's end plus the turnaround. The watch, fitted on that history, must mark the next
 * booking at risk before it starts, with an event and a similar vehicle held for it; release the
 * held vehicle when the car comes back in time; let the customer switch to it instead; and, when
 * the car does come back late, hand the conflict to the offers with the held vehicle among them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import type { BookingEntry, HoldEntry } from '../../src/domain/calendar.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { LateReturnWatch } from '../../src/services/late-returns.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, MINUTE, addVehicle, newInventory, readEvents, testCity } from '../support/engine.ts';

const SECRET = new TextEncoder().encode('late-returns-secret-of-32-bytes-long!!');
const city = testCity();
let stores: Stores;
let clock: ShiftedClock;
let inv: Inventory;
let readModel: ReadModel;
let desk: ConflictDesk;
let watch: LateReturnWatch;
const at = (dLat: number) => ({ lat: city.center.lat + dLat, lng: city.center.lng });

before(async () => {
  stores = await startStores();
  clock = new ShiftedClock(stores.redis);
  inv = newInventory(stores.redis, city, { clock });
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  desk = new ConflictDesk(stores.redis, inv, readModel);
  watch = new LateReturnWatch(stores.redis, inv, readModel, desk, stores.pool, { threshold: 0.3, leadMs: 6 * HOUR });
});

after(async () => {
  await readModel?.stop();
  await stores?.stop();
});

/** A late host's car on a trip ending in an hour, and the next booking on it soon after. */
async function scene(label: string, category: 'suv' | 'luxury' = 'suv') {
  const hostId = `late-host-${label}`;
  // Each scene in its own part of town: its spare is the nearest similar vehicle.
  const here = 0.2 * (label.charCodeAt(0) - 97);
  const car = await addVehicle(inv, city, { hostId, category, location: at(here) });
  const spare = await addVehicle(inv, city, { hostId: `other-${label}`, category, location: at(here + 0.005) });
  await new SyncWorker(stores.redis, stores.pool, new CityCatalog([city])).drain();
  // Their history: 40 trips on this car, 30 of them back about two hours late.
  const rows = Array.from({ length: 40 }, (_, i) => {
    const from = Date.now() - (200 - i * 4) * HOUR;
    const scheduledTo = from + 3 * HOUR;
    const late = i % 4 !== 0;
    return {
      id: `bkg_${city.id}_hist${label}${i}`,
      vehicle: car,
      doc: {
        from,
        to: late ? scheduledTo + 120 * MINUTE : scheduledTo,
        completedAt: late ? scheduledTo + (90 + (i % 5) * 15) * MINUTE : scheduledTo,
        completion: late ? 'late' : 'on_time',
        ...(late ? { scheduledTo } : {}),
      },
    };
  });
  await stores.pool.query(
    `INSERT INTO bookings (id, city, vehicle_id, customer_id, status, period, doc, created_at, updated_at)
     SELECT x.id, $2, x.vehicle, 'someone', 'completed',
            tstzrange(to_timestamp((x.doc->>'from')::float8 / 1000), to_timestamp((x.doc->>'to')::float8 / 1000)), x.doc, now(), now()
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, vehicle text, doc jsonb)`,
    [JSON.stringify(rows), city.id],
  );
  await watch.refit();
  const m = Math.floor(clock.now() / MINUTE) * MINUTE;
  const trip = await inv.book({
    vehicleId: car,
    customerId: `driver-${label}`,
    from: m - HOUR,
    to: m + HOUR,
    allowPast: true,
  });
  await inv.startTrip(trip.booking.id, `driver-${label}`);
  // Next: an hour after the trip's end, i.e. 30 minutes of slack beyond the 30-minute turnaround.
  const next = await inv.book({ vehicleId: car, customerId: `next-${label}`, from: m + 2 * HOUR, to: m + 5 * HOUR });
  return { car, spare, trip: trip.booking, next: next.booking };
}

async function entryOf(id: string, kind: 'booking' | 'hold') {
  return (await inv.getEntry(id, kind)).entry;
}

test('at risk before its start: an event and a held vehicle; released when the car comes back in time', async () => {
  const s = await scene('a');
  const { flagged } = await watch.scanCity(city.id);
  const f = flagged.find((x) => x.bookingId === s.next.id);
  assert.ok(f, `flagged: ${JSON.stringify(flagged.map((x) => x.bookingId))}`);
  assert.ok(f.probability >= 0.3, `p = ${f.probability}`);
  assert.equal(f.standby?.vehicleId, s.spare, 'the similar free vehicle is held');
  assert.ok(
    f.risk.reasons.some((r) => r.factor === `host late-host-a` && r.effect > 0),
    'the host explains it',
  );
  const booking = (await entryOf(s.next.id, 'booking')) as BookingEntry;
  assert.equal(booking.status, 'confirmed', 'the booking itself is untouched');
  assert.equal(booking.atRisk?.tripId, s.trip.id);
  const hold = (await entryOf(f.standby!.holdId, 'hold')) as HoldEntry;
  assert.deepEqual(
    [hold.status, hold.customerId, hold.from, hold.to, hold.standbyFor],
    ['held', `next-a`, s.next.from, s.next.to, s.next.id],
  );
  const events = await readEvents(stores.redis, city.id);
  const atRisk = events.find((e) => e.type === 'booking.at_risk' && e.subject === s.next.id);
  assert.ok(atRisk && atRisk.time < s.next.from, 'told before the start');
  assert.equal(atRisk.data.customerId, 'next-a');
  assert.deepEqual((atRisk.data.standby as { vehicleId: string }).vehicleId, s.spare);
  // A second scan changes nothing.
  assert.equal((await watch.scanCity(city.id)).flagged.length, 0);

  await inv.completeTrip(s.trip.id, 'driver-a');
  const { cleared } = await watch.scanCity(city.id);
  assert.deepEqual(cleared, [s.next.id]);
  assert.equal(((await entryOf(f.standby!.holdId, 'hold')) as HoldEntry).status, 'released');
  const after = (await entryOf(s.next.id, 'booking')) as BookingEntry;
  assert.equal(after.atRisk?.cleared, 'trip_back');
  assert.ok(
    (await readEvents(stores.redis, city.id)).some((e) => e.type === 'booking.risk_cleared' && e.subject === s.next.id),
  );
});

test('the customer switches to the held vehicle now, over the API', async () => {
  const s = await scene('b');
  const f = (await watch.scanCity(city.id)).flagged.find((x) => x.bookingId === s.next.id);
  assert.ok(f?.standby);
  const app: App = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    readModel,
    conflicts: desk,
    lateReturns: watch,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: { customer: 1e6, host: 1e6, ops: 1e6, admin: 1e6 },
  });
  try {
    const post = async (sub: string) =>
      app.inject({
        method: 'POST',
        url: `/v1/bookings/${s.next.id}/switch`,
        headers: { authorization: `Bearer ${await mintToken(SECRET, { sub, role: 'customer' })}` },
      });
    assert.equal((await post('someone-else')).statusCode, 404, "another customer's booking is not found");
    const res = await post('next-b');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().vehicleId, s.spare);
    const moved = await inv.getEntry(s.next.id, 'booking');
    assert.equal(moved.vehicle.id, s.spare, 'same booking id, now on the held vehicle');
    assert.deepEqual([moved.entry.from, moved.entry.to, moved.entry.status], [s.next.from, s.next.to, 'confirmed']);
    assert.equal((await entryOf(f.standby.holdId, 'hold')).status, 'converted');
    assert.equal((await post('next-b')).statusCode, 409, 'nothing left to switch to');
  } finally {
    await app.close();
    await inv.completeTrip(s.trip.id, 'driver-b');
  }
});

test('the car comes back late after all: the conflict gets offers, the held vehicle among them', async () => {
  const s = await scene('c');
  const f = (await watch.scanCity(city.id)).flagged.find((x) => x.bookingId === s.next.id);
  assert.ok(f?.standby);
  // Two and a half hours on: the trip is late and the next booking's start has passed its turnaround.
  clock.advance(2 * HOUR + 30 * MINUTE);
  await inv.completeTrip(s.trip.id, 'driver-c');
  assert.equal((await entryOf(s.next.id, 'booking')).status, 'conflicted');
  const r = await desk.resolve(s.next.id);
  assert.equal(r.outcome, 'offered');
  assert.ok(
    r.record?.offers.some((o) => o.vehicleId === s.spare),
    'the standby was released to be offered',
  );
  assert.equal(((await entryOf(f.standby.holdId, 'hold')) as HoldEntry).status, 'released');
});

test('nothing similar free at first: each scan tries again, and holds the vehicle once it is free', async () => {
  // Luxury: the top class, so only this scene's spare can stand in; it is taken for the window.
  const s = await scene('d', 'luxury');
  const taken = await inv.book({ vehicleId: s.spare, customerId: 'someone', from: s.next.from, to: s.next.to });
  const first = (await watch.scanCity(city.id)).flagged.find((x) => x.bookingId === s.next.id);
  assert.ok(first && !first.again && first.standby === undefined, 'marked, nothing held');
  assert.equal((await watch.scanCity(city.id)).flagged.length, 0, 'nothing new while nothing is free');
  await inv.cancelBooking(taken.booking.id, 'someone');
  const again = (await watch.scanCity(city.id)).flagged.find((x) => x.bookingId === s.next.id);
  assert.ok(again?.again, 'tried again');
  assert.equal(again.standby?.vehicleId, s.spare);
  const told = (await readEvents(stores.redis, city.id)).filter(
    (e) => e.type === 'booking.at_risk' && e.subject === s.next.id,
  );
  assert.equal(told.length, 2, 'the customer is told again, with the vehicle held');
  const second = told[1];
  assert.ok(second);
  assert.equal((second.data.standby as { vehicleId: string }).vehicleId, s.spare);
  await inv.completeTrip(s.trip.id, 'driver-d');
});
