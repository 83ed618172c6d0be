/**
 * A private redis-server per test file: free port, temp dir, AOF with `appendfsync always`.
 * `REDIS_URL`, when set, is used instead (unless the test needs its own process to kill).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RedisServer {
  url: string;
  port: number;
  /** Data dir (null when using an external REDIS_URL). */
  dir: string | null;
  /** True when REDIS_URL was honoured. */
  external: boolean;
  /** SIGKILL the process and wait until it is gone. */
  kill9(): Promise<void>;
  /** Start again on the same port and dir; resolves once the AOF is loaded. */
  restart(): Promise<void>;
  /** Graceful stop and cleanup; no-op for an external server. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

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

async function waitReady(url: string, child: ChildProcess | undefined, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const probe = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    probe.on('error', () => {}); // refused while the server starts: expected
    try {
      await probe.connect();
      const info = await probe.info('persistence');
      if (/loading:0/.test(info)) return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server at ${url} not ready after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

export async function startRedis(
  opts: { appendfsync?: 'always' | 'everysec' | 'no'; external?: 'allow' | 'never' } = {},
): Promise<RedisServer> {
  const envUrl = process.env.REDIS_URL;
  if (envUrl && opts.external !== 'never') {
    const port = Number(new URL(envUrl).port || 6379);
    const refuse = async () => {
      throw new Error('cannot kill an external Redis (REDIS_URL)');
    };
    return { url: envUrl, port, dir: null, external: true, kill9: refuse, restart: refuse, stop: async () => {} };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'fleet-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        opts.appendfsync ?? 'always',
        '--save',
        '',
        '--daemonize',
        'no',
        '--logfile',
        path.join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    children.add(child);
    const c = child;
    c.once('exit', () => children.delete(c));
    await waitReady(`redis://127.0.0.1:${port}`, child);
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) throw err; // the port was taken between probing and binding: try another
    }
  }
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    port,
    dir,
    external: false,
    async kill9() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited(child);
    },
    async restart() {
      await launch();
    },
    async stop() {
      if (child) {
        child.kill('SIGTERM');
        await exited(child);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  /** Seeds for REDIS_CLUSTER_NODES: `127.0.0.1:p1,127.0.0.1:p2,...`. */
  nodes: string;
  /** Every node's process (masters first, as created). */
  processes: { child: ChildProcess; dir: string; port: number }[];
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` nodes, each with AOF, on free ports; with `replicas`, that
 * many replicas per master (`--cluster-replicas`), so the loss of a master is survived.
 */
export async function startRedisCluster(masters = 3, replicas = 0): Promise<RedisCluster> {
  const started: { child: ChildProcess; dir: string; port: number }[] = [];
  const stop = async () => {
    for (const s of started) {
      s.child.kill('SIGTERM');
      await exited(s.child);
      await rm(s.dir, { recursive: true, force: true });
    }
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const dir = await mkdtemp(path.join(tmpdir(), 'fleet-cluster-'));
      const port = await freePort();
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--save',
          '',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
          '--logfile',
          path.join(dir, 'redis.log'),
        ],
        { stdio: 'ignore' },
      );
      children.add(child);
      child.once('exit', () => children.delete(child));
      started.push({ child, dir, port });
      await waitReady(`redis://127.0.0.1:${port}`, child);
    }
    const nodes = started.map((s) => `127.0.0.1:${s.port}`);
    await new Promise<void>((resolve, reject) => {
      const cli = spawn(
        'redis-cli',
        ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
        { stdio: 'ignore' },
      );
      cli.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}`)),
      );
    });
    // Every node must agree the cluster is up before a client trusts its slot map.
    for (const s of started) {
      const probe = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        for (let i = 0; ; i++) {
          if (/cluster_state:ok/.test((await probe.cluster('INFO')) as string)) break;
          if (i > 100) throw new Error('cluster did not come up');
          await sleep(100);
        }
      } finally {
        probe.disconnect();
      }
    }
    if (replicas > 0) {
      // Replicas attach asynchronously: ready once every master reports its replicas.
      for (let i = 0; ; i++) {
        let ok = true;
        for (const s of started) {
          const probe = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
          try {
            const info = await probe.info('replication');
            if (/role:master/.test(info) && Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0) < replicas)
              ok = false;
            if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) ok = false;
          } finally {
            probe.disconnect();
          }
        }
        if (ok) break;
        if (i > 200) throw new Error('cluster replicas did not attach');
        await sleep(100);
      }
    }
    return { nodes: nodes.join(','), processes: started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
