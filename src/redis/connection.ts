/**
 * Redis connections: a single server (REDIS_URL), a Sentinel-managed primary (REDIS_SENTINELS) or a
 * cluster (REDIS_CLUSTER_NODES). Whatever the topology, a command waits through a failover — the
 * reconnect, the promotion, the resend — for at most `failoverWaitMs`, then fails (503 UNAVAILABLE).
 */
import { defaults } from '../config.ts';
import { Cluster, Redis, type ClusterOptions, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisConnection } from './scripts.ts';

export interface RedisOptions {
  url?: string;
  /** Comma-separated host:port seeds; when set, a Cluster client is used. */
  clusterNodes?: string;
  /** Comma-separated host:port of Sentinels; when set, the primary they name is used. */
  sentinels?: string;
  /** The master name the Sentinels monitor (default `fleet`). */
  sentinelMaster?: string;
  /** Sentinel only: connect to a replica instead of the primary (replica reads). */
  role?: 'master' | 'slave';
  /** Longest a command waits through a failover before it fails (default 10 s). */
  failoverWaitMs?: number;
}

/**
 * Errors that mean "this node is not (or no longer) the writable primary": reconnect — through the
 * Sentinels, to whichever node is primary now — and send the command again. The scripts validate
 * before their first write and these errors come before it, so a resent command was not applied.
 */
const NOT_THE_PRIMARY = /^(READONLY|NOREPLICAS|MASTERDOWN|LOADING|UNBLOCKED)/;

/**
 * Commands wait through a reconnect instead of failing at once (`maxRetriesPerRequest: null`),
 * and commands in flight when a connection dies are sent again on the next one: every command
 * that changes state carries an idempotency key, so the resend returns the first result if the
 * first attempt was applied and applies it once if it was not. `commandTimeout` bounds the wait.
 */
export function clientOptions(failoverWaitMs = defaults.REDIS_FAILOVER_WAIT_MS): IoRedisOptions {
  return {
    maxRetriesPerRequest: null,
    commandTimeout: failoverWaitMs,
    autoResendUnfulfilledCommands: true,
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    reconnectOnError: (err: Error) => (NOT_THE_PRIMARY.test(err.message) ? 2 : false),
  };
}

/** The options every connection of the service uses unless told otherwise (tests use them too). */
export const CLIENT_OPTIONS = clientOptions();

export function parseHostPorts(list: string, defaultPort = 6379): { host: string; port: number }[] {
  return list
    .split(',')
    .map((hp) => hp.trim())
    .filter(Boolean)
    .map((hp) => {
      const i = hp.lastIndexOf(':');
      return i < 0
        ? { host: hp, port: defaultPort }
        : { host: hp.slice(0, i) || '127.0.0.1', port: Number(hp.slice(i + 1)) };
    });
}

export function createRedis(opts: RedisOptions = {}): RedisConnection {
  const base = clientOptions(opts.failoverWaitMs);
  if (opts.clusterNodes) {
    const clusterOptions: ClusterOptions = {
      scaleReads: 'master',
      redisOptions: base,
      // A dead master's slots move to its replica: learn the new map quickly and resend there.
      slotsRefreshInterval: 1_000,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      maxRedirections: 64,
      clusterRetryStrategy: (times: number) => Math.min(times * 100, 1_000),
    };
    return new Cluster(parseHostPorts(opts.clusterNodes), clusterOptions);
  }
  if (opts.sentinels) {
    return new Redis({
      ...base,
      sentinels: parseHostPorts(opts.sentinels, 26379),
      name: opts.sentinelMaster ?? 'fleet',
      role: opts.role ?? 'master',
      // Told of a switch by the Sentinels (+switch-master), the client reconnects at once rather
      // than keep writing to a primary that is about to become a replica.
      failoverDetector: true,
      sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1_000),
      sentinelMaxConnections: 3,
    });
  }
  return new Redis(opts.url ?? 'redis://127.0.0.1:6379', base);
}

/** A Redis Cluster connection (a script's keys must then share a slot). */
export function isCluster(redis: RedisConnection): redis is Cluster {
  return redis instanceof Cluster;
}

/** Every master node of the connection (one, unless it is a cluster). */
export function masterNodes(conn: RedisConnection): Redis[] {
  return conn instanceof Cluster ? conn.nodes('master') : [conn];
}

export interface DurabilityReport {
  appendonly: boolean;
  appendfsync: string;
  /** True when an acknowledged write survives `kill -9` of the server. */
  durable: boolean;
  /** Replicas connected to the primary (the first master, on a cluster). */
  replicas: number;
  warning?: string;
}

/**
 * Reads the durability settings of the Redis we were given (architecture.md §2): with AOF and
 * `appendfsync always`, an acknowledged booking survives a crash; anything less can lose it —
 * unless every acknowledged write is also on a replica (REDIS_SYNC_REPLICAS, see replication.ts).
 */
export async function inspectDurability(conn: RedisConnection): Promise<DurabilityReport> {
  const node = masterNodes(conn)[0];
  if (!node) throw new Error('no Redis node to inspect');
  const aof = (await node.config('GET', 'appendonly')) as string[];
  const fsync = (await node.config('GET', 'appendfsync')) as string[];
  const replicas = Number(/connected_slaves:(\d+)/.exec(await node.info('replication'))?.[1] ?? 0);
  const appendonly = aof[1] === 'yes';
  const appendfsync = fsync[1] ?? 'unknown';
  const durable = appendonly && appendfsync === 'always';
  const report: DurabilityReport = { appendonly, appendfsync, durable, replicas };
  if (!durable) {
    report.warning = appendonly
      ? `appendfsync is ${appendfsync}: acknowledged writes of up to the last second can be lost on a crash`
      : 'AOF is off: every acknowledged write since the last snapshot can be lost on a crash';
  }
  return report;
}
