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

/**
 * The counter fields one vehicle adds to (the scripts' `move_counters` writes the same, held equal
 * by test/unit/lua-constants): by status, by category, by both.
 */
export function counterFields(category: string, status: string): [string, string, string] {
  return [`s:${status}`, `c:${category}`, `cs:${category}:${status}`];
}

/** The city's counters as the vehicles say they should be (zeros absent): what a check compares Redis's with. */
export function tallyCounters(vehicles: Iterable<{ category: string; status: string }>): Record<string, number> {
  const c: Record<string, number> = {};
  for (const v of vehicles) for (const k of counterFields(v.category, v.status)) c[k] = (c[k] ?? 0) + 1;
  return c;
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
