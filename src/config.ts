/** Configuration from the environment, validated once at boot and typed. */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { OfferPolicy } from './domain/offers.ts';
import { AT_RISK_FIXED, type AtRiskPolicy } from './domain/late-returns.ts';

const ConfigSchema = Type.Object({
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65_535 }),
  /** Conflict offers (docs/conflicts.md). */
  OFFER_TTL_MS: Type.Integer({ default: 900_000, minimum: 10_000, maximum: 86_400_000 }),
  OFFER_COUNT: Type.Integer({ default: 3, minimum: 1, maximum: 10 }),
  OFFER_CREDIT: Type.Number({ default: 10, minimum: 0 }),
  OFFER_FAR_KM: Type.Number({ default: 5, minimum: 0 }),
  OFFER_FAR_CREDIT: Type.Number({ default: 25, minimum: 0 }),
  /** A `farther` alternative (past OFFER_FAR_KM) is delivered: this much more credit per km past it. */
  OFFER_DELIVERY_CREDIT_PER_KM: Type.Number({ default: 2, minimum: 0 }),
  /** How many classes down an alternative may be (0: never); a downgrade refunds the difference plus OFFER_DOWNGRADE_CREDIT. */
  OFFER_DOWNGRADE_TIERS: Type.Integer({ default: 1, minimum: 0, maximum: 4 }),
  OFFER_DOWNGRADE_CREDIT: Type.Number({ default: 10, minimum: 0 }),
  /** A conflict with nothing to offer waits for a freed vehicle until its start minus this (0: no wait list). */
  WAITLIST_CUTOFF_MINUTES: Type.Integer({ default: 60, minimum: 0, maximum: 7 * 24 * 60 }),
  /** 1: when no single vehicle is free, two one after the other may be offered (back_to_back). */
  OFFER_BACK_TO_BACK: Type.Integer({ default: 1, minimum: 0, maximum: 1 }),
  /** The conflict reserve (docs/conflicts.md): vehicles kept back per area, category and hour for the resolver (Littlewood's rule). */
  RESERVE: Type.Union([Type.Literal('off'), Type.Literal('on')], { default: 'off' }),
  /** A reserved vehicle goes back to search this long before its hour. */
  RESERVE_RELEASE_MINUTES: Type.Integer({ default: 60, minimum: 1, maximum: 24 * 60 }),
  /** Hours planned ahead, and how often the plan is topped up (ms). */
  RESERVE_HORIZON_HOURS: Type.Integer({ default: 12, minimum: 1, maximum: 168 }),
  RESERVE_EVERY_MS: Type.Integer({ default: 300_000, minimum: 1_000 }),
  /** At most this share of an area's vehicles of a category is kept back. */
  RESERVE_MAX_SHARE: Type.Number({ default: 0.2, minimum: 0, maximum: 1 }),
  /** Littlewood's values (0: derived from the average booking, OFFER_CREDIT and NO_ALTERNATIVE_CREDIT). */
  RESERVE_CONFLICT_VALUE: Type.Number({ default: 0, minimum: 0 }),
  RESERVE_BOOKING_VALUE: Type.Number({ default: 0, minimum: 0 }),
  OFFER_MAX_DISTANCE_KM: Type.Number({ default: 50, minimum: 0 }),
  NO_ALTERNATIVE_CREDIT: Type.Number({ default: 50, minimum: 0 }),
  /** Late returns seen coming (docs/prediction.md): the probability that marks a booking at risk, */
  AT_RISK_THRESHOLD: Type.Number({ default: 0.3, minimum: 0.01, maximum: 1 }),
  /** how far ahead of a booking's start it is judged (minutes), */
  AT_RISK_LEAD_MINUTES: Type.Integer({ default: 360, minimum: 1, maximum: 7 * 24 * 60 }),
  /** and how often the trips under way are scanned (ms; 0: never). */
  AT_RISK_SCAN_INTERVAL_MS: Type.Integer({ default: 30_000, minimum: 0 }),
  /** At most this many standby holds per area and category of a city at once (standbys never starve conflicts' offers). */
  AT_RISK_STANDBY_CAP: Type.Integer({ default: 2, minimum: 0, maximum: 1_000 }),
  /** Incentives that learn (docs/prediction.md): on or off, the conversion to reach, the budget (highest credit multiple). */
  INCENTIVE_LEARNING: Type.Integer({ default: 1, minimum: 0, maximum: 1 }),
  INCENTIVE_TARGET_CONVERSION: Type.Number({ default: 0.8, minimum: 0.05, maximum: 0.99 }),
  INCENTIVE_MAX_LEVEL: Type.Number({ default: 2, minimum: 0.5, maximum: 3 }),
  /** Period of the post-validation pass (ms; 0: off). */
  POST_VALIDATION_INTERVAL_MS: Type.Integer({ default: 60_000, minimum: 0 }),
  /** How often the resolver closes offers whose time is up and ends waits that are over (ms). */
  RESOLVER_LAPSE_INTERVAL_MS: Type.Integer({ default: 1_000, minimum: 10, maximum: 60_000 }),
  /** A conflict pending this long with a resolver that died is taken over by another (ms). */
  RESOLVER_CLAIM_IDLE_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 3_600_000 }),
  /** Conflicts of one city resolved at once. */
  RESOLVER_CONCURRENCY: Type.Integer({ default: 8, minimum: 1, maximum: 64 }),
  /** Comma-separated reference city ids to serve (empty: all 25, or this region's cities with REGIONS_FILE). */
  CITIES: Type.String({ default: '', pattern: '^[a-z0-9,]*$' }),
  /** This deployment's region, a name of REGIONS_FILE (docs/regions.md). */
  REGION: Type.String({ default: '', pattern: '^([a-z][a-z0-9-]{0,31})?$' }),
  /** JSON `{"regions": {"<name>": {"cities": [...], "url": "..."}}}`; unset: one implicit region with every city. */
  REGIONS_FILE: Type.String({ default: '' }),
  /** How long a list that spans regions waits for another region before answering without it. */
  REGION_FANOUT_TIMEOUT_MS: Type.Integer({ default: 2_000, minimum: 50, maximum: 60_000 }),
  /** What an acknowledgement promises: `local` (the region's Redis primary and replica) or `remote` (also applied on the cross-region DR standby). */
  DR_ACK: Type.Union([Type.Literal('local'), Type.Literal('remote')], { default: 'local' }),
  /** DR_ACK=remote: how long a write waits for the DR standby before 503 (outcome unknown: retry with the idempotency key). */
  DR_ACK_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
  /** API processes for `serve` (0: one per core). */
  WEB_CONCURRENCY: Type.Integer({ default: 0, minimum: 0, maximum: 256 }),
  /** HS256 secret for tokens; a dev secret is generated (and printed) when unset. */
  JWT_SECRET: Type.String({ default: '' }),
  /** Optional identity provider keys (RS256/EdDSA). */
  JWKS_URL: Type.String({ default: '' }),
  RATE_LIMIT_CUSTOMER: Type.Integer({ default: 120, minimum: 1 }),
  RATE_LIMIT_HOST: Type.Integer({ default: 1200, minimum: 1 }),
  RATE_LIMIT_OPS: Type.Integer({ default: 3000, minimum: 1 }),
  RATE_LIMIT_ADMIN: Type.Integer({ default: 3000, minimum: 1 }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  /** host:port,host:port — when set, Redis Cluster is used instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: Type.String({ default: '' }),
  /** host:port,host:port of Redis Sentinels — when set, the primary they name is used (and followed through failovers). */
  REDIS_SENTINELS: Type.String({ default: '', pattern: '^([^,:]+:[0-9]+(,[^,:]+:[0-9]+)*)?$' }),
  /** The master name the Sentinels monitor. */
  REDIS_SENTINEL_MASTER: Type.String({ default: 'fleet', pattern: '^[A-Za-z0-9._-]+$' }),
  /** Replicas that must hold a write (WAIT) before it is acknowledged; `auto`: 1 when the primary has replicas, else 0. */
  REDIS_SYNC_REPLICAS: Type.String({ default: 'auto', pattern: '^(auto|[0-9]{1,2})$' }),
  /** How long a write waits for its replicas before the answer is 503 (outcome unknown: retry with the idempotency key). */
  REDIS_SYNC_TIMEOUT_MS: Type.Integer({ default: 1_000, minimum: 10, maximum: 60_000 }),
  /** How long a command waits through a failover (reconnect, promotion, retry) before the answer is 503. */
  REDIS_FAILOVER_WAIT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
  /** 1: customer-facing reads may go to replicas, only while every write is WAITed on all of them (docs/reliability.md). */
  REDIS_REPLICA_READS: Type.Integer({ default: 0, minimum: 0, maximum: 1 }),
  /** libpq URL; several hosts (`h1:p1,h2:p2`) with `target_session_attrs=read-write` follow a promotion. */
  DATABASE_URL: Type.String({ default: 'postgres://postgres@127.0.0.1:5432/fleet' }),
  /** Optional read replica(s) for heavy reads (analytics); unset = the primary (DATABASE_URL). */
  DATABASE_REPLICA_URL: Type.String({ default: '' }),
  /** How often the failover monitor looks at the stores (Redis run ids, cluster slots, PostgreSQL writer). */
  FAILOVER_CHECK_MS: Type.Integer({ default: 1_000, minimum: 100, maximum: 60_000 }),
  HOLD_TTL_MS: Type.Integer({ default: 600_000, minimum: 10_000, maximum: 3_600_000 }),
  MAX_LIVE_HOLDS_PER_CUSTOMER: Type.Integer({ default: 5, minimum: 1, maximum: 100 }),
  /** Live holds one customer may have in every city together. */
  MAX_LIVE_HOLDS_PER_CUSTOMER_TOTAL: Type.Integer({ default: 10, minimum: 1, maximum: 1_000 }),
  /** Holds one customer may place per minute (every city). */
  HOLDS_PER_MINUTE_PER_CUSTOMER: Type.Integer({ default: 30, minimum: 1, maximum: 100_000 }),
  /** Requests per minute per client address without a valid token. */
  RATE_LIMIT_ANONYMOUS: Type.Integer({ default: 60, minimum: 1 }),
  /** Fraction of a caller's limit one API process admits between syncs with Redis: bounds the overshoot of a caller spread over processes. */
  RATE_LIMIT_LOCAL_SHARE: Type.Number({ default: 0.1, exclusiveMinimum: 0, maximum: 1 }),
  /** HTTP: the whole header block within this (a slow-header client is cut), the whole request within that. */
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 600_000 }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100, maximum: 3_600_000 }),
  /** An idle keep-alive connection is closed after this (announced in `Keep-Alive: timeout=`). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ default: 5_000, minimum: 100, maximum: 600_000 }),
  /** Concurrent connections one client address may hold to one API process. */
  HTTP_MAX_CONNECTIONS_PER_IP: Type.Integer({ default: 256, minimum: 1, maximum: 100_000 }),
  /** WebSocket: connections per caller (per API process), messages per second per connection (and burst), topics per connection. */
  WS_MAX_CONNECTIONS_PER_CALLER: Type.Integer({ default: 10, minimum: 1, maximum: 10_000 }),
  WS_MESSAGES_PER_SECOND: Type.Number({ default: 20, exclusiveMinimum: 0 }),
  WS_MESSAGE_BURST: Type.Integer({ default: 40, minimum: 1 }),
  WS_MAX_TOPICS: Type.Integer({ default: 100, minimum: 1, maximum: 10_000 }),
  /** A subscriber's unsent bytes: past the high-water mark replay pauses; past it for WS_SLOW_CONSUMER_MS (or past 4×), the connection is closed. */
  WS_HIGH_WATER_BYTES: Type.Integer({ default: 1_048_576, minimum: 1_024 }),
  WS_SLOW_CONSUMER_MS: Type.Integer({ default: 10_000, minimum: 100 }),
  /** A ping this often; a subscriber that misses one is closed (ms). */
  WS_HEARTBEAT_MS: Type.Integer({ default: 15_000, minimum: 100, maximum: 600_000 }),
  /** Events replayed per page to a subscriber resuming with `after`. */
  WS_REPLAY_PAGE_SIZE: Type.Integer({ default: 100, minimum: 1, maximum: 10_000 }),
  LOCK_MAX_QUEUE: Type.Integer({ default: 64, minimum: 1, maximum: 10_000 }),
  LOCK_MAX_WAIT_MS: Type.Integer({ default: 2_000, minimum: 10, maximum: 60_000 }),
  /** Past, final calendar entries leave Redis this long after their window ended (once synced). */
  CALENDAR_RETENTION_MS: Type.Integer({ default: 7 * 24 * 3_600_000, minimum: 3_600_000 }),
  TRIM_INTERVAL_MS: Type.Integer({ default: 3_600_000, minimum: 1_000 }),
  SWEEP_INTERVAL_MS: Type.Integer({ default: 1_000, minimum: 50, maximum: 60_000 }),
  /** 0: `fleet serve` runs no sync worker (run `fleet worker` beside it, as its own process). */
  SERVE_SYNC: Type.Integer({ default: 1, minimum: 0, maximum: 1 }),
  SYNC_BATCH_SIZE: Type.Integer({ default: 500, minimum: 1, maximum: 10_000 }),
  /** Cities the sync applies at once, each in its own transaction. */
  SYNC_PARALLEL: Type.Integer({ default: 3, minimum: 1, maximum: 32 }),
  /** After a batch smaller than SYNC_BATCH_SIZE, the sync waits this long for more (fewer, larger transactions under load; ms). */
  SYNC_LINGER_MS: Type.Integer({ default: 25, minimum: 0, maximum: 1_000 }),
  SYNC_CLAIM_IDLE_MS: Type.Integer({ default: 15_000, minimum: 100, maximum: 3_600_000 }),
  SYNC_MAX_ATTEMPTS: Type.Integer({ default: 5, minimum: 1, maximum: 100 }),
  /** How long an overlap PostgreSQL refuses (23P01) waits for a failover verification to settle it before it is dead-lettered. */
  SYNC_OVERLAP_GRACE_MS: Type.Integer({ default: 60_000, minimum: 0, maximum: 3_600_000 }),
  STREAM_RETENTION_MS: Type.Integer({ default: 600_000, minimum: 0 }),
  /** 1: demo mode (`npm start`): the console offers the demo identities (`GET /v1/demo/identities`). */
  DEMO: Type.Integer({ default: 0, minimum: 0, maximum: 1 }),
  /** Outbound webhooks (docs/webhooks.md). 1: private and loopback targets allowed (development, tests). */
  WEBHOOK_ALLOW_PRIVATE: Type.Integer({ default: 0, minimum: 0, maximum: 1 }),
  /** How often the dispatcher looks for retries that came due when no new event woke it (ms). */
  WEBHOOK_POLL_MS: Type.Integer({ default: 1_000, minimum: 10, maximum: 60_000 }),
  WEBHOOK_RETRY_BASE_MS: Type.Integer({ default: 1_000, minimum: 10 }),
  WEBHOOK_RETRY_MAX_MS: Type.Integer({ default: 3_600_000, minimum: 10 }),
  /** A delivery still failing this long after it was queued goes to the dead letters (at least 24 h). */
  WEBHOOK_RETRY_HORIZON_MS: Type.Integer({ default: 90_000_000, minimum: 1_000 }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 60_000 }),
  /** After a rotation the old secret keeps signing, beside the new one, this long. */
  WEBHOOK_SECRET_GRACE_MS: Type.Integer({ default: 86_400_000, minimum: 0 }),
  /** Test only: `point:probability,...` — the sync worker kills itself (SIGKILL) there. */
  FLEET_FAILPOINTS: Type.String({ default: '' }),
  /** Serve Prometheus metrics on this port from `fleet worker` / `fleet serve` (0 = off). */
  METRICS_PORT: Type.Integer({ default: 0, minimum: 0, maximum: 65_535 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(ConfigSchema.properties)
      .filter((k) => env[k] !== undefined && env[k] !== '')
      .map((k) => [k, env[k]]),
  );
  const value = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, known));
  const problems = [...Value.Errors(ConfigSchema, value)].map((e) => `${e.path.slice(1) || '(root)'}: ${e.message}`);
  const config = value as Config;
  if (config.REGIONS_FILE && !config.REGION)
    problems.push("REGION: required with REGIONS_FILE (this deployment's region)");
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}

/**
 * Every default, from the schema above: the one place a default lives. Modules that take a
 * setting as an option fall back to these (a library user who passes nothing gets what the
 * service runs with).
 */
export const defaults: Readonly<Config> = loadConfig({});

/** The learning offer policy (docs/prediction.md) the configuration sets. */
export function learningPolicy(config: Config = defaults): { target: number; maxLevel: number } {
  return { target: config.INCENTIVE_TARGET_CONVERSION, maxLevel: config.INCENTIVE_MAX_LEVEL };
}

/** The at-risk policy (docs/prediction.md) the configuration sets. */
export function atRiskPolicy(config: Config = defaults): AtRiskPolicy {
  return {
    ...AT_RISK_FIXED,
    threshold: config.AT_RISK_THRESHOLD,
    leadMs: config.AT_RISK_LEAD_MINUTES * 60_000,
    standbyCap: config.AT_RISK_STANDBY_CAP,
  };
}

/** The conflict reserve's policy (docs/conflicts.md) the configuration sets. */
export function reservePolicy(config: Config = defaults) {
  return {
    releaseMinutes: config.RESERVE_RELEASE_MINUTES,
    horizonHours: config.RESERVE_HORIZON_HOURS,
    maxShare: config.RESERVE_MAX_SHARE,
    conflictValue: config.RESERVE_CONFLICT_VALUE,
    bookingValue: config.RESERVE_BOOKING_VALUE,
  };
}

/** The conflict offers' policy (docs/conflicts.md) the configuration sets. */
export function offerPolicy(config: Config = defaults): OfferPolicy {
  return {
    offerTtlMs: config.OFFER_TTL_MS,
    maxOffers: config.OFFER_COUNT,
    credit: config.OFFER_CREDIT,
    farKm: config.OFFER_FAR_KM,
    farCredit: config.OFFER_FAR_CREDIT,
    deliveryCreditPerKm: config.OFFER_DELIVERY_CREDIT_PER_KM,
    downgradeTiers: config.OFFER_DOWNGRADE_TIERS,
    downgradeCredit: config.OFFER_DOWNGRADE_CREDIT,
    noAlternativeCredit: config.NO_ALTERNATIVE_CREDIT,
    maxDistanceKm: config.OFFER_MAX_DISTANCE_KM,
    waitlistCutoffMinutes: config.WAITLIST_CUTOFF_MINUTES,
    backToBack: config.OFFER_BACK_TO_BACK === 1,
  };
}
