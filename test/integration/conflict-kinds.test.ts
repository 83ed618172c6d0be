/**
 * Every kind of alternative, the wait list and the conflict reserve, end to end against real Redis
 * and PostgreSQL (docs/conflicts.md): a conflict arises, the resolver (a running ConflictWorker)
 * makes its offers — delivered from further away, a class down, two vehicles back to back, a
 * vehicle freed while the booking waited, a vehicle the reserve kept back — the customer accepts,
 * and once the sync has drained PostgreSQL holds the moved booking (and the rest of a back-to-back
 * trip), each offer's kind, and the conversion per kind. Also: a waiting conflict whose wait ends
 * is cancelled NO_ALTERNATIVE; several waiting conflicts racing for one freed vehicle: exactly one
 * gets it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CityCatalog, type City } from '../../src/domain/cities.ts';
import { computeConflicts } from '../../src/pg/analytics.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { keys } from '../../src/redis/keys.ts';
import { ConflictDesk, type OfferRecord } from '../../src/services/conflicts.ts';
import { recordCities } from '../../src/services/durable.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ReservePlanner } from '../../src/services/reserve.ts';
import { ConflictWorker } from '../../src/workers/resolver.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, SEDAN, connect, futureHour, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const cities = {
  farther: testCity(),
  downgrade: testCity(),
  pair: testCity(),
  waiting: testCity(),
  reserve: testCity(),
};
const all = Object.values(cities);
let stores: Stores;
let inv: Inventory;
let model: ReadModel;
let desk: ConflictDesk;
let worker: ConflictWorker;

before(async () => {
  stores = await startStores();
  await recordCities(stores.pool, all);
  inv = new Inventory(stores.redis, { cities: new CityCatalog(all) });
  model = new ReadModel(stores.redis, inv);
  await model.start();
  desk = new ConflictDesk(stores.redis, inv, model, { offerTtlMs: 60_000 });
  worker = new ConflictWorker(stores.redis, desk, inv.cities, { lapseEveryMs: 100, validateEveryMs: 0 });
  worker.start();
});

after(async () => {
  await worker?.stop();
  await model?.stop();
  await stores?.stop();
});

const vehicle = async (city: City, spec: Partial<typeof SEDAN> = {}) =>
  (await inv.createVehicle(city.id, { ...SEDAN, ...spec })).vehicleId;

/** The offer record once it is in the state wanted (the resolver works in the background). */
async function recordIn(city: City, bookingId: string, status: OfferRecord['status']): Promise<OfferRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const raw = await stores.redis.hget(keys.offers(city.id), bookingId);
    const rec = raw ? (JSON.parse(raw) as OfferRecord) : undefined;
    if (rec?.status === status) return rec;
    if (Date.now() > deadline) assert.fail(`${bookingId}: ${rec?.status ?? 'no record'}, not ${status}`);
    await sleep(10);
  }
}

test('farther: the only same-class car is 8 km away — delivered, with a credit that grows with the distance', async () => {
  const city = cities.farther;
  const t = futureHour(24 * HOUR);
  const victim = await vehicle(city);
  const far = await vehicle(city, { location: { lat: 12.97 + 0.072, lng: 77.59 } });
  const b = await inv.book({ vehicleId: victim, customerId: 'ana', from: t, to: t + 4 * HOUR });
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const rec = await recordIn(city, b.booking.id, 'open');
  const [offer] = rec.offers;
  assert.equal(offer?.vehicleId, far);
  assert.equal(offer?.kind, 'farther');
  const expected = desk.policy.farCredit + desk.policy.deliveryCreditPerKm * (offer!.distanceKm - desk.policy.farKm);
  assert.equal(offer?.incentive.kind, 'credit');
  assert.ok(Math.abs(offer!.incentive.amount - expected) < 0.01, `${offer?.incentive.amount} vs ${expected}`);
  assert.ok(offer!.incentive.amount > desk.policy.farCredit, 'more than the flat far credit');
  await desk.accept(b.booking.id, offer!.id, 'ana');
});

test('downgrade: only a lower class is free — the price difference refunded, with a credit', async () => {
  const city = cities.downgrade;
  const t = futureHour(24 * HOUR);
  const victim = await vehicle(city, { category: 'suv', pricePerHour: 16 });
  const sedan = await vehicle(city, { category: 'sedan', pricePerHour: 10 });
  const b = await inv.book({ vehicleId: victim, customerId: 'ben', from: t, to: t + 5 * HOUR });
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const rec = await recordIn(city, b.booking.id, 'open');
  const [offer] = rec.offers;
  assert.deepEqual([offer?.vehicleId, offer?.kind], [sedan, 'downgrade']);
  assert.equal(offer?.incentive.kind, 'refund');
  assert.equal(offer?.incentive.amount, (16 - 10) * 5 + desk.policy.downgradeCredit);
  const moved = await desk.accept(b.booking.id, offer!.id, 'ben');
  assert.equal(moved.booking.incentive?.kind, 'refund');
});

test('back to back: no car is free for the whole trip — one until the change-over, another after it', async () => {
  const city = cities.pair;
  const t = futureHour(24 * HOUR);
  const victim = await vehicle(city);
  const first = await vehicle(city);
  const second = await vehicle(city);
  // `first` is free until 3 h in (turnaround before its next trip); `second` from 3 h in.
  await inv.book({ vehicleId: first, customerId: 'x', from: t + 3.5 * HOUR, to: t + 10 * HOUR });
  await inv.book({ vehicleId: second, customerId: 'y', from: t - 5 * HOUR, to: t + 2.5 * HOUR });
  const b = await inv.book({ vehicleId: victim, customerId: 'cleo', from: t, to: t + 6 * HOUR });
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const rec = await recordIn(city, b.booking.id, 'open');
  const [offer] = rec.offers;
  assert.equal(offer?.kind, 'back_to_back');
  assert.deepEqual([offer?.vehicleId, offer?.legs?.vehicleId, offer?.legs?.at], [first, second, t + 3 * HOUR]);
  const moved = await desk.accept(b.booking.id, offer!.id, 'cleo');
  assert.deepEqual([moved.booking.from, moved.booking.to], [t, t + 3 * HOUR]);
  const rest = await inv.getEntry(offer!.legs!.bookingId, 'booking');
  assert.equal(rest.vehicle.id, second);
  assert.deepEqual(
    [rest.entry.status, rest.entry.from, rest.entry.to, rest.entry.customerId],
    ['confirmed', t + 3 * HOUR, t + 6 * HOUR, 'cleo'],
  );
});

test('wait list: nothing free, the booking waits; a cancellation frees a car, and the waiting booking is offered it', async () => {
  const city = cities.waiting;
  const t = futureHour(48 * HOUR);
  const victim = await vehicle(city);
  const other = await vehicle(city);
  const blocking = await inv.book({ vehicleId: other, customerId: 'z', from: t - HOUR, to: t + 5 * HOUR });
  const b = await inv.book({ vehicleId: victim, customerId: 'dora', from: t, to: t + 4 * HOUR });
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const waiting = await recordIn(city, b.booking.id, 'waiting');
  assert.equal(waiting.waitUntil, t - desk.policy.waitlistCutoffMinutes * 60_000);
  assert.equal((await inv.getEntry(b.booking.id, 'booking')).entry.status, 'conflicted');
  assert.ok((await stores.redis.zscore(keys.waitlist(city.id), b.booking.id)) !== null);

  await inv.cancelBooking(blocking.booking.id, 'z');
  const rec = await recordIn(city, b.booking.id, 'open');
  assert.equal(rec.offers[0]?.vehicleId, other);
  assert.equal(await stores.redis.zscore(keys.waitlist(city.id), b.booking.id), null, 'off the wait list');
  await desk.accept(b.booking.id, rec.offers[0]!.id, 'dora');
});

test('reserve: Littlewood keeps cars back for an hour; search and bookings skip them; the resolver uses one', async () => {
  const city = cities.reserve;
  const planner = new ReservePlanner(
    stores.redis,
    inv,
    model,
    { releaseMinutes: 60, horizonHours: 3, maxShare: 0.4, conflictValue: 1_000, bookingValue: 1 },
    desk.policy,
  );
  const fleet: string[] = [];
  for (let i = 0; i < 5; i++) fleet.push(await vehicle(city, { location: { lat: 12.98, lng: 77.6 + i * 0.001 } }));
  const h = Math.ceil((Date.now() + 61 * 60_000) / HOUR) * HOUR;
  const booked = [];
  for (let i = 0; i < 3; i++)
    booked.push(await inv.book({ vehicleId: fleet[i]!, customerId: `r${i}`, from: h, to: h + 2 * HOUR }));
  const plan = await planner.plan(city.id);
  assert.equal(plan.placed, 2, JSON.stringify(plan));
  const held = await planner.held(city.id);
  assert.deepEqual(held.map((s) => s.vehicleId).sort(), [fleet[3], fleet[4]].sort());
  assert.ok(held.every((s) => s.hour === h && s.releasesAt === h - HOUR && s.category === 'sedan'));
  await model.catchUp([city.id]);
  const { hits } = await model.search(city.id, { from: h, to: h + HOUR, limit: 10, sort: 'price' });
  assert.deepEqual(hits, [], 'a reserved car is not offered to search');
  await assert.rejects(inv.book({ vehicleId: fleet[3]!, customerId: 'walk-in', from: h, to: h + HOUR }), {
    code: 'NOT_AVAILABLE',
  });
  assert.equal((await planner.plan(city.id)).placed, 0, 'topped up already');

  await inv.placeBlock({ vehicleId: fleet[0]!, reason: 'accident' });
  const rec = await recordIn(city, booked[0]!.booking.id, 'open');
  assert.ok([fleet[3], fleet[4]].includes(rec.offers[0]?.vehicleId), 'offered a reserved car');
  assert.equal((await planner.held(city.id)).length, 2 - rec.offers.length, 'the reserve it used is released');
});

test('the syncs: PostgreSQL holds the moved bookings, the rest of the back-to-back trip, and conversion per kind', async () => {
  await new SyncWorker(stores.redis, stores.pool, inv.cities).drain();
  const { rows } = await stores.pool.query<{ alternative: string; status: string }>(
    `SELECT alternative, status FROM offers WHERE city = ANY($1) AND status = 'accepted' ORDER BY alternative`,
    [all.map((c) => c.id)],
  );
  for (const kind of ['back_to_back', 'downgrade', 'farther'])
    assert.ok(
      rows.some((r) => r.alternative === kind),
      `${kind} accepted, in PostgreSQL (${JSON.stringify(rows)})`,
    );
  const rest = await stores.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM bookings WHERE city = $1 AND doc->>'continuationOf' IS NOT NULL AND status = 'confirmed'`,
    [cities.pair.id],
  );
  assert.equal(rest.rows[0]?.n, 1, 'the rest of the back-to-back trip is a booking in PostgreSQL');
  const answer = await computeConflicts(stores.pool, { from: Date.now() - HOUR, to: Date.now() + HOUR });
  const kinds = new Map(answer.conversion.byAlternative.map((k) => [k.alternative, k]));
  for (const kind of ['back_to_back', 'downgrade', 'farther']) assert.equal(kinds.get(kind)?.accepted, 1, kind);
});

test('a waiting conflict whose wait ends is cancelled NO_ALTERNATIVE', async () => {
  const city = testCity();
  const redis = connect(stores.server.url);
  const clock = new ShiftedClock(redis);
  const local = new Inventory(redis, { cities: new CityCatalog([city]), clock });
  const localModel = new ReadModel(redis, local);
  await localModel.start();
  try {
    const localDesk = new ConflictDesk(redis, local, localModel, { waitlistCutoffMinutes: 60 });
    const t = futureHour(5 * HOUR);
    const victim = (await local.createVehicle(city.id, SEDAN)).vehicleId;
    const b = await local.book({ vehicleId: victim, customerId: 'eve', from: t, to: t + 2 * HOUR });
    await local.placeBlock({ vehicleId: victim, reason: 'accident' });
    assert.equal((await localDesk.resolve(b.booking.id)).outcome, 'waiting');
    assert.deepEqual(await localDesk.expireWaiting(city.id), { offered: [], cancelled: [] }, 'not due yet');
    clock.advanceTo(t - 59 * 60_000);
    assert.deepEqual(await localDesk.expireWaiting(city.id), { offered: [], cancelled: [b.booking.id] });
    const { entry } = await local.getEntry(b.booking.id, 'booking');
    assert.deepEqual([entry.status, entry.cancelReason], ['cancelled', 'NO_ALTERNATIVE']);
  } finally {
    await localModel.stop();
    redis.disconnect();
  }
});

test('five conflicts wait; one car is freed; five resolvers race: exactly one gets it', async () => {
  const city = testCity();
  const local = new Inventory(stores.redis, { cities: new CityCatalog([city]) });
  const localModel = new ReadModel(stores.redis, local);
  await localModel.start();
  try {
    const localDesk = new ConflictDesk(stores.redis, local, localModel, { downgradeTiers: 0 });
    const t = futureHour(48 * HOUR);
    const waiting: string[] = [];
    for (let i = 0; i < 5; i++) {
      const v = (await local.createVehicle(city.id, SEDAN)).vehicleId;
      const b = await local.book({ vehicleId: v, customerId: `w${i}`, from: t, to: t + 3 * HOUR });
      await local.placeBlock({ vehicleId: v, reason: 'accident' });
      assert.equal((await localDesk.resolve(b.booking.id)).outcome, 'waiting');
      waiting.push(b.booking.id);
    }
    const freed = (await local.createVehicle(city.id, SEDAN)).vehicleId;
    const results = await Promise.allSettled(waiting.map((id) => localDesk.resolve(id)));
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : `error: ${String(r.reason)}`));
    assert.equal(outcomes.filter((o) => o === 'offered').length, 1, JSON.stringify(outcomes));
    assert.equal(outcomes.filter((o) => o === 'waiting').length, 4, JSON.stringify(outcomes));
    const holds = (await local.getVehicleState(freed)).entries.filter((e) => e.kind === 'hold' && e.status === 'held');
    assert.equal(holds.length, 1, 'one hold on the freed car');
  } finally {
    await localModel.stop();
  }
});
