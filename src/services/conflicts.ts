/**
 * Conflicts become rebookings (architecture.md §4). A conflicted booking gets real offers — holds on the
 * most similar free vehicles of its city, each with an incentive — or, when nothing equivalent
 * or better is free, a cancellation with reason NO_ALTERNATIVE and a credit. The customer
 * accepts one offer (the booking moves, atomically) or declines; offers that lapse are closed
 * like a decline. The post-validation pass finds overlaps that slipped in another way and feeds
 * them to the same flow. Every write is one Lua script; this class finds and orders.
 */
import { offerPolicy } from '../config.ts';
import { randomUUID } from 'node:crypto';
import type { BookingEntry, CalendarEntry, Incentive } from '../domain/calendar.ts';
import { DomainError } from '../domain/errors.ts';
import { parseId } from '../domain/ids.ts';
import {
  alternativeKind,
  incentiveFor,
  noAlternativeCredit,
  rankAlternatives,
  type Alternative,
  type AlternativeKind,
  type OfferPolicy,
  type Original,
} from '../domain/offers.ts';
import type { Vehicle } from '../domain/vehicle.ts';
import { overlapLosers } from '../domain/calendar.ts';
import { keys } from '../redis/keys.ts';
import { commandReply, fromScript, luaList, runScript, stringList, type RedisConnection } from '../redis/scripts.ts';
import { metrics } from '../metrics.ts';
import { newId } from './ids.ts';
import { clearAtRisk } from './at-risk.ts';
import type { IncentiveLearner } from './incentives.ts';
import type { CommandOptions, Inventory } from './inventory.ts';
import type { ReadModel } from './read-model.ts';
import { AlternativeFinder, cityIn, originalOf, turnaroundOf } from './alternatives.ts';
import { pricingArgs } from './commands.ts';
import type { Price } from '../domain/pricing.ts';

export interface Offer {
  id: string;
  vehicleId: string;
  holdId: string;
  category: string;
  distanceKm: number;
  incentive: Incentive;
  status: 'open' | 'accepted' | 'released';
  /** The kind of alternative (domain/offers.ts ALTERNATIVE_KINDS); older records: absent. */
  kind?: AlternativeKind;
  /** back_to_back: the second vehicle, from `at` to the end; accepting makes its part a booking of its own (`bookingId`). */
  legs?: { vehicleId: string; holdId: string; bookingId: string; at: number; category: string; distanceKm: number };
  /** The offered window (a shifted offer's differs from the booking's). */
  from?: number;
  to?: number;
  shiftMinutes?: number;
  /** The alternative's price for the offered window (both vehicles' for back to back); absent on older records. */
  price?: Price;
  /** What the customer pays if they take it: the booking's price less the incentive's credit or refund. */
  customerPays?: { currency: string; total: number };
}

/** What Redis keeps per conflicted booking (HASH offers, field = booking id). */
export interface OfferRecord {
  bookingId: string;
  city: string;
  vehicleId: string;
  hostId: string;
  customerId: string;
  cause: string;
  conflictedAt: number;
  from: number;
  to: number;
  offeredAt?: number;
  /** `waiting`: nothing was free; on the wait list until `waitUntil` (the first vehicle freed is offered). */
  status: 'waiting' | 'open' | 'accepted' | 'declined' | 'lapsed' | 'no_alternative';
  waitingSince?: number;
  waitUntil?: number;
  expiresAt?: number;
  offers: Offer[];
  acceptedOfferId?: string;
  credit?: Incentive;
  resolvedAt?: number;
}

/** An alternative as make_offers takes it (its header). */
interface Candidate {
  vehicleId: string;
  offerId: string;
  holdId: string;
  category: string;
  distanceKm: number;
  incentive: Incentive;
  kind: AlternativeKind;
  from?: number;
  to?: number;
  shiftMinutes?: number;
  legs?: Offer['legs'];
}

export type ResolveOutcome =
  | 'offered'
  | 'waiting'
  | 'no_alternative'
  | 'exists'
  | 'not_conflicted'
  | 'not_found'
  | 'past';

export class ConflictDesk {
  readonly policy: OfferPolicy;
  private readonly alternatives: AlternativeFinder;

  constructor(
    private readonly redis: RedisConnection,
    private readonly inventory: Inventory,
    readModel: ReadModel,
    policy: Partial<OfferPolicy> = {},
    /** The learning offer policy (docs/prediction.md); without it, the configured credits as they are. */
    private readonly learner?: IncentiveLearner,
  ) {
    this.policy = { ...offerPolicy(), ...policy };
    this.alternatives = new AlternativeFinder(inventory, readModel, this.policy);
  }

  /**
   * The vehicles that could stand in for a booking in its own window, most similar first (the
   * same ranking as offers): what an at-risk booking is quietly held (services/late-returns.ts).
   */
  standbyCandidates(booking: BookingEntry, vehicle: Vehicle): Promise<Alternative[]> {
    return this.alternatives.standbyCandidates(booking, vehicle);
  }

  /** The inventory's clock (a simulation's shifted one, or the system's): one clock for the whole conflict path. */
  private now(): number {
    return this.inventory.clock.now();
  }

  /**
   * Makes the offers of a conflicted booking (once; later calls answer the record). With nothing
   * free, it waits (the wait list) until its start minus WAITLIST_CUTOFF_MINUTES, or, `final`,
   * is cancelled NO_ALTERNATIVE at once; a waiting booking is tried again by calling this.
   */
  async resolve(
    bookingId: string,
    options: { final?: boolean } = {},
  ): Promise<{ outcome: ResolveOutcome; record?: OfferRecord }> {
    const { entry: booking, vehicle } = await this.inventory.getEntry(bookingId, 'booking');
    if (booking.status !== 'conflicted') return { outcome: 'not_conflicted' };
    // A window already over cannot be rebooked; the conflict stays on record as it is.
    if (booking.to <= this.now()) return { outcome: 'past' };
    const city = vehicle.city;
    // A vehicle held for it while it was at risk is released first, so that it can be offered.
    if (booking.atRisk?.standby && !booking.atRisk.cleared)
      await clearAtRisk(this.redis, this.inventory, city, booking, vehicle.id, 'conflicted');
    const original = originalOf(booking, vehicle);
    const candidates = await this.candidatesFor(booking, vehicle, original);
    const waitUntil =
      options.final || this.policy.waitlistCutoffMinutes <= 0
        ? 0
        : booking.from - this.policy.waitlistCutoffMinutes * 60_000;
    const raw = await runScript(
      this.redis,
      'make_offers',
      [
        ...keys.vehicleKeys(city, vehicle.id),
        ...keys.cityScriptKeys(city),
        keys.offers(city),
        keys.offersDue(city),
        keys.waitlist(city),
        ...candidates.flatMap((c) => [
          ...keys.vehicleKeys(city, c.vehicleId),
          ...(c.legs ? keys.vehicleKeys(city, c.legs.vehicleId) : []),
        ]),
      ],
      [
        randomUUID(),
        city,
        this.turnaround(city),
        bookingId,
        vehicle.id,
        this.policy.offerTtlMs,
        this.policy.maxOffers,
        candidates.length ? JSON.stringify(candidates) : '[]',
        JSON.stringify(noAlternativeCredit(this.policy)),
        waitUntil,
        ...pricingArgs(cityIn(this.inventory, city)),
      ],
    );
    const out = fromScript<{ outcome: ResolveOutcome; record?: OfferRecord }>(raw);
    metrics.conflictOutcomes.inc({ outcome: out.outcome });
    return { outcome: out.outcome, ...(out.record ? { record: normalise(out.record) } : {}) };
  }

  /**
   * The offers to try, best first, one per vehicle (each at its best window), more than will be
   * made: one another resolver took a moment ago is skipped in the script. Two vehicles back to
   * back are looked for only when single vehicles are too few.
   */
  private async candidatesFor(booking: BookingEntry, vehicle: Vehicle, original: Original): Promise<Candidate[]> {
    const city = vehicle.city;
    const ranked = rankAlternatives(original, await this.alternatives.alternativesFor(booking, vehicle), this.policy);
    const seen = new Set<string>();
    const singles = ranked.filter((a) => !seen.has(a.vehicleId) && seen.add(a.vehicleId));
    const pairs =
      this.policy.backToBack && singles.length < this.policy.maxOffers
        ? await this.alternatives.backToBack(booking, vehicle, original)
        : [];
    return [...singles.slice(0, this.policy.maxOffers * 3), ...pairs].map((a) => {
      const kind = alternativeKind(original, a, this.policy);
      const incentive = incentiveFor(original, a, this.policy);
      return {
        vehicleId: a.vehicleId,
        offerId: newId('offer', city),
        holdId: newId('hold', city),
        category: a.category,
        distanceKm: a.distanceKm,
        incentive: this.learner ? this.learner.adjust(city, kind, incentive) : incentive,
        kind,
        ...(a.shiftMinutes ? { from: a.from, to: a.to, shiftMinutes: a.shiftMinutes } : {}),
        ...(a.legs
          ? {
              legs: {
                vehicleId: a.legs.vehicleId,
                holdId: newId('hold', city),
                bookingId: newId('booking', city),
                at: a.legs.at,
                category: a.legs.category,
                distanceKm: a.legs.distanceKm,
              },
            }
          : {}),
      };
    });
  }

  /** The city's conflicts still under way — offers open, or waiting for a car — soonest deadline first. */
  async openOffers(city: string): Promise<OfferRecord[]> {
    const all = Object.values(await this.redis.hgetall(keys.offers(city))).map((raw) =>
      normalise(fromScript<OfferRecord>(raw)),
    );
    const deadline = (r: OfferRecord) => r.expiresAt ?? r.waitUntil ?? 0;
    return all.filter((r) => r.status === 'open' || r.status === 'waiting').sort((a, b) => deadline(a) - deadline(b));
  }

  /** The offers of a booking, as they stand. */
  async offersOf(bookingId: string): Promise<OfferRecord> {
    const city = this.cityOf(bookingId);
    const raw = await this.redis.hget(keys.offers(city), bookingId);
    if (!raw)
      throw new DomainError('NOT_FOUND', `no offers for booking ${bookingId}`, { entity: 'offers', id: bookingId });
    return normalise(fromScript<OfferRecord>(raw));
  }

  /** The customer (`customerId`; undefined for staff) takes one offer: the booking moves. */
  async accept(
    bookingId: string,
    offerId: string,
    customerId: string | undefined,
    opts: CommandOptions = {},
  ): Promise<{ booking: BookingEntry; record: OfferRecord; replayed: boolean }> {
    const record = await this.offersOf(bookingId);
    const city = record.city;
    const reply = await this.recordCommand(
      'accept_offer',
      record,
      opts,
      [bookingId, offerId],
      [bookingId, offerId, customerId ?? ''],
    );
    const { out, replayed } = commandReply<{ booking: BookingEntry; record: OfferRecord }>(reply);
    await this.inventory.remotelyConfirmed(city);
    const record2 = normalise(out.record);
    if (!replayed) this.learner?.observe(city, record2.offers, offerId);
    return { booking: out.booking, record: record2, replayed };
  }

  /** The customer declines every offer: the booking is cancelled with a full refund. */
  async decline(
    bookingId: string,
    customerId: string | undefined,
    opts: CommandOptions = {},
  ): Promise<{ booking?: BookingEntry; record: OfferRecord; replayed: boolean }> {
    return this.close(bookingId, customerId, 'declined', opts);
  }

  /**
   * The wait list of `city` tried again, soonest deadline first, after a vehicle was freed: each
   * waiting conflict gets offers if something fits it now. make_offers checks and holds in one
   * step, so a freed vehicle goes to exactly one of them.
   */
  async retryWaiting(city: string): Promise<{ offered: string[]; cancelled: string[] }> {
    const waiting = await this.redis.zrange(keys.waitlist(city), '0', '199');
    return this.settleWaiting(waiting, false);
  }

  /** The conflicts of `city` waiting for a vehicle now (their records). */
  async waitingIn(city: string): Promise<OfferRecord[]> {
    const ids = await this.redis.zrange(keys.waitlist(city), '0', '-1');
    if (!ids.length) return [];
    const raws = await this.redis.hmget(keys.offers(city), ...ids);
    return raws
      .filter((r): r is string => r !== null)
      .map((r) => normalise(fromScript<OfferRecord>(r)))
      .filter((r) => r.status === 'waiting');
  }

  /** Waiting conflicts of `city` whose wait is over: a last try, then NO_ALTERNATIVE. */
  async expireWaiting(city: string): Promise<{ offered: string[]; cancelled: string[] }> {
    const due = await this.redis.zrangebyscore(keys.waitlist(city), '-inf', String(this.now()), 'LIMIT', 0, 100);
    return this.settleWaiting(due, true);
  }

  private async settleWaiting(
    ids: readonly string[],
    final: boolean,
  ): Promise<{ offered: string[]; cancelled: string[] }> {
    const offered: string[] = [];
    const cancelled: string[] = [];
    for (const id of ids) {
      const r = await this.resolve(id, { final });
      if (r.outcome === 'offered') offered.push(id);
      else if (r.outcome === 'no_alternative') cancelled.push(id);
    }
    return { offered, cancelled };
  }

  /** Closes the open offers of `city` whose time is up; returns the bookings closed. */
  async lapseDue(city: string): Promise<string[]> {
    const due = await this.redis.zrangebyscore(keys.offersDue(city), '-inf', this.now(), 'LIMIT', 0, 100);
    const closed: string[] = [];
    for (const bookingId of due) {
      try {
        await this.close(bookingId, undefined, 'lapsed', {});
        closed.push(bookingId);
      } catch (err) {
        // Not yet due by Redis's clock, or closed meanwhile: the next round sees.
        if (!(err instanceof DomainError)) throw err;
        if (err.code === 'INVALID_STATE' || err.code === 'NOT_FOUND') {
          await runScript(this.redis, 'unschedule_lapse', [keys.offers(city), keys.offersDue(city)], [bookingId]);
        }
      }
    }
    return closed;
  }

  /**
   * The post-validation pass over a city: every confirmed booking that overlaps another booking
   * or an active block (turnaround included) is marked `conflicted` — the later-made one of two
   * bookings, a booking always before a block or a trip under way — and so reaches the resolver.
   * Also resolves conflicted bookings that never got offers (a lost event, a resolver crash).
   */
  async postValidate(city: string): Promise<{ vehicles: number; conflicted: string[]; resolved: string[] }> {
    const turnaround = this.turnaround(city);
    const conflicted: string[] = [];
    const resolved: string[] = [];
    const vehicles = await this.redis.smembers(keys.vehicles(city));
    // Calendars are read in pipelined chunks (a city of thousands of vehicles in a few round
    // trips); the suspects are then re-checked atomically by mark_conflicted.
    for (let i = 0; i < vehicles.length; i += 200) {
      const chunk = vehicles.slice(i, i + 200);
      const pipe = this.redis.pipeline();
      for (const v of chunk) pipe.hvals(keys.calendar(city, v));
      // A calendar that could not be read is not an empty one: the pass fails and runs again.
      const calendars = ((await pipe.exec()) ?? []).map(([err, raw]) => {
        if (err) throw err;
        return stringList(raw).map((j) => fromScript<CalendarEntry>(j));
      });
      const now = this.now();
      for (const [k, vehicleId] of chunk.entries()) {
        const entries = calendars[k] ?? [];
        for (const b of overlapLosers(entries, turnaround, now)) {
          const raw = await runScript(
            this.redis,
            'mark_conflicted',
            [...keys.vehicleKeys(city, vehicleId), ...keys.cityScriptKeys(city), keys.noIdempotency(city)],
            [randomUUID(), '', city, vehicleId, turnaround, b.id],
          );
          if (commandReply<{ outcome: string }>(raw).out.outcome === 'conflicted') conflicted.push(b.id);
        }
        for (const e of entries) {
          if (
            e.kind === 'booking' &&
            e.status === 'conflicted' &&
            e.to > now &&
            (e.conflictedAt ?? 0) < now - 5_000 &&
            !(await this.hasOffersFor(city, e.id, e.conflictedAt))
          ) {
            await this.resolve(e.id);
            resolved.push(e.id);
          }
        }
      }
    }
    return { vehicles: vehicles.length, conflicted, resolved };
  }

  /** Whether this conflict (not an earlier one of the same booking) got its offers. */
  private async hasOffersFor(city: string, bookingId: string, conflictedAt: number | undefined): Promise<boolean> {
    const raw = await this.redis.hget(keys.offers(city), bookingId);
    return raw !== null && fromScript<OfferRecord>(raw).conflictedAt === conflictedAt;
  }

  private async close(
    bookingId: string,
    customerId: string | undefined,
    outcome: 'declined' | 'lapsed',
    opts: CommandOptions,
  ) {
    const record = await this.offersOf(bookingId);
    const city = record.city;
    const reply = await this.recordCommand(
      'close_offers',
      record,
      opts,
      [bookingId, outcome],
      [bookingId, customerId ?? '', outcome],
    );
    const { out, replayed } = commandReply<{ booking?: BookingEntry; record: OfferRecord }>(reply);
    metrics.conflictOutcomes.inc({ outcome });
    if (!replayed) this.learner?.observe(city, normalise(out.record).offers);
    return {
      ...(out.booking && 'id' in out.booking ? { booking: out.booking } : {}),
      record: normalise(out.record),
      replayed,
    };
  }

  /**
   * A script on the offer record and its vehicles (accept_offer, close_offers): idempotent by
   * `fingerprintArgs`, its arguments after the common prefix (command id, fingerprint, city,
   * turnaround), run in the caller's context.
   */
  private recordCommand(
    script: 'accept_offer' | 'close_offers',
    record: OfferRecord,
    opts: CommandOptions,
    fingerprintArgs: unknown[],
    args: (string | number)[],
  ): Promise<unknown> {
    const idem = this.inventory.idempotency(record.city, script, opts, fingerprintArgs);
    return runScript(
      this.redis,
      script,
      this.recordKeys(record, idem.key),
      [opts.commandId ?? randomUUID(), idem.fingerprint, record.city, this.turnaround(record.city), ...args],
      opts.context,
    );
  }

  private recordKeys(record: OfferRecord, idemKey: string): string[] {
    const city = record.city;
    return [
      ...keys.vehicleKeys(city, record.vehicleId),
      ...keys.cityScriptKeys(city),
      keys.offers(city),
      keys.offersDue(city),
      idemKey,
      ...record.offers.flatMap((o) => [
        ...keys.vehicleKeys(city, o.vehicleId),
        ...(o.legs ? keys.vehicleKeys(city, o.legs.vehicleId) : []),
      ]),
    ];
  }

  private turnaround(city: string): number {
    return turnaroundOf(this.inventory, city);
  }

  private cityOf(bookingId: string): string {
    const parsed = typeof bookingId === 'string' ? parseId(bookingId) : undefined;
    if (!parsed || parsed.kind !== 'booking' || !this.inventory.cities.get(parsed.city)) {
      throw new DomainError('NOT_FOUND', `booking ${String(bookingId)} not found`, {
        entity: 'booking',
        id: bookingId,
      });
    }
    return parsed.city;
  }
}

/** cjson writes an empty array as {}. */
function normalise(r: OfferRecord): OfferRecord {
  return { ...r, offers: luaList(r.offers) };
}
