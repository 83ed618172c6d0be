/** `fleet reconcile [--city X] [--repair] [--json]`: Redis against PostgreSQL; exit 3 when they drift (unrepaired). */
import { reconcileCity } from '../../services/durable.ts';
import { print, type Command } from '../context.ts';
import { withPool } from '../wiring.ts';

export const reconcileCommand: Command = {
  name: 'reconcile',
  async run({ config, redis, inventory, opt }) {
    const cities = opt.city ? [opt.city] : inventory.cities.all().map((c) => c.id);
    const reports = await withPool(config, async (pool) => {
      const out = [];
      for (const c of cities) {
        out.push(
          await reconcileCity(redis, pool, c, {
            repair: opt.repair ?? false,
            retentionMs: config.CALENDAR_RETENTION_MS,
          }),
        );
      }
      return out;
    });
    const drift = reports.reduce((n, r) => n + r.drift.length, 0);
    if (opt.json) print({ drift, cities: reports });
    else {
      console.log('city   vehicles(redis/pg)  entries(redis/pg)  drift  repaired(pg/redis)');
      for (const r of reports) {
        const vehicles = `${r.vehicles.redis}/${r.vehicles.pg}`.padEnd(19);
        const entries = `${r.entries.redis}/${r.entries.pg}`.padEnd(18);
        console.log(
          `${r.city.padEnd(6)} ${vehicles} ${entries} ${String(r.drift.length).padEnd(6)} ${r.repaired.toPg}/${r.repaired.toRedis}`,
        );
      }
      for (const r of reports) {
        for (const d of r.drift.slice(0, 20))
          console.log(`  ${r.city} ${d.vehicleId} ${d.what}${d.entryId ? ` ${d.entryId}` : ''}`);
      }
    }
    return drift > 0 && !opt.repair ? 3 : 0;
  },
};
