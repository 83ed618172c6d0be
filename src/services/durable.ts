/**
 * Redis and PostgreSQL side by side: `rebuild` restores a city's Redis state from PostgreSQL,
 * `reconcile` compares the two (vehicle versions, listing, status, calendar entries, counters)
 * and can repair each drifting vehicle from the side that is ahead.
 */
import { defaults } from '../config.ts';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import { isArchivable, sortEntries, type CalendarEntry } from '../domain/calendar.ts';
import { cityKeyPattern, isIdempotencyKey, keys } from '../redis/keys.ts';
import { tallyCounters } from '../redis/counters.ts';
import { fromScript, runScript, type RedisConnection } from '../redis/scripts.ts';
import { cityFleet, openOfferSnapshots, type StoredVehicle } from '../pg/fleet-state.ts';
import { projectStates } from '../pg/projection.ts';
import { inTransaction } from '../pg/tx.ts';

export { recordCities } from '../pg/fleet-state.ts';

export interface SideVehicle {
  doc: Record<string, unknown>;
  version: number;
  listing: string;
  status: string;
  category: string;
  updatedAt: number;
  entries: CalendarEntry[];
}

export interface Side {
  vehicles: Map<string, SideVehicle>;
}

export async function readPg(pool: pg.Pool, city: string): Promise<Side> {
  const fleet = await cityFleet(pool, city);
  const vehicles: Side['vehicles'] = new Map();
  for (const v of fleet.vehicles) {
    vehicles.set(v.id, {
      // As the vehicle hash has it: '' for no daily cap.
      doc: { ...v, pricePerDay: v.pricePerDay ?? '' },
      version: v.version,
      listing: v.listing,
      status: v.status,
      category: v.category,
      updatedAt: v.updatedAt,
      entries: sortEntries(fleet.entries.get(v.id) ?? []),
    });
  }
  return { vehicles };
}

export async function readRedis(
  redis: RedisConnection,
  city: string,
): Promise<Side & { counters: Record<string, number> }> {
  const ids = await redis.smembers(keys.vehicles(city));
  const vehicles: Side['vehicles'] = new Map();
  for (const id of ids) {
    const [h, raw] = await Promise.all([redis.hgetall(keys.vehicle(city, id)), redis.hvals(keys.calendar(city, id))]);
    if (!h.id) continue;
    vehicles.set(id, {
      doc: h,
      version: Number(h.version),
      listing: h.listing ?? '',
      status: h.status ?? '',
      category: h.category ?? '',
      updatedAt: Number(h.updatedAt ?? 0),
      entries: sortEntries(raw.map((r) => fromScript<CalendarEntry>(r))),
    });
  }
  const counters: Record<string, number> = {};
  for (const [k, n] of Object.entries(await redis.hgetall(keys.counters(city))))
    if (Number(n) !== 0) counters[k] = Number(n);
  return { vehicles, counters };
}

function tally(side: Side): Record<string, number> {
  return tallyCounters(side.vehicles.values());
}

export interface Drift {
  vehicleId: string;
  what: 'missing_in_redis' | 'missing_in_pg' | 'version' | 'listing' | 'status' | 'entry' | 'counters';
  entryId?: string;
  redis?: unknown;
  pg?: unknown;
}

export interface ReconcileReport {
  city: string;
  vehicles: { redis: number; pg: number };
  entries: { redis: number; pg: number };
  drift: Drift[];
  repaired: { toPg: number; toRedis: number };
}

/** Restores one vehicle into Redis from its PostgreSQL copy (restore_vehicle.lua, with its event). */
export async function restoreVehicle(
  redis: RedisConnection,
  city: string,
  v: SideVehicle,
  id: string,
  reason: 'rebuild' | 'repair' | 'failover',
  turnaroundMs = 0,
): Promise<void> {
  const d = v.doc as unknown as StoredVehicle;
  const doc = {
    id,
    city,
    hostId: d.hostId,
    category: d.category,
    seats: d.seats,
    transmission: d.transmission,
    fuel: d.fuel,
    make: d.make,
    model: d.model,
    lat: d.lat,
    lng: d.lng,
    pricePerHour: d.pricePerHour,
    // The scripts keep '' for "no daily cap".
    pricePerDay: d.pricePerDay ?? '',
    listing: d.listing,
    version: d.version,
    createdAt: d.createdAt,
  };
  await runScript(
    redis,
    'restore_vehicle',
    [
      ...keys.vehicleKeys(city, id),
      ...keys.cityScriptKeys(city),
      keys.noIdempotency(city),
      keys.vehicles(city),
      keys.hostVehicles(city, d.hostId),
      keys.geo(city),
    ],
    [
      randomUUID(),
      '',
      city,
      id,
      turnaroundMs,
      JSON.stringify(doc),
      v.entries.length ? JSON.stringify(v.entries) : '[]',
      reason,
    ],
  );
}

/**
 * Rebuilds a city's Redis state from PostgreSQL, for the day Redis loses its data. The city's
 * operational keys are cleared first (the event stream and idempotency records are kept), then
 * every vehicle is restored with its calendar; counters are recomputed by the restores.
 */
export async function rebuildCity(
  redis: RedisConnection,
  pool: pg.Pool,
  city: string,
  retentionMs = defaults.CALENDAR_RETENTION_MS,
): Promise<{ vehicles: number; entries: number; offers: number }> {
  const pgSide = await readPg(pool, city);
  // History stays in PostgreSQL: what trimming would remove is not brought back.
  const before = Date.now() - retentionMs;
  for (const v of pgSide.vehicles.values()) v.entries = v.entries.filter((e) => !isArchivable(e, before));
  const keep = new Set([keys.events(city)]);
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', cityKeyPattern(city), 'COUNT', 1000);
    cursor = next;
    const doomed = batch.filter((k) => !keep.has(k) && !isIdempotencyKey(city, k));
    if (doomed.length) await runScript(redis, 'wipe_city', doomed, []);
  } while (cursor !== '0');
  let entries = 0;
  for (const [id, v] of pgSide.vehicles) {
    await restoreVehicle(redis, city, v, id, 'rebuild');
    entries += v.entries.length;
  }
  const offers = await restoreOpenOffers(redis, pool, city);
  return { vehicles: pgSide.vehicles.size, entries, offers };
}

/**
 * The offer records of conflicted bookings whose offers were still open, rebuilt from the event
 * log (the last `conflict.offers_ready` of each: the offers in their ranked order, with their
 * incentives) and the projected rows (still conflicted, offers still open); their holds came back
 * with the calendars. The customer can still accept, and lapses are scheduled again.
 */
async function restoreOpenOffers(redis: RedisConnection, pool: pg.Pool, city: string): Promise<number> {
  const rows = await openOfferSnapshots(pool, city);
  for (const r of rows) {
    const d = r.data;
    const record = {
      bookingId: r.bookingId,
      city,
      vehicleId: r.vehicleId,
      hostId: r.hostId,
      customerId: d.customerId,
      cause: d.cause,
      conflictedAt: d.conflictedAt,
      from: r.booking.from,
      to: r.booking.to,
      offeredAt: r.offeredAt,
      status: 'open',
      expiresAt: d.expiresAt,
      offers: d.offers,
    };
    await runScript(
      redis,
      'restore_offer_record',
      [keys.offers(city), keys.offersDue(city)],
      [r.bookingId, JSON.stringify(record), Number(d.expiresAt)],
    );
  }
  return rows.length;
}

export async function reconcileCity(
  redis: RedisConnection,
  pool: pg.Pool,
  city: string,
  opts: { repair?: boolean; retentionMs?: number } = {},
): Promise<ReconcileReport> {
  const [r, p] = await Promise.all([readRedis(redis, city), readPg(pool, city)]);
  const before = Date.now() - (opts.retentionMs ?? defaults.CALENDAR_RETENTION_MS);
  const drift: Drift[] = [];
  const drifting = new Set<string>();
  for (const id of new Set([...r.vehicles.keys(), ...p.vehicles.keys()])) {
    const a = r.vehicles.get(id);
    const b = p.vehicles.get(id);
    const add = (d: Drift) => {
      drift.push(d);
      drifting.add(id);
    };
    if (!a) {
      add({ vehicleId: id, what: 'missing_in_redis' });
      continue;
    }
    if (!b) {
      add({ vehicleId: id, what: 'missing_in_pg' });
      continue;
    }
    if (a.version !== b.version) add({ vehicleId: id, what: 'version', redis: a.version, pg: b.version });
    if (a.listing !== b.listing) add({ vehicleId: id, what: 'listing', redis: a.listing, pg: b.listing });
    if (a.status !== b.status) add({ vehicleId: id, what: 'status', redis: a.status, pg: b.status });
    const pe = new Map(b.entries.map((e) => [e.id, e]));
    for (const e of a.entries) {
      const other = pe.get(e.id);
      if (!isDeepStrictEqual(e, other)) add({ vehicleId: id, what: 'entry', entryId: e.id, redis: e, pg: other });
      pe.delete(e.id);
    }
    // Trimmed from Redis on purpose (past and final): history is PostgreSQL's alone.
    for (const e of pe.values())
      if (!isArchivable(e, before)) add({ vehicleId: id, what: 'entry', entryId: e.id, pg: e });
  }
  const recomputed = tally(r);
  if (!isDeepStrictEqual(r.counters, recomputed))
    drift.push({ vehicleId: '-', what: 'counters', redis: r.counters, pg: recomputed });
  const pgCounts = tally(p);
  if (!isDeepStrictEqual(recomputed, pgCounts))
    drift.push({ vehicleId: '-', what: 'counters', redis: recomputed, pg: pgCounts });

  const repaired = { toPg: 0, toRedis: 0 };
  if (opts.repair) {
    for (const id of drifting) {
      const a = r.vehicles.get(id);
      const b = p.vehicles.get(id);
      if (a && (!b || a.version >= b.version)) {
        // Redis is ahead (or equal and different): it is the operational truth; PostgreSQL follows.
        await inTransaction(pool, (db) =>
          projectStates(db, city, [
            { doc: { ...a.doc, id, version: a.version, status: a.status }, entries: a.entries },
          ]),
        );
        repaired.toPg++;
      } else if (b) {
        await restoreVehicle(redis, city, b, id, 'repair');
        repaired.toRedis++;
      }
    }
  }
  const count = (s: Side) => [...s.vehicles.values()].reduce((n, v) => n + v.entries.length, 0);
  return {
    city,
    vehicles: { redis: r.vehicles.size, pg: p.vehicles.size },
    entries: { redis: count(r), pg: count(p) },
    drift,
    repaired,
  };
}
