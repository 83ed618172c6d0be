/** Bookings as PostgreSQL keeps them: history, once trimmed from Redis. */
import type pg from 'pg';
import type { BookingEntry } from '../domain/calendar.ts';

/** A booking from the durable copy, with its vehicle and that vehicle's host. */
export async function bookingFromHistory(
  pool: pg.Pool,
  id: string,
): Promise<{ booking: BookingEntry; vehicleId: string; hostId: string } | undefined> {
  const { rows } = await pool.query<{ doc: BookingEntry; vehicle_id: string; host_id: string }>(
    'SELECT b.doc, b.vehicle_id, v.host_id FROM bookings b JOIN vehicles v ON v.id = b.vehicle_id WHERE b.id = $1',
    [id],
  );
  const row = rows[0];
  return row ? { booking: row.doc, vehicleId: row.vehicle_id, hostId: row.host_id } : undefined;
}
