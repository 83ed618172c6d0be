/**
 * `fleet`: the operator's command line. Every command goes through the same services as the
 * API and workers; results print as JSON, refusals as `CODE: message` on stderr with exit 2.
 * One command per file (commands/); this file opens what they need and dispatches.
 */
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { CityCatalog, REFERENCE_CITIES, type City } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import { log } from '../log.ts';
import { configureReplication, connectRedis } from '../redis/topology.ts';
import { Inventory } from '../services/inventory.ts';
import { RegionMap } from '../services/regions.ts';
import { VehicleLocks } from '../services/vehicle-locks.ts';
import { USAGE, parseCommandLine } from './args.ts';
import { whenStoresAnswer } from './boot.ts';
import { COMMANDS } from './commands/index.ts';
import type { CliContext } from './context.ts';

/** Redis connection errors, logged at most once a second (they come in bursts during a failover). */
let lastRedisError = 0;
function redisError(err: Error): void {
  if (Date.now() - lastRedisError < 1_000) return;
  lastRedisError = Date.now();
  log.warn({ err: err.message }, 'Redis connection error (retrying)');
}

/** The regions (REGIONS_FILE, REGION), or one implicit region with every city this process serves. */
function regionsOf(config: Config, redis: CliContext['redis'], cities: readonly City[]): RegionMap {
  if (!config.REGIONS_FILE) return RegionMap.implicit(cities);
  return RegionMap.fromFile(config.REGIONS_FILE, config.REGION, REFERENCE_CITIES, redis);
}

/** The cities this process serves: CITIES, else its region's, else every reference city. */
function citiesOf(config: Config): readonly City[] {
  const only = config.CITIES.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (only.length) return REFERENCE_CITIES.filter((c) => only.includes(c.id));
  if (!config.REGIONS_FILE) return REFERENCE_CITIES;
  const mine = new Set(RegionMap.fromFile(config.REGIONS_FILE, config.REGION, REFERENCE_CITIES).citiesHere());
  return REFERENCE_CITIES.filter((c) => mine.has(c.id));
}

function inventoryOf(config: Config, redis: CliContext['redis'], cities: readonly City[]): Inventory {
  return new Inventory(redis, {
    cities: new CityCatalog(cities),
    holdTtlMs: config.HOLD_TTL_MS,
    maxLiveHoldsPerCustomer: config.MAX_LIVE_HOLDS_PER_CUSTOMER,
    holdLimits: {
      maxLiveHoldsTotal: config.MAX_LIVE_HOLDS_PER_CUSTOMER_TOTAL,
      holdsPerWindow: config.HOLDS_PER_MINUTE_PER_CUSTOMER,
      holdRateWindowMs: 60_000,
    },
    locks: new VehicleLocks({ maxQueue: config.LOCK_MAX_QUEUE, maxWaitMs: config.LOCK_MAX_WAIT_MS }),
  });
}

async function main(): Promise<number> {
  const { values: opt, positionals } = parseCommandLine();
  const [name, arg] = positionals;
  if (!name || opt.help) {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const load = COMMANDS.get(name);
  if (!load) {
    console.error(`unknown command ${name}\n\n${USAGE}`);
    return 1;
  }
  const command = await load();
  const config = loadConfig();
  const redis = connectRedis(config);
  // Connection errors during a failover are expected: commands wait and retry (REDIS_FAILOVER_WAIT_MS).
  redis.on('error', redisError);
  try {
    const cities = citiesOf(config);
    const regions = regionsOf(config, redis, cities);
    const foreign = cities.filter((c) => regions.multi && !regions.citiesHere().includes(c.id));
    if (foreign.length)
      throw new ConfigError(
        `CITIES names cities of other regions than ${config.REGION}: ${foreign.map((c) => c.id).join(', ')}`,
      );
    const ctx: CliContext = {
      command: name,
      arg,
      opt,
      config,
      redis,
      regions,
      inventory: inventoryOf(config, redis, cities),
      idem: opt['idempotency-key'] ? { idempotencyKey: opt['idempotency-key'], actorId: 'cli' } : {},
    };
    // Commands that need no store (a token, the simulator, the HA topology) do not wait for one.
    if (command.needsStore !== false) {
      const configure = () => configureReplication(redis, config);
      const opened = command.waitsForStores ? await whenStoresAnswer('Redis', configure, log) : await configure();
      ctx.redisTopology = { mode: opened.mode, syncReplicas: opened.syncReplicas };
    }
    return (await command.run(ctx)) ?? 0;
  } finally {
    redis.disconnect();
  }
}

/**
 * The exit status is the outcome. On a failure the process exits even if something still holds the
 * event loop (a worker loop started before the failure): a half-started service must end, so its
 * supervisor starts it again, rather than linger without serving.
 */
function exitWith(code: number): void {
  process.exitCode = code;
  if (code !== 0) process.stderr.write('', () => process.exit(code));
}

main()
  .then((code) => exitWith(code))
  .catch((err: unknown) => {
    if (err instanceof DomainError) {
      console.error(`${err.code}: ${err.message}`);
      return exitWith(2);
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      return exitWith(78);
    }
    console.error(err);
    exitWith(1);
  });
