/**
 * What the analytics routes ask, from where it lives: PostgreSQL for utilization and conflicts
 * (src/pg/analytics.ts), Redis for a city's live counts. The routes cache and authorise; the
 * queries are here.
 */
export {
  computeConflicts,
  computeUtilization,
  type ConflictsAnswer,
  type Granularity,
} from '../pg/analytics.ts';
export { readCityCounts } from '../redis/counters.ts';
