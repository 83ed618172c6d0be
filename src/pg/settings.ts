/** Server settings the service depends on, read from PostgreSQL itself. */
import pg from 'pg';

/** `synchronous_standby_names` of the server the pool reaches ('' when none is named). */
export async function synchronousStandbyNames(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ names: string }>("SELECT current_setting('synchronous_standby_names') AS names");
  return rows[0]?.names ?? '';
}

/** `pg_promote()` on the standby (when it still is one), waiting until it takes writes. */
export async function promoteStandby(databaseUrl: string): Promise<boolean> {
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  c.on('error', () => {}); // the failing query says why
  await c.connect();
  try {
    const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (!rows[0]?.r) return false;
    await c.query('SELECT pg_promote(true, 60)');
    return true;
  } finally {
    await c.end();
  }
}
