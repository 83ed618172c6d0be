/**
 * The PostgreSQL-only service (bench/pg-only-server.ts) next to ours: a city of ours exported for
 * its `load` call, and the same GET requests sent to both with their answers compared.
 */
import type { Redis } from 'ioredis';
import type { CalendarEntry } from '../../src/domain/calendar.ts';
import { CATEGORIES } from '../../src/domain/vehicle.ts';
import { keys } from '../../src/redis/keys.ts';
import { Inventory } from '../../src/services/inventory.ts';
import type { CityExport } from '../lib/pg-only-sql.ts';

export type { CityExport } from '../lib/pg-only-sql.ts';

/**
 * A city's vehicles and calendars as our Redis holds them now, read through the inventory (as the
 * API reads a vehicle). A hold already lapsed goes over as expired (ours no longer counts it
 * either; the sweeper would mark it so).
 */
export async function exportCity(redis: Redis, cityId: string): Promise<CityExport> {
  const inventory = new Inventory(redis);
  const ids = (await redis.smembers(keys.vehicles(cityId))).sort();
  const out: CityExport = { city: cityId, vehicles: [], entries: [] };
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 64) {
    const states = await Promise.all(ids.slice(i, i + 64).map((id) => inventory.getVehicleState(id)));
    for (const { vehicle: v, entries } of states) {
      out.vehicles.push({
        id: v.id,
        hostId: v.hostId,
        category: v.category,
        tier: CATEGORIES.indexOf(v.category),
        seats: v.seats,
        transmission: v.transmission,
        fuel: v.fuel,
        make: v.make,
        model: v.model,
        lat: v.location.lat,
        lng: v.location.lng,
        pricePerHour: v.pricePerHour,
        pricePerDay: v.pricePerDay ?? null,
        listing: v.listing,
        version: v.version,
      });
      for (const e of entries) out.entries.push(entryOf(v.id, e, now));
    }
  }
  return out;
}

function entryOf(vehicleId: string, e: CalendarEntry, now: number): CityExport['entries'][number] {
  const lapsed = e.kind === 'hold' && e.status === 'held' && e.expiresAt <= now;
  const price = e.kind === 'block' ? undefined : e.price;
  return {
    id: e.id,
    vehicleId,
    kind: e.kind,
    status: lapsed ? 'expired' : e.status,
    customerId: e.kind === 'block' ? null : e.customerId,
    reason: e.kind === 'block' ? e.reason : null,
    from: e.from,
    to: e.to ?? null,
    expiresAt: e.kind === 'hold' ? e.expiresAt : null,
    currency: price?.currency ?? null,
    priceTotal: price?.total ?? null,
  };
}

export interface Comparison {
  compared: number;
  same: number;
  differences: { path: string; ours: unknown; pgOnly: unknown }[];
}

/** What of an answer both services give, for comparing: a search's hits (ids in order, whole hits) and whether a next page exists; a vehicle's fields but the version. */
function comparable(path: string, status: number, body: unknown): Record<string, unknown> {
  if (status !== 200) return { status };
  if (path.includes('/availability')) {
    const b = body as { vehicles: { vehicleId: string }[]; cursor: unknown };
    return { status, ids: b.vehicles.map((h) => h.vehicleId), more: b.cursor !== null, hits: b.vehicles };
  }
  const { version: _v, ...rest } = body as Record<string, unknown>;
  return { status, ...rest };
}

/** A difference as reported: of two searches, the ids and the first hit that differs. */
function shown(ours: Record<string, unknown>, pgOnly: Record<string, unknown>) {
  if (!Array.isArray(ours.hits) || !Array.isArray(pgOnly.hits)) return { ours, pgOnly };
  const a = ours.hits as unknown[];
  const b = pgOnly.hits as unknown[];
  const i = a.findIndex((h, k) => canonical(h) !== canonical(b[k]));
  const { hits: _a, ...oursRest } = ours;
  const { hits: _b, ...pgRest } = pgOnly;
  return { ours: { ...oursRest, firstDiff: a[i] }, pgOnly: { ...pgRest, firstDiff: b[i] } };
}

const canonical = (x: unknown): string =>
  JSON.stringify(x, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );

/** The same GET paths to both (ours with the token), a few at a time; the first few differences kept. */
export async function compareAnswers(o: {
  serviceUrl: string;
  pgUrl: string;
  token: string;
  paths: readonly string[];
  keep?: number;
}): Promise<Comparison> {
  const out: Comparison = { compared: 0, same: 0, differences: [] };
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const r = await fetch(url, { headers });
    return { status: r.status, body: await r.json().catch(() => null) };
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < o.paths.length) {
        const path = o.paths[next++] as string;
        const [a, b] = await Promise.all([
          get(o.serviceUrl + path, { authorization: `Bearer ${o.token}` }),
          get(o.pgUrl + path),
        ]);
        const ours = comparable(path, a.status, a.body);
        const pgOnly = comparable(path, b.status, b.body);
        out.compared++;
        if (canonical(ours) === canonical(pgOnly)) out.same++;
        else if (out.differences.length < (o.keep ?? 5)) out.differences.push({ path, ...shown(ours, pgOnly) });
      }
    }),
  );
  return out;
}
