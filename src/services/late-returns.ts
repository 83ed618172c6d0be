/**
 * Late returns, seen coming (docs/prediction.md). For every trip under way, the late-return model
 * (src/domain/late-returns.ts, fitted on the trips PostgreSQL holds) estimates how likely the car
 * is to be out past the start of the vehicle's next booking, turnaround included. A booking within
 * the lead time whose probability reaches the threshold is marked at risk and the most similar
 * free vehicle is held for it quietly (`hold_standby`); its customer hears of it at once
 * (`booking.at_risk`, over WebSocket and webhooks) and may switch now (`switchToStandby`) or wait.
 * When the car comes back in time the standby is released (`clear_at_risk`); when it does not, the
 * conflict flow takes over, the standby released first so that it can be offered.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { completedTrips } from '../pg/history.ts';
import { atRiskPolicy } from '../config.ts';
import type { BookingEntry } from '../domain/calendar.ts';
import { tierOf, type Vehicle } from '../domain/vehicle.ts';
import { DomainError } from '../domain/errors.ts';
import {
  type AtRiskPolicy,
  fitLateReturns,
  lateRisk,
  pOverrunPast,
  type EndedTrip,
  type LateReturnModel,
  type LateRisk,
} from '../domain/late-returns.ts';
import { keys } from '../redis/keys.ts';
import { commandReply, fromScript, runScript, type RedisConnection } from '../redis/scripts.ts';
import { clearAtRisk } from './at-risk.ts';
import type { ConflictDesk } from './conflicts.ts';
import { areaOf } from './forecast.ts';
import { newId } from './ids.ts';
import type { CommandOptions, Inventory } from './inventory.ts';
import type { ReadModel } from './read-model.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export interface Flagged {
  bookingId: string;
  /** Marked at risk before, without a standby; a vehicle is held for it now. */
  again: boolean;
  tripId: string;
  probability: number;
  standby?: { vehicleId: string; holdId: string };
  risk: LateRisk;
}

/** The trips that ended, as the late-return model learns from them (PostgreSQL's bookings). */
export async function endedTrips(pool: pg.Pool, limit = 50_000): Promise<EndedTrip[]> {
  const rows = await completedTrips(pool, limit);
  return rows.map((r) => ({
    hostId: r.hostId,
    vehicleId: r.vehicleId,
    customerId: r.customerId,
    scheduledEnd: r.scheduledEnd,
    hours: (r.scheduledEnd - r.from) / HOUR,
    lateMinutes: (r.completedAt - r.scheduledEnd) / MINUTE,
  }));
}

export class LateReturnWatch {
  readonly policy: AtRiskPolicy;
  private model: LateReturnModel = fitLateReturns([]);
  private fittedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly redis: RedisConnection,
    private readonly inventory: Inventory,
    private readonly readModel: ReadModel,
    private readonly desk: ConflictDesk,
    private readonly pool: pg.Pool | undefined,
    policy: Partial<AtRiskPolicy> = {},
  ) {
    this.policy = { ...atRiskPolicy(), ...policy };
  }

  /** The model as last fitted (its trips, late rate, mean overrun). */
  get current(): LateReturnModel {
    return this.model;
  }

  /** Fits the model on PostgreSQL's history (without PostgreSQL, a prior: 1 trip in 20 late). */
  async refit(): Promise<LateReturnModel> {
    return this.fitFrom(this.pool ? await endedTrips(this.pool) : []);
  }

  /** Fits the model on these trips (the simulator's own history); kept for `refitMs`. */
  fitFrom(history: readonly EndedTrip[]): LateReturnModel {
    this.model = fitLateReturns(history);
    this.fittedAt = Date.now();
    return this.model;
  }

  /**
   * One pass over a city: at-risk bookings whose risk is over are cleared, then the next booking
   * after each trip under way is judged. Returns what was flagged and cleared.
   */
  async scanCity(city: string): Promise<{ flagged: Flagged[]; cleared: string[] }> {
    if (Date.now() - this.fittedAt >= this.policy.refitMs) await this.refit();
    await this.readModel.catchUp([city]);
    const now = this.inventory.clock.now();
    const turnaround = this.inventory.cities.get(city)?.turnaroundMs ?? 0;
    const flagged: Flagged[] = [];
    const cleared: string[] = [];
    for (const v of this.readModel.vehiclesOf(city)) {
      const bookings = [...v.entries.values()].filter((e): e is BookingEntry => e.kind === 'booking');
      const active = bookings.find((b) => b.status === 'active');
      for (const b of bookings) {
        if (!b.atRisk || b.atRisk.cleared || b.status === 'reaccommodated') continue;
        const reason =
          b.status === 'conflicted'
            ? 'conflicted'
            : b.status === 'cancelled'
              ? 'ended'
              : b.status !== 'confirmed' || active?.id !== b.atRisk.tripId
                ? 'trip_back'
                : undefined;
        if (!reason) continue;
        await clearAtRisk(this.redis, this.inventory, city, b, v.id, reason);
        cleared.push(b.id);
      }
      if (!active) continue;
      const next = bookings
        .filter((b) => b.status === 'confirmed' && b.from >= active.from && b.from - now <= this.policy.leadMs)
        .sort((a, b) => a.from - b.from)[0];
      if (!next || next.from <= now) continue;
      const held = !!(next.atRisk && !next.atRisk.cleared && next.atRisk.standby);
      const risk = lateRisk(this.model, {
        hostId: v.hostId,
        vehicleId: v.id,
        customerId: active.customerId,
        scheduledEnd: active.to,
        hours: (active.to - active.from) / HOUR,
      });
      const gapMinutes = (next.from - turnaround - active.to) / MINUTE;
      // Already late: overruns are memoryless, so what matters is the gap still ahead.
      const overdueMinutes = Math.max(0, (now - active.to) / MINUTE);
      const p =
        overdueMinutes > 0
          ? Math.exp(-Math.max(0, gapMinutes - overdueMinutes) / Math.max(1, risk.meanOverrunMinutes))
          : pOverrunPast(risk, gapMinutes);
      // A standby held while the risk was high goes back once it has fallen well below the mark
      // (half of it: a risk hovering at the mark does not hold and release a car each scan).
      if (held && p < this.policy.threshold / 2) {
        await clearAtRisk(this.redis, this.inventory, city, next, v.id, 'risk_fell');
        cleared.push(next.id);
        continue;
      }
      // Marked already: tried again only while no vehicle is held for it.
      if (held || p < this.policy.threshold) continue;
      const f = await this.holdStandby(city, v.id, next, active, p, risk);
      if (f) flagged.push(f);
    }
    return { flagged, cleared };
  }

  private async holdStandby(
    city: string,
    vehicleId: string,
    booking: BookingEntry,
    trip: BookingEntry,
    probability: number,
    risk: LateRisk,
  ): Promise<Flagged | undefined> {
    const { vehicle } = await this.inventory.getVehicleState(vehicleId);
    const spare = await this.spareForStandby(city, booking);
    const candidates = (await this.desk.standbyCandidates(booking, vehicle))
      .filter((a) => spare(a.vehicleId))
      .slice(0, this.policy.candidates)
      .map((a) => ({ vehicleId: a.vehicleId, holdId: newId('hold', city) }));
    if (candidates.length === 0 && booking.atRisk) return undefined;
    const expectedReturn = Math.round(
      Math.max(trip.to, this.inventory.clock.now()) + risk.meanOverrunMinutes * MINUTE * risk.pLate,
    );
    const raw = await runScript(
      this.redis,
      'hold_standby',
      [
        ...keys.vehicleKeys(city, vehicleId),
        ...keys.cityScriptKeys(city),
        ...candidates.flatMap((c) => keys.vehicleKeys(city, c.vehicleId)),
      ],
      [
        randomUUID(),
        city,
        this.inventory.cities.get(city)?.turnaroundMs ?? 0,
        booking.id,
        vehicleId,
        trip.id,
        Math.round(probability * 1000) / 1000,
        expectedReturn,
        candidates.length ? JSON.stringify(candidates) : '[]',
        booking.from + this.policy.standbyAfterStartMs,
      ],
    );
    const out = fromScript<{ outcome: string; standby?: { vehicleId: string; holdId: string } }>(raw);
    if (out.outcome !== 'at_risk' && out.outcome !== 'standby_added') return undefined;
    return {
      bookingId: booking.id,
      again: out.outcome === 'standby_added',
      tripId: trip.id,
      probability,
      ...(out.standby ? { standby: out.standby } : {}),
      risk,
    };
  }

  /**
   * Which vehicles a standby may take: not in an area and category already holding `standbyCap`
   * standbys, and not one a waiting conflict of an overlapping window could have (a conflict
   * already under way comes first: standbys never starve its offers).
   */
  private async spareForStandby(city: string, booking: BookingEntry): Promise<(vehicleId: string) => boolean> {
    const c = this.inventory.cities.get(city);
    const where = (id: string) => {
      const v = this.readModel.vehicle(city, id);
      return v && c ? { key: `${areaOf(c, v)}|${v.category}`, category: v.category } : undefined;
    };
    const now = this.inventory.clock.now();
    const standbys = new Map<string, number>();
    for (const { entry, vehicleId } of this.readModel.entries(
      (e, v) => v.city === city && e.kind === 'hold' && !!e.standbyFor && e.status === 'held' && e.expiresAt > now,
    )) {
      const k = where(vehicleId)?.key;
      if (k) standbys.set(k, (standbys.get(k) ?? 0) + 1);
      void entry;
    }
    const waiting = await this.desk.waitingIn(city);
    const needed = waiting
      .filter((w) => w.from < booking.to && booking.from < w.to)
      .map((w) => where(w.vehicleId)?.category)
      .filter((x): x is NonNullable<typeof x> => !!x);
    return (vehicleId) => {
      const w = where(vehicleId);
      if (!w) return false;
      if ((standbys.get(w.key) ?? 0) >= this.policy.standbyCap) return false;
      return !needed.some((category) => tierOf(w.category) >= tierOf(category));
    };
  }

  /**
   * The customer (undefined: staff) takes the vehicle held for their at-risk booking, as the
   * caller read it (`Inventory.getEntry`): the script checks it again against Redis.
   */
  async switchToStandby(
    at: { entry: BookingEntry; vehicle: Vehicle },
    customerId: string | undefined,
    opts: CommandOptions = {},
  ): Promise<{ booking: BookingEntry; replayed: boolean }> {
    const { entry: booking, vehicle } = at;
    const bookingId = booking.id;
    if (customerId !== undefined && booking.customerId !== customerId)
      throw new DomainError('NOT_FOUND', `booking ${bookingId} not found`, { entity: 'booking', id: bookingId });
    const standby = booking.atRisk && !booking.atRisk.cleared ? booking.atRisk.standby : undefined;
    if (!standby)
      throw new DomainError('INVALID_STATE', `booking ${bookingId} has no vehicle held for it`, {
        entity: 'booking',
        id: bookingId,
        reason: 'no_standby',
      });
    const city = vehicle.city;
    const idem = this.inventory.idempotency(city, 'switch_to_standby', opts, [bookingId]);
    const reply = await runScript(
      this.redis,
      'switch_to_standby',
      [
        ...keys.vehicleKeys(city, vehicle.id),
        ...keys.cityScriptKeys(city),
        idem.key,
        ...keys.vehicleKeys(city, standby.vehicleId),
      ],
      [
        opts.commandId ?? randomUUID(),
        idem.fingerprint,
        city,
        this.inventory.cities.get(city)?.turnaroundMs ?? 0,
        bookingId,
        vehicle.id,
        customerId ?? '',
      ],
      opts.context,
    );
    const { out, replayed } = commandReply<{ booking: BookingEntry }>(reply);
    return { booking: out.booking, replayed };
  }
}
