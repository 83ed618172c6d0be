/**
 * The search read model (architecture.md §6): each process keeps its cities' vehicles and calendars in
 * memory, loaded from Redis once and then fed by tailing the city streams (the one stream consumer,
 * blocking until an event arrives; events carry whole states, so applying one twice is harmless). Searches are answered from memory; the page is then
 * verified against Redis in one round trip, so no vehicle booked before the response is shown
 * as free, however far the tail lags.
 */
import { deriveStatus, type CalendarEntry } from '../domain/calendar.ts';
import type { CityCatalog } from '../domain/cities.ts';
import { pricingOf } from '../domain/pricing.ts';
import { LISTING_STATES, oneOf, vehicleOf, type Category, type VehicleStatus } from '../domain/vehicle.ts';
import { DomainError } from '../domain/errors.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, type RedisConnection } from '../redis/scripts.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import type { Inventory } from './inventory.ts';
import { survived } from '../log.ts';
import { StreamConsumer, type StreamEntry } from '../redis/stream-consumer.ts';
import { CityIndex } from './search-index.ts';
import {
  hitOf,
  ids,
  select,
  type ReadVehicle,
  type SearchHit,
  type SearchKey,
  type SearchQuery,
  type Selection,
} from './search-planner.ts';

export type { ReadVehicle, SearchHit, SearchKey, SearchQuery } from './search-planner.ts';

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

interface CityView {
  vehicles: Map<string, ReadVehicle>;
  lastId: string;
  /** Price order and kd-tree of the listed vehicles; dropped when a vehicle's spec or listing changes. */
  index?: CityIndex<ReadVehicle>;
}

/** Events applied per read of a stream. */
const TAIL_BATCH = 1000;

/** Entries older than this are dropped from memory (history lives in PostgreSQL). */
const KEEP_PAST_MS = 24 * 3600_000;

function readVehicle(id: string, s: Record<string, unknown>, entries = new Map<string, CalendarEntry>()): ReadVehicle {
  const v = vehicleOf(s);
  // One shape for every vehicle: each field present (a missing daily cap is undefined, the busy
  // intervals too until a search builds them), always in this order, so the search's loop over
  // thousands of them reads one hidden class, never a dictionary.
  return {
    id,
    hostId: v.hostId,
    category: v.category,
    seats: v.seats,
    transmission: v.transmission,
    fuel: v.fuel,
    make: v.make,
    model: v.model,
    pricePerHour: v.pricePerHour,
    pricePerDay: v.pricePerDay,
    listing: v.listing,
    lat: v.location.lat,
    lng: v.location.lng,
    entries,
    busy: undefined,
  };
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
  private readonly listeners = new Set<{
    hear: (city: string, events: StreamEvent[]) => void;
    wanted: () => boolean;
  }>();
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

  /**
   * Hears every event this model applies, city by city, in stream order, while `wanted` says so
   * (the live hub: while it has connections); events nobody wants are read only for their state.
   * Returns the unsubscribe.
   */
  onEvents(listener: (city: string, events: StreamEvent[]) => void, wanted: () => boolean = () => true): () => void {
    const l = { hear: listener, wanted };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
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
    const next = (this.tailing.get(city) ?? Promise.resolve(0)).catch(() => 0).then(work); // the previous tail's failure was its caller's; this one runs regardless
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
    // Stream order: what `catchUp` applied meanwhile is a prefix.
    const first = all.findIndex((e) => compareStreamIds(e.id, view.lastId) > 0);
    const entries = first < 0 ? [] : first === 0 ? all : all.slice(first);
    const horizon = this.inventory.clock.now() - KEEP_PAST_MS;
    const listeners = [...this.listeners].filter((l) => l.wanted());
    const heard: StreamEvent[] = [];
    let reload = false;
    for (const { id, fields } of entries) {
      view.lastId = id;
      let e: StreamEvent;
      try {
        e = parseStreamEntry(city, id, fields, listeners.length === 0);
      } catch (err) {
        survived('read-model.parse', err);
        continue;
      }
      if (listeners.length) heard.push(e);
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
          // `next` has every field (a removed daily cap is undefined): the object keeps its shape.
          Object.assign(prior, next);
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
      for (const old of v.entries.values()) if (old.to !== undefined && old.to < horizon) v.entries.delete(old.id);
      v.busy = undefined;
    }
    if (heard.length) for (const l of listeners) l.hear(city, heard);
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
    const pricing = pricingOf(c);
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
        hits.push(hitOf(v, d, rank?.explain(v), q, pricing));
        if (hits.length >= q.limit) return { hits, next: found.length > j + 1 ? at : null };
      }
      if (exhausted) return { hits, next: null };
      // Memory was behind: each further round verifies twice as many, so even a model that missed
      // most bookings needs few rounds (a for_you round scores the city again).
      verify = Math.max(q.limit - hits.length, 2 * verify);
    }
  }
}
