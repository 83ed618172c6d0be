/** Bookings as PostgreSQL keeps them: history, once trimmed from Redis. */
import type pg from 'pg';
import type { BookingEntry, TripPhase } from '../domain/calendar.ts';

/** A booking from the durable copy, with its vehicle and that vehicle's host. */
export async function bookingFromHistory(
  pool: pg.Pool,
  id: string,
): Promise<{ booking: BookingEntry; vehicleId: string; hostId: string; city: string } | undefined> {
  const { rows } = await pool.query<{ doc: BookingEntry; vehicle_id: string; host_id: string; city: string }>(
    'SELECT b.doc, b.vehicle_id, v.host_id, b.city FROM bookings b JOIN vehicles v ON v.id = b.vehicle_id WHERE b.id = $1',
    [id],
  );
  const row = rows[0];
  return row ? { booking: row.doc, vehicleId: row.vehicle_id, hostId: row.host_id, city: row.city } : undefined;
}

/** `tripPhase` of src/domain/calendar.ts, in SQL ($now: epoch ms). */
const TRIP_PHASE_SQL = (now: string) => `CASE WHEN b.status = 'active' THEN 'active'
  WHEN b.status IN ('confirmed', 'conflicted') AND (b.doc->>'to')::bigint > ${now} THEN 'upcoming' ELSE 'past' END`;

export interface TripListQuery {
  customerId?: string;
  hostId?: string;
  statuses?: readonly string[];
  phase?: TripPhase;
  cities?: readonly string[];
  /** Overlapping [from, to) (epoch ms). */
  from?: number;
  to?: number;
  /** Keyset: strictly after this (from, id). */
  after?: { from: number; id: string };
  limit: number;
  now: number;
}

/** Bookings in (from, id) order, as the sync last wrote them: the durable half of a trip list. */
export async function listBookings(
  pool: pg.Pool,
  q: TripListQuery,
): Promise<{ booking: BookingEntry; vehicleId: string; city: string; hostId: string }[]> {
  const { rows } = await pool.query<{ doc: BookingEntry; vehicle_id: string; city: string; host_id: string }>(
    `SELECT b.doc, b.vehicle_id, b.city, v.host_id FROM bookings b JOIN vehicles v ON v.id = b.vehicle_id
     WHERE ($1::text IS NULL OR b.customer_id = $1) AND ($2::text IS NULL OR v.host_id = $2)
       AND ($3::text[] IS NULL OR b.status = ANY($3)) AND ($4::text[] IS NULL OR b.city = ANY($4))
       AND ($5::bigint IS NULL OR (b.doc->>'to')::bigint > $5) AND ($6::bigint IS NULL OR (b.doc->>'from')::bigint < $6)
       AND ($7::bigint IS NULL OR ((b.doc->>'from')::bigint, b.id) > ($7::bigint, $8::text))
       AND ($9::text IS NULL OR ${TRIP_PHASE_SQL('$10::bigint')} = $9)
     ORDER BY (b.doc->>'from')::bigint, b.id LIMIT $11`,
    [
      q.customerId ?? null,
      q.hostId ?? null,
      q.statuses ?? null,
      q.cities ?? null,
      q.from ?? null,
      q.to ?? null,
      q.after?.from ?? null,
      q.after?.id ?? '',
      q.phase ?? null,
      q.now,
      q.limit,
    ],
  );
  return rows.map((r) => ({ booking: r.doc, vehicleId: r.vehicle_id, city: r.city, hostId: r.host_id }));
}
