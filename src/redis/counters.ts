/**
 * The city counters, read: vehicles by status, by category and by both, exact (the scripts keep
 * them in the same step as every change). A negative count would mean a script broke that rule:
 * it is reported (log and `fleet_counter_anomalies_total`) and shown as it is, never hidden.
 */
import { metrics } from '../metrics.ts';
import { keys } from './keys.ts';
import type { RedisConnection } from './scripts.ts';

export interface CityCounts {
  vehicles: number;
  byStatus: Record<string, number>;
  byCategory: Record<string, number>;
  byCategoryAndStatus: Record<string, Record<string, number>>;
}

export async function readCityCounts(redis: RedisConnection, city: string): Promise<CityCounts> {
  const raw = await redis.hgetall(keys.counters(city));
  const byStatus: Record<string, number> = {};
  const byCategory: Record<string, number> = {};
  const byCategoryAndStatus: Record<string, Record<string, number>> = {};
  for (const [k, v] of Object.entries(raw)) {
    const n = Number(v);
    if (n === 0) continue;
    if (n < 0) {
      metrics.counterAnomalies.inc({ city });
      process.emitWarning(
        `counter ${k} of ${city} is ${n}: the scripts keep counters exact, this is a bug`,
        'CounterAnomaly',
      );
    }
    const [kind, a, b] = k.split(':');
    if (kind === 's' && a) byStatus[a] = n;
    else if (kind === 'c' && a) byCategory[a] = n;
    else if (kind === 'cs' && a && b) {
      byCategoryAndStatus[a] ??= {};
      byCategoryAndStatus[a][b] = n;
    }
  }
  return { vehicles: Object.values(byCategory).reduce((x, y) => x + y, 0), byStatus, byCategory, byCategoryAndStatus };
}
