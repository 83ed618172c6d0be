/**
 * `fleet dr failover --region R --to S [--standby-db URL]`: region R is lost; its DR standby (in
 * S) is promoted, R's cities are rebuilt into S's Redis from it and verified, and the routing is
 * published (docs/regions.md). Run with region S's environment (REGION=S, REGIONS_FILE, S's Redis).
 * `fleet dr failback --region R [--standby-db URL]`: R's cities come home. Run with region R's
 * environment (REGION=R, its new Redis, DATABASE_URL its new database: a replica of the standby
 * database), once the standby deployment is stopped.
 * `fleet dr drill`: the disaster drill (two regions on this machine, measured).
 */
import { mintToken } from '../../api/auth.ts';
import { REFERENCE_CITIES } from '../../domain/cities.ts';
import { DomainError } from '../../domain/errors.ts';
import { failbackRegion, failoverRegion } from '../dr.ts';
import { need, print, type CliContext, type Command } from '../context.ts';
import { pino } from 'pino';

export const drCommand: Command = {
  name: 'dr',
  // The drill starts its own stores; failover uses the surviving region's Redis as it is (no WAIT policy).
  needsStore: false,
  async run(ctx) {
    switch (ctx.arg) {
      case 'failover':
        return failover(ctx);
      case 'failback':
        return failback(ctx);
      case 'drill':
        return runDrill(ctx);
      default:
        throw new DomainError(
          'VALIDATION',
          'fleet dr failover --region R --to S [--standby-db URL] | fleet dr failback --region R [--standby-db URL] | fleet dr drill',
        );
    }
  },
};

async function failover({ opt, config, redis, regions }: CliContext): Promise<number> {
  const lost = need('--region', opt.region);
  const to = need('--to', opt.to);
  if (!regions.multi) throw new DomainError('VALIDATION', 'fleet dr needs REGIONS_FILE and REGION');
  if (to !== regions.here)
    throw new DomainError(
      'VALIDATION',
      `run it with region ${to}'s environment (REGION=${to}, its Redis): REGION is ${regions.here}`,
    );
  const region = regions.doc.regions.find((r) => r.name === lost);
  if (!region || lost === to) throw new DomainError('VALIDATION', `--region: another region of ${config.REGIONS_FILE}`);
  const standbyUrl = region.standby?.url;
  const database = opt['standby-db'] ?? region.standby?.database;
  if (!standbyUrl || region.standby?.region !== to)
    throw new DomainError('VALIDATION', `${lost}.standby in ${config.REGIONS_FILE} must name region ${to} and its url`);
  if (!database) throw new DomainError('VALIDATION', `--standby-db, or ${lost}.standby.database in the regions file`);
  const secret = config.JWT_SECRET ? new TextEncoder().encode(config.JWT_SECRET) : undefined;
  const report = await failoverRegion({
    region,
    to,
    standbyDatabaseUrl: database,
    standbyUrl,
    redis,
    cities: REFERENCE_CITIES.filter((c) => region.cities.includes(c.id)),
    regions,
    ...(secret ? { adminToken: await mintToken(secret, { sub: 'fleet-dr', role: 'admin' }, 600) } : {}),
    retentionMs: config.CALENDAR_RETENTION_MS,
    // Progress on stderr: stdout is the report.
    log: pino({ level: config.LOG_LEVEL }, pino.destination(2)),
  });
  print(report);
  return report.cities.every((c) => c.drift === 0) ? 0 : 1;
}

async function failback({ opt, config, redis, regions }: CliContext): Promise<number> {
  const name = need('--region', opt.region);
  if (!regions.multi || name !== regions.here)
    throw new DomainError(
      'VALIDATION',
      `run it with region ${name}'s environment (REGION=${name}, its new Redis and database)`,
    );
  const region = regions.doc.regions.find((r) => r.name === name);
  if (!region) throw new DomainError('VALIDATION', `region ${name} is not in the regions file`);
  const database = opt['standby-db'] ?? region.standby?.database;
  if (!database) throw new DomainError('VALIDATION', `--standby-db, or ${name}.standby.database in the regions file`);
  const secret = config.JWT_SECRET ? new TextEncoder().encode(config.JWT_SECRET) : undefined;
  const report = await failbackRegion({
    region,
    standbyDatabaseUrl: database,
    databaseUrl: config.DATABASE_URL,
    redis,
    cities: REFERENCE_CITIES.filter((c) => region.cities.includes(c.id)),
    regions,
    ...(secret ? { adminToken: await mintToken(secret, { sub: 'fleet-dr', role: 'admin' }, 600) } : {}),
    retentionMs: config.CALENDAR_RETENTION_MS,
    log: pino({ level: config.LOG_LEVEL }, pino.destination(2)),
  });
  print(report);
  return report.cities.every((c) => c.drift === 0) ? 0 : 1;
}

async function runDrill({ opt }: CliContext): Promise<number> {
  const { drill, DEFAULT_DRILL } = await import('../../sim/dr-drill.ts');
  const result = await drill({
    ...DEFAULT_DRILL,
    ...(opt.rtt ? { rttMs: Number(opt.rtt) } : {}),
    ...(opt['vehicles-per-city'] ? { vehiclesPerCity: Number(opt['vehicles-per-city']) } : {}),
    ...(opt['update-doc'] ? { updateDoc: opt['update-doc'] } : {}),
    progress: !opt.json,
  });
  print(result);
  if (result.ok) console.error('dr drill: every target met');
  else console.error(`dr drill: TARGETS MISSED:\n  ${result.missed.join('\n  ')}`);
  return result.ok ? 0 : 1;
}
