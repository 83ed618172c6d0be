/**
 * The Redis the configuration names — a single server, a Sentinel-managed primary or a cluster —
 * opened with the service's policy: how many replicas confirm each write (REDIS_SYNC_REPLICAS,
 * REDIS_SYNC_TIMEOUT_MS) and how long a command waits through a failover (REDIS_FAILOVER_WAIT_MS).
 */
import type { Redis } from 'ioredis';
import { ConfigError, type Config } from '../config.ts';
import { createRedis } from './connection.ts';
import { SyncReplication, resolveSyncReplicas } from './replication.ts';
import { setConnectionPolicy, type RedisConnection } from './scripts.ts';

export type RedisMode = 'single' | 'sentinel' | 'cluster';

export interface OpenedRedis {
  redis: RedisConnection;
  mode: RedisMode;
  /** Replicas each write waits for (resolved from `auto`). */
  syncReplicas: number;
  replication: SyncReplication;
}

export function redisMode(config: Pick<Config, 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS'>): RedisMode {
  if (config.REDIS_CLUSTER_NODES) return 'cluster';
  if (config.REDIS_SENTINELS) return 'sentinel';
  return 'single';
}

type RedisConfig = Pick<
  Config,
  | 'REDIS_URL'
  | 'REDIS_CLUSTER_NODES'
  | 'REDIS_SENTINELS'
  | 'REDIS_SENTINEL_MASTER'
  | 'REDIS_SYNC_REPLICAS'
  | 'REDIS_SYNC_TIMEOUT_MS'
  | 'REDIS_FAILOVER_WAIT_MS'
> &
  Partial<Pick<Config, 'REDIS_REPLICA_READS'>>;

/** A connection (not yet configured for replication: see `configureReplication`). */
export function connectRedis(config: RedisConfig, role: 'master' | 'slave' = 'master'): RedisConnection {
  return createRedis({
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
    sentinels: config.REDIS_SENTINELS,
    sentinelMaster: config.REDIS_SENTINEL_MASTER,
    failoverWaitMs: config.REDIS_FAILOVER_WAIT_MS,
    role,
  });
}

/** Resolves REDIS_SYNC_REPLICAS against the primary and sets the connection's write policy. */
export async function configureReplication(redis: RedisConnection, config: RedisConfig): Promise<OpenedRedis> {
  const syncReplicas = await resolveSyncReplicas(redis, config.REDIS_SYNC_REPLICAS);
  const replication = new SyncReplication(redis, {
    replicas: syncReplicas,
    auto: config.REDIS_SYNC_REPLICAS === 'auto',
    timeoutMs: config.REDIS_SYNC_TIMEOUT_MS,
  });
  const replicaReads = config.REDIS_REPLICA_READS ? await openReplicaReads(redis, config, syncReplicas) : undefined;
  setConnectionPolicy(redis, {
    replication,
    failoverWaitMs: config.REDIS_FAILOVER_WAIT_MS,
    ...(replicaReads ? { replicaReads } : {}),
  });
  return { redis, mode: redisMode(config), syncReplicas, replication };
}

/**
 * Replica reads are strongly consistent only when every acknowledged write is on every replica:
 * writes WAIT for REDIS_SYNC_REPLICAS replicas, so reads may go to a replica only while the primary
 * has no more replicas than that (checked every second; a replica more, and reads go back to the
 * primary until it is counted in). Sentinel topologies only: a cluster client cannot tell which of
 * a shard's replicas a WAIT counted.
 */
async function openReplicaReads(
  redis: RedisConnection,
  config: RedisConfig,
  syncReplicas: number,
): Promise<{ conn: RedisConnection; allowed: () => boolean }> {
  if (redisMode(config) !== 'sentinel')
    throw new ConfigError('REDIS_REPLICA_READS=1 needs REDIS_SENTINELS (replicas under Sentinel)');
  const replicasNow = async () =>
    Number(/connected_slaves:(\d+)/.exec(await (redis as Redis).info('replication'))?.[1] ?? 0);
  const count = await replicasNow();
  if (config.REDIS_SYNC_REPLICAS === 'auto' || syncReplicas < count) {
    throw new ConfigError(
      `REDIS_REPLICA_READS=1 needs every write on every replica: set REDIS_SYNC_REPLICAS to at least the primary's ${count} replicas`,
    );
  }
  let ok = true;
  const timer = setInterval(() => {
    void replicasNow().then(
      (n) => {
        ok = n <= syncReplicas;
      },
      () => {
        ok = false;
      },
    );
  }, 1_000);
  timer.unref();
  const conn = connectRedis(config, 'slave');
  conn.on('error', () => {}); // a replica away: reads fall back to the primary
  redis.once('end', () => {
    clearInterval(timer);
    conn.disconnect();
  });
  return { conn, allowed: () => ok && conn.status === 'ready' };
}

export async function openRedis(config: RedisConfig): Promise<OpenedRedis> {
  const redis = connectRedis(config);
  try {
    return await configureReplication(redis, config);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
}
