/**
 * Notices failovers and has the affected cities verified (services/failover.ts):
 *
 * - Redis (a single server or a Sentinel-managed primary): the primary's `run_id` changes when
 *   another node is promoted, or when the server restarted (and may have lost writes);
 * - Redis Cluster: the node that owns a city's slot, or its `run_id`, changes — only the cities
 *   of the failed master are verified;
 * - PostgreSQL: the writer the pool reaches changes (a promoted standby, a restart).
 *
 * Checks run every `everyMs`; verifications run one city at a time, a city at most once at a
 * time (a second failover during a verification queues one more). Each look tells whether the
 * store answered (`fleet_store_up{store}`: Redis, and PostgreSQL when the monitor has the pool,
 * each probed in a loop of its own so that one store's timeouts never delay the other's look);
 * a city being verified is `fleet_failover_verification_started_seconds{city}` from its first
 * attempt until one succeeds.
 */
import { defaults } from '../config.ts';
import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { Logger } from 'pino';
import type { CityCatalog } from '../domain/cities.ts';
import { metrics } from '../metrics.ts';
import { pingPool, type FollowingPool } from '../pg/pool.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import type { FailoverCause, VerificationReport } from '../services/failover.ts';
import { messageOf } from '../domain/errors.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemActor, withCallContext } from '../redis/call-context.ts';

export interface FailoverMonitorOptions {
  everyMs?: number;
  log?: Logger;
  /** The PostgreSQL writer pool, when it can follow a promotion. */
  pool?: FollowingPool;
}

const runIdOf = (info: string) => /run_id:(\w+)/.exec(info)?.[1] ?? '';

export class FailoverMonitor {
  private readonly identities = new Map<string, string>();
  private readonly pending = new Map<string, FailoverCause>();
  /** Cities whose verification is under way or being retried (their start is in the gauge). */
  private readonly verifying = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private draining: Promise<void> = Promise.resolve();
  readonly reports: VerificationReport[] = [];

  constructor(
    private readonly redis: RedisConnection,
    private readonly cities: CityCatalog,
    private readonly verify: (city: string, cause: FailoverCause) => Promise<VerificationReport>,
    private readonly opts: FailoverMonitorOptions = {},
  ) {
    opts.pool?.onWriterChange((before, after) => {
      metrics.failovers.inc({ store: 'postgres' });
      opts.log?.warn({ before, after }, 'PostgreSQL writer changed: verifying every city');
      for (const c of this.cities.all()) this.schedule(c.id, 'postgres');
    });
  }

  start(): void {
    const pool = this.opts.pool;
    // What a verification restores or conflicts is recorded as the failover's (the audit trail).
    this.loop = withCallContext({ actor: systemActor('failover') }, () =>
      Promise.all([
        this.every('redis', () => this.check()),
        ...(pool ? [this.every('postgres', () => pingPool(pool))] : []),
      ]).then(() => undefined),
    );
  }

  /** Looks at `store` every `everyMs` until stopped, saying in `fleet_store_up` whether it answered. */
  private async every(store: 'redis' | 'postgres', look: () => Promise<unknown>): Promise<void> {
    while (!this.stopped) {
      try {
        await look();
        metrics.storeUp.set({ store }, 1);
      } catch (err) {
        metrics.storeUp.set({ store }, 0);
        this.opts.log?.debug({ store, err: messageOf(err) }, 'failover check skipped: store unreachable');
      }
      await sleep(this.opts.everyMs ?? defaults.FAILOVER_CHECK_MS);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.draining;
  }

  /** Verifies `city` (now, or after the verification under way). */
  schedule(city: string, cause: FailoverCause): void {
    this.pending.set(city, cause);
    this.draining = this.draining.then(() => withCallContext({ actor: systemActor('failover') }, () => this.drain()));
  }

  /** Resolves once every scheduled verification has run. */
  async idle(): Promise<void> {
    await this.draining;
  }

  /** One look at the stores; cities whose Redis node changed are scheduled. */
  async check(): Promise<void> {
    const now = await this.redisIdentities();
    for (const [city, identity] of now) {
      const before = this.identities.get(city);
      this.identities.set(city, identity);
      if (before !== undefined && before !== identity) {
        if (!this.pending.has(city))
          metrics.failovers.inc({ store: this.redis instanceof Cluster ? 'redis-cluster' : 'redis' });
        this.opts.log?.warn({ city, before, after: identity }, 'Redis primary changed: verifying the city');
        this.schedule(city, this.redis instanceof Cluster ? 'redis-cluster' : 'redis');
      }
    }
  }

  private async redisIdentities(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!(this.redis instanceof Cluster)) {
      const id = runIdOf(await this.redis.info('server'));
      for (const c of this.cities.all()) out.set(c.id, id);
      return out;
    }
    const runIds = new Map<string, string>();
    for (const node of this.redis.nodes('master')) {
      runIds.set(`${node.options.host}:${node.options.port}`, runIdOf(await node.info('server')));
    }
    for (const c of this.cities.all()) {
      const owner = this.redis.slots[calculateSlot(keys.events(c.id))]?.[0];
      if (owner && runIds.has(owner)) out.set(c.id, `${owner}/${runIds.get(owner)}`);
    }
    return out;
  }

  private async drain(): Promise<void> {
    for (const [city, cause] of [...this.pending]) {
      this.pending.delete(city);
      if (!this.verifying.has(city)) {
        this.verifying.add(city);
        metrics.failoverVerificationStarted.set({ city }, Date.now() / 1000);
      }
      try {
        this.reports.push(await this.verify(city, cause));
        if (this.reports.length > 100) this.reports.shift();
        this.verifying.delete(city);
        metrics.failoverVerificationStarted.remove({ city });
      } catch (err) {
        metrics.failoverVerifications.inc({ outcome: 'failed' });
        this.opts.log?.error({ err, city, cause }, 'failover verification failed; retrying');
        if (!this.stopped) {
          await sleep(1_000);
          this.schedule(city, cause);
        }
      }
    }
  }
}
