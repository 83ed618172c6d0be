/**
 * Prometheus metrics of the process, in one registry: the API's `/metrics` and the worker's
 * metrics port expose it. Names follow Prometheus conventions (`_total`, `_seconds`). The
 * dashboard and the alerts users load (`deploy/`, docs/operations.md) name only these, and
 * `test/integration/deploy-files.test.ts` holds them to it.
 *
 * `fleet serve` on several processes sums each metric over them (cli/cluster.ts); a gauge that
 * is not a count says how to combine instead (`aggregator`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'fleet_' });

export const metrics = {
  /** Webhook delivery attempts by result: delivered, retry, dead (dead letters). */
  webhookAttempts: new Counter({
    name: 'fleet_webhook_attempts_total',
    help: 'Webhook delivery attempts by result',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  /** DR_ACK=remote: how long acknowledged writes waited for the DR standby, and how many gave up. */
  remoteAckWait: new Histogram({
    name: 'fleet_dr_ack_wait_seconds',
    help: 'DR_ACK=remote: from the script to the DR standby having applied the write',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  remoteAckTimeouts: new Counter({
    name: 'fleet_dr_ack_timeouts_total',
    help: 'DR_ACK=remote: writes answered 503 because the DR standby did not confirm in time',
    registers: [registry],
  }),
  /** 1 while this process's webhook dispatcher holds the leader lock. */
  webhookLeading: new Gauge({
    name: 'fleet_webhook_dispatcher_leading',
    help: '1 while this process leads webhook delivery (holds the PostgreSQL advisory lock)',
    registers: [registry],
  }),
  webhookLeaderships: new Counter({
    name: 'fleet_webhook_leader_acquisitions_total',
    help: 'Times this process took the webhook leader lock (again after a lost PostgreSQL session)',
    registers: [registry],
  }),
  /** Every engine command, by script and outcome (`ok` or the error code). */
  commands: new Counter({
    name: 'fleet_commands_total',
    help: 'Engine commands by script and outcome',
    labelNames: ['command', 'outcome'] as const,
    registers: [registry],
  }),
  lockWait: new Histogram({
    name: 'fleet_vehicle_lock_wait_seconds',
    help: 'Time commands waited for their vehicle in this process',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5],
    registers: [registry],
  }),
  conflictOutcomes: new Counter({
    name: 'fleet_conflict_outcomes_total',
    help: 'Conflict resolutions by outcome (offered, no_alternative, declined, lapsed, ...)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  conflictTimeToOffer: new Histogram({
    name: 'fleet_conflict_time_to_offer_seconds',
    help: 'From a booking becoming conflicted to its offers (or NO_ALTERNATIVE)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60],
    registers: [registry],
  }),
  syncApplied: new Counter({
    name: 'fleet_sync_events_applied_total',
    help: 'Events applied to PostgreSQL',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  syncDeadLetters: new Counter({
    name: 'fleet_sync_dead_letters_total',
    help: 'Events moved to the dead-letter table (alarm when > 0)',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  syncLagEvents: new Gauge({
    name: 'fleet_sync_lag_events',
    help: 'Events not yet in PostgreSQL',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  replicationWait: new Histogram({
    name: 'fleet_redis_replication_wait_seconds',
    help: "From a write's reply to its replicas confirming it (WAIT, group commit)",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [registry],
  }),
  counterAnomalies: new Counter({
    name: 'fleet_counter_anomalies_total',
    help: 'Negative city counters seen (a script broke the exact-counter rule: a bug)',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  versionGaps: new Counter({
    name: 'fleet_sync_version_gaps_total',
    help: "Vehicle versions projected that are not the previous one + 1 (a lost or repeated event; expected after a failover's restore)",
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  silentErrors: new Counter({
    name: 'fleet_swallowed_errors_total',
    help: 'Errors a background loop survived (logged, then retried or skipped), by where',
    labelNames: ['where'] as const,
    registers: [registry],
  }),
  connectionsRefused: new Counter({
    name: 'fleet_http_connections_refused_total',
    help: 'Connections dropped: their client address already had HTTP_MAX_CONNECTIONS_PER_IP open',
    registers: [registry],
  }),
  liveRefused: new Counter({
    name: 'fleet_live_refused_total',
    help: 'WebSocket refusals by reason (connections per caller, message budget, slow consumer, topic cap)',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  replicaReads: new Counter({
    name: 'fleet_redis_replica_reads_total',
    help: 'Customer-facing reads served by a Redis replica (or by the primary after the replica failed)',
    labelNames: ['served'] as const,
    registers: [registry],
  }),
  replicationRounds: new Counter({
    name: 'fleet_redis_wait_rounds_total',
    help: 'WAIT commands sent (each confirms every write that queued for it: writes / rounds = the group-commit factor)',
    registers: [registry],
  }),
  replicationUnconfirmed: new Counter({
    name: 'fleet_redis_replication_unconfirmed_total',
    help: 'WAIT rounds that did not confirm their writes (the writes are retried)',
    registers: [registry],
  }),
  failovers: new Counter({
    name: 'fleet_failovers_total',
    help: 'Failovers (or restarts) of a store seen by this process',
    labelNames: ['store'] as const,
    registers: [registry],
  }),
  failoverRestored: new Counter({
    name: 'fleet_failover_restored_total',
    help: 'Entities Redis had lost, restored from PostgreSQL by a verification',
    labelNames: ['kind'] as const,
    registers: [registry],
  }),
  failoverConflicts: new Counter({
    name: 'fleet_failover_conflicts_total',
    help: 'Bookings a verification found overlapping and turned into conflicts',
    registers: [registry],
  }),
  failoverVerifications: new Counter({
    name: 'fleet_failover_verifications_total',
    help: 'Verifications of a city after a failover, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  }),
  syncRewinds: new Counter({
    name: 'fleet_sync_rewinds_total',
    help: 'Times PostgreSQL lost applied events (a promoted standby) and the sync replayed them from the stream',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  syncLagSeconds: new Gauge({
    name: 'fleet_sync_lag_seconds',
    help: 'Age of the oldest event not yet in PostgreSQL',
    labelNames: ['city'] as const,
    registers: [registry],
  }),
  /** Every HTTP answer, by method, route template (`unmatched` when no route matched: never the raw URL) and status. */
  httpRequests: new Counter({
    name: 'fleet_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry],
  }),
  httpDuration: new Histogram({
    name: 'fleet_http_request_duration_seconds',
    help: 'From a request arriving to its answer sent, by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  /** The per-caller budget (api/rate-limit.ts) refusing a request or a WebSocket message, by kind of caller. */
  rateLimited: new Counter({
    name: 'fleet_rate_limited_total',
    help: 'Requests and WebSocket messages refused by the per-caller budget (429 RATE_LIMITED), by caller role or anonymous',
    labelNames: ['caller'] as const,
    registers: [registry],
  }),
  /** The failover monitor's look at each store (every FAILOVER_CHECK_MS): 1 when it answered, 0 when it did not. */
  storeUp: new Gauge({
    name: 'fleet_store_up',
    help: "1 when the store (redis, postgres) answered the failover monitor's last probe, 0 when it did not",
    labelNames: ['store'] as const,
    aggregator: 'min',
    registers: [registry],
  }),
  /** A city's verification under way: since its first attempt (retries included); gone once verified. */
  failoverVerificationStarted: new Gauge({
    name: 'fleet_failover_verification_started_seconds',
    help: 'Unix time the verification of a city under way started (its first attempt); absent when none runs',
    labelNames: ['city'] as const,
    aggregator: 'min',
    registers: [registry],
  }),
  failoverVerificationDuration: new Histogram({
    name: 'fleet_failover_verification_duration_seconds',
    help: 'How long a successful verification of a city after a failover took',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  }),
};
