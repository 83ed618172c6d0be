/**
 * Personal ranking: the batch scorer (what search orders a city by) and the explained score (what
 * a page shows) agree, and every score is finite — a cursor carries it (a free vehicle, price 0,
 * is the least likely, not -Infinity).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forYou, forYouScores, profileOf, type Candidate } from '../../src/domain/ranking.ts';
import { decodeCursor, encodeCursor } from '../../src/domain/cursor.ts';

const profile = profileOf([
  { category: 'suv', pricePerHour: 12, lat: 12.97, lng: 77.59, hours: 3 },
  { category: 'suv', pricePerHour: 15, lat: 12.99, lng: 77.6, hours: 5 },
  { category: 'sedan', pricePerHour: 9, lat: 12.95, lng: 77.58, hours: 2 },
]);
const vehicles: Candidate[] = [
  { category: 'suv', pricePerHour: 13, lat: 12.98, lng: 77.59 },
  { category: 'hatchback', pricePerHour: 6, lat: 13.1, lng: 77.7 },
  { category: 'luxury', pricePerHour: 0, lat: 12.97, lng: 77.59 },
];

test('the batch scores are the explained scores, and all finite', () => {
  const out = new Float64Array(vehicles.length);
  forYouScores(profile, vehicles, out);
  for (const [i, v] of vehicles.entries()) {
    assert.ok(Number.isFinite(out[i]), `${v.category} at ${v.pricePerHour}/h: ${out[i]}`);
    assert.equal(forYou(profile, v).score, out[i]);
  }
  assert.ok((out[0] ?? 0) > (out[1] ?? 0), 'their usual category and price first');
  assert.ok((out[2] ?? 0) < (out[1] ?? 0), 'a price of 0 last');
  const key = -Math.round((out[2] ?? 0) * 1e6) / 1e6;
  assert.deepEqual(decodeCursor(encodeCursor({ key, id: 'veh_x_1' })), { key, id: 'veh_x_1' });
});
