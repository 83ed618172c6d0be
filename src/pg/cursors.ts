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
