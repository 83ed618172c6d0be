/**
 * What the simulator and the drills check in PostgreSQL after a run: which acknowledged bookings
 * are there, whether two trips overlap, what was dead-lettered, how far the sync is behind.
 */
import type pg from 'pg';

type Db = pg.Pool | pg.ClientBase;

/** Which of `ids` are bookings in this database. */
export async function bookingsPresent(db: Db, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1)', [[...ids]]);
  return new Set(rows.map((r) => r.id));
}

/**
 * Pairs of trips (confirmed, active or completed) of one vehicle that overlap once the city's
 * turnaround is added. The exclusion constraint refuses overlapping windows; the turnaround it
 * does not hold, so this count can be non-zero.
 */
export async function overlappingTrips(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM bookings a
     JOIN bookings b ON a.vehicle_id = b.vehicle_id AND a.id < b.id
     JOIN cities c ON c.id = a.city
     WHERE a.status IN ('confirmed', 'active', 'completed') AND b.status IN ('confirmed', 'active', 'completed')
       -- A trip returned before its start holds an empty period (its bounds read as NULL: unbounded).
       AND NOT isempty(a.period) AND NOT isempty(b.period)
       AND tstzrange(lower(a.period), upper(a.period) + c.turnaround_ms * interval '1 millisecond')
        && tstzrange(lower(b.period), upper(b.period) + c.turnaround_ms * interval '1 millisecond')`,
  );
  return rows[0]?.n ?? 0;
}

/** Events parked in `dead_letters`. */
export async function deadLetterCount(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters');
  return rows[0]?.n ?? 0;
}

/** How old the oldest city's last applied event is (ms), by the server's clock. */
export async function syncAgeMs(db: Db): Promise<number> {
  const { rows } = await db.query<{ ms: number | null }>(
    'SELECT (extract(epoch FROM now()) * 1000 - max(last_ms))::float8 AS ms FROM sync_cursors',
  );
  return Number(rows[0]?.ms ?? 0);
}
