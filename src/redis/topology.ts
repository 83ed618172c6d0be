/**
 * The Redis the configuration names — a single server, a Sentinel-managed primary or a cluster —
 * opened with the service's policy: how many replicas confirm each write (REDIS_SYNC_REPLICAS,
 * REDIS_SYNC_TIMEOUT_MS) and how long a command waits through a failover (REDIS_FAILOVER_WAIT_MS).
 */
import type { Config } from '../config.ts';
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

type RedisConfig = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_MASTER' | 'REDIS_SYNC_REPLICAS' | 'REDIS_SYNC_TIMEOUT_MS' | 'REDIS_FAILOVER_WAIT_MS'>;

/** A connection (not yet configured for replication: see `configureReplication`). */
export function connectRedis(config: RedisConfig, role: 'master' | 'slave' = 'master'): RedisConnection {
  return createRedis({
    url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES, sentinels: config.REDIS_SENTINELS,
    sentinelMaster: config.REDIS_SENTINEL_MASTER, failoverWaitMs: config.REDIS_FAILOVER_WAIT_MS, role,
  });
}

/** Resolves REDIS_SYNC_REPLICAS against the primary and sets the connection's write policy. */
export async function configureReplication(redis: RedisConnection, config: RedisConfig): Promise<OpenedRedis> {
  const syncReplicas = await resolveSyncReplicas(redis, config.REDIS_SYNC_REPLICAS);
  const replication = new SyncReplication(redis, { replicas: syncReplicas, auto: config.REDIS_SYNC_REPLICAS === 'auto', timeoutMs: config.REDIS_SYNC_TIMEOUT_MS });
  setConnectionPolicy(redis, { replication, failoverWaitMs: config.REDIS_FAILOVER_WAIT_MS });
  return { redis, mode: redisMode(config), syncReplicas, replication };
}

export async function openRedis(config: RedisConfig): Promise<OpenedRedis> {
  return configureReplication(connectRedis(config), config);
}
