/**
 * The conflict resolver: reads every city stream through its own consumer group and turns each
 * `booking.conflicted` into offers within moments; closes offers whose time is up; runs the
 * post-validation pass now and then. An entry is acknowledged only once handled, so a resolver
 * killed mid-way leaves it pending and the next one (or this one, after `claimIdleMs`) takes it
 * over; making offers twice is harmless (the script answers the record it made).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CityCatalog } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { StreamConsumer, type StreamEntry } from '../redis/stream-consumer.ts';
import { defaults } from '../config.ts';
import { inSpan } from '../telemetry/spans.ts';
import { metrics } from '../metrics.ts';
import type { ConflictDesk } from '../services/conflicts.ts';
import type { LateReturnWatch } from '../services/late-returns.ts';
import type { ReservePlanner } from '../services/reserve.ts';
import { systemActor, withCallContext } from '../redis/call-context.ts';

export const RESOLVER_GROUP = 'conflict-resolver';

/** Events after which a vehicle may be free where it was not: the wait list is tried again. */
const FREES_A_VEHICLE: ReadonlySet<string> = new Set([
  'booking.cancelled',
  'booking.completed',
  'booking.reaccommodated',
  'hold.expired',
  'hold.released',
  'block.cleared',
  'block.cancelled',
  'vehicle.created',
  'vehicle.relisted',
]);

export interface ResolverOptions {
  /** Offers whose time is up are closed, and waits that ran out ended, this often (ms). */
  lapseEveryMs?: number;
  /** Period of the post-validation pass (0: never on its own). */
  validateEveryMs?: number;
  claimIdleMs?: number;
  /** Conflicts resolved at once per city. */
  concurrency?: number;
  /** Trips under way are judged for late returns this often (ms; 0: never; needs `watch`). */
  atRiskEveryMs?: number;
  /** The late-return watch (services/late-returns.ts): at-risk bookings held a standby vehicle. */
  watch?: LateReturnWatch;
  /** The conflict reserve (services/reserve.ts), topped up every `reserveEveryMs`. */
  reserve?: ReservePlanner;
  reserveEveryMs?: number;
  consumer?: string;
  log?: Logger;
}

export class ConflictWorker {
  private stopped = false;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly reader: StreamConsumer;
  private readonly o: Required<Omit<ResolverOptions, 'log' | 'watch' | 'reserve'>> & {
    log?: Logger;
    watch?: LateReturnWatch;
    reserve?: ReservePlanner;
  };

  constructor(
    private readonly redis: RedisConnection,
    private readonly desk: ConflictDesk,
    private readonly cities: CityCatalog,
    opts: ResolverOptions = {},
  ) {
    this.o = {
      lapseEveryMs: defaults.RESOLVER_LAPSE_INTERVAL_MS,
      validateEveryMs: defaults.POST_VALIDATION_INTERVAL_MS,
      claimIdleMs: defaults.RESOLVER_CLAIM_IDLE_MS,
      concurrency: defaults.RESOLVER_CONCURRENCY,
      atRiskEveryMs: defaults.AT_RISK_SCAN_INTERVAL_MS,
      reserveEveryMs: defaults.RESERVE_EVERY_MS,
      consumer: `resolver-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      ...opts,
    };
    this.reader = new StreamConsumer({
      name: 'resolver',
      redis,
      cities: () => cities.all().map((c) => c.id),
      // From the stream's start: conflicts recorded while no resolver ran are resolved too.
      group: { name: RESOLVER_GROUP, consumer: this.o.consumer, start: '0', claimIdleMs: this.o.claimIdleMs },
      count: 200,
      concurrency: 4,
      handle: (city, entries) => this.handle(city, entries),
      onError: (err) => this.o.log?.error({ err }, 'resolver round failed; retrying'),
    });
  }

  start(): void {
    // Every change the resolver makes is recorded as its own (the audit trail).
    withCallContext({ actor: systemActor('resolver') }, () => {
      // Each loop handles its own errors; this catch is the last guard, so a bug logs instead of
      // ending the process through an unhandled rejection.
      this.reader.start();
      this.loop = Promise.all([this.lapse(), this.validate(), this.watchLateReturns(), this.keepReserve()]).then(
        () => undefined,
        (err: unknown) => this.o.log?.error({ err }, 'the conflict resolver stopped on an error'),
      );
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all([this.reader.stop(), this.loop]);
  }

  /** Offers whose time is up closed, waits that ran out ended: on a loop of its own. */
  private lapse(): Promise<void> {
    return this.everyCity(this.o.lapseEveryMs, 'now', 'offer lapse', async (city) => {
      await this.desk.lapseDue(city);
      await this.desk.expireWaiting(city);
    });
  }

  /** The post-validation pass, on a loop of its own: a long pass never delays new conflicts. */
  private validate(): Promise<void> {
    return this.everyCity(this.o.validateEveryMs, 'after', 'post-validation pass', async (city) => {
      const r = await this.desk.postValidate(city);
      if (r.conflicted.length || r.resolved.length) this.o.log?.warn({ city, ...r }, 'post-validation found conflicts');
    });
  }

  /** The conflict reserve topped up, on a loop of its own (services/reserve.ts). */
  private keepReserve(): Promise<void> {
    const planner = this.o.reserve;
    if (!planner) return Promise.resolve();
    return this.everyCity(this.o.reserveEveryMs, 'now', 'reserve plan', async (city) => {
      const r = await planner.plan(city);
      if (r.placed) this.o.log?.info({ city, placed: r.placed, kept: r.kept }, 'conflict reserve topped up');
    });
  }

  /** Late returns seen coming, on a loop of its own (services/late-returns.ts). */
  private watchLateReturns(): Promise<void> {
    const watch = this.o.watch;
    if (!watch) return Promise.resolve();
    return this.everyCity(this.o.atRiskEveryMs, 'now', 'late-return scan', async (city) => {
      const r = await watch.scanCity(city);
      if (r.flagged.length)
        this.o.log?.info({ city, atRisk: r.flagged.map((f) => f.bookingId) }, 'bookings at risk of a late return');
    });
  }

  /**
   * `pass` over every city every `everyMs` (0: never), until stopped; the first round `now` or one
   * period `after` the start. A city whose pass fails is logged and tried again next round.
   */
  private async everyCity(
    everyMs: number,
    first: 'now' | 'after',
    what: string,
    pass: (city: string) => Promise<void>,
  ): Promise<void> {
    if (everyMs <= 0) return;
    let last = first === 'now' ? 0 : Date.now();
    while (!this.stopped) {
      await sleep(Math.min(250, everyMs), undefined, { signal: this.stopping.signal }).catch(() => undefined); // cut short by stop
      if (Date.now() - last < everyMs) continue;
      last = Date.now();
      for (const c of this.cities.all()) {
        if (this.stopped) break;
        try {
          await pass(c.id);
        } catch (err) {
          this.o.log?.error({ err, city: c.id }, `${what} failed; next round retries`);
        }
      }
    }
  }

  /** One pass over every city without waiting (tests): pending and new events. Returns how many were handled. */
  async drainOnce(): Promise<number> {
    return this.reader.consumeOnce();
  }

  /** The stream consumer's handler: conflicts resolved, the wait list tried when a vehicle was freed; returns the ids done. */
  private async handle(city: string, entries: readonly StreamEntry[]): Promise<string[]> {
    const done: string[] = [];
    const conflicts: Array<{ id: string; bookingId: string; traceparent: string | undefined }> = [];
    let freed = false;
    for (const { id, fields } of entries) {
      const type = fieldOf(fields, 'type');
      if (type === 'booking.conflicted')
        conflicts.push({ id, bookingId: fieldOf(fields, 'subject') ?? '', traceparent: fieldOf(fields, 'tp') });
      else done.push(id);
      if (type && FREES_A_VEHICLE.has(type)) freed = true;
    }
    for (let i = 0; i < conflicts.length; i += this.o.concurrency) {
      await Promise.all(
        conflicts.slice(i, i + this.o.concurrency).map(async (c) => {
          try {
            // The offers continue the trace of the change that displaced the booking (tracing on).
            const span = { parent: c.traceparent, attributes: { 'fleet.booking': c.bookingId } };
            const r = await inSpan('conflict.resolve', span, () => this.desk.resolve(c.bookingId));
            const decidedAt = r.record?.offeredAt ?? r.record?.waitingSince;
            if (r.record && decidedAt && r.outcome !== 'exists') {
              metrics.conflictTimeToOffer.observe(Math.max(0, decidedAt - r.record.conflictedAt) / 1000);
            }
            done.push(c.id);
          } catch (err) {
            // A booking gone (not found) is done; anything else stays pending and is retried.
            if (err instanceof DomainError && err.code === 'NOT_FOUND') done.push(c.id);
            else this.o.log?.error({ err, booking: c.bookingId }, 'conflict not resolved yet');
          }
        }),
      );
    }
    // A vehicle was freed: the conflicts waiting for one are tried again (the wait list), before
    // the entries are acknowledged, so a crash here tries them again.
    if (freed && (await this.redis.zcard(keys.waitlist(city))) > 0) {
      const r = await this.desk.retryWaiting(city);
      if (r.offered.length) this.o.log?.info({ city, offered: r.offered }, 'waiting conflicts offered a freed vehicle');
    }
    return done;
  }
}

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
