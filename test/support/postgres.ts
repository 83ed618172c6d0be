/**
 * Throw-away PostgreSQL for tests: a fresh database per run on the server of `DATABASE_URL`
 * (default the local one), or a whole private cluster (initdb as the postgres user) for tests
 * that stop the server.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { makeDrStandby } from '../../src/ha/dr-standby.ts';
import { freePort } from './redis.ts';
import { baseBackup } from '../../src/ha/local.ts';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ADMIN_URL = () => process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `fleet_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface PgCluster {
  url: string;
  port: number;
  dataDir: string;
  /** `pg_ctl -m immediate stop`: a crash, as far as PostgreSQL can tell. */
  stopImmediate(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const clusters = new Set<string>();
process.on('exit', () => {
  for (const dir of clusters) {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', dir, '-m', 'immediate', 'stop'], {
        stdio: 'ignore',
      });
    } catch {
      /* already down */
    }
  }
});

const asPostgres = (cmd: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);

/** A data directory owned by `postgres`, made by `create(dataDir)`, then started on a free port. */
async function launchCluster(
  prefix: string,
  create: (dataDir: string) => Promise<unknown>,
  options: string,
): Promise<PgCluster> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  const dataDir = path.join(root, 'data');
  const { stdout } = await run('id', ['-u', 'postgres']);
  const uid = Number(stdout.trim());
  await chown(root, uid, uid);
  await create(dataDir);
  const port = await freePort();
  const pgCtl = (...args: string[]) => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, ...args]);
  const start = async () => {
    await pgCtl(
      '-l',
      path.join(root, 'pg.log'),
      '-w',
      '-o',
      `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 ${options}`,
      'start',
    );
  };
  await start();
  clusters.add(dataDir);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    start,
    async stopImmediate() {
      await pgCtl('-m', 'immediate', 'stop');
    },
    async destroy() {
      try {
        await pgCtl('-m', 'immediate', 'stop');
      } catch {
        /* already down */
      }
      clusters.delete(dataDir);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A private cluster; `options` adds server settings (`-c name=value ...`). */
export async function startPgCluster(options = ''): Promise<PgCluster> {
  return launchCluster(
    'fleet-pg-',
    (dataDir) => asPostgres(`${PG_BIN}/initdb`, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']),
    `-c fsync=on ${options}`.trim(),
  );
}

/** A directory of the `postgres` user's (a WAL archive, a backups directory, a restore's parent). */
export async function postgresDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const { stdout } = await run('id', ['-u', 'postgres']);
  const uid = Number(stdout.trim());
  await chown(dir, uid, uid);
  return { path: dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A streaming replica of `primary` (pg_basebackup -R -X stream, a fast checkpoint), started on its
 * own port: a real hot standby, read-only, fed by the primary's WAL.
 */
export async function startPgReplica(primary: PgCluster): Promise<PgCluster> {
  return launchCluster('fleet-pg-replica-', (dataDir) => baseBackup(primary.port, dataDir), '-c hot_standby=on');
}

/**
 * A region's DR standby (src/ha/dr-standby.ts): a streaming replica that reaches its primary
 * through the delay proxy at `viaPort`, under the name `synchronous_standby_names` can give.
 */
export async function startPgDrStandby(viaPort: number): Promise<PgCluster> {
  return launchCluster('fleet-pg-dr-', (dataDir) => makeDrStandby(viaPort, dataDir), '-c hot_standby=on');
}
