/**
 * The marketplace a simulated week plays (src/sim/market-week.ts): what it is asked, what it counts,
 * its people, the weekly rhythm of demand and the customer's fixed decision model.
 */
import type { Offer } from '../services/conflicts.ts';
import type { Category } from '../domain/vehicle.ts';
import type { AlternativeKind } from '../domain/offers.ts';
import type { PastTrip } from '../domain/ranking.ts';

export interface WeekOptions {
  redisUrl: string;
  seed: number;
  vehicles: number;
  customers: number;
  /** Days played with every feature off first (the history the late-return model learns from). */
  warmupDays: number;
  /** Days measured. */
  days: number;
  /** Searches per hour at the week's average, times `demand`. */
  searchesPerHour: number;
  demand: number;
  /** Accidents and maintenance, per vehicle and day. */
  incidentsPerVehicleDay: number;
  stepMinutes: number;
}

export interface Features {
  atRisk: boolean;
  forYou: boolean;
  learning: boolean;
  /** The conflict features of issue 24: wider kinds of alternative, the wait list, the reserve, standby caps. */
  conflicts: boolean;
}

export interface WeekFigures {
  features: Features;
  searches: number;
  bookings: number;
  searchToBook: number;
  /** Time-averaged share of the fleet booked or on a trip. */
  utilisation: number;
  tripsLate: number;
  /** Bookings conflicted by a late return: customers who met the problem at pickup. */
  conflictsAtPickup: number;
  atRiskFlagged: number;
  switched: number;
  prevented: number;
  conflicts: number;
  /** Conflicts that ended with nothing to offer (cancelled with a credit), waiting or not. */
  noAlternative: number;
  /** Conflicts that waited, and of them those offered a freed car. */
  waited: number;
  waitedOffered: number;
  accepted: number;
  acceptedByKind: Partial<Record<AlternativeKind, number>>;
  conversion: number | null;
  incentiveCost: number;
  costPerConversion: number | null;
  /** Searches that found nothing the customer took while a reserved car would have fit (an upper bound of bookings the reserve refused). */
  refusedByReserve: number;
  /** Booked value, less refunds of cancelled conflicts, incentives and NO_ALTERNATIVE credits. */
  revenue: number;
  netRevenue: number;
  learned?: unknown;
}

export interface SimCustomer {
  id: string;
  likes: Category;
  /** How much a unit of credit raises the chance of taking an offer. */
  swayedBy: number;
  trips: PastTrip[];
}

export interface SimHost {
  id: string;
  lateP: number;
  meanLateMinutes: number;
}

export interface Trip {
  customer: SimCustomer;
  from: number;
  to: number;
  vehicleId: string;
  value: number;
}

/** Demand by hour of the week: a daily shape, busier Friday to Sunday. */
export function demandShape(t: number): number {
  const hour = new Date(t).getUTCHours();
  const day = new Date(t).getUTCDay();
  const daily = 0.35 + 1.3 * Math.max(0, Math.sin(((hour - 6) / 24) * 2 * Math.PI));
  return daily * (day === 0 || day >= 5 ? 1.4 : 0.9);
}

export function poisson(mean: number, rand: () => number): number {
  let k = 0;
  let p = Math.exp(-mean);
  let s = p;
  const u = rand();
  while (u > s && k < 1000) {
    k++;
    p *= mean / k;
    s += p;
  }
  return k;
}

/** The customer's chance of taking an offer (the fixed decision model above). */
export function takeChance(o: Pick<Offer, 'kind' | 'incentive'>, swayedBy: number): number {
  const kind = o.kind ?? 'same_category';
  const base = kind === 'upgrade' ? 0.6 : kind === 'downgrade' || kind === 'back_to_back' ? 0.3 : 0.4;
  return Math.min(0.95, base + swayedBy * o.incentive.amount * (kind === 'upgrade' ? 0.3 : 1));
}

export const emptyFigures = (features: Features): WeekFigures => ({
  features,
  searches: 0,
  bookings: 0,
  searchToBook: 0,
  utilisation: 0,
  tripsLate: 0,
  conflictsAtPickup: 0,
  atRiskFlagged: 0,
  switched: 0,
  prevented: 0,
  conflicts: 0,
  noAlternative: 0,
  waited: 0,
  waitedOffered: 0,
  accepted: 0,
  acceptedByKind: {},
  conversion: null,
  incentiveCost: 0,
  costPerConversion: null,
  refusedByReserve: 0,
  revenue: 0,
  netRevenue: 0,
});
