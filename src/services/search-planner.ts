/**
 * The search planner: which vehicles of a city's index are in the running for a page, in the
 * answer's order, touching no more of the city than that order needs. Pure (memory only); the
 * read model verifies what it picks against Redis.
 */
import type { CalendarEntry } from '../domain/calendar.ts';
import type { PageKey } from '../domain/cursor.ts';
import type { Ranked, Ranking } from '../domain/ranking.ts';
import { isSameOrBetter, type Category, type VehicleSpec } from '../domain/vehicle.ts';
import { toMinor, windowTotal, type Pricing } from '../domain/pricing.ts';
import { BusyIntervals, type CityIndex, distanceKm, TopK, type TripWindow } from './search-index.ts';

export interface ReadVehicle extends Omit<VehicleSpec, 'location'> {
  id: string;
  lat: number;
  lng: number;
  listing: string;
  entries: Map<string, CalendarEntry>;
  /** The calendar's occupied time, indexed; dropped whenever an entry changes. */
  busy?: BusyIntervals;
}

export interface SearchQuery {
  from: number;
  to: number;
  category?: Category;
  /** With `category`: that category or any higher one. */
  orBetter?: boolean;
  minSeats?: number;
  near?: { lat: number; lng: number };
  radiusKm?: number;
  /** `for_you`: by `rank` (the caller's likelihood to book), best first; every free vehicle still listed. */
  sort: 'distance' | 'price' | 'for_you';
  rank?: Ranking;
  limit: number;
  /** Keyset: only what sorts after this (the previous page's last sort key and id). */
  after?: SearchKey;
}

/** Where a page ended: the sort key (price, or distance with `near`) and the vehicle id. */
export type SearchKey = PageKey;

export interface SearchHit {
  vehicleId: string;
  category: Category;
  seats: number;
  make: string;
  model: string;
  transmission: string;
  fuel: string;
  location: { lat: number; lng: number };
  pricePerHour: number;
  /** The vehicle's daily cap, when it has one. */
  pricePerDay?: number;
  /** The window's total by the pricing rule (domain/pricing.ts), in minor units of the city's currency. */
  price: { currency: string; total: number };
  distanceKm?: number;
  /** With sort=for_you: the score the page is ordered by, and why. */
  forYou?: Ranked;
}

/** Is [from, to) taken on this vehicle (turnaround included)? The same rule as the scripts' `require_free`. */
function isTaken(v: ReadVehicle, w: TripWindow): boolean {
  v.busy ??= BusyIntervals.of(v.entries.values(), w.turnaroundMs);
  return v.busy.taken(w);
}

/** What one search asks of its city's index, fixed for the search. */
export interface Selection extends TripWindow {
  index: CityIndex<ReadVehicle>;
  q: SearchQuery;
}

/** A vehicle in the running for the page: its distance when the query has a place, its sort key. */
export interface Candidate {
  v: ReadVehicle;
  d: number | undefined;
  key: number;
}

export const ids = (cs: readonly Candidate[]) => cs.map((x) => x.v.id);

/** Does the vehicle answer the query's filters, and is it free for the window (in memory)? */
function fits(s: Selection, v: ReadVehicle): boolean {
  const q = s.q;
  return (
    (!q.category || (q.orBetter ? isSameOrBetter(v.category, q.category) : v.category === q.category)) &&
    (q.minSeats === undefined || v.seats >= q.minSeats) &&
    !isTaken(v, s)
  );
}

/**
 * Up to `count` candidates after `at`, in the answer's order, touching no more of the city than
 * that order needs: the kd-tree walks outwards (nearest first), the price order is read from the
 * cursor on (cheapest first); only for_you reads every vehicle, keeping the best `count` (TopK).
 * `exhausted`: nothing after these.
 */
export function select(
  s: Selection,
  at: SearchKey | undefined,
  count: number,
): { found: Candidate[]; exhausted: boolean } {
  const { q, index } = s;
  const near = q.near;
  if (near && q.sort === 'distance') {
    const found = index
      .nearest(near, count, q.radiusKm, (v) => {
        // The cursor check written out: the distance is not handed to a call (it would be boxed).
        const d = distanceKm(near, v);
        return (!at || d > at.key || (d === at.key && v.id > at.id)) && fits(s, v);
      })
      .map(({ v, d }) => ({ v, d, key: d }));
    return { found, exhausted: found.length < count };
  }
  const rank = q.sort === 'for_you' ? q.rank : undefined;
  if (rank) return bestForYou(s, rank, at, count);
  const box = near && q.radiusKm !== undefined ? index.boxAround(near, q.radiusKm, count) : undefined;
  if (near && box) return cheapestWithin(s, box, near, at, count);
  const found: Candidate[] = [];
  for (let k = at ? index.firstAfterPrice(at) : 0; k < index.byPrice.length && found.length < count; k++) {
    const v = index.byPrice[k];
    if (!v) break;
    const d = near ? distanceKm(near, v) : undefined;
    if (q.radiusKm !== undefined && d !== undefined && d > q.radiusKm) continue;
    if (fits(s, v)) found.push({ v, d, key: v.pricePerHour });
  }
  return { found, exhausted: found.length < count };
}

/**
 * for_you: every free vehicle that fits, in the caller's order (personalisation orders, never
 * hides). Scores go into the index's scratch keys and the best `count` positions into a TopK;
 * nothing here is allocated per vehicle (select is synchronous, so the scratch is this search's).
 */
function bestForYou(
  s: Selection,
  rank: Ranking,
  at: SearchKey | undefined,
  count: number,
): { found: Candidate[]; exhausted: boolean } {
  const { q, index } = s;
  const near = q.near;
  const all = index.byPrice;
  const keys = index.keys();
  rank.scores(all, keys);
  const top = new TopK(count, keys, all);
  for (let i = 0; i < all.length; i++) {
    const v = all[i];
    if (!v) continue;
    // The key is minus the score, rounded so that a cursor carries it exactly; written out rather
    // than called (a double handed to a call that is not inlined is boxed).
    const key = -Math.round((keys[i] ?? 0) * 1e6) / 1e6;
    keys[i] = key;
    if (near && q.radiusKm !== undefined && distanceKm(near, v) > q.radiusKm) continue;
    if (at && !(key > at.key || (key === at.key && v.id > at.id))) continue;
    if (fits(s, v)) top.offer(i);
  }
  const found = top.sorted().flatMap((i) => {
    const v = all[i];
    return v ? [{ v, d: near ? distanceKm(near, v) : undefined, key: keys[i] ?? 0 }] : [];
  });
  return { found, exhausted: found.length < count };
}

/**
 * Cheapest first within a small circle: the vehicles of its box (`CityIndex.boxAround`) within
 * the radius, after the cursor, that fit; the best `count` kept by price in a TopK.
 */
function cheapestWithin(
  s: Selection,
  box: Int32Array,
  near: { lat: number; lng: number },
  at: SearchKey | undefined,
  count: number,
): { found: Candidate[]; exhausted: boolean } {
  const all = s.index.byPrice;
  const keys = s.index.keys();
  const radiusKm = s.q.radiusKm ?? Number.POSITIVE_INFINITY;
  const top = new TopK(count, keys, all);
  for (let b = 0; b < box.length; b++) {
    const i = box[b] ?? 0;
    const v = all[i];
    if (!v || distanceKm(near, v) > radiusKm) continue;
    const key = v.pricePerHour;
    if (at && !(key > at.key || (key === at.key && v.id > at.id))) continue;
    keys[i] = key;
    if (fits(s, v)) top.offer(i);
  }
  const found = top.sorted().flatMap((i) => {
    const v = all[i];
    return v ? [{ v, d: distanceKm(near, v), key: v.pricePerHour }] : [];
  });
  return { found, exhausted: found.length < count };
}

/**
 * A vehicle as a search answers it, priced for the window (`w`) in the city's currency: only the
 * page's hits are priced, with arithmetic (no allocation beyond the hit).
 */
export function hitOf(
  v: ReadVehicle,
  d: number | undefined,
  forYou: Ranked | undefined,
  w: { from: number; to: number },
  pricing: Pricing,
): SearchHit {
  const hour = toMinor(v.pricePerHour, pricing.exponent);
  const day = v.pricePerDay === undefined ? undefined : toMinor(v.pricePerDay, pricing.exponent);
  return {
    vehicleId: v.id,
    category: v.category,
    seats: v.seats,
    make: v.make,
    model: v.model,
    transmission: v.transmission,
    fuel: v.fuel,
    location: { lat: v.lat, lng: v.lng },
    pricePerHour: v.pricePerHour,
    ...(v.pricePerDay === undefined ? {} : { pricePerDay: v.pricePerDay }),
    price: { currency: pricing.currency, total: windowTotal(hour, day, w.from, w.to) },
    ...(d === undefined ? {} : { distanceKm: Math.round(d * 1000) / 1000 }),
    ...(forYou ? { forYou } : {}),
  };
}
