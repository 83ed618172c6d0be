/**
 * The process's base logger, for the parts that have no request or worker logger of their own,
 * and the one way a background loop reports an error it survives: logged (at most once a second
 * per place) and counted (`fleet_swallowed_errors_total{where}`), never silently dropped.
 */
import { pino } from 'pino';
import { metrics } from './metrics.ts';

export const log = pino({ level: process.env.LOG_LEVEL ?? 'info' });

const lastLogged = new Map<string, number>();

export function survived(where: string, err: unknown): void {
  metrics.silentErrors.inc({ where });
  const now = Date.now();
  if (now - (lastLogged.get(where) ?? 0) < 1_000) return;
  lastLogged.set(where, now);
  log.warn({ where, err: err instanceof Error ? err.message : String(err) }, 'error survived; retrying or skipping');
}
