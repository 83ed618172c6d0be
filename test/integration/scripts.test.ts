/**
 * Every script, through the service layer: each success path and each error code. On every
 * refusal the city's keys and stream must be unchanged, content for content (snapshotCity).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import type { BookingEntry, CalendarEntry, HoldEntry } from '../../src/domain/calendar.ts';
import type { City } from '../../src/domain/cities.ts';
import { DomainError, type ErrorCode } from '../../src/domain/errors.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { keys } from '../../src/redis/keys.ts';
import type { Inventory, InventoryOptions } from '../../src/services/inventory.ts';
import { VehicleLocks } from '../../src/services/vehicle-locks.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import {
  HOUR,
  MINUTE,
  SEDAN,
  addVehicle,
  assertCityInvariants,
  connect,
  futureHour,
  newInventory,
  readCity,
  readEvents,
  snapshotCity,
  testCity,
} from '../support/engine.ts';

let server: RedisServer;
let redis: Redis;
/** Connections of the tests on a moved clock (timedFixture). */
const timed: Redis[] = [];
before(async () => {
  server = await startRedis();
  redis = connect(server.url);
});
after(async () => {
  for (const conn of timed) conn.disconnect();
  redis.disconnect();
  await server.stop();
});

interface Fixture {
  city: City;
  inv: Inventory;
  v: string;
  t: number;
}

async function fixture(opts: Omit<InventoryOptions, 'cities'> = {}): Promise<Fixture> {
  const city = testCity();
  const inv = newInventory(redis, city, opts);
  return { city, inv, v: await addVehicle(inv, city), t: futureHour() };
}

type TimedFixture = Fixture & { clock: ShiftedClock; conn: Redis };

/**
 * A fixture on a connection of its own whose scripts run on a clock the test moves
 * (redis/clock.ts): a hold lapses, a trip runs late, a block ends at once, instead of after a
 * real wait. Reads of the city (snapshots, events, invariants) stay on the shared connection.
 */
async function timedFixture(opts: Omit<InventoryOptions, 'cities' | 'clock'> = {}): Promise<TimedFixture> {
  const conn = redis.duplicate();
  timed.push(conn);
  const clock = new ShiftedClock(conn);
  const city = testCity();
  const inv = newInventory(conn, city, { ...opts, clock });
  return { city, inv, v: await addVehicle(inv, city), t: futureHour(), clock, conn };
}

/** The command is refused with `code`, and nothing of the city changed, stream included. */
async function refused(f: Fixture, run: () => Promise<unknown>, code: ErrorCode): Promise<DomainError> {
  const beforeSnap = await snapshotCity(redis, f.city.id);
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DomainError, `expected DomainError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.deepEqual(await snapshotCity(redis, f.city.id), beforeSnap, `${code}: the city is byte-for-byte unchanged`);
  return caught;
}

async function entry(f: Fixture, id: string, vehicleId = f.v): Promise<CalendarEntry> {
  const e = (await f.inv.getVehicleState(vehicleId)).entries.find((x) => x.id === id);
  assert.ok(e, `entry ${id}`);
  return e;
}

async function eventTypes(f: Fixture, ids: string[]): Promise<string[]> {
  const all = await readEvents(redis, f.city.id);
  return ids.map((id) => all.find((e) => e.id === id)?.type ?? 'missing');
}

async function done(f: Fixture, now?: number): Promise<void> {
  assertCityInvariants(await readCity(redis, f.city.id), f.city.turnaroundMs, now);
}

/** The start of the current minute: windows from here may start a trip now (ops books the past). */
const thisMinute = () => Math.floor(Date.now() / MINUTE) * MINUTE;

describe('upsert_vehicle', () => {
  test('creates a vehicle: version 1, status available, indexed, counted, vehicle.created', async () => {
    const f = await fixture();
    const s = await f.inv.getVehicleState(f.v);
    assert.equal(s.vehicle.version, 1);
    assert.equal(s.status, 'available');
    assert.deepEqual({ ...s.vehicle.location }, SEDAN.location);
    assert.ok(await redis.sismember(keys.vehicles(f.city.id), f.v));
    assert.ok(await redis.sismember(keys.hostVehicles(f.city.id, SEDAN.hostId), f.v));
    assert.equal(await redis.hget(keys.counters(f.city.id), 's:available'), '1');
    assert.equal(await redis.hget(keys.counters(f.city.id), 'cs:sedan:available'), '1');
    const [ev] = await readEvents(redis, f.city.id);
    assert.equal(ev?.type, 'vehicle.created');
    assert.equal(ev?.version, 1);
  });

  test('updates with the expected version; a category change moves the counters', async () => {
    const f = await fixture();
    const r = await f.inv.updateVehicle(f.v, { category: 'suv', pricePerHour: 20 }, 1, { commandId: 'cmd-upd' });
    assert.equal(r.version, 2);
    assert.equal(r.created, false);
    const counters = await redis.hgetall(keys.counters(f.city.id));
    assert.equal(counters['c:sedan'], '0');
    assert.equal(counters['c:suv'], '1');
    assert.equal(counters['cs:suv:available'], '1');
    const ev = (await readEvents(redis, f.city.id)).at(-1)!;
    assert.deepEqual([ev.type, ev.cmd, ev.data], ['vehicle.updated', 'cmd-upd', { category: 'suv', pricePerHour: 20 }]);
    await done(f);
  });

  test('a stale version is VERSION_MISMATCH', async () => {
    const f = await fixture();
    const err = await refused(f, () => f.inv.updateVehicle(f.v, { seats: 7 }, 5), 'VERSION_MISMATCH');
    assert.deepEqual([err.detail.expected, err.detail.actual], [5, 1]);
  });

  test('creating an existing id is VERSION_MISMATCH; invalid specs are VALIDATION', async () => {
    const f = await fixture();
    await refused(f, () => f.inv.createVehicle(f.city.id, SEDAN, { id: f.v }), 'VERSION_MISMATCH');
    await refused(f, () => f.inv.updateVehicle(f.v, { seats: 0 }, undefined), 'VALIDATION');
    await refused(f, () => f.inv.createVehicle(f.city.id, { ...SEDAN, hostId: '' }), 'VALIDATION');
  });

  test('an unknown vehicle or city is NOT_FOUND', async () => {
    const f = await fixture();
    await refused(
      f,
      () => f.inv.updateVehicle(`veh_${f.city.id}_0000000000000000000`, { seats: 4 }, 1),
      'VERSION_MISMATCH',
    );
    await refused(f, () => f.inv.getVehicleState(`veh_${f.city.id}_0000000000000000000`), 'NOT_FOUND');
    await refused(f, () => f.inv.createVehicle('nowhere', SEDAN), 'NOT_FOUND');
  });
});

describe('set_listing', () => {
  test('delisting conflicts confirmed bookings, releases live holds, keeps a trip under way', async () => {
    const f = await fixture();
    const m = thisMinute();
    const trip = await f.inv.book({ vehicleId: f.v, customerId: 'c0', from: m - HOUR, to: m + HOUR, allowPast: true });
    await f.inv.startTrip(trip.booking.id, 'c0');
    const later = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR });
    const hold = await f.inv.placeHold({
      vehicleId: f.v,
      customerId: 'c2',
      from: f.t + 10 * HOUR,
      to: f.t + 11 * HOUR,
    });
    const r = await f.inv.delist(f.v, 'sold');
    assert.deepEqual(await eventTypes(f, r.events), ['vehicle.delisted', 'booking.conflicted', 'hold.released']);
    assert.equal(r.status, 'in_trip', 'the trip under way outranks delisted');
    assert.equal((await entry(f, trip.booking.id)).status, 'active');
    const b = (await entry(f, later.booking.id)) as BookingEntry;
    assert.deepEqual([b.status, b.conflictCause, b.conflictedBy], ['conflicted', 'delisted', f.v]);
    assert.equal((await entry(f, hold.hold.id)).status, 'released');
    assert.equal(await redis.hexists(keys.liveHolds(f.city.id), hold.hold.id), 0);
    await done(f);
  });

  test('relisting; listing twice is INVALID_STATE; a delisted vehicle is NOT_AVAILABLE', async () => {
    const f = await fixture();
    await f.inv.delist(f.v);
    assert.equal((await f.inv.getVehicleState(f.v)).status, 'delisted');
    await refused(f, () => f.inv.delist(f.v), 'INVALID_STATE');
    const err = await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c', from: f.t, to: f.t + HOUR }),
      'NOT_AVAILABLE',
    );
    assert.equal(err.detail.listing, 'delisted');
    await refused(
      f,
      () => f.inv.placeHold({ vehicleId: f.v, customerId: 'c', from: f.t, to: f.t + HOUR }),
      'NOT_AVAILABLE',
    );
    const r = await f.inv.relist(f.v);
    assert.equal(r.status, 'available');
    await refused(f, () => f.inv.relist(f.v), 'INVALID_STATE');
    await done(f);
  });
});

describe('place_hold', () => {
  test('places a hold that expires after the ttl', async () => {
    const f = await fixture({ holdTtlMs: 60_000 });
    const r = await f.inv.placeHold(
      { vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR },
      { commandId: 'cmd-h' },
    );
    assert.equal(r.hold.status, 'held');
    assert.equal(r.hold.expiresAt, r.at + 60_000);
    assert.equal(r.version, 2);
    assert.deepEqual(await eventTypes(f, r.events), ['hold.placed']);
    assert.equal(await redis.hget(keys.liveHolds(f.city.id), r.hold.id), f.v);
    assert.ok(Number(await redis.zscore(keys.customerHolds(f.city.id, 'c1'), r.hold.id)) > 0);
    await done(f);
  });

  test('an overlap, turnaround included, is NOT_AVAILABLE naming the blocking window', async () => {
    const f = await fixture();
    await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + 2 * HOUR });
    const err = await refused(
      f,
      () =>
        f.inv.placeHold({ vehicleId: f.v, customerId: 'c2', from: f.t + 2 * HOUR + 20 * MINUTE, to: f.t + 4 * HOUR }),
      'NOT_AVAILABLE',
    );
    assert.deepEqual(err.detail.blocking, { kind: 'booking', from: f.t, to: f.t + 2 * HOUR, status: 'confirmed' });
    assert.equal(err.detail.turnaroundMs, 30 * MINUTE);
    assert.match(err.message, /turnaround 30 min/);
    // Exactly one turnaround later is free.
    await f.inv.placeHold({ vehicleId: f.v, customerId: 'c2', from: f.t + 2 * HOUR + 30 * MINUTE, to: f.t + 4 * HOUR });
    await done(f);
  });

  test('bad intervals are INVALID_INTERVAL', async () => {
    const f = await fixture();
    const cases: [number, number, string][] = [
      [f.t + 1, f.t + HOUR, 'minute'],
      [f.t, f.t, 'order'],
      [f.t + HOUR, f.t, 'order'],
      [f.t, f.t + 30 * 24 * HOUR + MINUTE, 'too_long'],
      [thisMinute() - HOUR, thisMinute() + HOUR, 'past'],
    ];
    for (const [from, to, problem] of cases) {
      const err = await refused(
        f,
        () => f.inv.placeHold({ vehicleId: f.v, customerId: 'c', from, to }),
        'INVALID_INTERVAL',
      );
      assert.equal(err.detail.problem, problem);
    }
    await refused(f, () => f.inv.placeHold({ vehicleId: f.v, customerId: 'c', from: -1, to: f.t }), 'INVALID_INTERVAL');
  });

  test('the per-customer cap of live holds is HOLD_LIMIT; a released hold frees its place', async () => {
    const f = await fixture({ maxLiveHoldsPerCustomer: 2 });
    const v2 = await addVehicle(f.inv, f.city);
    const h1 = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await f.inv.placeHold({ vehicleId: v2, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const err = await refused(
      f,
      () => f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR }),
      'HOLD_LIMIT',
    );
    assert.deepEqual([err.detail.live, err.detail.max], [2, 2]);
    await f.inv.placeHold({ vehicleId: f.v, customerId: 'other', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR });
    await f.inv.releaseHold(h1.hold.id, 'c1');
    await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t + 10 * HOUR, to: f.t + 11 * HOUR });
    await done(f);
  });

  test('an unknown vehicle is NOT_FOUND', async () => {
    const f = await fixture();
    await refused(
      f,
      () =>
        f.inv.placeHold({
          vehicleId: `veh_${f.city.id}_0000000000000000000`,
          customerId: 'c',
          from: f.t,
          to: f.t + HOUR,
        }),
      'NOT_FOUND',
    );
    await refused(
      f,
      () => f.inv.placeHold({ vehicleId: 'garbage', customerId: 'c', from: f.t, to: f.t + HOUR }),
      'NOT_FOUND',
    );
  });
});

describe('release_hold', () => {
  test('releases a live hold; the window is free again', async () => {
    const f = await fixture();
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const r = await f.inv.releaseHold(h.hold.id, 'c1');
    assert.deepEqual([r.hold.status, r.hold.releaseReason], ['released', 'customer']);
    assert.deepEqual(await eventTypes(f, r.events), ['hold.released']);
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR });
    await done(f);
  });

  test('twice is INVALID_STATE; another customer is NOT_FOUND; unknown is NOT_FOUND', async () => {
    const f = await fixture();
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await refused(f, () => f.inv.releaseHold(h.hold.id, 'c2'), 'NOT_FOUND');
    await f.inv.releaseHold(h.hold.id, 'c1');
    await refused(f, () => f.inv.releaseHold(h.hold.id, 'c1'), 'INVALID_STATE');
    await refused(f, () => f.inv.releaseHold(`hld_${f.city.id}_0000000000000000000`, 'c1'), 'NOT_FOUND');
  });

  test('a lapsed hold is HOLD_EXPIRED, until the sweeper expires it', async () => {
    const f = await timedFixture({ holdTtlMs: 150 });
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    f.clock.advance(250);
    await refused(f, () => f.inv.releaseHold(h.hold.id, 'c1'), 'HOLD_EXPIRED');
  });
});

describe('book', () => {
  test('books directly: confirmed, version bumped, booking.confirmed with the command id', async () => {
    const f = await fixture();
    const r = await f.inv.book(
      { vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + 3 * HOUR },
      { commandId: 'cmd-b' },
    );
    assert.deepEqual(
      [r.booking.status, r.booking.from, r.booking.to, r.booking.customerId],
      ['confirmed', f.t, f.t + 3 * HOUR, 'c1'],
    );
    assert.equal(r.version, 2);
    const [ev] = (await readEvents(redis, f.city.id)).filter((e) => e.cmd === 'cmd-b');
    assert.deepEqual(
      [ev?.type, ev?.subject, ev?.version, ev?.status],
      ['booking.confirmed', r.booking.id, 2, 'available'],
    );
    assert.equal(await redis.hget(keys.entries(f.city.id), r.booking.id), f.v);
    await done(f);
  });

  test('books from a hold: the hold converts, the booking takes its window', async () => {
    const f = await fixture();
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const r = await f.inv.book({ holdId: h.hold.id, customerId: 'c1' });
    assert.deepEqual([r.booking.from, r.booking.to, r.booking.holdId], [f.t, f.t + HOUR, h.hold.id]);
    assert.deepEqual(await eventTypes(f, r.events), ['hold.converted', 'booking.confirmed']);
    const hold = (await entry(f, h.hold.id)) as HoldEntry;
    assert.deepEqual([hold.status, hold.bookingId], ['converted', r.booking.id]);
    await refused(f, () => f.inv.book({ holdId: h.hold.id, customerId: 'c1' }), 'INVALID_STATE');
    await done(f);
  });

  test("another customer's hold is NOT_FOUND; a lapsed hold is HOLD_EXPIRED", async () => {
    const f = await timedFixture({ holdTtlMs: 150 });
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await refused(f, () => f.inv.book({ holdId: h.hold.id, customerId: 'c2' }), 'NOT_FOUND');
    f.clock.advance(250);
    await refused(f, () => f.inv.book({ holdId: h.hold.id, customerId: 'c1' }), 'HOLD_EXPIRED');
    // A lapsed hold no longer takes the window.
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR });
  });

  test('overlaps with holds, bookings and blocks are NOT_AVAILABLE; bad windows INVALID_INTERVAL', async () => {
    const f = await fixture();
    await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await f.inv.placeBlock({ vehicleId: f.v, reason: 'maintenance', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR });
    assert.equal(
      (
        await refused(
          f,
          () => f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR }),
          'NOT_AVAILABLE',
        )
      ).detail.blocking && 'hold',
      'hold',
    );
    const err = await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 5 * HOUR, to: f.t + 7 * HOUR }),
      'NOT_AVAILABLE',
    );
    assert.deepEqual(err.detail.blocking, {
      kind: 'block',
      reason: 'maintenance',
      status: 'active',
      from: f.t + 5 * HOUR,
      to: f.t + 6 * HOUR,
    });
    // A block needs no turnaround after it.
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 6 * HOUR, to: f.t + 7 * HOUR });
    await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 30_000, to: f.t + HOUR }),
      'INVALID_INTERVAL',
    );
    await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c2', from: Number.NaN, to: f.t }),
      'INVALID_INTERVAL',
    );
    await done(f);
  });
});

describe('cancel_booking', () => {
  test('cancels a confirmed booking and frees the window', async () => {
    const f = await fixture();
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const r = await f.inv.cancelBooking(b.booking.id, 'c1', 'changed plans');
    assert.deepEqual([r.booking.status, r.booking.cancelReason], ['cancelled', 'changed plans']);
    assert.deepEqual(await eventTypes(f, r.events), ['booking.cancelled']);
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR });
    await done(f);
  });

  test('a conflicted booking can be cancelled; cancelled twice is INVALID_STATE; foreign is NOT_FOUND', async () => {
    const f = await fixture();
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await refused(f, () => f.inv.cancelBooking(b.booking.id, 'c2'), 'NOT_FOUND');
    await f.inv.placeBlock({ vehicleId: f.v, reason: 'maintenance', from: f.t, to: f.t + HOUR });
    const r = await f.inv.cancelBooking(b.booking.id, 'c1');
    assert.equal(r.booking.status, 'cancelled');
    await refused(f, () => f.inv.cancelBooking(b.booking.id, 'c1'), 'INVALID_STATE');
    await refused(f, () => f.inv.cancelBooking(`bkg_${f.city.id}_0000000000000000000`, undefined), 'NOT_FOUND');
  });
});

describe('start_trip and complete_trip', () => {
  test('starts in the pickup window; an active trip cannot be cancelled; early completion frees the rest', async () => {
    const f = await fixture();
    const m = thisMinute();
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: m - HOUR, to: m + 3 * HOUR, allowPast: true });
    const s = await f.inv.startTrip(b.booking.id, 'c1');
    assert.deepEqual([s.booking.status, s.status], ['active', 'in_trip']);
    assert.deepEqual(await eventTypes(f, s.events), ['booking.started']);
    assert.equal(await redis.hget(keys.counters(f.city.id), 's:in_trip'), '1');
    await refused(f, () => f.inv.cancelBooking(b.booking.id, 'c1'), 'INVALID_STATE');
    await refused(f, () => f.inv.startTrip(b.booking.id, 'c1'), 'INVALID_STATE');
    // While the trip runs, the rest of its window is taken.
    await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c2', from: m + 2 * HOUR, to: m + 4 * HOUR }),
      'NOT_AVAILABLE',
    );
    const c = await f.inv.completeTrip(b.booking.id, 'c1');
    assert.equal(c.booking.status, 'completed');
    assert.equal(c.booking.completion, 'early');
    assert.equal(c.booking.scheduledTo, m + 3 * HOUR);
    assert.equal(c.booking.to, c.at);
    assert.equal(c.status, 'available');
    // The freed rest is bookable once the turnaround has passed.
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: m + 2 * HOUR, to: m + 4 * HOUR });
    await refused(f, () => f.inv.completeTrip(b.booking.id, 'c1'), 'INVALID_STATE');
    await done(f);
  });

  test('a trip started early and ended before its window began closes at its start, never before it', async () => {
    const f = await fixture();
    const from = thisMinute() + 10 * MINUTE;
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from, to: from + 2 * HOUR });
    await f.inv.startTrip(b.booking.id, 'c1');
    const c = await f.inv.completeTrip(b.booking.id, 'c1');
    assert.deepEqual(
      [c.booking.completion, c.booking.from, c.booking.to, c.booking.scheduledTo],
      ['early', from, from, from + 2 * HOUR],
    );
    assert.equal(c.status, 'available');
    await done(f);
  });

  test('a completion within the last minute of the window is on time and keeps the window', async () => {
    const f = await fixture();
    const end = thisMinute() + MINUTE;
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: end - HOUR, to: end, allowPast: true });
    await f.inv.startTrip(b.booking.id, 'c1');
    const c = await f.inv.completeTrip(b.booking.id, 'c1');
    assert.deepEqual([c.booking.completion, c.booking.to, c.booking.scheduledTo], ['on_time', end, undefined]);
    assert.deepEqual(await eventTypes(f, c.events), ['booking.completed']);
    await done(f);
  });

  test('outside the pickup window is INVALID_STATE; a second trip under way is NOT_AVAILABLE', async () => {
    const f = await fixture({});
    const future = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR });
    const err = await refused(f, () => f.inv.startTrip(future.booking.id, 'c1'), 'INVALID_STATE');
    assert.equal(err.detail.problem, 'outside_pickup_window');
    // Two bookings whose pickup windows are both open now (ops wrote both).
    const m = thisMinute();
    const city2 = testCity(0);
    const inv2 = newInventory(redis, city2);
    const g: Fixture = { city: city2, inv: inv2, v: await addVehicle(inv2, city2), t: f.t };
    const a = await g.inv.book({
      vehicleId: g.v,
      customerId: 'c1',
      from: m - HOUR,
      to: m + 10 * MINUTE,
      allowPast: true,
    });
    const b = await g.inv.book({ vehicleId: g.v, customerId: 'c2', from: m + 10 * MINUTE, to: m + HOUR });
    await g.inv.startTrip(a.booking.id, 'c1');
    const busy = await refused(g, () => g.inv.startTrip(b.booking.id, 'c2'), 'NOT_AVAILABLE');
    assert.equal((busy.detail.blocking as { status: string }).status, 'active');
    await refused(f, () => f.inv.startTrip(future.booking.id, 'someone-else'), 'NOT_FOUND');
  });
});

describe('extend_booking', () => {
  test('extends into free time; refuses overlaps; a later end is required', async () => {
    const f = await fixture();
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 4 * HOUR, to: f.t + 5 * HOUR });
    const r = await f.inv.extendBooking(b.booking.id, 'c1', f.t + 2 * HOUR);
    assert.equal(r.booking.to, f.t + 2 * HOUR);
    assert.deepEqual(await eventTypes(f, r.events), ['booking.extended']);
    const err = await refused(f, () => f.inv.extendBooking(b.booking.id, 'c1', f.t + 4 * HOUR), 'NOT_AVAILABLE');
    assert.equal((err.detail.blocking as { from: number }).from, f.t + 4 * HOUR);
    assert.equal(
      (await refused(f, () => f.inv.extendBooking(b.booking.id, 'c1', f.t + 2 * HOUR), 'INVALID_INTERVAL')).detail
        .problem,
      'not_later',
    );
    await refused(f, () => f.inv.extendBooking(b.booking.id, 'c1', f.t + 2 * HOUR + 1), 'INVALID_INTERVAL');
    await refused(f, () => f.inv.extendBooking(b.booking.id, 'c1', f.t + 31 * 24 * HOUR), 'INVALID_INTERVAL');
    await refused(f, () => f.inv.extendBooking(b.booking.id, 'c9', f.t + 3 * HOUR), 'NOT_FOUND');
    await done(f);
  });

  test('a forced extension conflicts confirmed bookings and releases holds, never a block', async () => {
    const f = await fixture();
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const victim = await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 2 * HOUR, to: f.t + 3 * HOUR });
    const hold = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c3', from: f.t + 4 * HOUR, to: f.t + 5 * HOUR });
    await f.inv.placeBlock({ vehicleId: f.v, reason: 'host', from: f.t + 8 * HOUR, to: f.t + 9 * HOUR });
    const r = await f.inv.extendBooking(b.booking.id, undefined, f.t + 4 * HOUR, true);
    // Displacements first: any prefix of the command's events is consistent for a consumer.
    assert.deepEqual(await eventTypes(f, r.events), ['booking.conflicted', 'hold.released', 'booking.extended']);
    const v = (await entry(f, victim.booking.id)) as BookingEntry;
    assert.deepEqual([v.status, v.conflictCause], ['conflicted', 'forced_extension']);
    assert.equal((await entry(f, hold.hold.id)).status, 'released');
    await refused(f, () => f.inv.extendBooking(b.booking.id, undefined, f.t + 9 * HOUR, true), 'NOT_AVAILABLE');
    const cancelled = await f.inv.book({
      vehicleId: f.v,
      customerId: 'c4',
      from: f.t + 20 * HOUR,
      to: f.t + 21 * HOUR,
    });
    await f.inv.cancelBooking(cancelled.booking.id, 'c4');
    await refused(f, () => f.inv.extendBooking(cancelled.booking.id, 'c4', f.t + 22 * HOUR), 'INVALID_STATE');
    await done(f);
  });
});

describe('place_block and remove_block', () => {
  test('an accident is open-ended from now, conflicts every later booking, releases holds, spares a trip under way', async () => {
    const f = await fixture();
    const m = thisMinute();
    const trip = await f.inv.book({ vehicleId: f.v, customerId: 'c0', from: m - HOUR, to: m + HOUR, allowPast: true });
    await f.inv.startTrip(trip.booking.id, 'c0');
    const b1 = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t + 2 * HOUR, to: f.t + 3 * HOUR });
    const b2 = await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 200 * HOUR, to: f.t + 201 * HOUR });
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c3', from: f.t + 100 * HOUR, to: f.t + 101 * HOUR });
    const r = await f.inv.placeBlock({ vehicleId: f.v, reason: 'accident', note: 'rear-ended' });
    assert.equal(r.block.to, undefined, 'open-ended');
    assert.equal(r.block.from, thisMinute() <= r.at ? r.block.from : 0);
    assert.equal(r.block.from % MINUTE, 0);
    assert.equal(r.status, 'accident');
    assert.deepEqual(await eventTypes(f, r.events), [
      'block.placed',
      'booking.conflicted',
      'hold.released',
      'booking.conflicted',
    ]);
    for (const id of [b1.booking.id, b2.booking.id]) {
      const e = (await entry(f, id)) as BookingEntry;
      assert.deepEqual([e.status, e.conflictCause, e.conflictedBy], ['conflicted', 'accident', r.block.id]);
    }
    assert.equal((await entry(f, trip.booking.id)).status, 'active');
    assert.equal((await entry(f, h.hold.id)).status, 'released');
    await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c4', from: f.t + 500 * HOUR, to: f.t + 501 * HOUR }),
      'NOT_AVAILABLE',
    );
    // Clearing it ends it now; the displaced bookings stay conflicted.
    const c = await f.inv.removeBlock(r.block.id);
    assert.deepEqual([c.block.status, c.block.to], ['cleared', c.at]);
    assert.deepEqual(await eventTypes(f, c.events), ['block.cleared']);
    assert.equal((await entry(f, b1.booking.id)).status, 'conflicted');
    await f.inv.book({ vehicleId: f.v, customerId: 'c4', from: f.t + 500 * HOUR, to: f.t + 501 * HOUR });
    await refused(f, () => f.inv.removeBlock(r.block.id), 'INVALID_STATE');
    await done(f);
  });

  test('maintenance and host blocks need an interval; a future block is cancelled, not cleared', async () => {
    const f = await fixture();
    await refused(f, () => f.inv.placeBlock({ vehicleId: f.v, reason: 'maintenance', from: f.t }), 'INVALID_INTERVAL');
    await refused(
      f,
      () => f.inv.placeBlock({ vehicleId: f.v, reason: 'host', from: f.t + HOUR, to: f.t }),
      'INVALID_INTERVAL',
    );
    await refused(
      f,
      () => f.inv.placeBlock({ vehicleId: f.v, reason: 'flood' as 'host', from: f.t, to: f.t + HOUR }),
      'VALIDATION',
    );
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    const m = await f.inv.placeBlock({ vehicleId: f.v, reason: 'maintenance', from: f.t + HOUR, to: f.t + 2 * HOUR });
    assert.equal(m.events.length, 1, 'adjacent to a trip: no turnaround needed, nothing displaced');
    const host = await f.inv.placeBlock({
      vehicleId: f.v,
      reason: 'host',
      from: f.t,
      to: f.t + HOUR,
      note: 'ical:abc@other',
    });
    assert.equal(((await entry(f, b.booking.id)) as BookingEntry).conflictCause, 'host');
    assert.equal(host.block.note, 'ical:abc@other');
    const c = await f.inv.removeBlock(m.block.id);
    assert.deepEqual(await eventTypes(f, c.events), ['block.cancelled']);
    assert.equal(c.block.status, 'cancelled');
    await refused(f, () => f.inv.removeBlock(`blk_${f.city.id}_0000000000000000000`), 'NOT_FOUND');
    await done(f);
  });
});

describe('expire_holds (the sweeper)', () => {
  test('a lapsed hold expires; statuses follow the clock', async () => {
    const f = await timedFixture({ holdTtlMs: 200 });
    const m = Math.floor(f.clock.now() / MINUTE) * MINUTE;
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: m, to: m + HOUR });
    assert.equal((await f.inv.getVehicleState(f.v)).status, 'held');
    f.clock.advance(300);
    const r = await f.inv.sweepCity(f.city.id);
    assert.equal(r.expired, 1);
    assert.deepEqual(await eventTypes(f, r.events), ['hold.expired']);
    assert.equal((await entry(f, h.hold.id)).status, 'expired');
    assert.equal(await redis.hexists(keys.liveHolds(f.city.id), h.hold.id), 0);
    const counters = await redis.hgetall(keys.counters(f.city.id));
    assert.deepEqual([counters['s:held'], counters['s:available']], ['0', '1']);
    assert.equal((await f.inv.sweepCity(f.city.id)).vehicles, 0, 'nothing more is due');
    await done(f, f.clock.now());
  });
});

describe('expire_holds after another command', () => {
  test('a hold that lapsed before another command on its vehicle is still expired by the next sweep', async () => {
    const f = await timedFixture({ holdTtlMs: 150 });
    const h = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    f.clock.advance(250);
    // The lapsed hold takes no time, so this booking of the same window succeeds...
    const b = await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR });
    // ...and leaves the vehicle due at once, so the sweeper expires the hold and says so.
    assert.equal(Number(await redis.zscore(keys.statusDue(f.city.id), f.v)), b.at);
    const r = await f.inv.sweepCity(f.city.id);
    assert.equal(r.expired, 1);
    assert.deepEqual(await eventTypes(f, r.events), ['hold.expired']);
    assert.equal((await entry(f, h.hold.id)).status, 'expired');
    await done(f, f.clock.now());
  });
});

describe('vehicle_state and verify_available', () => {
  test('state derives status now; verify_available checks candidates against the truth', async () => {
    const f = await fixture();
    const v2 = await addVehicle(f.inv, f.city);
    const v3 = await addVehicle(f.inv, f.city);
    await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR });
    await f.inv.delist(v3);
    const free = await f.inv.verifyAvailable(f.city.id, [f.v, v2, v3], f.t + HOUR, f.t + 2 * HOUR);
    assert.deepEqual(free, [v2], 'turnaround after the booking, and delisted, are not free');
    assert.deepEqual(await f.inv.verifyAvailable(f.city.id, [f.v, v2], f.t + 2 * HOUR, f.t + 3 * HOUR), [f.v, v2]);
    const s = await f.inv.getVehicleState(f.v);
    assert.equal(s.entries.length, 1);
    assert.equal(s.status, 'available');
    assert.ok(s.at > 0);
    await refused(
      f,
      () => f.inv.verifyAvailable(f.city.id, [`veh_other_0000000000000000000`], f.t, f.t + HOUR),
      'NOT_FOUND',
    );
  });
});

describe('calendar index', () => {
  /** The index as the engine must keep it: entries that may take time, scored by start or -1. */
  async function expectedIndex(f: Fixture, v: string): Promise<string[]> {
    const docs = Object.values(await redis.hgetall(keys.calendar(f.city.id, v))).map(
      (j) => JSON.parse(j) as CalendarEntry,
    );
    const takesTime = (e: CalendarEntry) =>
      e.kind === 'hold'
        ? e.status === 'held'
        : e.kind === 'booking'
          ? ['confirmed', 'active', 'completed'].includes(e.status)
          : e.status === 'active';
    const sticky = (e: CalendarEntry) =>
      e.kind === 'hold' || (e.kind === 'booking' && e.status === 'active') || e.to === undefined;
    return docs
      .filter(takesTime)
      .map((e) => `${e.id}:${sticky(e) ? -1 : e.from}`)
      .sort();
  }
  async function actualIndex(f: Fixture, v: string): Promise<string[]> {
    const flat = await redis.zrange(keys.calendarIndex(f.city.id, v), '0', '-1', 'WITHSCORES');
    const out: string[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push(`${flat[i]}:${flat[i + 1]}`);
    return out.sort();
  }

  test('every command keeps the index equal to the calendar; a command far from the rest reads only its window', async () => {
    const f = await fixture();
    const ids: string[] = [];
    for (let d = 0; d < 60; d++) {
      const b = await f.inv.book({
        vehicleId: f.v,
        customerId: `c${d}`,
        from: f.t + d * 24 * HOUR,
        to: f.t + d * 24 * HOUR + 3 * HOUR,
      });
      ids.push(b.booking.id);
    }
    await f.inv.cancelBooking(ids[3]!, 'c3');
    await f.inv.placeHold({ vehicleId: f.v, customerId: 'h', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR });
    await f.inv.placeBlock({
      vehicleId: f.v,
      reason: 'maintenance',
      from: f.t + 30 * 24 * HOUR,
      to: f.t + 31 * 24 * HOUR,
    });
    await f.inv.extendBooking(ids[10]!, 'c10', f.t + 10 * 24 * HOUR + 20 * HOUR);
    assert.deepEqual(await actualIndex(f, f.v), await expectedIndex(f, f.v));
    const reach = Number(await redis.hget(keys.vehicle(f.city.id, f.v), 'calReach'));
    assert.equal(reach, 24 * HOUR, 'the longest window indexed (the block, a whole day)');
    // Refusals and successes near the 10th day see the extended booking (it starts before the window).
    await refused(
      f,
      () =>
        f.inv.book({
          vehicleId: f.v,
          customerId: 'x',
          from: f.t + 10 * 24 * HOUR + 18 * HOUR,
          to: f.t + 10 * 24 * HOUR + 19 * HOUR,
        }),
      'NOT_AVAILABLE',
    );
    await f.inv.book({
      vehicleId: f.v,
      customerId: 'x',
      from: f.t + 10 * 24 * HOUR + 21 * HOUR,
      to: f.t + 10 * 24 * HOUR + 22 * HOUR,
    });
    assert.deepEqual(await actualIndex(f, f.v), await expectedIndex(f, f.v));
  });

  test('a calendar written before the index existed is indexed on first touch, and its rules hold', async () => {
    const f = await fixture();
    const b1 = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + 2 * HOUR });
    await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: f.t + 48 * HOUR, to: f.t + 50 * HOUR });
    const expected = await actualIndex(f, f.v);
    await redis.del(keys.calendarIndex(f.city.id, f.v));
    await redis.hdel(keys.vehicle(f.city.id, f.v), 'calReach');
    // Search's check reads the documents while the index is missing, and agrees.
    assert.deepEqual(await f.inv.verifyAvailable(f.city.id, [f.v], f.t + HOUR, f.t + 3 * HOUR), []);
    await assert.rejects(
      f.inv.book({ vehicleId: f.v, customerId: 'c3', from: f.t + 2 * HOUR, to: f.t + 3 * HOUR }),
      (e: DomainError) => e.code === 'NOT_AVAILABLE',
      'the turnaround after b1 is seen before any index exists',
    );
    assert.deepEqual(await actualIndex(f, f.v), expected, 'indexed once, on first touch');
    await f.inv.cancelBooking(b1.booking.id, 'c1');
    assert.deepEqual(await actualIndex(f, f.v), await expectedIndex(f, f.v));
    assert.deepEqual(await f.inv.verifyAvailable(f.city.id, [f.v], f.t + HOUR, f.t + 3 * HOUR), [f.v]);
  });
});

describe('per-vehicle lock', () => {
  test('past the bounded queue, commands are refused with BUSY and change nothing', async () => {
    const city = testCity();
    const inv = newInventory(redis, city, { locks: new VehicleLocks({ maxQueue: 2, maxWaitMs: 5_000 }) });
    const v = await addVehicle(inv, city);
    const t = futureHour();
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        inv.book({ vehicleId: v, customerId: `c${i}`, from: t + i * 2 * HOUR, to: t + i * 2 * HOUR + HOUR }),
      ),
    );
    const busy = results.filter(
      (r) => r.status === 'rejected' && r.reason instanceof DomainError && r.reason.code === 'BUSY',
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.equal(ok.length, 3, 'the running command and two queued ones');
    assert.equal(busy.length, 9);
    const state = await readCity(redis, city.id);
    assert.equal([...state.vehicles.values()][0]!.entries.length, 3, 'refused commands wrote nothing');
    assert.equal((await readEvents(redis, city.id)).filter((e) => e.type === 'booking.confirmed').length, 3);
  });
});

describe('idempotency', () => {
  test('the same key and request returns the first answer, replayed, with no new event', async () => {
    const f = await fixture();
    const o = { idempotencyKey: 'key-1', actorId: 'c1' };
    const first = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR }, o);
    const events = (await readEvents(redis, f.city.id)).length;
    const again = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR }, o);
    assert.equal(again.replayed, true);
    assert.deepEqual({ ...again, replayed: false }, first);
    assert.equal((await readEvents(redis, f.city.id)).length, events);
    // Another actor's same key is another command.
    await refused(
      f,
      () =>
        f.inv.book(
          { vehicleId: f.v, customerId: 'c2', from: f.t, to: f.t + HOUR },
          { idempotencyKey: 'key-1', actorId: 'c2' },
        ),
      'NOT_AVAILABLE',
    );
    const ttl = await redis.ttl(keys.idempotency(f.city.id, 'c1', 'key-1'));
    assert.ok(ttl > 86_000 && ttl <= 86_400, `kept for 24 h (${ttl} s)`);
  });

  test('the same key with another request is IDEMPOTENCY_CONFLICT', async () => {
    const f = await fixture();
    const o = { idempotencyKey: 'key-2', actorId: 'c1' };
    await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR }, o);
    await refused(
      f,
      () => f.inv.book({ vehicleId: f.v, customerId: 'c1', from: f.t + 5 * HOUR, to: f.t + 6 * HOUR }, o),
      'IDEMPOTENCY_CONFLICT',
    );
    await refused(
      f,
      () =>
        f.inv.book(
          { vehicleId: f.v, customerId: 'c1', from: f.t, to: f.t + HOUR },
          { ...o, idempotencyKey: 'bad key with spaces' },
        ),
      'VALIDATION',
    );
  });

  test('a create retried with the same key returns the same vehicle', async () => {
    const f = await fixture();
    const o = { idempotencyKey: 'create-1', actorId: 'host-1' };
    const a = await f.inv.createVehicle(f.city.id, SEDAN, o);
    const b = await f.inv.createVehicle(f.city.id, SEDAN, o);
    assert.equal(b.vehicleId, a.vehicleId);
    assert.equal(await redis.scard(keys.vehicles(f.city.id)), 2);
  });
});

describe('the clock moves: late returns and time-driven statuses', () => {
  // Each test owns a connection whose scripts run on a clock it moves (timedFixture): time
  // passes at once, instead of waiting for a real minute boundary.
  const minuteOf = (clock: ShiftedClock) => Math.floor(clock.now() / MINUTE) * MINUTE;

  test('a late return extends the trip and conflicts the bookings it now overlaps', async () => {
    const f = await timedFixture();
    const m = minuteOf(f.clock);
    const end = m + MINUTE;
    const trip = await f.inv.book({ vehicleId: f.v, customerId: 'c1', from: m - HOUR, to: end, allowPast: true });
    const next = await f.inv.book({ vehicleId: f.v, customerId: 'c2', from: end + 30 * MINUTE, to: end + 2 * HOUR });
    const hold = await f.inv.placeHold({ vehicleId: f.v, customerId: 'c3', from: end + 3 * HOUR, to: end + 4 * HOUR });
    await f.inv.startTrip(trip.booking.id, 'c1');
    // The car is not back at the end of the window: time passes it.
    f.clock.advanceTo(end + 1_500);
    // Overdue: nobody may book the time it is still out.
    await refused(
      f,
      () =>
        f.inv.book({ vehicleId: f.v, customerId: 'c4', from: minuteOf(f.clock), to: minuteOf(f.clock) + 10 * MINUTE }),
      'NOT_AVAILABLE',
    );
    const c = await f.inv.completeTrip(trip.booking.id, undefined);
    assert.equal(c.booking.completion, 'late');
    assert.equal(c.booking.scheduledTo, end);
    assert.ok(c.booking.to > end);
    assert.deepEqual(await eventTypes(f, c.events), ['booking.completed', 'booking.conflicted']);
    const n = (await entry(f, next.booking.id)) as BookingEntry;
    assert.deepEqual([n.status, n.conflictCause, n.conflictedBy], ['conflicted', 'late_return', trip.booking.id]);
    assert.equal((await entry(f, hold.hold.id)).status, 'held', 'a hold beyond the turnaround stays');
    await done(f, f.clock.now());
  });
  test('a status that changes by time alone emits vehicle.status_changed', async () => {
    const f = await timedFixture();
    // A maintenance block (ops, in the past) that ends at the next minute boundary.
    const end = minuteOf(f.clock) + MINUTE;
    await f.inv.placeBlock({ vehicleId: f.v, reason: 'maintenance', from: end - HOUR, to: end, allowPast: true });
    assert.equal((await f.inv.getVehicleState(f.v)).vehicle.status, 'maintenance');
    assert.equal(Number(await redis.zscore(keys.statusDue(f.city.id), f.v)), end);
    f.clock.advanceTo(end + 200);
    const r = await f.inv.sweepCity(f.city.id);
    const [ev] = (await readEvents(redis, f.city.id)).filter((e) => r.events.includes(e.id));
    assert.deepEqual([ev?.type, ev?.data], ['vehicle.status_changed', { from: 'maintenance', to: 'available' }]);
    assert.equal(await redis.hget(keys.counters(f.city.id), 's:available'), '1');
    await done(f, f.clock.now());
  });
});

describe('the scripts as a Redis function library (redis/scripts.ts)', () => {
  test('a server that lost its functions gets them again, and the command runs once', async () => {
    const f = await fixture();
    await f.inv.book({ vehicleId: f.v, customerId: 'ana', from: f.t, to: f.t + HOUR });
    await redis.call('FUNCTION', 'FLUSH');
    const again = await f.inv.book({ vehicleId: f.v, customerId: 'ben', from: f.t + 3 * HOUR, to: f.t + 4 * HOUR });
    assert.equal(again.booking.status, 'confirmed');
    const confirmed = (await readEvents(redis, f.city.id)).filter((e) => e.type === 'booking.confirmed');
    assert.equal(confirmed.length, 2, 'each booking once');
    assertCityInvariants(await readCity(redis, f.city.id), f.city.turnaroundMs);
  });

  test("another version's library on the same server is left alone: each calls its own", async () => {
    const f = await fixture();
    const other =
      "#!lua name=fleet_0ther0version\nredis.register_function('book_0ther0version', function() return 'old' end)";
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', other);
    await f.inv.book({ vehicleId: f.v, customerId: 'ana', from: f.t, to: f.t + HOUR });
    assert.equal(await redis.call('FCALL', 'book_0ther0version', 0), 'old');
    const names = JSON.stringify(await redis.call('FUNCTION', 'LIST', 'LIBRARYNAME', 'fleet_*'));
    assert.match(names, /fleet_0ther0version/);
    assert.ok(
      (names.match(/"fleet_[0-9a-f]{12}"/g) ?? []).length >= 1,
      `this version's library is there too: ${names}`,
    );
  });
});
