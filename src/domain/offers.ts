/**
 * Conflicts become rebookings (architecture.md §4): which alternatives a displaced customer is offered,
 * in what order, and with what incentive. Pure rules; the resolver (src/services/conflicts.ts)
 * finds the free vehicles and the scripts place the holds.
 */
import type { Incentive } from './calendar.ts';
import { ratesOf, windowTotal } from './pricing.ts';
import { tierOf, type Category, type Fuel, type Transmission } from './vehicle.ts';

export interface OfferPolicy {
  /** How long offers (and their holds) stay open. */
  offerTtlMs: number;
  /** How many alternatives are held for one conflicted booking. */
  maxOffers: number;
  /** The credit given with a same-category alternative. */
  credit: number;
  /**
   * Beyond this distance from the original pickup an alternative is `farther`: the vehicle is
   * delivered, and the credit is `farCredit` plus `deliveryCreditPerKm` for every km past `farKm`.
   */
  farKm: number;
  farCredit: number;
  deliveryCreditPerKm: number;
  /** A lower category may be offered, at most this many tiers down (0: never): the price difference refunded plus `downgradeCredit`. */
  downgradeTiers: number;
  downgradeCredit: number;
  /** The credit given when the booking is cancelled for want of any alternative. */
  noAlternativeCredit: number;
  /** Alternatives further than this from the original pickup are not offered. */
  maxDistanceKm: number;
  /** With nothing to offer, a conflict waits for a freed vehicle until its start minus this (0: cancelled at once). */
  waitlistCutoffMinutes: number;
  /** Two vehicles one after the other may be offered when no single one is free. */
  backToBack: boolean;
}

export interface Original {
  category: Category;
  seats: number;
  transmission: Transmission;
  fuel: Fuel;
  pricePerHour: number;
  pricePerDay?: number;
  hours: number;
  /** The booked window: with it, price differences follow the pricing rule (domain/pricing.ts), else hours × rates. */
  from?: number;
  to?: number;
}

export interface Alternative {
  vehicleId: string;
  category: Category;
  seats: number;
  transmission: string;
  fuel: string;
  pricePerHour: number;
  pricePerDay?: number;
  distanceKm: number;
  /** Minutes the offered window moves from the booked one (0 or absent: the same window). */
  shiftMinutes?: number;
  from?: number;
  to?: number;
  /** back_to_back: the second vehicle, from `at` to the booking's end (this one covers the start). */
  legs?: { vehicleId: string; at: number; category: Category; distanceKm: number; pricePerHour: number };
}

/**
 * The kinds of alternative, each with its own incentive and counted apart in conflict analytics:
 * the same class, a higher one (a free upgrade), the same class at a moved time (`shifted`), one
 * delivered from further away (`farther`), a lower class (`downgrade`: the difference refunded),
 * and two vehicles one after the other when no single one covers the window (`back_to_back`).
 */
export const ALTERNATIVE_KINDS = [
  'same_category',
  'upgrade',
  'shifted',
  'farther',
  'downgrade',
  'back_to_back',
] as const;
export type AlternativeKind = (typeof ALTERNATIVE_KINDS)[number];

export function alternativeKind(o: Original, a: Alternative, policy?: Pick<OfferPolicy, 'farKm'>): AlternativeKind {
  if (a.legs) return 'back_to_back';
  if (a.shiftMinutes) return 'shifted';
  const tiers = tierOf(a.category) - tierOf(o.category);
  if (tiers < 0) return 'downgrade';
  if (tiers > 0) return 'upgrade';
  return policy && a.distanceKm > policy.farKm ? 'farther' : 'same_category';
}

/** The shifts (minutes) to try for a customer who allows `flex`: ±30, ±60, … up to ±flex, nearest first. */
export function flexShifts(flex: number): number[] {
  const out: number[] = [];
  for (let m = 30; m <= flex; m += 30) out.push(-m, m);
  if (flex > 0 && flex % 30 !== 0) out.push(-flex, flex);
  return out;
}

/**
 * Lower is more similar: the same category first (each tier up costs), then seats, gearbox and
 * fuel as booked, then nearness, then price. Weights are in "km-equivalents": one tier up weighs
 * like 3 km, a different gearbox like 2 km.
 */
export function dissimilarity(o: Original, a: Alternative): number {
  const tiers = tierOf(a.category) - tierOf(o.category);
  return (
    tiers * 3 +
    Math.max(0, o.seats - a.seats) * 2 +
    Math.max(0, a.seats - o.seats) * 0.25 +
    (a.transmission === o.transmission ? 0 : 2) +
    (a.fuel === o.fuel ? 0 : 0.5) +
    a.distanceKm +
    Math.abs(a.pricePerHour - o.pricePerHour) / Math.max(1, o.pricePerHour) +
    // An hour's move weighs like 3 km: a car at the next corner an hour later beats one across town.
    Math.abs(a.shiftMinutes ?? 0) / 20 +
    // A class down weighs like 8 km (worse than any move up), and a change of car midway like 6 km.
    Math.max(0, -tiers) * 8 +
    (a.legs ? 6 : 0)
  );
}

/** Same category or higher (or a permitted downgrade), near enough, most similar first. */
export function rankAlternatives(o: Original, candidates: readonly Alternative[], policy: OfferPolicy): Alternative[] {
  const lowest = tierOf(o.category) - Math.max(0, policy.downgradeTiers);
  return candidates
    .filter((a) => tierOf(a.category) >= lowest && a.distanceKm <= policy.maxDistanceKm)
    .sort((x, y) => dissimilarity(o, x) - dissimilarity(o, y) || x.vehicleId.localeCompare(y.vehicleId));
}

/**
 * A higher category is a free upgrade (the marketplace pays the price difference); the same
 * category gets a credit, a larger one when the alternative is far from the original pickup.
 */
export function incentiveFor(o: Original, a: Alternative, policy: OfferPolicy): Incentive {
  if (a.legs) return { kind: 'credit', amount: policy.credit * 2, reason: 'two vehicles, one after the other' };
  if (tierOf(a.category) < tierOf(o.category)) {
    const difference = Math.max(0, bookedPrice(o, o) - bookedPrice(o, a));
    return {
      kind: 'refund',
      amount: round2(difference + policy.downgradeCredit),
      reason: `${o.category} → ${a.category}: ${round2(difference)} refunded and a credit`,
    };
  }
  if (a.shiftMinutes) {
    const m = a.shiftMinutes;
    return {
      kind: 'credit',
      amount: policy.credit,
      reason: `trip moved ${Math.abs(m)} min ${m < 0 ? 'earlier' : 'later'}`,
    };
  }
  if (tierOf(a.category) > tierOf(o.category)) {
    const difference = Math.max(0, bookedPrice(o, a) - bookedPrice(o, o));
    return {
      kind: 'free_upgrade',
      amount: round2(difference),
      reason: `${o.category} → ${a.category} at the booked price`,
    };
  }
  if (a.distanceKm > policy.farKm)
    return {
      kind: 'credit',
      amount: round2(policy.farCredit + policy.deliveryCreditPerKm * (a.distanceKm - policy.farKm)),
      reason: `delivered from ${a.distanceKm.toFixed(1)} km away`,
    };
  return { kind: 'credit', amount: policy.credit, reason: 'vehicle changed' };
}

export function noAlternativeCredit(policy: OfferPolicy): Incentive {
  return { kind: 'credit', amount: policy.noAlternativeCredit, reason: 'NO_ALTERNATIVE' };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * What the booked window costs at `rates`, in major units (incentives are): the pricing rule in
 * hundredths, exact for prices of at most two places, whatever the city's exponent.
 */
function bookedPrice(o: Original, rates: { pricePerHour: number; pricePerDay?: number | undefined }): number {
  if (o.from === undefined || o.to === undefined) return rates.pricePerHour * o.hours;
  const { hour, day } = ratesOf(rates, 2);
  return windowTotal(hour, day, o.from, o.to) / 100;
}
