/**
 * A marketplace week on the real engine (the comparisons of docs/prediction.md and
 * docs/conflicts.md): its real Redis scripts on a shifted clock, in this process, one private city
 * on the shared Redis. The marketplace knows what the service never sees: each customer's favourite
 * category and how much an incentive sways them, each host's habit of bringing cars back late, the
 * weekly rhythm of demand, cars that break down or go to the workshop. Customers search and book
 * down the list they are shown; cars come back when their host's habit says; a late return, an
 * accident or a maintenance conflicts the bookings it overlaps, the conflict desk makes its offers
 * (or puts the booking on the wait list), and the customer weighs them.
 *
 * The customer's decision model is fixed (issue 24 keeps it as it was): a base chance of 0.4 for the
 * same class and 0.6 for an upgrade, raised by the credit (a third as much for an upgrade's value),
 * at most 0.95; a new kind of alternative gets no more than the same class's base unless it is an
 * upgrade (a class down, two cars one after the other: 0.3; delivered from further away, moved in
 * time: 0.4).
 */
import { Redis } from 'ioredis';
import { offerPolicy, reservePolicy } from '../config.ts';
import { CityCatalog, type City } from '../domain/cities.ts';
import type { EndedTrip } from '../domain/late-returns.ts';
import { profileOf, rankingFor } from '../domain/ranking.ts';
import { inTurn, pick, rng } from '../domain/random.ts';
import { CATEGORIES, FUELS, TRANSMISSIONS } from '../domain/vehicle.ts';
import { ShiftedClock } from '../redis/clock.ts';
import { cityKeyPattern, keys } from '../redis/keys.ts';
import { runScript } from '../redis/scripts.ts';
import { ConflictDesk, type OfferRecord } from '../services/conflicts.ts';
import { IncentiveLearner } from '../services/incentives.ts';
import { Inventory } from '../services/inventory.ts';
import { LateReturnWatch } from '../services/late-returns.ts';
import { ReadModel } from '../services/read-model.ts';
import { ReservePlanner } from '../services/reserve.ts';
import {
  demandShape,
  emptyFigures,
  poisson,
  takeChance,
  type Features,
  type SimCustomer,
  type SimHost,
  type Trip,
  type WeekFigures,
  type WeekOptions,
} from './market-model.ts';

export { demandShape, poisson, takeChance, type Features, type WeekFigures, type WeekOptions } from './market-model.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

async function wipe(redis: Redis, city: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', cityKeyPattern(city), 'COUNT', 1000);
    cursor = next;
    if (batch.length) await runScript(redis, 'wipe_city', batch, []);
  } while (cursor !== '0');
}

/** One week: the marketplace, its engine and what it counts. */
export class MarketWeek {
  readonly f: WeekFigures;
  private readonly rand: () => number;
  private readonly hostOf = new Map<string, SimHost>();
  private customers: SimCustomer[] = [];
  private readonly history: EndedTrip[] = [];
  private readonly booked = new Map<string, Trip>();
  private readonly out = new Map<string, Trip & { returnAt: number }>();
  private readonly switchedFrom = new Map<string, { vehicleId: string; from: number }>();
  private readonly accidents = new Map<string, number>();
  private readonly waiting = new Set<string>();
  private measuring = false;
  private occupancy = { sum: 0, samples: 0 };
  private lastPlan = 0;

  private constructor(
    private readonly o: WeekOptions,
    private readonly features: Features,
    private readonly city: City,
    private readonly redis: Redis,
    private readonly clock: ShiftedClock,
    private readonly inv: Inventory,
    private readonly readModel: ReadModel,
    private readonly desk: ConflictDesk,
    private readonly watch: LateReturnWatch,
    private readonly reserve: ReservePlanner | undefined,
    readonly learner: IncentiveLearner,
  ) {
    this.f = emptyFigures(features);
    this.rand = rng(o.seed);
  }

  static async open(o: WeekOptions, features: Features, tag: string): Promise<MarketWeek> {
    const city: City = {
      id: `cmp${tag}${o.seed % 100000}`,
      name: `compare ${tag}`,
      timeZone: 'UTC',
      turnaroundMs: 30 * MINUTE,
      center: { lat: 12.97, lng: 77.59 },
      currency: 'INR',
    };
    const cities = new CityCatalog([city]);
    const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 3 });
    await wipe(redis, city.id);
    const clock = new ShiftedClock(redis);
    const inv = new Inventory(redis, { clock, cities, maxLiveHoldsPerCustomer: 10_000 });
    const readModel = new ReadModel(redis, inv, cities);
    const learner = new IncentiveLearner(undefined, { seed: o.seed });
    // Without the conflict features: the offers as they were (no class down, no wait list, no pair).
    const base = features.conflicts ? {} : { downgradeTiers: 0, waitlistCutoffMinutes: 0, backToBack: false };
    const desk = new ConflictDesk(redis, inv, readModel, { offerTtlMs: 6 * HOUR, ...base }, learner);
    const watch = new LateReturnWatch(redis, inv, readModel, desk, undefined, {
      threshold: 0.3,
      leadMs: 6 * HOUR,
      standbyCap: features.conflicts ? 2 : Number.POSITIVE_INFINITY,
    });
    const reserve = features.conflicts
      ? new ReservePlanner(redis, inv, readModel, reservePolicy(), offerPolicy())
      : undefined;
    const run = new MarketWeek(o, features, city, redis, clock, inv, readModel, desk, watch, reserve, learner);
    await run.populate();
    await readModel.start();
    return run;
  }

  /** Hosts with their hidden habits, their vehicles, and customers with their hidden tastes. */
  private async populate(): Promise<void> {
    // Start on a Monday 00:00 UTC, so the week's rhythm starts where a week starts.
    const monday = Math.ceil((Date.now() + DAY) / DAY) * DAY;
    this.clock.advanceTo(monday + ((8 - new Date(monday).getUTCDay()) % 7) * DAY);
    const hosts: SimHost[] = Array.from({ length: 12 }, (_, i) => ({
      id: `host-${i}`,
      lateP: i % 3 === 0 ? 0.6 : 0.06,
      meanLateMinutes: i % 3 === 0 ? 110 : 25,
    }));
    for (let i = 0; i < this.o.vehicles; i++) {
      const category = pick(CATEGORIES, this.rand, 1.4);
      const host = inTurn(hosts, i);
      const r = await this.inv.createVehicle(
        this.city.id,
        {
          hostId: host.id,
          category,
          seats: category === 'suv' ? 7 : 5,
          make: 'Sim',
          model: category,
          transmission: TRANSMISSIONS[i % 2] as (typeof TRANSMISSIONS)[number],
          fuel: FUELS[i % FUELS.length] as (typeof FUELS)[number],
          location: { lat: 12.97 + (this.rand() - 0.5) * 0.1, lng: 77.59 + (this.rand() - 0.5) * 0.1 },
          pricePerHour: Math.round((8 + CATEGORIES.indexOf(category) * 6 + this.rand() * 4) * 100) / 100,
        },
        // Ids of the run's own, in creation order: equal scores are ordered by id (TopK), and a
        // generated id is random, so the same seed would not play the same week twice.
        { id: `veh_${this.city.id}_sim${String(i).padStart(6, '0')}` },
      );
      this.hostOf.set(r.vehicleId, host);
    }
    this.customers = Array.from({ length: this.o.customers }, (_, i) => ({
      id: `sim-c${i}`,
      likes: pick(CATEGORIES, this.rand),
      swayedBy: 0.004 + this.rand() * 0.012,
      trips: [],
    }));
  }

  async play(): Promise<WeekFigures> {
    const start = this.clock.now();
    const end = start + (this.o.warmupDays + this.o.days) * DAY;
    const step = this.o.stepMinutes * MINUTE;
    while (this.clock.now() < end) {
      this.clock.advance(step);
      const now = this.clock.now();
      if (!this.measuring && now >= start + this.o.warmupDays * DAY) {
        this.measuring = true;
        this.watch.fitFrom(this.history);
        this.learner.enabled = this.features.learning;
      }
      await this.readModel.catchUp([this.city.id]);
      if (this.reserve && this.measuring && now - this.lastPlan >= HOUR) {
        this.lastPlan = now;
        await this.reserve.plan(this.city.id);
      }
      await this.searchAndBook(now, step);
      await this.bringCarsBack(now);
      await this.incidents(now, step);
      await this.settleWaitList();
      await this.startTrips(now);
      if (this.measuring && this.features.atRisk) await this.actOnRisks();
      if (this.measuring) this.sampleOccupancy(now);
    }
    await this.readModel.stop();
    await wipe(this.redis, this.city.id);
    this.redis.disconnect();
    return this.figures();
  }

  private figures(): WeekFigures {
    const f = this.f;
    f.searchToBook = f.searches ? f.bookings / f.searches : 0;
    f.utilisation = this.occupancy.samples ? this.occupancy.sum / this.occupancy.samples : 0;
    f.conversion = f.conflicts ? f.accepted / f.conflicts : null;
    f.costPerConversion = f.accepted ? f.incentiveCost / f.accepted : null;
    f.netRevenue = Math.round(f.revenue - f.incentiveCost - f.noAlternative * this.desk.policy.noAlternativeCredit);
    f.revenue = Math.round(f.revenue);
    return { ...f, ...(this.features.learning ? { learned: this.learner.report() } : {}) };
  }

  /** The share of the fleet booked or on a trip now. */
  private sampleOccupancy(now: number): void {
    let busy = 0;
    let fleet = 0;
    for (const v of this.readModel.vehiclesOf(this.city.id)) {
      fleet++;
      for (const e of v.entries.values())
        if (
          e.kind === 'booking' &&
          (e.status === 'confirmed' || e.status === 'active') &&
          e.from <= now &&
          e.to > now
        ) {
          busy++;
          break;
        }
    }
    this.occupancy.sum += fleet ? busy / fleet : 0;
    this.occupancy.samples++;
  }

  /** Customers search and book down the list they are shown. */
  private async searchAndBook(now: number, step: number): Promise<void> {
    const mean = (this.o.searchesPerHour * this.o.demand * demandShape(now) * step) / HOUR;
    const arrivals = poisson(mean, this.rand);
    for (let a = 0; a < arrivals; a++) {
      const c = pick(this.customers, this.rand);
      const from = Math.ceil(now / HOUR) * HOUR + (2 + Math.floor(this.rand() * 46)) * HOUR;
      const to = from + (2 + Math.floor(this.rand() * 22)) * HOUR;
      const ranked = this.measuring && this.features.forYou;
      const { hits } = await this.readModel.search(this.city.id, {
        from,
        to,
        limit: 10,
        ...(ranked ? { sort: 'for_you' as const, rank: rankingFor(profileOf(c.trips)) } : { sort: 'price' as const }),
      });
      if (this.measuring) this.f.searches++;
      let took = false;
      for (const [i, h] of hits.entries()) {
        if (this.rand() >= (h.category === c.likes ? 0.45 : 0.05) * 0.85 ** i) continue;
        try {
          const r = await this.inv.book({ vehicleId: h.vehicleId, customerId: c.id, from, to });
          const value = h.pricePerHour * ((to - from) / HOUR);
          this.booked.set(r.booking.id, { customer: c, from, to, vehicleId: h.vehicleId, value });
          c.trips.push({
            category: h.category,
            pricePerHour: h.pricePerHour,
            lat: h.location.lat,
            lng: h.location.lng,
            hours: (to - from) / HOUR,
          });
          took = true;
          if (this.measuring) {
            this.f.bookings++;
            this.f.revenue += value;
          }
        } catch {
          // Taken meanwhile: the customer walks away.
        }
        break;
      }
      if (!took && this.measuring && this.reserve) this.countReserveRefusal(c, from, to, hits.length);
    }
  }

  /** A customer who took nothing while a car of the class they like was kept back for that window. */
  private countReserveRefusal(c: SimCustomer, from: number, to: number, shown: number): void {
    if (shown >= 3) return; // they saw enough to choose from: the reserve took nothing from them
    const now = this.clock.now();
    const reserved = this.readModel.entries(
      (e) => e.kind === 'hold' && !!e.reserve && e.status === 'held' && e.expiresAt > now && e.from < to && e.to > from,
    );
    if (reserved.some((r) => this.readModel.vehicle(this.city.id, r.vehicleId)?.category === c.likes))
      this.f.refusedByReserve++;
  }

  /** Cars come back, on time or early mostly, late by their host's habit; late ones conflict the next booking. */
  private async bringCarsBack(now: number): Promise<void> {
    for (const [id, t] of this.out) {
      if (t.returnAt > now) continue;
      this.out.delete(id);
      try {
        const r = await this.inv.completeTrip(id, t.customer.id);
        this.history.push({
          hostId: this.hostOf.get(t.vehicleId)?.id ?? '',
          vehicleId: t.vehicleId,
          customerId: t.customer.id,
          scheduledEnd: t.to,
          hours: (t.to - t.from) / HOUR,
          lateMinutes: (r.at - t.to) / MINUTE,
        });
        if (r.at > t.to && this.measuring) this.f.tripsLate++;
        for (const [bid, s] of this.switchedFrom)
          if (s.vehicleId === t.vehicleId && r.at + this.city.turnaroundMs > s.from) {
            if (this.measuring) this.f.prevented++;
            this.switchedFrom.delete(bid);
          }
        for (const eventId of r.events) await this.conflicted(eventId, true);
      } catch {
        // A trip already ended (a conflict moved things along): nothing to bring back.
      }
    }
  }

  /**
   * Cars break down (an open accident, cleared some hours later) or go to the workshop (a
   * maintenance booked a few hours ahead): the bookings they overlap conflict, most of them
   * before their start — which the wait list can still help.
   */
  private async incidents(now: number, step: number): Promise<void> {
    for (const [blockId, clearAt] of this.accidents) {
      if (clearAt > now) continue;
      this.accidents.delete(blockId);
      await this.inv.removeBlock(blockId).catch(() => undefined); // the block ended on its own meanwhile
    }
    const p = (this.o.incidentsPerVehicleDay * step) / DAY;
    for (const v of this.readModel.vehiclesOf(this.city.id)) {
      if (this.rand() >= p) continue;
      const accident = this.rand() < 0.5;
      try {
        const from = accident ? now : Math.ceil(now / HOUR) * HOUR + (3 + Math.floor(this.rand() * 20)) * HOUR;
        const to = from + (4 + Math.floor(this.rand() * 12)) * HOUR;
        const r = await this.inv.placeBlock(
          accident ? { vehicleId: v.id, reason: 'accident' } : { vehicleId: v.id, reason: 'maintenance', from, to },
        );
        if (accident) this.accidents.set(r.block.id, to);
        for (const eventId of r.events) await this.conflicted(eventId, false);
      } catch {
        // A trip under way or a block already there: no second incident.
      }
    }
  }

  /** A booking a late return, an accident or a maintenance conflicted: the desk offers, the customer weighs them. */
  private async conflicted(eventId: string, atPickup: boolean): Promise<void> {
    const [ev] = await this.redis.xrange(keys.events(this.city.id), eventId, eventId);
    const fields = ev?.[1] ?? [];
    const subject = fields[fields.indexOf('subject') + 1];
    if (fields[fields.indexOf('type') + 1] !== 'booking.conflicted' || !subject) return;
    if (!this.booked.has(subject)) return;
    if (this.measuring) {
      if (atPickup) this.f.conflictsAtPickup++;
      this.f.conflicts++;
    }
    const res = await this.desk.resolve(subject);
    await this.outcome(subject, res.outcome, res.record);
  }

  private async outcome(bookingId: string, outcome: string, record: OfferRecord | undefined): Promise<void> {
    const b = this.booked.get(bookingId);
    if (!b) return;
    if (outcome === 'waiting') {
      if (!this.waiting.has(bookingId) && this.measuring) this.f.waited++;
      this.waiting.add(bookingId);
      return;
    }
    if (outcome === 'no_alternative') {
      this.waiting.delete(bookingId);
      if (this.measuring) {
        this.f.noAlternative++;
        this.f.revenue -= b.value;
      }
      this.booked.delete(bookingId);
      return;
    }
    if (outcome !== 'offered' || !record) return;
    if (this.waiting.delete(bookingId) && this.measuring) this.f.waitedOffered++;
    const offers = record.offers;
    const best = [...offers].sort((x, y) => takeChance(y, b.customer.swayedBy) - takeChance(x, b.customer.swayedBy))[0];
    if (best && this.rand() < takeChance(best, b.customer.swayedBy)) {
      await this.desk.accept(bookingId, best.id, b.customer.id);
      this.booked.set(bookingId, {
        ...b,
        vehicleId: best.vehicleId,
        from: best.from ?? b.from,
        to: best.legs?.at ?? best.to ?? b.to,
      });
      if (best.legs)
        this.booked.set(best.legs.bookingId, { ...b, vehicleId: best.legs.vehicleId, from: best.legs.at, value: 0 });
      if (this.measuring) {
        this.f.accepted++;
        this.f.incentiveCost += best.incentive.amount;
        const kind = best.kind ?? 'same_category';
        this.f.acceptedByKind[kind] = (this.f.acceptedByKind[kind] ?? 0) + 1;
      }
    } else if (offers.length) {
      await this.desk.decline(bookingId, b.customer.id);
      if (this.measuring) this.f.revenue -= b.value;
      this.booked.delete(bookingId);
    }
  }

  /** The wait list: tried again after what freed cars this step; those past their cut-off cancelled. */
  private async settleWaitList(): Promise<void> {
    if (!this.waiting.size) return;
    const tried = await this.desk.retryWaiting(this.city.id);
    for (const id of tried.offered) await this.outcome(id, 'offered', await this.desk.offersOf(id));
    const expired = await this.desk.expireWaiting(this.city.id);
    for (const id of expired.offered) await this.outcome(id, 'offered', await this.desk.offersOf(id));
    for (const id of expired.cancelled) await this.outcome(id, 'no_alternative', undefined);
  }

  /** Trips whose window has begun start, if the car is there; when it comes back is the host's habit. */
  private async startTrips(now: number): Promise<void> {
    for (const [id, b] of this.booked) {
      if (b.from > now || this.waiting.has(id)) continue;
      try {
        await this.inv.startTrip(id, b.customer.id);
        const host = this.hostOf.get(b.vehicleId);
        if (!host) throw new Error(`vehicle ${b.vehicleId} has no host in the simulation`);
        const returnAt =
          this.rand() < host.lateP
            ? b.to + Math.round(-host.meanLateMinutes * Math.log(1 - this.rand())) * MINUTE
            : b.to - Math.floor(this.rand() * 60) * MINUTE;
        this.out.set(id, { ...b, returnAt: Math.max(now + MINUTE, returnAt) });
        this.booked.delete(id);
      } catch {
        // The car is not back yet (its late return will conflict this booking), or the booking moved.
        if (b.to <= now) this.booked.delete(id);
      }
    }
  }

  /** Late returns seen coming: the customer switches to the held vehicle (7 in 10), or waits. */
  private async actOnRisks(): Promise<void> {
    const { flagged } = await this.watch.scanCity(this.city.id);
    for (const x of flagged) {
      if (!x.again) this.f.atRiskFlagged++;
      const b = this.booked.get(x.bookingId);
      if (!b || !x.standby || this.rand() >= 0.7) continue;
      try {
        await this.watch.switchToStandby(await this.inv.getEntry(x.bookingId, 'booking'), b.customer.id);
        this.f.switched++;
        this.switchedFrom.set(x.bookingId, { vehicleId: b.vehicleId, from: b.from });
        this.booked.set(x.bookingId, { ...b, vehicleId: x.standby.vehicleId });
      } catch {
        // The standby went meanwhile: the customer waits.
      }
    }
  }
}

export async function playWeek(o: WeekOptions, features: Features, tag: string): Promise<WeekFigures> {
  return (await MarketWeek.open(o, features, tag)).play();
}
