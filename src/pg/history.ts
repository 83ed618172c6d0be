/**
 * What the learners read from the durable history: a customer's past trips (ranking profiles),
 * the outcome of every incentive offered (the incentive learner), the trips that ended (the
 * late-return model).
 */
import type pg from 'pg';
import { query } from './analytics.ts';

/** A past trip of a customer, newest first, with the vehicle it was on. */
export interface PastTripRow {
  id: string;
  category: string;
  pricePerHour: number;
  lat: number;
  lng: number;
  hours: number;
}

export async function customerTrips(
  pool: pg.Pool,
  customerId: string,
  statuses: readonly string[],
  limit = 200,
): Promise<PastTripRow[]> {
  const rows = await query<{ id: string; category: string; price: string; lat: number; lng: number; hours: number }>(
    pool,
    `SELECT b.id, v.category, v.price_per_hour AS price, v.lat, v.lng,
            extract(epoch FROM upper(b.period) - lower(b.period)) / 3600 AS hours
     FROM bookings b JOIN vehicles v ON v.id = b.vehicle_id
     WHERE b.customer_id = $1 AND b.status = ANY($2::text[])
     ORDER BY lower(b.period) DESC LIMIT $3`,
    [customerId, [...statuses], limit],
  );
  return rows.map((r) => ({
    id: r.id,
    category: r.category,
    pricePerHour: Number(r.price),
    lat: Number(r.lat),
    lng: Number(r.lng),
    hours: Number(r.hours) || 0,
  }));
}

/** Per city, alternative kind and incentive level: offers made in ended conflicts, and those accepted. */
export interface IncentiveOutcome {
  city: string;
  kind: string;
  level: number;
  offers: number;
  accepted: number;
}

export async function incentiveOutcomes(pool: pg.Pool): Promise<IncentiveOutcome[]> {
  const rows = await query<{ city: string; kind: string; level: string; offers: number; accepted: number }>(
    pool,
    `SELECT o.city, o.alternative AS kind, o.incentive->>'level' AS level, count(*)::int AS offers,
            count(*) FILTER (WHERE o.status = 'accepted')::int AS accepted
     FROM offers o JOIN conflicts c ON c.booking_id = o.booking_id
     WHERE o.incentive ? 'level' AND o.alternative IS NOT NULL
       AND (o.status = 'accepted' OR c.resolution IN ('declined', 'lapsed'))
     GROUP BY 1, 2, 3`,
    [],
  );
  return rows.map((r) => ({ ...r, level: Number(r.level) }));
}

/** A completed trip: when it was due back and when it came back (ms). */
export interface CompletedTripRow {
  hostId: string;
  vehicleId: string;
  customerId: string;
  from: number;
  scheduledEnd: number;
  completedAt: number;
}

export async function completedTrips(pool: pg.Pool, limit: number): Promise<CompletedTripRow[]> {
  const rows = await query<{
    host_id: string;
    vehicle_id: string;
    customer_id: string;
    from_ms: string;
    scheduled_end: string;
    completed_at: string;
  }>(
    pool,
    `SELECT v.host_id, b.vehicle_id, b.customer_id, (b.doc->>'from') AS from_ms,
            COALESCE(b.doc->>'scheduledTo', b.doc->>'to') AS scheduled_end, b.doc->>'completedAt' AS completed_at
     FROM bookings b JOIN vehicles v ON v.id = b.vehicle_id
     WHERE b.status = 'completed' AND b.doc ? 'completedAt'
     ORDER BY b.updated_at DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    hostId: r.host_id,
    vehicleId: r.vehicle_id,
    customerId: r.customer_id,
    from: Number(r.from_ms),
    scheduledEnd: Number(r.scheduled_end),
    completedAt: Number(r.completed_at),
  }));
}
