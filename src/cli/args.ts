/** The command line: its options (one set for every command) and the usage text. */
import { parseArgs } from 'node:util';

export const USAGE = `fleet <command> [options]

Engine
  serve [--demo] [--vehicles-per-city N]   migrate; run the HTTP API (PORT), the sweeper and the sync worker
  token --role R [--sub S] [--host-id H] [--scope S] [--cities C]   mint a dev token (HS256, JWT_SECRET)
  migrate                                  apply PostgreSQL migrations (creates the database)
  worker                                   run the sync worker only (streams -> PostgreSQL)
  lag                                      events not yet in PostgreSQL, per city
  rebuild --city X                         restore a city's Redis state from PostgreSQL
  reconcile [--city X] [--repair] [--json] compare Redis and PostgreSQL; repair from the side ahead
  seed [--vehicles-per-city N] [--city X]  demo fleets for empty cities (default 200 per city)
  durability                               can acknowledged writes be lost on this Redis?
  sweep                                    expire lapsed holds, refresh statuses, once
  trim                                     past, final calendar entries leave Redis once synced (CALENDAR_RETENTION_MS)

Read
  vehicle <vehicleId>                      vehicle, calendar and status now
  counters --city X                        live counts by status and category
  events --city X [--after ID] [--limit N] the city's event stream

Write (times: ISO 8601 or epoch ms; --idempotency-key K on any)
  hold --vehicle V --customer C --from T --to T
  book --vehicle V --customer C --from T --to T [--allow-past] | book --hold H --customer C
  release <holdId> | cancel <bookingId> | start <bookingId> | complete <bookingId>
  extend <bookingId> --to T [--force]
  block --vehicle V --reason accident|maintenance|host [--from T] [--to T] [--note N]
  unblock <blockId> | delist <vehicleId> | relist <vehicleId>

Regions and disaster recovery (docs/regions.md)
  dr failover --region R --to S [--standby-db URL]   R is lost: promote its DR standby, rebuild its cities into S's Redis, route them there
  dr failback --region R [--standby-db URL]  R's cities come home (run with R's environment, its database a replica of the standby's)
  dr drill [--rtt 60] [--update-doc FILE]  two regions on this machine, one lost and failed over: RTO, RPO, latency (npm run dr:drill)
  backup --dir D                           a base backup of the PostgreSQL primary (with the server's WAL archive: point-in-time restore)
  restore --to T --dir NEW --backups D --archive WAL [--port P]   a fresh cluster restored to instant T; then fleet rebuild

High availability (docs/reliability.md)
  ha up [--dir D] [--base-port P]          Redis primary + 2 replicas + 3 Sentinels, PostgreSQL primary + standby; prints the environment
  ha env | ha promote-pg | ha down         the environment again; promote the PostgreSQL standby; stop it all

Simulation (docs/simulation.md)
  simulate [--cities 25] [--vehicles-per-city 2000] [--duration 60s] [--rate 400] [--concurrency 32] [--seed N] [--out DIR] [--json] [--update-doc FILE]
  simulate --compare [--seed N] [--days 4] [--vehicles 120] [--no-doc]   the same seeded week, prediction off then on (docs/prediction.md)
  simulate --compare --seeds 5 --demand 0.25,0.5,1,2 [--no-doc]   conflicts converted, every feature off then on, per demand level (docs/conflicts.md)
                                           a marketplace against a fresh service (SIM_REDIS_URL, SIM_DATABASE_URL)

  chaos [--duration 10m] [--fault-every 60s] [--faults a,b] [--seed N] [--out DIR] [--update-doc FILE] [--min-availability 0.999]
                                           the marketplace against the HA topology under a seeded fault schedule (docs/reliability.md);
                                           exits 1 when a target is missed (availability, a failover window over 10 s, a loss, a process ended)

Conflicts (docs/conflicts.md)
  offers <bookingId>                       a conflicted booking's offers
  accept <bookingId> --offer O | decline <bookingId>
  resolve <bookingId>                      make the offers of a conflicted booking now
  validate [--city X]                      post-validation pass: find overlaps, resolve them

Environment: PORT, JWT_SECRET, JWKS_URL, REDIS_URL, REDIS_CLUSTER_NODES, DATABASE_URL, DATABASE_REPLICA_URL, HOLD_TTL_MS, MAX_LIVE_HOLDS_PER_CUSTOMER,
LOCK_MAX_QUEUE, LOCK_MAX_WAIT_MS, SWEEP_INTERVAL_MS, SYNC_*, STREAM_RETENTION_MS, METRICS_PORT,
LOG_LEVEL (see the README).`;

export function parseCommandLine(argv: string[] = process.argv.slice(2)) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      demo: { type: 'boolean' },
      'vehicles-per-city': { type: 'string' },
      compare: { type: 'boolean' },
      days: { type: 'string' },
      vehicles: { type: 'string' },
      'no-doc': { type: 'boolean' },
      city: { type: 'string' },
      after: { type: 'string' },
      limit: { type: 'string' },
      vehicle: { type: 'string' },
      customer: { type: 'string' },
      hold: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
      note: { type: 'string' },
      force: { type: 'boolean' },
      'allow-past': { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      repair: { type: 'boolean' },
      json: { type: 'boolean' },
      dir: { type: 'string' },
      'base-port': { type: 'string' },
      'fault-every': { type: 'string' },
      faults: { type: 'string' },
      'update-doc': { type: 'string' },
      'min-availability': { type: 'string' },
      region: { type: 'string' },
      'standby-db': { type: 'string' },
      rtt: { type: 'string' },
      seeds: { type: 'string' },
      demand: { type: 'string' },
      backups: { type: 'string' },
      archive: { type: 'string' },
      port: { type: 'string' },
      role: { type: 'string' },
      scope: { type: 'string' },
      sub: { type: 'string' },
      'host-id': { type: 'string' },
      offer: { type: 'string' },
      cities: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
    },
  });
}

export type Options = ReturnType<typeof parseCommandLine>['values'];
