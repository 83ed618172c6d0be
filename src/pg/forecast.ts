/** What the demand forecast reads (services/forecast.ts), and the search counts it is fed. */
import type pg from 'pg';
import { query } from './analytics.ts';

/** The city's listed vehicles: class and place. */
export function listedFleet(db: pg.Pool, city: string) {
  return query<{ category: string; lat: number; lng: number }>(
    db,
    "SELECT category, lat, lng FROM vehicles WHERE city = $1 AND listing = 'active'",
    [city],
  );
}

/** Bookings that took a vehicle's time during [start, end): class, place and period (ms). */
export function bookedPeriods(db: pg.Pool, city: string, start: number, end: number) {
  return query<{ category: string; lat: number; lng: number; a: string; b: string }>(
    db,
    `SELECT v.category, v.lat, v.lng, (extract(epoch FROM lower(k.period)) * 1000)::bigint AS a,
            (extract(epoch FROM upper(k.period)) * 1000)::bigint AS b
     FROM bookings k JOIN vehicles v ON v.id = k.vehicle_id
     WHERE k.city = $1 AND k.status IN ('confirmed', 'active', 'completed')
       AND k.period && tstzrange(to_timestamp($2::float8 / 1000), to_timestamp($3::float8 / 1000))`,
    [city, start, end],
  );
}

/** Searches that came up short, per class and hour of [start, end). */
export function shortSearches(db: pg.Pool, city: string, start: number, end: number) {
  return query<{ category: string; h: string; short: number }>(
    db,
    `SELECT category, (extract(epoch FROM hour) * 1000)::bigint AS h, short FROM search_demand
     WHERE city = $1 AND hour >= to_timestamp($2::float8 / 1000) AND hour < to_timestamp($3::float8 / 1000)`,
    [city, start, end],
  );
}

export interface SearchCount {
  city: string;
  category: string;
  hour: number;
  searches: number;
  short: number;
  empty: number;
}

/** Adds search counts to `search_demand`, set-wise. */
export async function addSearchDemand(db: pg.Pool, rows: readonly SearchCount[]): Promise<void> {
  await db.query(
    `INSERT INTO search_demand (city, category, hour, searches, short, empty)
     SELECT x.city, x.category, to_timestamp(x.hour::float8 / 1000), x.searches, x.short, x.empty
     FROM jsonb_to_recordset($1::jsonb) AS x(city text, category text, hour bigint, searches int, short int, empty int)
     ON CONFLICT (city, category, hour) DO UPDATE SET searches = search_demand.searches + EXCLUDED.searches,
       short = search_demand.short + EXCLUDED.short, empty = search_demand.empty + EXCLUDED.empty`,
    [JSON.stringify(rows)],
  );
}
