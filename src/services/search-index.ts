/**
 * The read model's indexes (docs/api.md, "Search is real time"): a search touches only what it
 * returns, not the whole city.
 * - `BusyIntervals`: a vehicle's occupied time for a new trip, turnaround included, answered by a
 *   binary search over its stable entries (sorted by padded start, with a running maximum of the
 *   padded ends) plus a look at the few entries whose occupation moves with the clock (live holds,
 *   trips under way). The same rule as `overlapsWindow` (src/domain/calendar.ts).
 * - `CityIndex`: the listed vehicles in price order, and a kd-tree of them for nearest-first
 *   (kdbush, walked by KdWalker: src/services/kd-walk.ts), rebuilt only when a vehicle's spec or
 *   listing changes.
 */
import KDBush from 'kdbush';
import { KdWalker } from './kd-walk.ts';
import { isTrip, occupies, overlapsWindow, type CalendarEntry } from '../domain/calendar.ts';

export class BusyIntervals {
  private constructor(
    private readonly starts: Float64Array,
    /** ends[i] = the largest padded end among entries 0..i (by padded start). */
    private readonly ends: Float64Array,
    /** Entries whose occupation depends on `now`: live holds, trips under way. */
    private readonly moving: readonly CalendarEntry[],
  ) {}

  static of(entries: Iterable<CalendarEntry>, turnaroundMs: number): BusyIntervals {
    const stable: { start: number; end: number }[] = [];
    const moving: CalendarEntry[] = [];
    for (const e of entries) {
      if (e.kind === 'hold' ? e.status === 'held' : e.kind === 'booking' && e.status === 'active') {
        moving.push(e);
        continue;
      }
      // Confirmed and completed bookings, active blocks: their occupation does not move with the clock.
      if (!occupies(e, 0)) continue;
      const pad = isTrip(e) ? turnaroundMs : 0;
      stable.push({ start: e.from - pad, end: (e.to ?? Number.POSITIVE_INFINITY) + pad });
    }
    stable.sort((a, b) => a.start - b.start);
    const starts = new Float64Array(stable.length);
    const ends = new Float64Array(stable.length);
    let max = Number.NEGATIVE_INFINITY;
    stable.forEach((s, i) => {
      starts[i] = s.start;
      max = Math.max(max, s.end);
      ends[i] = max;
    });
    return new BusyIntervals(starts, ends, moving);
  }

  /**
   * Is [from, to) taken for a new trip at `now`? The window comes as one object: a double read from
   * an object and handed to a call is boxed anew each time, and search asks this of many vehicles.
   */
  taken(w: TripWindow): boolean {
    // The last stable entry starting (padded) before `to`: any overlap ends after `from`.
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid] ?? 0) < w.to) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && (this.ends[lo - 1] ?? 0) > w.from) return true;
    for (let i = 0; i < this.moving.length; i++) {
      const e = this.moving[i] as CalendarEntry;
      if (occupies(e, w.now) && overlapsWindow(e, w.from, w.to, true, w.turnaroundMs, w.now)) return true;
    }
    return false;
  }
}

/** A new trip's window, its city's turnaround and the time of asking. */
export interface TripWindow {
  from: number;
  to: number;
  turnaroundMs: number;
  now: number;
}

export interface Indexed {
  id: string;
  pricePerHour: number;
  lat: number;
  lng: number;
  listing: string;
}

const EARTH_KM = 6371;
/** Distances closer than this (a millimetre) may be ordered differently by two haversines: a tie. */
const TIE_KM = 1e-6;

/** Great-circle distance (haversine), the distance every search answers and orders by. */
export function distanceKm(a: { lat: number; lng: number }, b: { lat: number; lng: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The share of [lo, hi] that [a, b] covers (1 or 0 for a single point). */
function overlap(lo: number, hi: number, a: number, b: number): number {
  if (hi - lo < 1e-9) return a <= hi && b >= lo ? 1 : 0;
  return Math.max(0, Math.min(hi, b) - Math.max(lo, a)) / (hi - lo);
}

export class CityIndex<V extends Indexed> {
  /** Listed vehicles by price, then id. */
  readonly byPrice: V[];
  /** Walks the kd-tree of the listed vehicles (positions in price order) without garbage. */
  private readonly geo: KdWalker | undefined;
  private scratch: Float64Array | undefined;
  /** Where the listed vehicles are: the box of their positions. */
  private readonly bounds = { minLat: 90, maxLat: -90, minLng: 180, maxLng: -180 };

  constructor(vehicles: Iterable<V>) {
    this.byPrice = [...vehicles]
      .filter((v) => v.listing === 'active')
      .sort((a, b) => a.pricePerHour - b.pricePerHour || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.byPrice.length) {
      const geo = new KDBush(this.byPrice.length);
      const b = this.bounds;
      for (const v of this.byPrice) {
        geo.add(v.lng, v.lat);
        b.minLat = Math.min(b.minLat, v.lat);
        b.maxLat = Math.max(b.maxLat, v.lat);
        b.minLng = Math.min(b.minLng, v.lng);
        b.maxLng = Math.max(b.maxLng, v.lng);
      }
      geo.finish();
      this.geo = new KdWalker(geo);
    }
  }

  /**
   * The positions (in price order) of the listed vehicles in the box around a circle, when the
   * circle covers so little of the city that reading its box beats walking the price order until
   * `count` fit; undefined when walking is cheaper (or the box wraps a pole or the antimeridian).
   * Walking reads about count / f vehicles where the circle covers a share f of the city, the
   * box about f × the city: the box wins while f² × city < count. A superset of the circle:
   * the caller keeps what is within `radiusKm`.
   */
  boxAround(at: { lat: number; lng: number }, radiusKm: number, count: number): Int32Array | undefined {
    if (!this.geo) return new Int32Array(0);
    // Latitude: r / R radians either way, 1% over; longitude: a point within r lies within
    // asin(sin(r/R) / cos(lat)) of the centre's, at most (r/R) / cos(poleward edge), 1% over.
    const dLat = 1.01 * (radiusKm / EARTH_KM) * (180 / Math.PI);
    const edge = Math.abs(at.lat) + dLat;
    if (edge >= 89) return undefined;
    const dLng = ((1.01 * (radiusKm / EARTH_KM)) / Math.cos((edge * Math.PI) / 180)) * (180 / Math.PI);
    if (at.lng - dLng < -180 || at.lng + dLng > 180) return undefined;
    const b = this.bounds;
    const share =
      overlap(b.minLat, b.maxLat, at.lat - dLat, at.lat + dLat) *
      overlap(b.minLng, b.maxLng, at.lng - dLng, at.lng + dLng);
    if (share * share * this.byPrice.length >= count) return undefined;
    const n = this.geo.range(at.lng - dLng, at.lat - dLat, at.lng + dLng, at.lat + dLat);
    return this.geo.out.subarray(0, n);
  }

  /**
   * One key per vehicle in price order, for a search to fill and read synchronously (for_you):
   * the city's searches share it, so ranking a city allocates nothing per search.
   */
  keys(): Float64Array {
    this.scratch ??= new Float64Array(this.byPrice.length);
    return this.scratch;
  }

  /** The position in price order of the first vehicle after (price, id). */
  firstAfterPrice(after: { key: number; id: string }): number {
    let lo = 0;
    let hi = this.byPrice.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.byPrice[mid];
      if (v && (v.pricePerHour < after.key || (v.pricePerHour === after.key && v.id <= after.id))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Up to `max` vehicles that `keep` accepts within `radiusKm`, nearest first by `distanceKm`, ties
   * by id. The kd-tree's walk (KdWalker, geokdbush's algorithm) orders by its own haversine and leaves equal distances
   * (vehicles at one depot) in any order, so its answer is sorted again, and when the first left
   * out is as near as the last kept (within TIE_KM), every vehicle that near is fetched and sorted
   * before the cut: a keyset cursor then neither repeats nor skips a vehicle.
   */
  nearest(
    at: { lat: number; lng: number },
    max: number,
    radiusKm: number | undefined,
    keep: (v: V) => boolean,
  ): { v: V; d: number }[] {
    const geo = this.geo;
    if (!geo || max <= 0) return [];
    const keepAt = (i: number) => {
      const v = this.byPrice[i];
      return v !== undefined && keep(v);
    };
    const walk = (n: number, within: number) => {
      const found: { v: V; d: number }[] = [];
      const k = geo.nearest(at.lng, at.lat, n, within, keepAt);
      for (let j = 0; j < k; j++) {
        const v = this.byPrice[geo.out[j] ?? -1];
        if (v) found.push({ v, d: distanceKm(at, v) });
      }
      return found.sort((a, b) => a.d - b.d || (a.v.id < b.v.id ? -1 : a.v.id > b.v.id ? 1 : 0));
    };
    const radius = radiusKm ?? Number.POSITIVE_INFINITY;
    const first = walk(max + 1, radius);
    const last = first[max - 1]?.d;
    const next = first[max]?.d;
    if (last === undefined || next === undefined || next > last + TIE_KM) return first.slice(0, max);
    return walk(Number.POSITIVE_INFINITY, Math.min(radius, last + TIE_KM)).slice(0, max);
  }
}

/**
 * The `capacity` first positions of a list by (key, id): a bounded max-heap over positions, the
 * keys read from a Float64Array, so ordering a whole city by a score keeps a page's worth and
 * boxes no number on the way.
 */
export class TopK {
  private readonly heap: Int32Array;
  private size = 0;

  constructor(
    readonly capacity: number,
    private readonly keys: Float64Array,
    private readonly items: readonly { id: string }[],
  ) {
    this.heap = new Int32Array(capacity);
  }

  /** Does position a sort after position b? */
  private after(a: number, b: number): boolean {
    const ka = this.keys[a] ?? 0;
    const kb = this.keys[b] ?? 0;
    return ka > kb || (ka === kb && (this.items[a]?.id ?? '') > (this.items[b]?.id ?? ''));
  }

  private swap(i: number, j: number): void {
    const x = this.heap[i] ?? 0;
    this.heap[i] = this.heap[j] ?? 0;
    this.heap[j] = x;
  }

  offer(position: number): void {
    if (this.size < this.capacity) {
      let i = this.size++;
      this.heap[i] = position;
      // Up while the parent sorts before: the root is the latest of the kept.
      while (i > 0) {
        const parent = (i - 1) >>> 1;
        if (!this.after(this.heap[i] ?? 0, this.heap[parent] ?? 0)) break;
        this.swap(i, parent);
        i = parent;
      }
      return;
    }
    if (this.capacity === 0 || !this.after(this.heap[0] ?? 0, position)) return;
    this.heap[0] = position;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < this.size && this.after(this.heap[l] ?? 0, this.heap[top] ?? 0)) top = l;
      if (r < this.size && this.after(this.heap[r] ?? 0, this.heap[top] ?? 0)) top = r;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }

  /** The kept positions, first first. */
  sorted(): number[] {
    return Array.from(this.heap.subarray(0, this.size)).sort((a, b) => (this.after(a, b) ? 1 : -1));
  }
}
