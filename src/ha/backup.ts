/**
 * Backups are PostgreSQL's (docs/regions.md): PostgreSQL is the truth and Redis is rebuilt from
 * it. This is continuous archiving as PostgreSQL documents it — a base backup (`pg_basebackup`)
 * plus the WAL archive the server fills through its `archive_command` — and point-in-time
 * recovery (`recovery_target_time`). pgBackRest and WAL-G do the same with compression,
 * retention and object storage; this is their common core, on local directories.
 *
 * The binaries run as the `postgres` user when we are root (PostgreSQL refuses to run as root),
 * so the backup is owned by the user that will start it.
 */
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inRecovery, serverSetting } from '../pg/settings.ts';
import { parseDatabaseUrl, resolveUrl } from '../pg/pool.ts';
import { asPostgres, ownedByPostgres, PG_BIN, pgStart, type PgNodeLayout } from './local.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BackupManifest {
  /** Directory of the base backup, under the backups directory. */
  name: string;
  startedAt: string;
  finishedAt: string;
  /** The server (host:port) it was taken from. */
  source: string;
  /** The server's archive_mode when it was taken: without archiving, only the backup's end can be restored. */
  archiveMode: string;
}

/** `fleet backup`: a base backup of the primary DATABASE_URL names, into `<backups>/base-<time>`. */
export async function takeBaseBackup(databaseUrl: string, backups: string): Promise<BackupManifest> {
  const url = await resolveUrl(databaseUrl);
  const { hosts } = parseDatabaseUrl(url);
  const [host] = hosts;
  if (!host) throw new Error(`${databaseUrl} names no host`);
  const startedAt = new Date().toISOString();
  const name = `base-${startedAt.replace(/[:.]/g, '-')}`;
  await ownedByPostgres(backups);
  await asPostgres(`${PG_BIN}/pg_basebackup`, [
    '-h',
    host.host,
    '-p',
    String(host.port),
    '-U',
    new URL(url).username || 'postgres',
    '-D',
    path.join(backups, name),
    '-X',
    'stream',
    '-c',
    'fast',
  ]);
  const manifest: BackupManifest = {
    name,
    startedAt,
    finishedAt: new Date().toISOString(),
    source: `${host.host}:${host.port}`,
    archiveMode: await serverSetting(url, 'archive_mode'),
  };
  await writeFile(path.join(backups, `${name}.json`), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The latest base backup that finished before `target` (a restore cannot stop inside its backup). */
export async function backupBefore(backups: string, target: Date): Promise<BackupManifest> {
  const manifests: BackupManifest[] = [];
  for (const f of await readdir(backups)) {
    if (!/^base-.*\.json$/.test(f)) continue;
    manifests.push(JSON.parse(await readFile(path.join(backups, f), 'utf8')) as BackupManifest);
  }
  const usable = manifests
    .filter((m) => Date.parse(m.finishedAt) < target.getTime())
    .sort((x, y) => (x.finishedAt < y.finishedAt ? -1 : 1));
  const chosen = usable.at(-1);
  if (!chosen)
    throw new Error(`no base backup in ${backups} finished before ${target.toISOString()} (${manifests.length} found)`);
  return chosen;
}

export interface RestoreOptions {
  backups: string;
  /** The WAL archive the server's archive_command fills. */
  archive: string;
  /** The moment to restore to (commits after it are not replayed). */
  target: Date;
  /** The new cluster's data directory (must not exist), and its port. */
  dataDir: string;
  port: number;
}

/**
 * `fleet restore`: a fresh cluster at `dataDir`, made from the latest base backup before the
 * target, replaying the WAL archive up to `target` (`recovery_target_time`), then promoted. Starts
 * it on `port` and resolves once it takes writes.
 */
export async function restoreToTime(o: RestoreOptions): Promise<{ backup: BackupManifest; node: PgNodeLayout }> {
  const backup = await backupBefore(o.backups, o.target);
  await ownedByPostgres(o.dataDir);
  await asPostgres('cp', ['-a', `${path.join(o.backups, backup.name)}/.`, o.dataDir]);
  await asPostgres('chmod', ['700', o.dataDir]);
  const settings = [
    `restore_command = 'cp ${o.archive}/%f %p'`,
    // PostgreSQL's timestamp syntax, in UTC (it refuses ISO 8601's `T` and `Z`).
    `recovery_target_time = '${o.target.toISOString().replace('T', ' ').replace('Z', '+00')}'`,
    "recovery_target_action = 'promote'",
    // The restored cluster is a new, independent one: it archives nowhere until told to.
    "archive_mode = 'off'",
  ].join('\n');
  // Appended by us, owned by postgres still; the signal file made as postgres.
  await appendFile(path.join(o.dataDir, 'postgresql.auto.conf'), `${settings}\n`);
  await asPostgres('rm', ['-f', path.join(o.dataDir, 'standby.signal')]);
  await asPostgres('touch', [path.join(o.dataDir, 'recovery.signal')]);
  const node: PgNodeLayout = { port: o.port, dataDir: o.dataDir, log: path.join(o.dataDir, 'restore.log') };
  await pgStart(node);
  await untilPromoted(`postgres://postgres@127.0.0.1:${o.port}/postgres`);
  return { backup, node };
}

async function untilPromoted(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (!(await inRecovery(url))) return;
    } catch {
      // still starting
    }
    if (Date.now() > deadline) throw new Error('the restored cluster did not finish recovery in time');
    await sleep(200);
  }
}

/** The settings a primary needs for continuous archiving into `archive` (`postgres -c` form). */
export function archivingOptions(archive: string): string {
  return `-c archive_mode=on -c archive_command='test ! -f ${archive}/%f && cp %p ${archive}/%f' -c archive_timeout=60`;
}
