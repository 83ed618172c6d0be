/** The sync's cursors (`sync_cursors`): per city, the last stream id PostgreSQL has applied. */
import type pg from 'pg';
import { onlyRow } from './tx.ts';

type CursorRow = { last_ms: string; last_seq: string };
const idOf = (r: CursorRow) => `${r.last_ms}-${r.last_seq}`;

/** The city's cursor, unlocked (undefined when the city never synced). */
export async function readCursor(pool: pg.Pool, city: string): Promise<string | undefined> {
  const { rows } = await pool.query<CursorRow>('SELECT last_ms, last_seq FROM sync_cursors WHERE city = $1', [city]);
  return rows[0] ? idOf(rows[0]) : undefined;
}

/** Several cities' cursors in one read (cities that never synced are absent). */
export async function readCursors(pool: pg.Pool, cities: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query<CursorRow & { city: string }>(
    'SELECT city, last_ms, last_seq FROM sync_cursors WHERE city = ANY($1)',
    [cities],
  );
  return new Map(rows.map((r) => [r.city, idOf(r)]));
}

/** The city's cursor row, locked for this transaction (created at zero the first time). */
export async function lockCursor(db: pg.ClientBase, city: string): Promise<string> {
  await db.query('INSERT INTO sync_cursors (city, last_ms, last_seq) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING', [city]);
  return idOf(
    onlyRow(
      await db.query<CursorRow>('SELECT last_ms, last_seq FROM sync_cursors WHERE city = $1 FOR UPDATE', [city]),
      'sync cursor',
    ),
  );
}

/** Moves the locked cursor to `to` (ms, seq), counting `applied` more events. */
export async function advanceCursor(
  db: pg.ClientBase,
  city: string,
  to: { ms: number | string; seq: number | string },
  applied: number,
): Promise<void> {
  await db.query(
    'UPDATE sync_cursors SET last_ms = $2, last_seq = $3, applied = applied + $4, updated_at = now() WHERE city = $1',
    [city, to.ms, to.seq, applied],
  );
}

/**
 * Parks an event the sync cannot apply (`dead_letters`, read as docs/operations.md's runbook shows) and moves the
 * locked cursor past it, never backwards.
 */
export async function deadLetterEvent(
  db: pg.ClientBase,
  city: string,
  streamId: string,
  event: unknown,
  failure: { message: string; sqlstate: string | null; attempts: number },
): Promise<void> {
  const [ms, seq] = streamId.split('-');
  await db.query(
    `INSERT INTO dead_letters (city, stream_id, event, error, sqlstate, attempts) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (city, stream_id) DO UPDATE SET attempts = EXCLUDED.attempts, error = EXCLUDED.error`,
    [city, streamId, event, failure.message, failure.sqlstate, failure.attempts],
  );
  await db.query(
    `UPDATE sync_cursors SET last_ms = $2, last_seq = $3, updated_at = now()
     WHERE city = $1 AND (last_ms, last_seq) < ($2::bigint, $3::bigint)`,
    [city, ms, seq],
  );
}
