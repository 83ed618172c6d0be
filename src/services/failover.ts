/**
 * Verification of a city after a failover (architecture.md §8): a promoted Redis replica may lack the last
 * writes of the old primary (WAIT narrows that to nothing for acknowledged writes, but a write
 * can be applied and then its acknowledgement lost), and a promoted PostgreSQL standby may lack
 * the last transactions of the old primary. The two copies are compared entry by entry:
 *
 * - what PostgreSQL holds newer than Redis (a lost booking, block, hold, cancellation, vehicle
 *   change) is put back into Redis by a script that writes its event (`*.restored`);
 * - an overlap a restored entry makes is found by the post-validation pass and becomes a
 *   conflict with offers — the seed's optimistic model applied to failover: the later-made
 *   booking yields and its customer gets alternatives;
 * - what Redis holds newer than PostgreSQL after the sync has drained (events PostgreSQL lost and
 *   the stream no longer has) is written to PostgreSQL through the projection.
 *
 * The city's stream tells every process: `system.failover_detected` when a verification starts,
 * `system.failover_verified` with the figures when it ends (read models keep `/readyz` honest).
 */
import { defaults } from '../config.ts';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { isArchivable, type CalendarEntry } from '../domain/calendar.ts';
import { metrics } from '../metrics.ts';
import { projectStates } from '../pg/projection.ts';
import { inTransaction } from '../pg/tx.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, luaList, runScript, type RedisConnection } from '../redis/scripts.ts';
import { readPg, readRedis, restoreVehicle, type SideVehicle } from './durable.ts';
import type { Inventory } from './inventory.ts';

export type FailoverCause = 'redis' | 'redis-cluster' | 'postgres' | 'manual';

export interface VerificationReport {
  city: string;
  cause: FailoverCause;
  startedAt: number;
  durationMs: number;
  /** Vehicles Redis had lost entirely, restored with their calendars. */
  vehiclesRestored: number;
  /** Calendar entries Redis had lost (or held an older state of), restored. */
  entriesRestored: number;
  /** Vehicles whose listing or spec came back. */
  vehicleChangesRestored: number;
  /** Vehicles written to PostgreSQL from Redis (PostgreSQL had lost them). */
  repairedInPg: number;
  /** Bookings the restored entries displaced: now conflicted, on their way to offers. */
  conflicts: string[];
  /** Entries found on another vehicle in Redis than in PostgreSQL: reported, left to reconcile. */
  unresolved: string[];
}

export interface VerifierDeps {
  redis: RedisConnection;
  pool: pg.Pool;
  inventory: Inventory;
  /** Marks overlaps conflicted (ConflictDesk.postValidate); offers follow through the resolver. */
  postValidate?: (city: string) => Promise<{ conflicted: string[] }>;
  /** Waits until PostgreSQL has every event of the city (before comparing after a PostgreSQL failover). */
  drained?: (city: string) => Promise<void>;
  retentionMs?: number;
  log?: Logger;
}

export async function recordSystemEvent(
  redis: RedisConnection,
  city: string,
  type: string,
  data: Record<string, unknown>,
): Promise<string> {
  return String(
    await runScript(
      redis,
      'record_system_event',
      [keys.events(city)],
      [type, city, JSON.stringify(data), randomUUID()],
    ),
  );
}

/** Entries of a PostgreSQL vehicle that Redis lacks or holds an older state of. */
function lostEntries(
  pgSide: SideVehicle,
  redisEntries: Map<string, { vehicleId: string; entry: CalendarEntry }>,
  vehicleId: string,
  before: number,
  unresolved: string[],
): CalendarEntry[] {
  const lost: CalendarEntry[] = [];
  for (const e of pgSide.entries) {
    if (isArchivable(e, before)) continue; // history: PostgreSQL's alone
    const r = redisEntries.get(e.id);
    if (r && r.vehicleId !== vehicleId) {
      if ((r.entry.updatedAt ?? 0) < (e.updatedAt ?? 0)) unresolved.push(e.id);
      continue;
    }
    if (!r || (r.entry.updatedAt ?? 0) < (e.updatedAt ?? 0)) lost.push(e);
  }
  return lost;
}

const SPEC = [
  'category',
  'seats',
  'transmission',
  'fuel',
  'make',
  'model',
  'lat',
  'lng',
  'pricePerHour',
  'pricePerDay',
  'listing',
] as const;

function vehicleChanged(pgSide: SideVehicle, redisSide: SideVehicle): boolean {
  if (pgSide.updatedAt <= redisSide.updatedAt) return false;
  // A field absent from the hash (a daily cap never set) is '' there, as in PostgreSQL's copy.
  return SPEC.some((f) => String(pgSide.doc[f] ?? '') !== String(redisSide.doc[f] ?? ''));
}

/** Compares the city's two copies and repairs Redis (with events) and PostgreSQL; see the top of the file. */
export async function verifyCity(deps: VerifierDeps, city: string, cause: FailoverCause): Promise<VerificationReport> {
  const startedAt = Date.now();
  const c = deps.inventory.cities.get(city);
  const turnaround = c?.turnaroundMs ?? 0;
  await recordSystemEvent(deps.redis, city, 'system.failover_detected', { cause, startedAt });
  if (cause === 'postgres') await deps.drained?.(city);
  const [r, p] = await Promise.all([readRedis(deps.redis, city), readPg(deps.pool, city)]);
  const before = Date.now() - (deps.retentionMs ?? defaults.CALENDAR_RETENTION_MS);
  const redisEntries = new Map<string, { vehicleId: string; entry: CalendarEntry }>();
  for (const [vehicleId, v] of r.vehicles) for (const e of v.entries) redisEntries.set(e.id, { vehicleId, entry: e });
  const report: VerificationReport = {
    city,
    cause,
    startedAt,
    durationMs: 0,
    vehiclesRestored: 0,
    entriesRestored: 0,
    vehicleChangesRestored: 0,
    repairedInPg: 0,
    conflicts: [],
    unresolved: [],
  };

  for (const [id, pv] of p.vehicles) {
    const rv = r.vehicles.get(id);
    if (!rv) {
      pv.entries = pv.entries.filter((e) => !isArchivable(e, before));
      await restoreVehicle(deps.redis, city, pv, id, 'failover', turnaround);
      report.vehiclesRestored++;
      report.entriesRestored += pv.entries.length;
      metrics.failoverRestored.inc({ kind: 'vehicle' });
      continue;
    }
    const lost = lostEntries(pv, redisEntries, id, before, report.unresolved);
    const changed = vehicleChanged(pv, rv);
    if (lost.length === 0 && !changed) continue;
    const raw = await runScript(
      deps.redis,
      'restore_entries',
      [...keys.vehicleKeys(city, id), ...keys.cityScriptKeys(city), keys.noIdempotency(city)],
      [
        randomUUID(),
        '',
        city,
        id,
        turnaround,
        lost.length ? JSON.stringify(lost) : '[]',
        changed ? JSON.stringify(pv.doc) : '',
        'failover',
      ],
    );
    const out = fromScript<{ restored: string[] | Record<string, never>; vehicle: number }>(raw);
    const restored = luaList(out.restored);
    report.entriesRestored += restored.length;
    report.vehicleChangesRestored += out.vehicle;
    for (const entryId of restored)
      metrics.failoverRestored.inc({ kind: lost.find((e) => e.id === entryId)?.kind ?? 'entry' });
    if (out.vehicle) metrics.failoverRestored.inc({ kind: 'vehicle_change' });
  }

  // PostgreSQL lost what Redis still has (a promoted standby without the last transactions, and
  // the stream already trimmed past them): the projection writes Redis's state.
  if (cause === 'postgres') {
    for (const [id, rv] of r.vehicles) {
      const pv = p.vehicles.get(id);
      const pgEntries = new Map((pv?.entries ?? []).map((e) => [e.id, e]));
      const behind = rv.entries.filter((e) => (pgEntries.get(e.id)?.updatedAt ?? -1) < (e.updatedAt ?? 0));
      if (pv && pv.version >= rv.version && behind.length === 0) continue;
      await inTransaction(deps.pool, (db) =>
        projectStates(db, city, [{ doc: { ...rv.doc, id, version: rv.version, status: rv.status }, entries: behind }]),
      );
      report.repairedInPg++;
    }
  }

  if (deps.postValidate) report.conflicts = (await deps.postValidate(city)).conflicted;
  report.durationMs = Date.now() - startedAt;
  metrics.failoverVerificationDuration.observe(report.durationMs / 1000);
  metrics.failoverConflicts.inc(report.conflicts.length);
  metrics.failoverVerifications.inc({ outcome: report.unresolved.length ? 'unresolved' : 'ok' });
  await recordSystemEvent(deps.redis, city, 'system.failover_verified', { ...report });
  deps.log?.info(report, 'failover verified');
  return report;
}
