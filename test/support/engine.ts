/**
 * Engine fixtures for tests: a fresh city per test (so tests may share one Redis, REDIS_URL
 * included), byte-exact snapshots of a city's keys, and the invariants every storm must keep.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { CLIENT_OPTIONS, clientOptions } from '../../src/redis/connection.ts';
import { setConnectionPolicy } from '../../src/redis/scripts.ts';
import { deriveStatus, isTrip, occupies, sortEntries, type CalendarEntry } from '../../src/domain/calendar.ts';
import { CityCatalog, type City } from '../../src/domain/cities.ts';
import type { ListingState, VehicleSpec, VehicleStatus } from '../../src/domain/vehicle.ts';
import { cityKeyPattern, keys } from '../../src/redis/keys.ts';
import { tallyCounters } from '../../src/redis/counters.ts';
import { Inventory, type InventoryOptions } from '../../src/services/inventory.ts';
import { parseStreamEntry, type StreamEvent } from '../../src/redis/events.ts';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

export function testCity(turnaroundMs = 30 * MINUTE): City {
  return {
    id: `t${randomBytes(5).toString('hex')}`,
    name: 'Test city',
    timeZone: 'UTC',
    turnaroundMs,
    center: { lat: 12.97, lng: 77.59 },
    currency: 'INR',
  };
}

export function catalogWith(city: City): CityCatalog {
  return new CityCatalog([city]);
}

export function newInventory(redis: Redis, city: City, opts: Omit<InventoryOptions, 'cities'> = {}): Inventory {
  return new Inventory(redis, { ...opts, cities: catalogWith(city) });
}

export const SEDAN: VehicleSpec = {
  hostId: 'host-1',
  category: 'sedan',
  seats: 5,
  transmission: 'automatic',
  fuel: 'petrol',
  make: 'Toyota',
  model: 'Corolla',
  location: { lat: 12.97, lng: 77.59 },
  pricePerHour: 12.5,
};

export async function addVehicle(inv: Inventory, city: City, spec: Partial<VehicleSpec> = {}): Promise<string> {
  return (await inv.createVehicle(city.id, { ...SEDAN, ...spec })).vehicleId;
}

/** The next whole hour at least `aheadMs` from now: a window start that is never "in the past". */
export function futureHour(aheadMs = HOUR): number {
  return Math.ceil((Date.now() + aheadMs) / HOUR) * HOUR;
}

/**
 * Every key of the city with its whole content in a canonical form (a hash's fields sorted, a
 * stream's entries with their ids) and whether it expires. Content, not DUMP bytes: a read may
 * advance a hash table's incremental rehash, which reorders a DUMP without changing anything.
 */
export async function snapshotCity(redis: Redis, cityId: string): Promise<Map<string, string>> {
  const snap = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', cityKeyPattern(cityId), 'COUNT', 1000);
    cursor = next;
    for (const k of batch) {
      const [type, ttl] = await Promise.all([redis.type(k), redis.pttl(k)]);
      let content: unknown;
      if (type === 'hash') content = Object.entries(await redis.hgetall(k)).sort(([a], [b]) => (a < b ? -1 : 1));
      else if (type === 'zset') content = await redis.zrange(k, '0', '-1', 'WITHSCORES');
      else if (type === 'set') content = (await redis.smembers(k)).sort();
      else if (type === 'stream') content = [await redis.xrange(k, '-', '+'), await redis.xinfo('GROUPS', k)];
      else if (type === 'string') content = await redis.get(k);
      else if (type === 'none') continue;
      else content = (await redis.dumpBuffer(k))?.toString('base64');
      snap.set(k, `${type}:${JSON.stringify(content)}|ttl:${ttl >= 0 ? 'yes' : 'no'}`);
    }
  } while (cursor !== '0');
  return snap;
}

export type EventRecord = StreamEvent;

export async function readEvents(redis: Redis, cityId: string): Promise<EventRecord[]> {
  const raw = await redis.xrange(keys.events(cityId), '-', '+');
  return raw.map(([id, fields]) => parseStreamEntry(cityId, id, fields));
}

export interface CityState {
  at: number;
  vehicles: Map<
    string,
    {
      listing: ListingState;
      status: VehicleStatus;
      category: string;
      version: number;
      statusDue: number | undefined;
      entries: CalendarEntry[];
    }
  >;
  counters: Record<string, number>;
}

/** Reads the whole city in one MULTI, with the server's time, so the picture is consistent. */
export async function readCity(redis: Redis, cityId: string): Promise<CityState> {
  const ids = await redis.smembers(keys.vehicles(cityId));
  const multi = redis.multi().time().hgetall(keys.counters(cityId));
  for (const v of ids) multi.hgetall(keys.vehicle(cityId, v)).hvals(keys.calendar(cityId, v));
  const res = (await multi.exec()) ?? [];
  const val = (i: number) => {
    const r = res[i];
    if (!r || r[0]) throw r?.[0] ?? new Error('multi');
    return r[1];
  };
  const [sec, usec] = val(0) as [string, string];
  const at = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const counters: Record<string, number> = {};
  for (const [k, n] of Object.entries(val(1) as Record<string, string>)) if (Number(n) !== 0) counters[k] = Number(n);
  const vehicles: CityState['vehicles'] = new Map();
  ids.forEach((v, i) => {
    const h = val(2 + 2 * i) as Record<string, string>;
    const entries = sortEntries((val(3 + 2 * i) as string[]).map((s) => JSON.parse(s) as CalendarEntry));
    vehicles.set(v, {
      listing: h.listing as ListingState,
      status: h.status as VehicleStatus,
      category: h.category ?? '',
      version: Number(h.version),
      statusDue: h.statusDue ? Number(h.statusDue) : undefined,
      entries,
    });
  });
  return { at, vehicles, counters };
}

/** Counters recomputed from the vehicles' stored statuses and categories (zeros dropped). */
export function recomputeCounters(state: CityState): Record<string, number> {
  return tallyCounters(state.vehicles.values());
}

/**
 * The invariants of architecture.md §3 over a city's state:
 * - no two occupying trips (confirmed/active/completed bookings, live holds) overlap in their
 *   booked windows, turnaround included;
 * - no confirmed booking overlaps an active block (a block displaces it to `conflicted`);
 * - counters equal a recomputation from the vehicles; each stored status equals the status
 *   derived from the calendar at the read instant, unless a change was due before it.
 */
/** `now`: the scripts' clock when a test shifted it (redis/clock.ts); Redis's TIME otherwise. */
export function assertCityInvariants(state: CityState, turnaroundMs: number, now = state.at): void {
  for (const [vid, v] of state.vehicles) {
    const live = v.entries.filter((e) => occupies(e, now));
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const a = live[i]!,
          b = live[j]!;
        const bothTrips = isTrip(a) && isTrip(b);
        const pad = bothTrips ? turnaroundMs : 0;
        // Booked windows, not effective ones: a trip running late overlaps the next booking only
        // until it comes back, and then that booking is conflicted (checked after completion).
        const end = (e: CalendarEntry) => e.to ?? Number.POSITIVE_INFINITY;
        const overlap = a.from < end(b) + pad && b.from < end(a) + pad;
        if (!overlap) continue;
        if (bothTrips)
          assert.fail(
            `vehicle ${vid}: ${a.kind} ${a.id} [${a.from},${a.to}) and ${b.kind} ${b.id} [${b.from},${b.to}) overlap`,
          );
        const trip = isTrip(a) ? a : isTrip(b) ? b : undefined;
        // A trip under way keeps the car through a block (and so does the trip once completed);
        // nothing else may share time with one.
        if (trip && !(trip.kind === 'booking' && (trip.status === 'active' || trip.status === 'completed'))) {
          assert.fail(`vehicle ${vid}: ${trip.kind} ${trip.id} (${trip.status}) overlaps a block`);
        }
      }
    }
    if (v.statusDue === undefined || v.statusDue > now) {
      assert.equal(
        v.status,
        deriveStatus(v.listing, v.entries, now).status,
        `vehicle ${vid}: stored status vs derived at ${now}`,
      );
    }
  }
  assert.deepEqual(state.counters, recomputeCounters(state), 'counters equal a recomputation');
}

export async function wipeCity(redis: Redis, cityId: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', cityKeyPattern(cityId), 'COUNT', 1000);
    cursor = next;
    if (batch.length) await redis.del(...batch);
  } while (cursor !== '0');
}

/** A connection as the service makes them; `failoverWaitMs` bounds how long a command waits for Redis. */
export function connect(url: string, failoverWaitMs?: number): Redis {
  const redis = new Redis(url, {
    ...(failoverWaitMs ? clientOptions(failoverWaitMs) : CLIENT_OPTIONS),
    lazyConnect: false,
  });
  if (failoverWaitMs) setConnectionPolicy(redis, { failoverWaitMs });
  return redis;
}
