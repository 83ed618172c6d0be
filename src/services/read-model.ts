/**
 * The search read model (architecture.md §6): each process keeps its cities' vehicles and calendars in
 * memory, loaded from Redis once and then fed by tailing the city streams (the one stream consumer,
 * blocking until an event arrives; events carry whole states, so applying one twice is harmless). Searches are answered from memory; the page is then
 * verified against Redis in one round trip, so no vehicle booked before the response is shown
 * as free, however far the tail lags.
 */
import { deriveStatus, type CalendarEntry } from '../domain/calendar.ts';
import type { CityCatalog } from '../domain/cities.ts';
import {
  CATEGORIES,
  FUELS,
  isSameOrBetter,
  LISTING_STATES,
  oneOf,
  TRANSMISSIONS,
  type Category,
  type VehicleSpec,
  type VehicleStatus,
} from '../domain/vehicle.ts';
import type { PageKey } from '../domain/cursor.ts';
import { DomainError } from '../domain/errors.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, type RedisConnection } from '../redis/scripts.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import type { Inventory } from './inventory.ts';
import { survived } from '../log.ts';
import { StreamConsumer, type StreamEntry } from '../redis/stream-consumer.ts';
import { BusyIntervals, CityIndex, distanceKm, TopK, type TripWindow } from './search-index.ts';
import type { Ranked, Ranking } from '../domain/ranking.ts';

/** What the city index sorts and places by: a change here rebuilds it. */
function specChanged(prior: ReadVehicle, state: Record<string, unknown>): boolean {
  return (
    prior.listing !== String(state.listing) ||
    prior.pricePerHour !== Number(state.pricePerHour) ||
    prior.lat !== Number(state.lat) ||
    prior.lng !== Number(state.lng) ||
    prior.category !== state.category ||
    prior.seats !== Number(state.seats)
  );
}

export interface ReadVehicle extends Omit<VehicleSpec, 'location'> {
  id: string;
  lat: number;
  lng: number;
  listing: string;
  entries: Map<string, CalendarEntry>;
  /** The calendar's occupied time, indexed; dropped whenever an entry changes. */
  busy?: BusyIntervals;
}

interface CityView {
  vehicles: Map<string, ReadVehicle>;
  lastId: string;
  /** Price order and kd-tree of the listed vehicles; dropped when a vehicle's spec or listing changes. */
  index?: CityIndex<ReadVehicle>;
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
  distanceKm?: number;
  /** With sort=for_you: the score the page is ordered by, and why. */
  forYou?: Ranked;
}

/** Events applied per read of a stream. */
const TAIL_BATCH = 1000;

/** Entries older than this are dropped from memory (history lives in PostgreSQL). */
const KEEP_PAST_MS = 24 * 3600_000;

function readVehicle(id: string, s: Record<string, unknown>, entries = new Map<string, CalendarEntry>()): ReadVehicle {
  return {
    id,
    hostId: String(s.hostId),
    category: oneOf(CATEGORIES, s.category, 'category'),
    seats: Number(s.seats),
    transmission: oneOf(TRANSMISSIONS, s.transmission, 'transmission'),
    fuel: oneOf(FUELS, s.fuel, 'fuel'),
    make: String(s.make),
    model: String(s.model),
    lat: Number(s.lat),
    lng: Number(s.lng),
    pricePerHour: Number(s.pricePerHour),
    listing: String(s.listing),
    entries,
  };
}

/** Is [from, to) taken on this vehicle (turnaround included)? The same rule as the scripts' `require_free`. */
function isTaken(v: ReadVehicle, w: TripWindow): boolean {
  v.busy ??= BusyIntervals.of(v.entries.values(), w.turnaroundMs);
  return v.busy.taken(w);
}

/** A vehicle on the city's map: where it is and its status now. */
export interface VehicleNow {
  id: string;
  hostId: string;
  category: Category;
  listing: string;
  lat: number;
  lng: number;
  status: VehicleStatus;
}

export class ReadModel {
  private readonly views = new Map<string, CityView>();
  /** Who else hears the tail (the WebSocket hub): one read of each stream per process. */
  private readonly listeners = new Set<(city: string, events: StreamEvent[]) => void>();
  private readonly verifications = new Map<
    string,
    { status: 'verifying' | 'ok'; at: number; report?: Record<string, unknown> }
  >();
  private readonly reader: StreamConsumer;
  /** The tail of a city in flight: one at a time, so listeners hear each event once. */
  private readonly tailing = new Map<string, Promise<number>>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly inventory: Inventory,
    private readonly cities: CityCatalog = inventory.cities,
  ) {
    this.reader = new StreamConsumer({
      name: 'read-model',
      redis,
      cities: () => [...this.views.keys()],
      position: (city) => this.views.get(city)?.lastId,
      count: TAIL_BATCH,
      concurrency: 4,
      // What `catchUp` applied meanwhile is behind the view's position: only what is after it.
      handle: async (city, entries) => {
        await this.serialised(city, () => this.apply(city, entries));
        return undefined;
      },
    });
  }

  /**
   * Loads every city, then keeps tailing the streams until `stop`. While Redis is away the tail
   * backs off and tries again; searches still verify against Redis (and fail loudly there).
   */
  async start(): Promise<void> {
    for (const c of this.cities.all()) await this.load(c.id);
    this.reader.start();
  }

  async stop(): Promise<void> {
    await this.reader.stop();
  }

  /** Snapshot of a city: the stream position first, so nothing between is missed. */
  private async load(city: string): Promise<void> {
    const last = (await this.redis.xrevrange(keys.events(city), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    const view: CityView = { vehicles: new Map(), lastId: last };
    for (const id of await this.redis.smembers(keys.vehicles(city))) {
      const [h, cal] = await Promise.all([
        this.redis.hgetall(keys.vehicle(city, id)),
        this.redis.hvals(keys.calendar(city, id)),
      ]);
      if (!h.id) continue;
      view.vehicles.set(
        id,
        readVehicle(
          id,
          h,
          new Map(
            cal.map((raw) => {
              const e = fromScript<CalendarEntry>(raw);
              return [e.id, e];
            }),
          ),
        ),
      );
    }
    this.views.set(city, view);
  }

  /** Hears every event this model applies, city by city, in stream order. Returns the unsubscribe. */
  onEvents(listener: (city: string, events: StreamEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The id of the last event of the city this model has applied (and told its listeners of). */
  position(city: string): string | undefined {
    return this.views.get(city)?.lastId;
  }

  /** Applies the city's new events; returns how many were read. Serialised per city (the tail, `catchUp`). */
  async tail(city: string): Promise<number> {
    return this.serialised(city, async () => {
      const view = this.views.get(city);
      if (!view) return 0;
      const res = (await this.redis.xread('COUNT', TAIL_BATCH, 'STREAMS', keys.events(city), view.lastId)) as
        | [string, [string, string[]][]][]
        | null;
      const entries = (res?.[0]?.[1] ?? []).map(([id, fields]) => ({ id, fields }));
      await this.apply(city, entries);
      return entries.length;
    });
  }

  private async serialised(city: string, work: () => Promise<number>): Promise<number> {
    const next = (this.tailing.get(city) ?? Promise.resolve(0)).catch(() => 0).then(work);
    this.tailing.set(city, next);
    try {
      return await next;
    } finally {
      if (this.tailing.get(city) === next) this.tailing.delete(city);
    }
  }

  /**
   * Applies everything the cities' streams hold now: a read after this sees every change
   * acknowledged before it was called (read-your-writes for the lists, docs/api.md).
   */
  async catchUp(cities: readonly string[] = [...this.views.keys()]): Promise<void> {
    await Promise.all(
      cities.map(async (city) => {
        while ((await this.tail(city)) >= TAIL_BATCH);
      }),
    );
  }

  /** One vehicle as this model holds it. */
  vehicle(city: string, id: string): ReadVehicle | undefined {
    return this.views.get(city)?.vehicles.get(id);
  }

  /** The city's vehicles as this model holds them (call `catchUp` first for read-your-writes). */
  vehiclesOf(city: string): Iterable<ReadVehicle> {
    return this.views.get(city)?.vehicles.values() ?? [];
  }

  /** Every vehicle of the city with its status now, derived from its calendar (the map of a city). */
  async statuses(city: string): Promise<VehicleNow[]> {
    await this.catchUp([city]);
    const now = this.inventory.clock.now();
    return [...this.vehiclesOf(city)].map((v) => ({
      id: v.id,
      hostId: v.hostId,
      category: v.category,
      listing: v.listing,
      lat: v.lat,
      lng: v.lng,
      status: deriveStatus(oneOf(LISTING_STATES, v.listing, 'listing'), [...v.entries.values()], now).status,
    }));
  }

  /** Calendar entries (with their vehicle) that `keep` selects, in every city or in `cities`. */
  entries(
    keep: (e: CalendarEntry, v: { id: string; hostId: string; city: string }) => boolean,
    cities: ReadonlySet<string> | undefined = undefined,
  ): { entry: CalendarEntry; vehicleId: string; city: string; hostId: string }[] {
    const out: { entry: CalendarEntry; vehicleId: string; city: string; hostId: string }[] = [];
    for (const [city, view] of this.views) {
      if (cities && !cities.has(city)) continue;
      for (const v of view.vehicles.values()) {
        const where = { id: v.id, hostId: v.hostId, city };
        for (const e of v.entries.values())
          if (keep(e, where)) out.push({ entry: e, vehicleId: v.id, city, hostId: v.hostId });
      }
    }
    return out;
  }

  /** Applies the city's entries after the view's position, in order, and tells the listeners. */
  private async apply(city: string, all: readonly StreamEntry[]): Promise<number> {
    const view = this.views.get(city);
    if (!view) return 0;
    const entries = all.filter((e) => compareStreamIds(e.id, view.lastId) > 0);
    const horizon = this.inventory.clock.now() - KEEP_PAST_MS;
    const heard: StreamEvent[] = [];
    let reload = false;
    for (const { id, fields } of entries) {
      view.lastId = id;
      let e: StreamEvent;
      try {
        e = parseStreamEntry(city, id, fields);
      } catch (err) {
        survived('read-model.parse', err);
        continue;
      }
      heard.push(e);
      if (e.type.startsWith('system.failover_')) this.noteVerification(city, e);
      // A failover may have taken back writes this model had applied: once the city is verified
      // (what was lost restored, with events), load it afresh from Redis.
      if (e.type === 'system.failover_verified') reload = true;
      if (!e.state) continue;
      if (e.type === 'vehicle.restored' && Array.isArray(e.data.entries)) {
        // A restore replaces the whole calendar: entries that vanished must vanish here too.
        const restored = new Map((e.data.entries as CalendarEntry[]).map((x) => [x.id, x]));
        view.vehicles.set(e.vehicle, readVehicle(e.vehicle, e.state, restored));
        view.index = undefined;
        continue;
      }
      if (e.type.startsWith('vehicle.')) {
        const prior = view.vehicles.get(e.vehicle);
        const next = readVehicle(e.vehicle, e.state, prior?.entries);
        if (prior && !specChanged(prior, e.state)) {
          // The same place in the index (which holds this object): updated in place, its cache dropped.
          Object.assign(prior, next, { busy: undefined });
          continue;
        }
        view.vehicles.set(e.vehicle, next);
        view.index = undefined;
        continue;
      }
      const v = view.vehicles.get(e.vehicle);
      if (!v) continue;
      const entry = e.state as unknown as CalendarEntry;
      v.entries.set(entry.id, entry);
      for (const [k, old] of v.entries) if (old.to !== undefined && old.to < horizon) v.entries.delete(k);
      v.busy = undefined;
    }
    if (heard.length) for (const listener of this.listeners) listener(city, heard);
    if (reload) {
      const position = view.lastId;
      await this.load(city);
      // Events after the verification may already be in the snapshot; applying them again is harmless.
      const reloaded = this.views.get(city);
      if (reloaded && compareStreamIds(reloaded.lastId, position) < 0) reloaded.lastId = position;
    }
    return entries.length;
  }

  /**
   * Failover verifications as the city streams tell them (services/failover.ts): a city whose
   * `system.failover_detected` has no `system.failover_verified` after it is being verified.
   */
  failoverState(): { status: 'ok' | 'verifying'; verifying: string[]; last?: Record<string, unknown> } {
    const verifying = [...this.verifications].filter(([, v]) => v.status === 'verifying').map(([city]) => city);
    const last = [...this.verifications.values()].filter((v) => v.report).sort((a, b) => b.at - a.at)[0]?.report;
    return { status: verifying.length ? 'verifying' : 'ok', verifying, ...(last ? { last } : {}) };
  }

  private noteVerification(city: string, e: StreamEvent): void {
    if (e.type === 'system.failover_detected') this.verifications.set(city, { status: 'verifying', at: e.time });
    else if (e.type === 'system.failover_verified')
      this.verifications.set(city, { status: 'ok', at: e.time, report: e.data });
  }

  /**
   * Candidates from memory in the answer's order, each round verified against Redis before it is
   * returned: the first round verifies exactly the page, each after a miss twice the one before,
   * and what memory thought free but Redis says taken is skipped, the page filled from further on.
   */
  async search(city: string, q: SearchQuery): Promise<{ hits: SearchHit[]; next: SearchKey | null }> {
    const c = this.cities.get(city);
    const view = this.views.get(city);
    if (!c || !view) throw new DomainError('NOT_FOUND', `city ${city} not found`, { entity: 'city', id: city });
    view.index ??= new CityIndex(view.vehicles.values());
    const s: Selection = {
      index: view.index,
      q,
      from: q.from,
      to: q.to,
      turnaroundMs: c.turnaroundMs,
      now: this.inventory.clock.now(),
    };
    const rank = q.sort === 'for_you' ? q.rank : undefined;
    const hits: SearchHit[] = [];
    let at = q.after;
    let verify = q.limit;
    for (;;) {
      // One more than verified: whether a next page exists is known without another round.
      const { found, exhausted } = select(s, at, verify + 1);
      const round = found.slice(0, verify);
      if (round.length === 0) return { hits, next: null };
      const free = new Set(await this.inventory.verifyAvailable(city, ids(round), q.from, q.to));
      for (const [j, { v, d, key }] of round.entries()) {
        at = { key, id: v.id };
        if (!free.has(v.id)) continue;
        hits.push(hitOf(v, d, rank?.explain(v)));
        if (hits.length >= q.limit) return { hits, next: found.length > j + 1 ? at : null };
      }
      if (exhausted) return { hits, next: null };
      // Memory was behind: each further round verifies twice as many, so even a model that missed
      // most bookings needs few rounds (a for_you round scores the city again).
      verify = Math.max(q.limit - hits.length, 2 * verify);
    }
  }
}

/** What one search asks of its city's index, fixed for the search. */
interface Selection extends TripWindow {
  index: CityIndex<ReadVehicle>;
  q: SearchQuery;
}

/** A vehicle in the running for the page: its distance when the query has a place, its sort key. */
interface Candidate {
  v: ReadVehicle;
  d: number | undefined;
  key: number;
}

const ids = (cs: readonly Candidate[]) => cs.map((x) => x.v.id);

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
function select(s: Selection, at: SearchKey | undefined, count: number): { found: Candidate[]; exhausted: boolean } {
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
    const v = index.byPrice[k] as ReadVehicle;
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
    const v = all[i] as ReadVehicle;
    // The key is minus the score, rounded so that a cursor carries it exactly; written out rather
    // than called (a double handed to a call that is not inlined is boxed).
    const key = -Math.round((keys[i] ?? 0) * 1e6) / 1e6;
    keys[i] = key;
    if (near && q.radiusKm !== undefined && distanceKm(near, v) > q.radiusKm) continue;
    if (at && !(key > at.key || (key === at.key && v.id > at.id))) continue;
    if (fits(s, v)) top.offer(i);
  }
  const found = top.sorted().map((i) => {
    const v = all[i] as ReadVehicle;
    return { v, d: near ? distanceKm(near, v) : undefined, key: keys[i] ?? 0 };
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
    const v = all[i] as ReadVehicle;
    if (distanceKm(near, v) > radiusKm) continue;
    const key = v.pricePerHour;
    if (at && !(key > at.key || (key === at.key && v.id > at.id))) continue;
    keys[i] = key;
    if (fits(s, v)) top.offer(i);
  }
  const found = top.sorted().map((i) => {
    const v = all[i] as ReadVehicle;
    return { v, d: distanceKm(near, v), key: v.pricePerHour };
  });
  return { found, exhausted: found.length < count };
}

/** A vehicle as a search answers it. */
function hitOf(v: ReadVehicle, d: number | undefined, forYou: Ranked | undefined): SearchHit {
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
    ...(d === undefined ? {} : { distanceKm: Math.round(d * 1000) / 1000 }),
    ...(forYou ? { forYou } : {}),
  };
}
