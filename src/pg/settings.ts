/**
 * The server itself, as the service and its operators' commands see it: settings, recovery and
 * replication state, WAL archiving, databases. Each function takes a URL and opens its own
 * short session (a server being promoted or restored has no pool yet) unless it says otherwise.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** Opens one session on `url`, runs `fn`, closes it. */
export async function withServer<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // a dying server fails the query, which says why
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined); // the session is gone either way
  }
}

/** The URL of the `postgres` maintenance database on the server `url` names. */
function adminUrl(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

/** `synchronous_standby_names` of the server the pool reaches ('' when none is named). */
export async function synchronousStandbyNames(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ names: string }>("SELECT current_setting('synchronous_standby_names') AS names");
  return rows[0]?.names ?? '';
}

/** One server setting (`current_setting`). */
export async function serverSetting(url: string, name: string): Promise<string> {
  return withServer(url, async (c) => {
    const { rows } = await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name]);
    return rows[0]?.v ?? '';
  });
}

/** Whether the server is a standby still in recovery. */
export async function inRecovery(url: string): Promise<boolean> {
  return withServer(url, async (c) => {
    const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    return rows[0]?.r === true;
  });
}

/** `pg_promote()` on the standby (when it still is one), waiting until it takes writes. */
export async function promoteStandby(databaseUrl: string): Promise<boolean> {
  return withServer(adminUrl(databaseUrl), async (c) => {
    const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (!rows[0]?.r) return false;
    await c.query('SELECT pg_promote(true, 60)');
    return true;
  });
}

/** Names the synchronous standby (or none, with '') and reloads the configuration. */
export async function setSynchronousStandbyNames(url: string, name: string): Promise<void> {
  if (!/^[a-z0-9_]*$/.test(name)) throw new Error(`standby name ${name} must be [a-z0-9_]*`);
  await withServer(url, async (c) => {
    await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${name}'`);
    await c.query('SELECT pg_reload_conf()');
  });
}

/** How the primary sees a streaming standby: its `sync_state` and replay lag, or undefined when it is not streaming. */
export async function standbyState(
  url: string,
  applicationName: string,
): Promise<{ syncState: string; replayLagMs: number | null } | undefined> {
  return withServer(url, async (c) => {
    const { rows } = await c.query<{ sync_state: string; ms: number | null }>(
      `SELECT sync_state, (extract(epoch FROM replay_lag) * 1000)::float8 AS ms
       FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`,
      [applicationName],
    );
    const r = rows[0];
    return r ? { syncState: r.sync_state, replayLagMs: r.ms === null ? null : Number(r.ms) } : undefined;
  });
}

/** Sessions the service holds on a server (its pools name themselves `fleet-inventory`). */
export async function serviceSessions(databaseUrl: string): Promise<number> {
  return withServer(databaseUrl, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'fleet-inventory' AND pid <> pg_backend_pid()",
    );
    return rows[0]?.n ?? 0;
  });
}

/** The primary's current WAL position. */
export async function currentWalLsn(url: string): Promise<string> {
  return withServer(url, async (c) => {
    const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const lsn = rows[0]?.lsn;
    if (!lsn) throw new Error('pg_current_wal_lsn() returned nothing');
    return lsn;
  });
}

/** Bytes of WAL up to `lsn` a replica has yet to replay (throws when the server is no replica). */
export async function replayBehind(replicaUrl: string, lsn: string): Promise<number> {
  return withServer(replicaUrl, async (c) => {
    const { rows } = await c.query<{ behind: string | null; recovering: boolean }>(
      'SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::text AS behind, pg_is_in_recovery() AS recovering',
      [lsn],
    );
    if (!rows[0]?.recovering) throw new Error(`${replicaUrl} is not a replica (already promoted?)`);
    return Number(rows[0].behind ?? Number.POSITIVE_INFINITY);
  });
}

/** Closes the current WAL segment (so the archiver ships it) and names it. */
export async function switchWal(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal');
  const wal = rows[0]?.wal;
  if (!wal) throw new Error('pg_switch_wal() returned nothing');
  return wal;
}

/** The last WAL segment the archiver shipped ('' when none yet). */
export async function lastArchivedWal(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
  return rows[0]?.last ?? '';
}

/** Drops and creates the database `url` names (the simulator's own; the name must be [a-z0-9_]+). */
export async function recreateDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`database name ${name} must be [a-z0-9_]+`);
  await withServer(adminUrl(url), async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
}

/** Until the replica at `replicaUrl` has replayed everything the primary at `primaryUrl` has written. */
export async function waitForReplay(primaryUrl: string, replicaUrl: string, timeoutMs = 120_000): Promise<void> {
  const target = await currentWalLsn(primaryUrl);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind = await replayBehind(replicaUrl, target);
    if (behind <= 0) return;
    if (Date.now() > deadline) throw new Error(`the replica is still ${behind} bytes behind after ${timeoutMs} ms`);
    await sleep(200);
  }
}
