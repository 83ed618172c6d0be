/**
 * KdWalker answers as a full scan does: nearest-first is every kept point within the radius in
 * order of great-circle distance (geokdbush's `around`, whose algorithm it follows, as the
 * reference for the distances), and a box holds exactly the points inside it; small leaves, so
 * the kd-tree's inner nodes and box bounds are walked, over a city and over the whole globe.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { around } from 'geokdbush';
import KDBush from 'kdbush';
import { KdWalker } from '../../src/services/kd-walk.ts';
import { distanceKm } from '../../src/services/search-index.ts';
import { seeded } from '../support/random.ts';

const world = fc.record({
  lat: fc.double({ min: -80, max: 80, noNaN: true }),
  lng: fc.double({ min: -180, max: 180, noNaN: true }),
});
const city = fc.record({
  lat: fc.double({ min: 59.8, max: 60.0, noNaN: true }),
  lng: fc.double({ min: 10.6, max: 10.9, noNaN: true }),
});
type Point = { lat: number; lng: number };
const depot = fc.constantFrom<Point>({ lat: 59.9, lng: 10.75 }, { lat: 59.95, lng: 10.7 });

const cases = fc
  .oneof(
    fc.record({ points: fc.array<Point>(fc.oneof(city, depot), { maxLength: 300, size: 'max' }), at: city }),
    fc.record({ points: fc.array<Point>(world, { maxLength: 300, size: 'max' }), at: world }),
  )
  .chain((c) =>
    fc.record({
      points: fc.constant(c.points),
      at: fc.constant(c.at),
      nodeSize: fc.integer({ min: 1, max: 16 }),
      max: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(Number.POSITIVE_INFINITY)),
      maxKm: fc.oneof(fc.double({ min: 0.1, max: 3000, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY)),
    }),
  );

function indexOf(points: readonly { lat: number; lng: number }[], nodeSize: number): KDBush {
  const index = new KDBush(Math.max(1, points.length), nodeSize);
  for (const p of points) index.add(p.lng, p.lat);
  if (points.length === 0) index.add(0, 0);
  return index.finish();
}

test('property: nearest-first walks to the same distances as a full scan and as geokdbush', () => {
  const { seed } = seeded('kd-walk.nearest');
  fc.assert(
    fc.property(cases, ({ points, at, nodeSize, max, maxKm }) => {
      if (points.length === 0) return;
      const index = indexOf(points, nodeSize);
      const walker = new KdWalker(index);
      const even = (id: number) => id % 2 === 0;
      const n = walker.nearest(at.lng, at.lat, max, maxKm, even);
      const got = Array.from(walker.out.subarray(0, n), (id) => distanceKm(at, points[id] ?? at));
      const want = points
        .map((p, id) => ({ id, d: distanceKm(at, p) }))
        .filter((x) => even(x.id) && x.d <= maxKm)
        .map((x) => x.d)
        .sort((a, b) => a - b)
        .slice(0, max);
      assert.equal(got.length, want.length);
      for (const [i, d] of got.entries())
        assert.ok(Math.abs(d - (want[i] ?? Number.NaN)) < 1e-6, `${i}: ${d} vs ${want[i]}`);
      const reference = around(index, at.lng, at.lat, max, maxKm, even).map((id) => distanceKm(at, points[id] ?? at));
      assert.equal(reference.length, got.length);
    }),
    { seed, numRuns: 500 },
  );
});

test('property: a box walk finds exactly the points inside the box', () => {
  const { seed } = seeded('kd-walk.range');
  fc.assert(
    fc.property(cases, world, world, ({ points, nodeSize }, a, b) => {
      if (points.length === 0) return;
      const index = indexOf(points, nodeSize);
      const walker = new KdWalker(index);
      const [minX, maxX] = [Math.min(a.lng, b.lng), Math.max(a.lng, b.lng)];
      const [minY, maxY] = [Math.min(a.lat, b.lat), Math.max(a.lat, b.lat)];
      // A city's points seldom fall in a box drawn over the globe: also a box around the city.
      const boxes: [number, number, number, number][] = [
        [minX, minY, maxX, maxY],
        [10.7, 59.85, 10.8, 59.95],
      ];
      for (const box of boxes) {
        const n = walker.range(box[0], box[1], box[2], box[3]);
        const got = Array.from(walker.out.subarray(0, n)).sort((x, y) => x - y);
        const want = points
          .map((p, id) => ({ p, id }))
          .filter(({ p }) => p.lng >= box[0] && p.lng <= box[2] && p.lat >= box[1] && p.lat <= box[3])
          .map(({ id }) => id);
        assert.deepEqual(got, want);
      }
    }),
    { seed, numRuns: 300 },
  );
});

test('an antipode is within reach of an unbounded walk (its haversine rounds to just above 1)', () => {
  // Found by the nearest-first property (TEST_SEED=1064415302): the walk stopped at a bound of 1.
  const at = { lat: 51.759, lng: 114.918 };
  const points = [
    { lat: -51.759, lng: -65.082 },
    { lat: 0, lng: 0 },
  ];
  const walker = new KdWalker(indexOf(points, 1));
  const n = walker.nearest(at.lng, at.lat, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, () => true);
  assert.deepEqual(Array.from(walker.out.subarray(0, n)).sort(), [0, 1]);
});
