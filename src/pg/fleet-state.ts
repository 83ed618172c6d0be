/**
 * The durable copy of a city's fleet, as `fleet rebuild` and `fleet reconcile` read it: the city
 * rows, every vehicle with its calendar entries, and the open offers of conflicted bookings.
 */
import type pg from 'pg';
import type { BookingEntry, CalendarEntry } from '../domain/calendar.ts';
import type { City } from '../domain/cities.ts';

/** Records the cities this process serves (reports join on them). */
export async function recordCities(pool: pg.Pool, cities: readonly City[]): Promise<void> {
  await pool.query(
    `INSERT INTO cities (id, name, time_zone, turnaround_ms, currency)
     SELECT x.id, x.name, x."timeZone", x."turnaroundMs", x.currency
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, name text, "timeZone" text, "turnaroundMs" integer, currency text)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone, turnaround_ms = EXCLUDED.turnaround_ms,
       currency = EXCLUDED.currency`,
    [JSON.stringify(cities)],
  );
}

/** A vehicle row in the shape of the Redis vehicle document. */
export interface StoredVehicle {
  id: string;
  city: string;
  hostId: string;
  category: string;
  seats: number;
  transmission: string;
  fuel: string;
  make: string;
  model: string;
  lat: number;
  lng: number;
  pricePerHour: number;
  /** null: no daily cap. */
  pricePerDay: number | null;
  listing: string;
  status: string;
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** Every vehicle of a city, and every calendar entry (bookings, holds, blocks) by vehicle id. */
export async function cityFleet(
  pool: pg.Pool,
  city: string,
): Promise<{ vehicles: StoredVehicle[]; entries: Map<string, CalendarEntry[]> }> {
  const [vs, es] = await Promise.all([
    pool.query<StoredVehicle>(
      `SELECT id, city, host_id AS "hostId", category, seats, transmission, fuel, make, model, lat, lng,
              price_per_hour::float8 AS "pricePerHour", price_per_day::float8 AS "pricePerDay", listing, status, version::int AS version,
              (extract(epoch from created_at) * 1000)::bigint::float8 AS "createdAt",
              (extract(epoch from updated_at) * 1000)::bigint::float8 AS "updatedAt"
       FROM vehicles WHERE city = $1`,
      [city],
    ),
    pool.query<{ vehicle_id: string; doc: CalendarEntry }>(
      `SELECT vehicle_id, doc FROM bookings WHERE city = $1 UNION ALL SELECT vehicle_id, doc FROM holds WHERE city = $1
       UNION ALL SELECT vehicle_id, doc FROM blocks WHERE city = $1`,
      [city],
    ),
  ]);
  const entries = new Map<string, CalendarEntry[]>();
  for (const r of es.rows) {
    const list = entries.get(r.vehicle_id);
    if (list) list.push(r.doc);
    else entries.set(r.vehicle_id, [r.doc]);
  }
  return { vehicles: vs.rows, entries };
}

/** The last `conflict.offers_ready` of a booking still conflicted whose offers are still open. */
export interface OpenOfferSnapshot {
  bookingId: string;
  vehicleId: string;
  hostId: string;
  /** The event's data: customerId, cause, conflictedAt, expiresAt, offers (ranked, with incentives). */
  data: Record<string, unknown>;
  offeredAt: number;
  booking: BookingEntry;
}

export async function openOfferSnapshots(pool: pg.Pool, city: string): Promise<OpenOfferSnapshot[]> {
  const { rows } = await pool.query<{
    subject: string;
    vehicle_id: string;
    data: Record<string, unknown>;
    offered_at: string;
    booking: BookingEntry;
    host_id: string;
  }>(
    `SELECT DISTINCT ON (e.subject) e.subject, e.vehicle_id, e.data, (extract(epoch from e.time) * 1000)::bigint::text AS offered_at,
            b.doc AS booking, c.host_id
     FROM events e
     JOIN bookings b ON b.id = e.subject AND b.status = 'conflicted'
     JOIN LATERAL (SELECT host_id FROM conflicts c WHERE c.booking_id = e.subject ORDER BY c.conflicted_at DESC LIMIT 1) c ON true
     WHERE e.city = $1 AND e.type = 'conflict.offers_ready'
       AND EXISTS (SELECT 1 FROM offers o WHERE o.booking_id = e.subject AND o.status = 'open')
     ORDER BY e.subject, e.ms DESC, e.seq DESC`,
    [city],
  );
  return rows.map((r) => ({
    bookingId: r.subject,
    vehicleId: r.vehicle_id,
    hostId: r.host_id,
    data: r.data,
    offeredAt: Number(r.offered_at),
    booking: r.booking,
  }));
}
