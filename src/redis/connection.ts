/** Redis connections: a single server (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES). */
import { Cluster, Redis } from 'ioredis';
import type { RedisConnection } from './scripts.ts';

export interface RedisOptions {
  url?: string;
  /** Comma-separated host:port seeds; when set, a Cluster client is used. */
  clusterNodes?: string;
}

/**
 * Fail fast while Redis is away: a command gives up after 3 reconnection attempts at most 500 ms
 * apart (the API then answers 503 at once instead of holding the request for many seconds);
 * the workers retry with their own back-off.
 */
export const CLIENT_OPTIONS = { maxRetriesPerRequest: 3, retryStrategy: (times: number) => Math.min(times * 50, 500) };

export function createRedis(opts: RedisOptions = {}): RedisConnection {
  if (opts.clusterNodes) {
    const nodes = opts.clusterNodes.split(',').map((hp) => {
      const [host, port] = hp.trim().split(':');
      return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
    });
    return new Cluster(nodes, { scaleReads: 'master', redisOptions: CLIENT_OPTIONS });
  }
  return new Redis(opts.url ?? 'redis://127.0.0.1:6379', CLIENT_OPTIONS);
}

export interface DurabilityReport {
  appendonly: boolean;
  appendfsync: string;
  /** True when an acknowledged write survives `kill -9` of the server. */
  durable: boolean;
  warning?: string;
}

/**
 * Reads the durability settings of the Redis we were given (DESIGN §2): with AOF and
 * `appendfsync always`, an acknowledged booking survives a crash; anything less can lose it.
 */
export async function inspectDurability(conn: RedisConnection): Promise<DurabilityReport> {
  const node = conn instanceof Cluster ? conn.nodes('master')[0] : conn;
  if (!node) throw new Error('no Redis node to inspect');
  const aof = (await node.config('GET', 'appendonly')) as string[];
  const fsync = (await node.config('GET', 'appendfsync')) as string[];
  const appendonly = aof[1] === 'yes';
  const appendfsync = fsync[1] ?? 'unknown';
  const durable = appendonly && appendfsync === 'always';
  const report: DurabilityReport = { appendonly, appendfsync, durable };
  if (!durable) {
    report.warning = appendonly
      ? `appendfsync is ${appendfsync}: acknowledged writes of up to the last second can be lost on a crash`
      : 'AOF is off: every acknowledged write since the last snapshot can be lost on a crash';
  }
  return report;
}
