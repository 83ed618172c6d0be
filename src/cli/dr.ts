/**
 * Disaster recovery across regions (docs/regions.md). A region's PostgreSQL streams to a DR
 * standby in another region; when the region is lost, an operator runs `fleet dr failover`, which:
 *
 * 1. promotes the lost region's DR standby (`pg_promote`): it is that region's database now;
 * 2. rebuilds the lost region's cities into the surviving region's Redis from it (`rebuildCity`),
 *    applies what the rebuild wrote to it (the sync) and verifies each city against it
 *    (`reconcileCity`: no drift);
 * 3. publishes the new routing: the surviving region's Redis says the lost region's cities are
 *    served by its standby deployment (`GET /v1/regions`, the 307s), and every other region that
 *    answers is told through its admin API.
 *
 * The standby deployment is `fleet serve` with the lost region's name (REGION), the surviving
 * region's Redis, and the promoted database; it serves the lost cities from then on.
 */
import type { Logger } from 'pino';
import { CityCatalog, type City } from '../domain/cities.ts';
import { DomainError, messageOf } from '../domain/errors.ts';
import type { RegionSpec } from '../domain/regions.ts';
import { createPool } from '../pg/pool.ts';
import { promoteStandby, serviceSessions, waitForReplay } from '../pg/settings.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { SyncWorker } from '../workers/sync.ts';
import { rebuildCity, reconcileCity } from '../services/durable.ts';
import { publishServedBy, type RegionMap } from '../services/regions.ts';

export interface FailoverPlan {
  /** The lost region, and the one whose infrastructure takes its cities. */
  region: RegionSpec;
  to: string;
  /** The lost region's DR standby (in the surviving region): promoted, then read. */
  standbyDatabaseUrl: string;
  /** Where the standby deployment answers (the regions document's `standby.url`). */
  standbyUrl: string;
  /** The surviving region's Redis. */
  redis: RedisConnection;
  cities: readonly City[];
  regions: RegionMap;
  /** An admin token every region accepts, to tell the other regions of the new routing. */
  adminToken?: string;
  retentionMs?: number;
  log?: Logger;
}

export interface FailoverReport {
  region: string;
  to: string;
  promoted: boolean;
  /** ms from the start of the command: promotion done, cities rebuilt, routing published. */
  timings: { promotedMs: number; rebuiltMs: number; publishedMs: number };
  cities: { city: string; vehicles: number; entries: number; drift: number }[];
  notified: Record<string, string>;
}

/** Each city rebuilt into `redis` from the database at `databaseUrl`, what the rebuild wrote synced, then reconciled. */
async function rebuildCities(
  redis: RedisConnection,
  databaseUrl: string,
  cities: readonly City[],
  retentionMs: number | undefined,
  log: Logger | undefined,
): Promise<FailoverReport['cities']> {
  const pool = createPool(databaseUrl, { max: 4, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  const out: FailoverReport['cities'] = [];
  try {
    // The rebuild writes one `vehicle.restored` per vehicle: applied to the database (as the
    // deployment's own sync would) before the two are compared.
    const sync = new SyncWorker(redis, pool, new CityCatalog(cities));
    for (const c of cities) {
      const rebuilt = await rebuildCity(redis, pool, c.id, retentionMs);
      await sync.drain();
      const { drift } = await reconcileCity(redis, pool, c.id, retentionMs ? { retentionMs } : {});
      out.push({ city: c.id, vehicles: rebuilt.vehicles, entries: rebuilt.entries, drift: drift.length });
      log?.info({ city: c.id, ...rebuilt, drift: drift.length }, 'city rebuilt and verified');
    }
  } finally {
    await pool.end();
  }
  return out;
}

export async function failoverRegion(plan: FailoverPlan): Promise<FailoverReport> {
  const started = Date.now();
  const since = () => Date.now() - started;
  plan.log?.warn({ region: plan.region.name, to: plan.to }, 'DR failover: promoting the DR standby');
  const promoted = await promoteStandby(plan.standbyDatabaseUrl);
  const promotedMs = since();
  const cities = await rebuildCities(plan.redis, plan.standbyDatabaseUrl, plan.cities, plan.retentionMs, plan.log);
  const rebuiltMs = since();
  const servedBy = { region: plan.to, url: plan.standbyUrl, since: Date.now() };
  await publishServedBy(plan.redis, plan.region.name, servedBy);
  const notified = await tellRegions(
    plan.regions,
    plan.region.name,
    [plan.region.name, plan.to],
    plan.adminToken,
    servedBy,
  );
  return {
    region: plan.region.name,
    to: plan.to,
    promoted,
    timings: { promotedMs, rebuiltMs, publishedMs: since() },
    cities,
    notified,
  };
}

export interface FailbackPlan {
  region: RegionSpec;
  /** The promoted DR standby that served the region's cities while it was away. */
  standbyDatabaseUrl: string;
  /** The region's new database: a streaming replica of the standby database, promoted here. */
  databaseUrl: string;
  /** The region's (new) Redis. */
  redis: RedisConnection;
  cities: readonly City[];
  regions: RegionMap;
  adminToken?: string;
  retentionMs?: number;
  log?: Logger;
}

export interface FailbackReport {
  region: string;
  promoted: boolean;
  timings: { caughtUpMs: number; promotedMs: number; rebuiltMs: number; publishedMs: number };
  cities: FailoverReport['cities'];
  notified: Record<string, string>;
}

/**
 * `fleet dr failback`: the region's cities come home. The standby deployment must be stopped
 * (its shutdown drains its sync): no session of the service may be open on the standby database.
 * The region's new database, a replica of it, replays everything it has, is promoted, the cities
 * are rebuilt into the region's Redis from it, and every region is told to route them home.
 */
export async function failbackRegion(plan: FailbackPlan): Promise<FailbackReport> {
  const started = Date.now();
  const since = () => Date.now() - started;
  const open = await serviceSessions(plan.standbyDatabaseUrl);
  if (open > 0)
    throw new DomainError(
      'INVALID_STATE',
      `the standby deployment still has ${open} session(s) on the standby database: stop it (once fleet lag shows 0) first`,
    );
  plan.log?.warn({ region: plan.region.name }, 'DR failback: waiting for the region database to replay the standby');
  await waitForReplay(plan.standbyDatabaseUrl, plan.databaseUrl);
  const caughtUpMs = since();
  const promoted = await promoteStandby(plan.databaseUrl);
  const promotedMs = since();
  const cities = await rebuildCities(plan.redis, plan.databaseUrl, plan.cities, plan.retentionMs, plan.log);
  const rebuiltMs = since();
  await publishServedBy(plan.redis, plan.region.name, null);
  const notified = await tellRegions(plan.regions, plan.region.name, [plan.region.name], plan.adminToken, null);
  return {
    region: plan.region.name,
    promoted,
    timings: { caughtUpMs, promotedMs, rebuiltMs, publishedMs: since() },
    cities,
    notified,
  };
}

/** Tells every region but `skip` where `region`'s cities are served (admin API), or that they are home. */
async function tellRegions(
  regions: RegionMap,
  region: string,
  skip: readonly string[],
  adminToken: string | undefined,
  servedBy: { region: string; url: string } | null,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of regions.doc.regions) {
    if (skip.includes(r.name)) continue;
    if (!adminToken) {
      out[r.name] = 'not told (no admin token)';
      continue;
    }
    try {
      const res = await fetch(`${r.url}/v1/admin/regions/${region}/served-by`, {
        method: servedBy ? 'PUT' : 'DELETE',
        headers: { authorization: `Bearer ${adminToken}`, ...(servedBy ? { 'content-type': 'application/json' } : {}) },
        ...(servedBy ? { body: JSON.stringify({ region: servedBy.region, url: servedBy.url }) } : {}),
        signal: AbortSignal.timeout(5_000),
      });
      out[r.name] = res.ok ? 'told' : `answered ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      out[r.name] = `unreachable: ${messageOf(err)}`;
    }
  }
  return out;
}
