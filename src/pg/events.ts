/** The durable event log (audit, replay): what the city streams no longer hold. */
import type pg from 'pg';
import { parseStreamEntry, type StreamEvent } from '../redis/events.ts';

/** The city's events after `after` (exclusive, a stream id), at most `limit`, in stream order. */
export async function loggedEventsAfter(
  pool: pg.Pool,
  city: string,
  after: string,
  limit: number,
): Promise<StreamEvent[]> {
  const [ms, seq] = after.split('-').map(Number);
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT ms || '-' || seq AS stream_id, type, vehicle_id, subject, version, (extract(epoch from time) * 1000)::bigint AS time, status, cmd, data, state
     FROM events WHERE city = $1 AND (ms, seq) > ($2::bigint, $3::bigint) ORDER BY ms, seq LIMIT $4`,
    [city, ms, seq, limit],
  );
  // Rows read back as stream entries: one parser for both sources.
  return rows.map((r) =>
    parseStreamEntry(city, String(r.stream_id), [
      'type',
      String(r.type),
      'vehicle',
      String(r.vehicle_id),
      'subject',
      String(r.subject),
      'version',
      String(r.version),
      'time',
      String(r.time),
      'status',
      String(r.status),
      'cmd',
      String(r.cmd),
      'data',
      JSON.stringify(r.data),
      ...(r.state ? ['state', JSON.stringify(r.state)] : []),
    ]),
  );
}
