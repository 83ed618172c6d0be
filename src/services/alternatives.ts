/**
 * Where a conflicted (or at-risk) booking could go instead: free vehicles of its class or better
 * near its pickup, the conflict reserve's, a class down, the same class at shifted windows, two
 * vehicles back to back. Reads only (the read model, verified against Redis by its search); the
 * conflict desk ranks what this finds, prices it and makes the offers in one script.
 */
import type { BookingEntry } from '../domain/calendar.ts';
import { occupies, overlapsWindow } from '../domain/calendar.ts';
import type { City } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import {
  dissimilarity,
  flexShifts,
  rankAlternatives,
  type Alternative,
  type OfferPolicy,
  type Original,
} from '../domain/offers.ts';
import { CATEGORIES, tierOf, type Vehicle } from '../domain/vehicle.ts';
import type { Inventory } from './inventory.ts';
import type { ReadModel } from './read-model.ts';
import { distanceKm } from './search-index.ts';

export class AlternativeFinder {
  constructor(
    private readonly inventory: Inventory,
    private readonly readModel: ReadModel,
    private readonly policy: OfferPolicy,
  ) {}

  /**
   * Two vehicles one after the other, when no single one covers the window: one free for its
   * first part, another for the rest, changing over at a third, half or two thirds of the trip
   * (whole hours); the most similar pairs first.
   */
  async backToBack(booking: BookingEntry, vehicle: Vehicle, original: Original): Promise<Alternative[]> {
    const hours = Math.floor((booking.to - booking.from) / 3_600_000);
    if (hours < 2) return [];
    const ats = [
      ...new Set([1 / 3, 1 / 2, 2 / 3].map((f) => booking.from + Math.max(1, Math.round(hours * f)) * 3_600_000)),
    ];
    const out: Alternative[] = [];
    for (const at of ats) {
      if (at >= booking.to) continue;
      const firsts = rankAlternatives(original, await this.freeFor(vehicle, booking.from, at), this.policy);
      const seconds = rankAlternatives(original, await this.freeFor(vehicle, at, booking.to), this.policy);
      const first = firsts[0];
      const second = seconds.find((s) => s.vehicleId !== first?.vehicleId);
      if (!first || !second) continue;
      out.push({
        ...first,
        from: booking.from,
        to: booking.to,
        legs: {
          vehicleId: second.vehicleId,
          at,
          category: second.category,
          distanceKm: second.distanceKm,
          pricePerHour: second.pricePerHour,
        },
      });
    }
    return out.sort((x, y) => dissimilarity(original, x) - dissimilarity(original, y)).slice(0, 1);
  }

  /** Vehicles other than the booked one free for [from, to) near its pickup, any class the policy allows. */
  private async freeFor(vehicle: Vehicle, from: number, to: number): Promise<Alternative[]> {
    const { hits } = await this.readModel.search(vehicle.city, {
      from,
      to,
      limit: 12,
      near: vehicle.location,
      radiusKm: this.policy.maxDistanceKm,
      sort: 'distance',
    });
    return hits
      .filter((h) => h.vehicleId !== vehicle.id)
      .map((h) => ({ ...h, distanceKm: h.distanceKm ?? 0, from, to }));
  }

  /**
   * The vehicles that could stand in for a booking in its own window, most similar first (the
   * same ranking as offers): what an at-risk booking is quietly held (services/late-returns.ts).
   */
  async standbyCandidates(booking: BookingEntry, vehicle: Vehicle): Promise<Alternative[]> {
    const original = originalOf(booking, vehicle);
    const all = await this.alternativesFor({ ...booking, flexMinutes: 0 }, vehicle);
    return rankAlternatives(
      original,
      all.filter((a) => !a.shiftMinutes && a.vehicleId !== vehicle.id),
      this.policy,
    );
  }

  /**
   * Free vehicles for the booking's window, the same category or better, near its pickup (and the
   * reserve's, and a class down when the policy allows); and, when the customer allowed the trip
   * to move (`flexMinutes`), the same category (the same vehicle included, after a fixed block) at
   * windows shifted by up to that much, in 30-minute steps, nearest shifts first.
   */
  async alternativesFor(booking: BookingEntry, vehicle: Vehicle): Promise<Alternative[]> {
    const city = vehicle.city;
    // The read model must know every vehicle written before the conflict (a vehicle added a moment
    // ago is an alternative too): catch it up with the stream first.
    await this.readModel.catchUp([city]);
    const near = { near: vehicle.location, radiusKm: this.policy.maxDistanceKm, sort: 'distance' as const };
    // The same vehicle, moved: after a fixed block (maintenance, the host's), not after a late
    // return or an accident, whose end nobody knows yet.
    const sameVehicle = booking.conflictCause !== 'late_return' && booking.conflictCause !== 'accident';
    const found = async (from: number, to: number, shiftMinutes: number, orBetter: boolean, limit: number) =>
      (await this.readModel.search(city, { from, to, category: vehicle.category, orBetter, limit, ...near })).hits
        .filter((h) => h.vehicleId !== vehicle.id || (shiftMinutes !== 0 && sameVehicle))
        .map((h) => ({ ...h, distanceKm: h.distanceKm ?? 0, from, to, shiftMinutes }));
    const out: Alternative[] = await found(booking.from, booking.to, 0, true, Math.max(12, this.policy.maxOffers * 4));
    // The conflict reserve is kept for exactly this: vehicles free but for a reserve hold.
    out.push(...this.reservedFor(booking, vehicle));
    // A class down, when the policy allows it (ranked after every class up).
    for (let t = 1; t <= this.policy.downgradeTiers; t++) {
      const lower = CATEGORIES[tierOf(vehicle.category) - t];
      if (!lower) break;
      out.push(
        ...(
          await this.readModel.search(city, {
            from: booking.from,
            to: booking.to,
            category: lower,
            limit: this.policy.maxOffers,
            ...near,
          })
        ).hits.map((h) => ({
          ...h,
          distanceKm: h.distanceKm ?? 0,
          from: booking.from,
          to: booking.to,
          shiftMinutes: 0,
        })),
      );
    }
    for (const shift of flexShifts(booking.flexMinutes ?? 0)) {
      const from = booking.from + shift * 60_000;
      if (from < this.inventory.clock.now()) continue;
      out.push(...(await found(from, booking.to + shift * 60_000, shift, false, this.policy.maxOffers)));
    }
    return out;
  }

  /**
   * Vehicles of the city the conflict reserve keeps back over the booking's window, free but for
   * that (search does not show them: only the resolver may use them), within reach.
   */
  private reservedFor(booking: BookingEntry, vehicle: Vehicle): Alternative[] {
    const city = vehicle.city;
    const turnaround = turnaroundOf(this.inventory, city);
    const now = this.inventory.clock.now();
    const reserved = new Set(
      this.readModel
        .entries(
          (e, v) =>
            v.city === city &&
            e.kind === 'hold' &&
            !!e.reserve &&
            e.status === 'held' &&
            e.expiresAt > now &&
            overlapsWindow(e, booking.from, booking.to, true, turnaround, now),
        )
        .map((r) => r.vehicleId),
    );
    const out: Alternative[] = [];
    for (const id of reserved) {
      const v = this.readModel.vehicle(city, id);
      if (!v || id === vehicle.id || v.listing !== 'active') continue;
      const busy = [...v.entries.values()].some(
        (e) =>
          !(e.kind === 'hold' && e.reserve) &&
          occupies(e, now) &&
          overlapsWindow(e, booking.from, booking.to, true, turnaround, now),
      );
      if (busy) continue;
      out.push({
        vehicleId: v.id,
        category: v.category,
        seats: v.seats,
        transmission: v.transmission,
        fuel: v.fuel,
        pricePerHour: v.pricePerHour,
        ...(v.pricePerDay === undefined ? {} : { pricePerDay: v.pricePerDay }),
        distanceKm: Math.round(distanceKm(vehicle.location, v) * 1000) / 1000,
        from: booking.from,
        to: booking.to,
        shiftMinutes: 0,
      });
    }
    return out;
  }
}

/** What a displaced (or at-risk) booking had: the vehicle's class and the trip's length. */
export function originalOf(booking: BookingEntry, vehicle: Vehicle): Original {
  return {
    category: vehicle.category,
    seats: vehicle.seats,
    transmission: vehicle.transmission,
    fuel: vehicle.fuel,
    pricePerHour: vehicle.pricePerHour,
    ...(vehicle.pricePerDay === undefined ? {} : { pricePerDay: vehicle.pricePerDay }),
    hours: (booking.to - booking.from) / 3_600_000,
    from: booking.from,
    to: booking.to,
  };
}

/** The city's turnaround between two trips of a vehicle. */
export function turnaroundOf(inventory: Inventory, city: string): number {
  return cityIn(inventory, city).turnaroundMs;
}

/** A city the inventory serves. */
export function cityIn(inventory: Inventory, city: string): City {
  const c = inventory.cities.get(city);
  if (!c) throw new DomainError('NOT_FOUND', `city ${city} not found`, { entity: 'city', id: city });
  return c;
}
