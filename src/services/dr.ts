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
import { messageOf } from '../domain/errors.ts';
import type { RegionSpec } from '../domain/regions.ts';
import { createPool } from '../pg/pool.ts';
import { promoteStandby } from '../pg/settings.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { SyncWorker } from '../workers/sync.ts';
import { rebuildCity, reconcileCity } from './durable.ts';
import { publishServedBy, type RegionMap } from './regions.ts';

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

export async function failoverRegion(plan: FailoverPlan): Promise<FailoverReport> {
  const started = Date.now();
  const since = () => Date.now() - started;
  const log = plan.log;
  log?.warn({ region: plan.region.name, to: plan.to }, 'DR failover: promoting the DR standby');
  const promoted = await promoteStandby(plan.standbyDatabaseUrl);
  const promotedMs = since();
  const pool = createPool(plan.standbyDatabaseUrl, { max: 4, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  const cities: FailoverReport['cities'] = [];
  try {
    // The rebuild writes one `vehicle.restored` per vehicle: applied to the promoted database
    // (as the standby deployment's sync would) before the two are compared.
    const sync = new SyncWorker(plan.redis, pool, new CityCatalog(plan.cities));
    for (const c of plan.cities) {
      const rebuilt = await rebuildCity(plan.redis, pool, c.id, plan.retentionMs);
      await sync.drain();
      const { drift } = await reconcileCity(
        plan.redis,
        pool,
        c.id,
        plan.retentionMs ? { retentionMs: plan.retentionMs } : {},
      );
      cities.push({ city: c.id, vehicles: rebuilt.vehicles, entries: rebuilt.entries, drift: drift.length });
      log?.info({ city: c.id, ...rebuilt, drift: drift.length }, 'DR failover: city rebuilt and verified');
    }
  } finally {
    await pool.end();
  }
  const rebuiltMs = since();
  const servedBy = { region: plan.to, url: plan.standbyUrl, since: Date.now() };
  await publishServedBy(plan.redis, plan.region.name, servedBy);
  const notified = await tellOtherRegions(plan, servedBy);
  return {
    region: plan.region.name,
    to: plan.to,
    promoted,
    timings: { promotedMs, rebuiltMs, publishedMs: since() },
    cities,
    notified,
  };
}

/** Every region but the lost one and the surviving one (whose Redis was written directly). */
async function tellOtherRegions(
  plan: FailoverPlan,
  servedBy: { region: string; url: string } | null,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const r of plan.regions.doc.regions) {
    if (r.name === plan.region.name || r.name === plan.to) continue;
    if (!plan.adminToken) {
      out[r.name] = 'not told (no admin token)';
      continue;
    }
    try {
      const res = await fetch(`${r.url}/v1/admin/regions/${plan.region.name}/served-by`, {
        method: servedBy ? 'PUT' : 'DELETE',
        headers: { authorization: `Bearer ${plan.adminToken}`, 'content-type': 'application/json' },
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
