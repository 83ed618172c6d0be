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

async function withClient<T>(databaseUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: databaseUrl });
  c.on('error', () => {}); // the failing query says why
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Sessions the service holds on a server (its pools name themselves `fleet-inventory`). */
export async function serviceSessions(databaseUrl: string): Promise<number> {
  return withClient(databaseUrl, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'fleet-inventory' AND pid <> pg_backend_pid()",
    );
    return rows[0]?.n ?? 0;
  });
}

/** Until the replica at `replicaUrl` has replayed everything the primary at `primaryUrl` has written. */
export async function waitForReplay(primaryUrl: string, replicaUrl: string, timeoutMs = 120_000): Promise<void> {
  const target = await withClient(primaryUrl, async (c) => {
    const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return rows[0]!.lsn;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind = await withClient(replicaUrl, async (c) => {
      const { rows } = await c.query<{ behind: string | null; recovering: boolean }>(
        'SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::text AS behind, pg_is_in_recovery() AS recovering',
        [target],
      );
      if (!rows[0]?.recovering) throw new Error(`${replicaUrl} is not a replica (already promoted?)`);
      return Number(rows[0].behind ?? Number.POSITIVE_INFINITY);
    });
    if (behind <= 0) return;
    if (Date.now() > deadline) throw new Error(`the replica is still ${behind} bytes behind after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
