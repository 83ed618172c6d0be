/**
 * The read model's indexes (docs/api.md, "Search is real time"): a search touches only what it
 * returns, not the whole city.
 * - `BusyIntervals`: a vehicle's occupied time for a new trip, turnaround included, answered by a
 *   binary search over its stable entries (sorted by padded start, with a running maximum of the
 *   padded ends) plus a look at the few entries whose occupation moves with the clock (live holds,
 *   trips under way). The same rule as `overlapsWindow` (src/domain/calendar.ts).
 * - `CityIndex`: the listed vehicles in price order, and a kd-tree of them for nearest-first
 *   (kdbush, geokdbush), rebuilt only when a vehicle's spec or listing changes.
 */
import KDBush from 'kdbush';
import { around } from 'geokdbush';
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

  /** Is [from, to) taken for a new trip at `now`? */
  taken(from: number, to: number, turnaroundMs: number, now: number): boolean {
    // The last stable entry starting (padded) before `to`: any overlap ends after `from`.
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid] ?? 0) < to) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && (this.ends[lo - 1] ?? 0) > from) return true;
    for (const e of this.moving)
      if (occupies(e, now) && overlapsWindow(e, from, to, true, turnaroundMs, now)) return true;
    return false;
  }
}

export interface Indexed {
  id: string;
  pricePerHour: number;
  lat: number;
  lng: number;
  listing: string;
}

export class CityIndex<V extends Indexed> {
  /** Listed vehicles by price, then id. */
  readonly byPrice: V[];
  private readonly geo: KDBush | undefined;

  constructor(vehicles: Iterable<V>) {
    this.byPrice = [...vehicles]
      .filter((v) => v.listing === 'active')
      .sort((a, b) => a.pricePerHour - b.pricePerHour || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (this.byPrice.length) {
      const geo = new KDBush(this.byPrice.length);
      for (const v of this.byPrice) geo.add(v.lng, v.lat);
      geo.finish();
      this.geo = geo;
    }
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

  /** Up to `max` vehicles that `keep` accepts, nearest first, within `radiusKm`. */
  nearest(at: { lat: number; lng: number }, max: number, radiusKm: number | undefined, keep: (v: V) => boolean): V[] {
    if (!this.geo) return [];
    return around(this.geo, at.lng, at.lat, max, radiusKm ?? Number.POSITIVE_INFINITY, (i) => {
      const v = this.byPrice[i];
      return v !== undefined && keep(v);
    }).flatMap((i) => this.byPrice[i] ?? []);
  }
}

/**
 * The `capacity` smallest of a stream of (key, id) pairs, in order: a bounded max-heap, so
 * ordering a whole city by a score keeps a page's worth, never the city.
 */
export class TopK<V extends { id: string }> {
  private readonly keys: Float64Array;
  private readonly items: V[] = [];

  constructor(readonly capacity: number) {
    this.keys = new Float64Array(capacity);
  }

  /** Does (a, ida) sort after (b, idb)? */
  private static after(a: number, ida: string, b: number, idb: string): boolean {
    return a > b || (a === b && ida > idb);
  }

  private later(i: number, j: number): boolean {
    return TopK.after(this.keys[i] ?? 0, this.items[i]?.id ?? '', this.keys[j] ?? 0, this.items[j]?.id ?? '');
  }

  private swap(i: number, j: number): void {
    const k = this.keys[i] ?? 0;
    this.keys[i] = this.keys[j] ?? 0;
    this.keys[j] = k;
    const v = this.items[i] as V;
    this.items[i] = this.items[j] as V;
    this.items[j] = v;
  }

  offer(v: V, key: number): void {
    if (this.capacity === 0) return;
    let i = this.items.length;
    if (i < this.capacity) {
      this.items.push(v);
      this.keys[i] = key;
      // Up while the parent sorts before: the root is the latest of the kept.
      while (i > 0) {
        const parent = (i - 1) >>> 1;
        if (!this.later(i, parent)) break;
        this.swap(i, parent);
        i = parent;
      }
      return;
    }
    const root = this.items[0] as V;
    if (!TopK.after(this.keys[0] ?? 0, root.id, key, v.id)) return;
    this.items[0] = v;
    this.keys[0] = key;
    i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < this.items.length && this.later(l, top)) top = l;
      if (r < this.items.length && this.later(r, top)) top = r;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }

  /** What was kept, earliest first. */
  sorted(): { v: V; key: number }[] {
    return this.items
      .map((v, i) => ({ v, key: this.keys[i] ?? 0 }))
      .sort((a, b) => a.key - b.key || (a.v.id < b.v.id ? -1 : a.v.id > b.v.id ? 1 : 0));
  }
}
