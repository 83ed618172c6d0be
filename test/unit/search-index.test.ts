/**
 * The read model's indexes answer exactly as the plain rules do: BusyIntervals (binary search)
 * as `occupies` + `overlapsWindow` over every entry; CityIndex's nearest-first as a full scan
 * sorted by distance; TopK as a full sort cut to its capacity.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { occupies, overlapsWindow, type CalendarEntry } from '../../src/domain/calendar.ts';
import { BusyIntervals, CityIndex, distanceKm, TopK } from '../../src/services/search-index.ts';
import { seeded } from '../support/random.ts';

const M = 60_000;
const NOW = 1_000 * 60 * M;
const TURNAROUND = 30 * M;

const entry = fc
  .record({
    kind: fc.constantFrom('hold', 'booking', 'block'),
    status: fc.constantFrom(
      'held',
      'released',
      'confirmed',
      'active',
      'completed',
      'cancelled',
      'conflicted',
      'cleared',
    ),
    from: fc.integer({ min: -600, max: 600 }),
    len: fc.integer({ min: 1, max: 300 }),
    open: fc.boolean(),
    expires: fc.integer({ min: -60, max: 60 }),
  })
  .map((r): CalendarEntry => {
    const from = NOW + r.from * M;
    const to = from + r.len * M;
    if (r.kind === 'hold')
      return {
        id: 'h',
        kind: 'hold',
        status: r.status === 'held' ? 'held' : 'released',
        from,
        to,
        customerId: 'c',
        expiresAt: NOW + r.expires * M,
        createdAt: 0,
        updatedAt: 0,
      };
    if (r.kind === 'booking') {
      const status =
        (['confirmed', 'active', 'completed', 'cancelled', 'conflicted'] as const).find((s) => s === r.status) ??
        'confirmed';
      return { id: 'b', kind: 'booking', status, from, to, customerId: 'c', createdAt: 0, updatedAt: 0 };
    }
    return {
      id: 'k',
      kind: 'block',
      reason: 'maintenance',
      status: r.status === 'cleared' ? 'cleared' : 'active',
      from,
      ...(r.open ? {} : { to }),
      createdAt: 0,
      updatedAt: 0,
    } as CalendarEntry;
  });

test('property: BusyIntervals.taken equals the rule over every entry', () => {
  const { seed } = seeded('search-index.busy');
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 12 }),
      fc.integer({ min: -700, max: 700 }),
      fc.integer({ min: 1, max: 400 }),
      fc.integer({ min: -120, max: 120 }),
      (entries, start, len, shift) => {
        const now = NOW + shift * M;
        const from = NOW + start * M;
        const to = from + len * M;
        const expected = entries.some((e) => occupies(e, now) && overlapsWindow(e, from, to, true, TURNAROUND, now));
        assert.equal(
          BusyIntervals.of(entries, TURNAROUND).taken({ from, to, turnaroundMs: TURNAROUND, now }),
          expected,
        );
      },
    ),
    { seed, numRuns: 2_000 },
  );
});

test('property: nearest-first from the kd-tree is the full scan sorted by distance, then id', () => {
  const { seed } = seeded('search-index.nearest');
  const spot = fc.record({
    lat: fc.double({ min: 12.8, max: 13.1, noNaN: true }),
    lng: fc.double({ min: 77.4, max: 77.8, noNaN: true }),
  });
  // Vehicles at one depot are at the same distance from anywhere: ties the order decides by id.
  const depots = [
    { lat: 12.95, lng: 77.6 },
    { lat: 13.0, lng: 77.5 },
  ];
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          at: fc.oneof(spot, fc.constantFrom(...depots)),
          price: fc.integer({ min: 1, max: 50 }),
          listed: fc.boolean(),
        }),
        { maxLength: 60 },
      ),
      spot,
      fc.integer({ min: 1, max: 20 }),
      (specs, at, k) => {
        const vehicles = specs.map((s, i) => ({
          id: `v${String(i).padStart(3, '0')}`,
          pricePerHour: s.price,
          lat: s.at.lat,
          lng: s.at.lng,
          listing: s.listed ? 'active' : 'delisted',
        }));
        const index = new CityIndex(vehicles);
        const even = (v: { id: string }) => Number(v.id.slice(1)) % 2 === 0;
        const got = index.nearest(at, k, 15, even).map(({ v }) => v.id);
        const want = vehicles
          .filter((v) => v.listing === 'active' && even(v) && distanceKm(at, v) <= 15)
          .sort((a, b) => distanceKm(at, a) - distanceKm(at, b) || (a.id < b.id ? -1 : 1))
          .slice(0, k)
          .map((v) => v.id);
        assert.deepEqual(got, want);
        assert.deepEqual(
          index.byPrice.map((v) => v.pricePerHour),
          [...index.byPrice.map((v) => v.pricePerHour)].sort((a, b) => a - b),
        );
      },
    ),
    { seed, numRuns: 500 },
  );
});

test('property: TopK keeps what a full sort by (key, id) puts first, in that order', () => {
  const { seed } = seeded('search-index.topk');
  fc.assert(
    fc.property(
      // Few distinct keys: ties broken by id are the case that matters.
      fc.array(fc.record({ key: fc.integer({ min: -5, max: 5 }), id: fc.integer({ min: 0, max: 99 }) }), {
        maxLength: 80,
      }),
      fc.integer({ min: 0, max: 30 }),
      (offers, k) => {
        const seen = new Set<number>();
        const items = offers
          .filter((o) => !seen.has(o.id) && seen.add(o.id))
          .map((o) => ({ id: `v${o.id}`, key: o.key / 4 }));
        const top = new TopK(
          k,
          Float64Array.from(items, (x) => x.key),
          items,
        );
        for (const i of items.keys()) top.offer(i);
        const want = [...items]
          .sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .slice(0, k)
          .map((x) => `${x.id}@${x.key}`);
        assert.deepEqual(
          top.sorted().map((i) => `${items[i]?.id}@${items[i]?.key}`),
          want,
        );
      },
    ),
    { seed, numRuns: 300 },
  );
});

test('property: the box around a small circle holds every listed vehicle within the radius', () => {
  const { seed } = seeded('search-index.box');
  let boxed = 0;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          lat: fc.double({ min: 59.7, max: 60.1, noNaN: true }),
          lng: fc.double({ min: 10.5, max: 11.1, noNaN: true }),
          listed: fc.boolean(),
        }),
        { minLength: 1, maxLength: 300 },
      ),
      fc.record({
        lat: fc.double({ min: 59.6, max: 60.2, noNaN: true }),
        lng: fc.double({ min: 10.4, max: 11.2, noNaN: true }),
      }),
      fc.double({ min: 0.1, max: 30, noNaN: true }),
      fc.integer({ min: 1, max: 40 }),
      (specs, at, radiusKm, count) => {
        const vehicles = specs.map((s, i) => ({
          id: `v${i}`,
          pricePerHour: 10,
          lat: s.lat,
          lng: s.lng,
          listing: s.listed ? 'active' : 'delisted',
        }));
        const index = new CityIndex(vehicles);
        const box = index.boxAround(at, radiusKm, count);
        if (!box) return;
        boxed++;
        const inBox = new Set(Array.from(box, (i) => index.byPrice[i]?.id));
        for (const v of index.byPrice)
          if (distanceKm(at, v) <= radiusKm) assert.ok(inBox.has(v.id), `${v.id} at ${distanceKm(at, v)} km`);
      },
    ),
    { seed, numRuns: 300 },
  );
  assert.ok(boxed > 50, `the box was chosen in ${boxed} of 300 runs`);
});
