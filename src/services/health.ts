/**
 * What /readyz reports: Redis answering and whether it can lose an acknowledged write, a
 * failover's verification, PostgreSQL answering, the sync's lag. Redis down is "unavailable";
 * PostgreSQL down is reported but does not stop commands (they go to Redis).
 */
import { messageOf } from '../domain/errors.ts';
import { pingPool } from '../pg/pool.ts';
import { inspectDurability } from '../redis/connection.ts';
import type { ReadModel } from './read-model.ts';
import type { CityLag, PgPool, RedisConnection } from './stores.ts';

export { inspectDurability, type DurabilityReport } from '../redis/connection.ts';

export interface ReadinessSources {
  redis: RedisConnection;
  redisTopology?: { mode: string; syncReplicas: number } | undefined;
  pool?: PgPool | undefined;
  readModel?: ReadModel | undefined;
  lag?: (() => Promise<CityLag[]>) | undefined;
}

export interface Readiness {
  status: 'ready' | 'verifying' | 'unavailable';
  checks: Record<string, unknown>;
}

export async function readiness(s: ReadinessSources): Promise<Readiness> {
  const checks: Record<string, unknown> = {};
  let ready = true;
  try {
    await s.redis.ping();
    checks.redis = { ok: true, ...s.redisTopology, durability: await inspectDurability(s.redis) };
  } catch (err) {
    ready = false;
    checks.redis = { ok: false, error: messageOf(err) };
  }
  // A failover's verification under way (as the city streams tell it): still serving, but say so.
  const failover = s.readModel?.failoverState();
  if (failover) checks.failover = failover;
  if (s.pool) {
    try {
      checks.postgres = { ok: true, ...(await pingPool(s.pool)) };
    } catch (err) {
      checks.postgres = { ok: false, error: messageOf(err) };
    }
  }
  if (s.lag) {
    try {
      const lag = await s.lag();
      checks.sync = {
        eventsBehind: lag.reduce((n, l) => n + l.eventsBehind, 0),
        secondsBehind: Math.max(0, ...lag.map((l) => l.secondsBehind)),
      };
    } catch (err) {
      // Unknown, not zero: a lag that cannot be read is no evidence of a sync keeping up.
      checks.sync = { eventsBehind: null, secondsBehind: null, error: messageOf(err) };
    }
  }
  return { status: ready ? (failover?.status === 'verifying' ? 'verifying' : 'ready') : 'unavailable', checks };
}
