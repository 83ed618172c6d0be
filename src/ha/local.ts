/**
 * A highly available topology on this machine (`fleet ha up`, the chaos run, the failover tests):
 * Redis as a primary with replicas under three Sentinels (AOF, `appendfsync always`,
 * `min-replicas-to-write 1`), and PostgreSQL as a primary with a streaming standby.
 *
 * Every process runs detached, so the topology outlives the command that started it; its layout
 * (ports, data directories, pids) is written to `<dir>/ha.json`, which `fleet ha down` and the
 * fault injectors read. PostgreSQL refuses to run as root: as root, its commands run as the
 * `postgres` user.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const SENTINEL_MASTER = 'fleet';

export interface RedisNodeLayout {
  port: number;
  dir: string;
  pid?: number;
}
export interface PgNodeLayout {
  port: number;
  dataDir: string;
  log: string;
}

export interface HaLayout {
  dir: string;
  redis: { nodes: RedisNodeLayout[]; sentinels: RedisNodeLayout[]; master: string };
  pg?: { primary: PgNodeLayout; standby: PgNodeLayout; database: string };
}

export interface HaOptions {
  dir: string;
  /** Replicas of the Redis primary (default 2). */
  replicas?: number;
  sentinels?: number;
  /** PostgreSQL primary + standby (default true). */
  postgres?: boolean;
  /** First port to use (Redis nodes, then Sentinels, then PostgreSQL); 0 = free ports. */
  basePort?: number;
  /**
   * Sentinel `down-after-milliseconds`: how long a silent primary is tolerated (default
   * `DOWN_AFTER_MS`).
   */
  downAfterMs?: number;
  database?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Arguments of one Redis data node of the topology (a replica when `replicaOf` is set). */
export function redisNodeArgs(node: RedisNodeLayout, replicaOf?: number): string[] {
  return [
    '--port',
    String(node.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    node.dir,
    '--daemonize',
    'no',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    // An isolated primary refuses writes instead of accepting what a failover will discard.
    '--min-replicas-to-write',
    '1',
    '--min-replicas-max-lag',
    '3',
    // A replica that must resync after a failover starts at once (the default waits 5 s for
    // more replicas to share the transfer, and writes wait for that replica meanwhile).
    '--repl-diskless-sync-delay',
    '0',
    '--logfile',
    path.join(node.dir, 'redis.log'),
    ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
  ];
}

function launchDetached(cmd: string, args: string[]): number {
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  child.unref();
  if (!child.pid) throw new Error(`could not start ${cmd}`);
  return child.pid;
}

/** Resolves once the server at `port` answers (a data node: once it has loaded its AOF). */
export async function waitForRedis(port: number, timeoutMs = 15_000, sentinel = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    probe.on('error', () => {});
    try {
      await probe.connect();
      if (sentinel ? (await probe.ping()) === 'PONG' : /loading:0/.test(await probe.info('persistence'))) return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`Redis at ${port} not ready after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Starts one Redis data node of the layout (again, after a kill: same port, same AOF). */
export async function startRedisNode(node: RedisNodeLayout, replicaOf?: number): Promise<number> {
  await mkdir(node.dir, { recursive: true });
  node.pid = launchDetached('redis-server', redisNodeArgs(node, replicaOf));
  await waitForRedis(node.port);
  return node.pid;
}

/**
 * A primary silent for this long is down: the failover window's first part (bench/failover.ts,
 * docs/reliability.md "The Redis failover window"). Not lower: at 750 ms one kill in 10, at 500 ms
 * two, saw the freshly promoted primary declared down as well within a second of its promotion
 * (under this machine's load it did not answer the Sentinels in time): a second failover.
 */
export const DOWN_AFTER_MS = 1_000;

async function startSentinel(node: RedisNodeLayout, masterPort: number, downAfterMs: number): Promise<void> {
  await mkdir(node.dir, { recursive: true });
  const conf = path.join(node.dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      `port ${node.port}`,
      'bind 127.0.0.1',
      `dir ${node.dir}`,
      `logfile ${path.join(node.dir, 'sentinel.log')}`,
      `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} ${downAfterMs}`,
      // Also the pause before the same master may fail over again (twice this).
      `sentinel failover-timeout ${SENTINEL_MASTER} 3000`,
      `sentinel parallel-syncs ${SENTINEL_MASTER} 2`,
      '',
    ].join('\n'),
  );
  node.pid = launchDetached('redis-server', [conf, '--sentinel']);
  await waitForRedis(node.port, 15_000, true);
}

/** Runs a PostgreSQL binary as `postgres` when we are root (it refuses to run as root). */
export async function asPostgres(cmd: string, args: string[]): Promise<{ stdout: string }> {
  if (process.getuid?.() === 0) return run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
  return run(cmd, args);
}

export async function ownedByPostgres(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() !== 0) return;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const uid = Number(stdout.trim());
  await chown(dir, uid, uid);
}

export async function pgStart(node: PgNodeLayout, extra = ''): Promise<void> {
  try {
    await asPostgres(`${PG_BIN}/pg_ctl`, [
      '-D',
      node.dataDir,
      '-l',
      node.log,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${node.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on ${extra}`.trim(),
      'start',
    ]);
  } catch (err) {
    // pg_ctl only says "examine the log": the log says why.
    const tail = (await readFile(node.log, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n'); // no log yet: nothing to show
    throw new PgStartFailed(node, tail, err);
  }
}

export class PgStartFailed extends Error {
  readonly portTaken: boolean;
  constructor(node: PgNodeLayout, logTail: string, cause: unknown) {
    super(`PostgreSQL at ${node.dataDir} (port ${node.port}) did not start:\n${logTail}`, { cause });
    this.portTaken = /could not bind|Address already in use/i.test(logTail);
  }
}

/**
 * Starts a node on a port picked now, and picks again when another process took it between the pick and
 * the bind (a free port is also any client's next source port). Only for nodes nobody refers to yet.
 */
async function pgStartOnFreePort(node: PgNodeLayout, extra = ''): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await pgStart(node, extra);
    } catch (err) {
      if (!(err instanceof PgStartFailed && err.portTaken) || attempt === 3) throw err;
      node.port = await freePort();
    }
  }
}

export async function pgStop(node: PgNodeLayout, mode: 'immediate' | 'fast' = 'fast'): Promise<void> {
  await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', node.dataDir, '-m', mode, '-w', 'stop']).catch(() => undefined); // not running: already stopped
}

export async function pgPromote(node: PgNodeLayout): Promise<void> {
  await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', node.dataDir, '-w', 'promote']);
}

/**
 * A streaming standby's data directory from the primary at `primaryPort`: pg_basebackup with the
 * recovery settings written (-R), the WAL streamed alongside (-X stream), a fast checkpoint.
 */
export async function baseBackup(primaryPort: number, dataDir: string): Promise<void> {
  await asPostgres(`${PG_BIN}/pg_basebackup`, [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    dataDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
}

/** A primary (initdb) and a hot standby streaming from it (pg_basebackup -R). */
async function startPostgres(
  dir: string,
  primaryPort: number,
  standbyPort: number,
  pickedPorts: boolean,
): Promise<{ primary: PgNodeLayout; standby: PgNodeLayout }> {
  const root = path.join(dir, 'pg');
  await ownedByPostgres(root);
  const primary: PgNodeLayout = {
    port: primaryPort,
    dataDir: path.join(root, 'primary'),
    log: path.join(root, 'primary.log'),
  };
  const standby: PgNodeLayout = {
    port: standbyPort,
    dataDir: path.join(root, 'standby'),
    log: path.join(root, 'standby.log'),
  };
  await asPostgres(`${PG_BIN}/initdb`, ['-D', primary.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const start = pickedPorts ? pgStartOnFreePort : pgStart;
  await start(primary);
  await baseBackup(primary.port, standby.dataDir);
  await start(standby, '-c hot_standby=on');
  return { primary, standby };
}

async function sentinelsAgree(sentinels: RedisNodeLayout[], replicas: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = true;
    for (const s of sentinels) {
      const c = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        const info = await c.info('sentinel');
        const m = new RegExp(`name=${SENTINEL_MASTER},status=ok,address=[^,]+,slaves=(\\d+),sentinels=(\\d+)`).exec(
          info,
        );
        if (!m || Number(m[1]) < replicas || Number(m[2]) < sentinels.length) ok = false;
      } catch {
        ok = false;
      } finally {
        c.disconnect();
      }
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error('the Sentinels did not agree on the topology in time');
    await sleep(200);
  }
}

/** Starts the whole topology and writes its layout; resolves once the Sentinels see every node. */
export async function haUp(opts: HaOptions): Promise<HaLayout> {
  const dir = path.resolve(opts.dir);
  if (existsSync(path.join(dir, 'ha.json'))) throw new Error(`${dir} already holds a topology (fleet ha down first)`);
  await mkdir(dir, { recursive: true });
  // PostgreSQL runs as `postgres`: it must be able to reach its data directory inside.
  await chmod(dir, 0o755);
  const replicas = opts.replicas ?? 2;
  const sentinelCount = opts.sentinels ?? 3;
  let next = opts.basePort ?? 0;
  const port = async () => (next ? next++ : freePort());
  const nodes: RedisNodeLayout[] = [];
  for (let i = 0; i <= replicas; i++) nodes.push({ port: await port(), dir: path.join(dir, `redis-${i}`) });
  const sentinels: RedisNodeLayout[] = [];
  for (let i = 0; i < sentinelCount; i++) sentinels.push({ port: await port(), dir: path.join(dir, `sentinel-${i}`) });
  const pgPorts = opts.postgres === false ? undefined : ([await port(), await port()] as const);
  const layout: HaLayout = { dir, redis: { nodes, sentinels, master: SENTINEL_MASTER } };
  try {
    const [primary, ...replicaNodes] = nodes;
    if (!primary) throw new Error('a topology needs a Redis primary');
    await startRedisNode(primary);
    for (const n of replicaNodes) await startRedisNode(n, primary.port);
    for (const s of sentinels) await startSentinel(s, primary.port, opts.downAfterMs ?? DOWN_AFTER_MS);
    await sentinelsAgree(sentinels, replicas);
    if (pgPorts)
      layout.pg = {
        ...(await startPostgres(dir, pgPorts[0], pgPorts[1], !opts.basePort)),
        database: opts.database ?? 'fleet',
      };
  } catch (err) {
    await haDown(dir, layout).catch(() => undefined); // the start's own failure is the one thrown
    throw err;
  }
  await writeFile(path.join(dir, 'ha.json'), JSON.stringify(layout, null, 2));
  return layout;
}

export async function readLayout(dir: string): Promise<HaLayout> {
  return JSON.parse(await readFile(path.join(path.resolve(dir), 'ha.json'), 'utf8')) as HaLayout;
}

/** The environment that points the service at the topology. */
export interface HaEnvironment extends Record<string, string | undefined> {
  REDIS_SENTINELS: string;
  REDIS_SENTINEL_MASTER: string;
  /** With PostgreSQL in the topology. */
  DATABASE_URL?: string;
  DATABASE_REPLICA_URL?: string;
}

export function haEnvironment(layout: HaLayout): HaEnvironment {
  const env: HaEnvironment = {
    REDIS_SENTINELS: layout.redis.sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    REDIS_SENTINEL_MASTER: layout.redis.master,
  };
  if (layout.pg) {
    const hosts = `127.0.0.1:${layout.pg.primary.port},127.0.0.1:${layout.pg.standby.port}`;
    env.DATABASE_URL = `postgres://postgres@${hosts}/${layout.pg.database}?target_session_attrs=read-write`;
    env.DATABASE_REPLICA_URL = `postgres://postgres@${hosts}/${layout.pg.database}?target_session_attrs=prefer-standby`;
  }
  return env;
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process of the topology and removes its directory. */
export async function haDown(dir: string, known?: HaLayout): Promise<void> {
  const layout = known ?? (await readLayout(dir).catch(() => undefined)); // no layout recorded: nothing to stop
  if (layout) {
    for (const n of [...layout.redis.sentinels, ...layout.redis.nodes]) {
      if (n.pid && alive(n.pid)) process.kill(n.pid, 'SIGKILL');
      // A node restarted since (a chaos run) has another pid: ask it by its port.
      const c = new Redis(n.port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        enableOfflineQueue: false,
      });
      c.on('error', () => {});
      await c
        .connect()
        .then(() => c.call('SHUTDOWN', 'NOSAVE'))
        .catch(() => undefined); // not running: already stopped
      c.disconnect();
    }
    if (layout.pg) for (const n of [layout.pg.primary, layout.pg.standby]) await pgStop(n, 'immediate');
  }
  await rm(path.resolve(dir), { recursive: true, force: true });
}
