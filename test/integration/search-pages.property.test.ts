/**
 * Property: paging through any availability query — each order (price, distance, for_you),
 * filters, a radius small enough to be read through the kd-tree's box or large enough to walk the
 * price order, page sizes from 1 — gives exactly the listed vehicles that fit and are free in
 * Redis, in the query's order, none repeated, none skipped, though the read model missed some of
 * the bookings (it was loaded before they were made: only the verification keeps them off).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import type { Ranking } from '../../src/domain/ranking.ts';
import { CATEGORIES, isSameOrBetter, type Category } from '../../src/domain/vehicle.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel, type ReadVehicle, type SearchKey } from '../../src/services/read-model.ts';
import { distanceKm } from '../../src/services/search-index.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, addVehicle, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { seeded } from '../support/random.ts';

const random = seeded('search.pages');
const { seed } = random;
const city = testCity();
const CENTER = city.center;
let server: RedisServer;
let redis: Redis;
let inv: Inventory;
const ids: string[] = [];

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  inv = newInventory(redis, city, { maxLiveHoldsPerCustomer: 1000 });
  // 60 vehicles over about 11 x 11 km, prices from a few values (ties decided by id).
  for (let i = 0; i < 60; i++)
    ids.push(
      await addVehicle(inv, city, {
        category: CATEGORIES[i % CATEGORIES.length] as Category,
        seats: i % 3 === 0 ? 7 : 5,
        // A third of the fleet at three depots: equal distances, ordered by id.
        location:
          i % 3 === 0
            ? { lat: CENTER.lat + 0.01 * (i % 9), lng: CENTER.lng - 0.01 * (i % 9) }
            : { lat: CENTER.lat + (random() - 0.5) * 0.1, lng: CENTER.lng + (random() - 0.5) * 0.1 },
        pricePerHour: 10 + 5 * Math.floor(random() * 4),
      }),
    );
});
after(async () => {
  redis.disconnect();
  await server.stop();
});

// Ties on purpose: the order is then decided by id, across pages too.
const score = (v: { pricePerHour: number }) => v.pricePerHour % 4;
const rank: Ranking = {
  scores: (vs, out) => {
    for (const [i, v] of vs.entries()) out[i] = score(v);
  },
  explain: (v) => ({ score: score(v), reasons: [] }),
};

/** The query and the bookings around it (the vehicles exist once `before` has run). */
const queries = () =>
  fc.record({
    bookedBefore: fc.subarray(ids),
    bookedAfter: fc.subarray(ids),
    sort: fc.constantFrom('price', 'distance', 'for_you'),
    category: fc.option(fc.constantFrom<Category>(...CATEGORIES), { nil: undefined }),
    orBetter: fc.boolean(),
    minSeats: fc.option(fc.constantFrom(5, 7), { nil: undefined }),
    near: fc.option(
      fc.record({
        dLat: fc.double({ min: -0.06, max: 0.06, noNaN: true }),
        dLng: fc.double({ min: -0.06, max: 0.06, noNaN: true }),
      }),
      { nil: undefined },
    ),
    // Small circles (read through the kd-tree's box) as often as large ones (the price order walked).
    radiusKm: fc.option(
      fc.oneof(fc.double({ min: 0.5, max: 3, noNaN: true }), fc.double({ min: 3, max: 20, noNaN: true })),
      {
        nil: undefined,
      },
    ),
    limit: fc.integer({ min: 1, max: 6 }),
  });

/** Every page of the query, from a read model loaded before `bookedAfter` were booked. */
async function pages(model: ReadModel, q: Parameters<ReadModel['search']>[1], limit: number): Promise<string[]> {
  const got: string[] = [];
  let at: SearchKey | undefined;
  for (let n = 0; n < 100; n++) {
    const page = await model.search(city.id, { ...q, ...(at ? { after: at } : {}) });
    assert.ok(page.hits.length <= limit);
    got.push(...page.hits.map((h) => h.vehicleId));
    if (!page.next) return got;
    // A page with a next one is full: the cursor is never handed out for nothing.
    assert.equal(page.hits.length, limit, 'a page with a cursor after it is full');
    at = page.next;
  }
  assert.fail('the pages never ended');
}

test('property: every page of any query, in order, exactly the free vehicles that fit', {
  timeout: 180_000,
}, async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(queries(), async (p) => {
      const t = futureHour(5000 * HOUR) + run++ * 10 * HOUR;
      const window = { from: t, to: t + 2 * HOUR };
      const book = (vs: string[], who: string) =>
        Promise.all(vs.map((vehicleId) => inv.book({ vehicleId, customerId: who, ...window }).catch(() => undefined)));
      await book(p.bookedBefore, 'before');
      const model = new ReadModel(redis, inv);
      await model.start();
      await model.stop();
      await book(p.bookedAfter, 'after');
      const near = p.near ? { lat: CENTER.lat + p.near.dLat, lng: CENTER.lng + p.near.dLng } : undefined;
      const sort = p.sort === 'distance' && !near ? 'price' : p.sort;
      const q = {
        ...window,
        sort,
        limit: p.limit,
        ...(sort === 'for_you' ? { rank } : {}),
        ...(p.category ? { category: p.category, orBetter: p.orBetter } : {}),
        ...(p.minSeats ? { minSeats: p.minSeats } : {}),
        ...(near ? { near } : {}),
        ...(near && p.radiusKm !== undefined ? { radiusKm: p.radiusKm } : {}),
      };
      const got = await pages(model, q, p.limit);
      const listed = [...model.vehiclesOf(city.id)].filter((v) => v.listing === 'active');
      const free = new Set(
        await inv.verifyAvailable(
          city.id,
          listed.map((v) => v.id),
          window.from,
          window.to,
        ),
      );
      const keyOf = (v: ReadVehicle) =>
        sort === 'for_you' ? -score(v) : sort === 'distance' && near ? distanceKm(near, v) : v.pricePerHour;
      const want = listed
        .filter(
          (v) =>
            free.has(v.id) &&
            (!q.category || (q.orBetter ? isSameOrBetter(v.category, q.category) : v.category === q.category)) &&
            (q.minSeats === undefined || v.seats >= q.minSeats) &&
            (q.radiusKm === undefined || !near || distanceKm(near, v) <= q.radiusKm),
        )
        .sort((a, b) => keyOf(a) - keyOf(b) || (a.id < b.id ? -1 : 1))
        .map((v) => v.id);
      assert.deepEqual(got, want);
    }),
    { seed, numRuns: 100 },
  );
});
