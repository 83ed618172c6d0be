/** One PostgreSQL transaction on a pooled client. */
import type pg from 'pg';
import { asError, codeOf } from '../domain/errors.ts';

/**
 * Runs `fn` inside BEGIN/COMMIT. A connection that dies while checked out would emit `error`
 * with nobody listening (and crash the process); the failure reaches us through the failing
 * query instead, and the broken client is discarded rather than returned to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  const swallow = () => {};
  db.on('error', swallow);
  let failure: Error | undefined;
  try {
    await db.query('BEGIN');
    const out = await fn(db);
    await db.query('COMMIT');
    return out;
  } catch (err) {
    failure = asError(err);
    await db.query('ROLLBACK').catch(() => {}); // a connection that cannot roll back is dropped; the first error is thrown
    throw err;
  } finally {
    db.off('error', swallow);
    // A SQL error leaves a healthy connection; anything else (reset, timeout) may not.
    db.release(failure && !/^[0-9A-Z]{5}$/.test(codeOf(failure) ?? '') ? failure : undefined);
  }
}

/** The row a query always returns (an aggregate, `SELECT ... FOR UPDATE` of a row just ensured). */
export function onlyRow<T>(result: { rows: T[] }, what: string): T {
  const [row] = result.rows;
  if (row === undefined) throw new Error(`${what}: the query returned no row`);
  return row;
}

/** This transaction commits only once a synchronous standby has applied it (DR_ACK=remote). */
export async function awaitStandbyApply(db: pg.ClientBase): Promise<void> {
  await db.query('SET LOCAL synchronous_commit TO remote_apply');
}
