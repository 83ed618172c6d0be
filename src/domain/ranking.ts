/**
 * Personal ranking (`sort=for_you`): a customer's profile from the trips they booked, and how
 * likely they are to book a given vehicle, with the reasons. Pure rules; search
 * (src/services/read-model.ts) orders what is available by it and never leaves anything out.
 *
 * The score is a log-likelihood, so its parts add and each can be read as a reason:
 * - category: the share of their trips in that category, smoothed (a customer with no history
 *   of it still gets some chance);
 * - price: how far the hourly price is from the middle of their band, in log terms;
 * - place: how far the vehicle is from where they usually pick up.
 */
import { CATEGORIES, type Category } from './vehicle.ts';

export interface PastTrip {
  category: Category;
  pricePerHour: number;
  lat: number;
  lng: number;
  hours: number;
}

export interface CustomerProfile {
  trips: number;
  /** Share of trips per category (sums to 1 when there are trips). */
  categories: Partial<Record<Category, number>>;
  /** Median hourly price booked, and the band holding the middle half (or ±25% of it). */
  price?: { median: number; low: number; high: number };
  /** Where they usually pick up: the mean of their trips' vehicle positions. */
  area?: { lat: number; lng: number };
  meanHours?: number;
}

export interface Candidate {
  category: Category;
  pricePerHour: number;
  lat: number;
  lng: number;
}

export interface Ranked {
  score: number;
  reasons: string[];
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))] ?? 0;

export function profileOf(trips: readonly PastTrip[]): CustomerProfile {
  if (trips.length === 0) return { trips: 0, categories: {} };
  const categories: Partial<Record<Category, number>> = {};
  for (const t of trips) categories[t.category] = (categories[t.category] ?? 0) + 1 / trips.length;
  const prices = trips.map((t) => t.pricePerHour).sort((a, b) => a - b);
  const median = quantile(prices, 0.5);
  return {
    trips: trips.length,
    categories,
    price: {
      median,
      low: Math.min(quantile(prices, 0.25), median * 0.75),
      high: Math.max(quantile(prices, 0.75), median * 1.25),
    },
    area: {
      lat: trips.reduce((a, t) => a + t.lat, 0) / trips.length,
      lng: trips.reduce((a, t) => a + t.lng, 0) / trips.length,
    },
    meanHours: trips.reduce((a, t) => a + t.hours, 0) / trips.length,
  };
}

function km(a: { lat: number; lng: number }, b: { lat: number; lng: number }): number {
  const rad = Math.PI / 180;
  const x = (b.lng - a.lng) * rad * Math.cos(((a.lat + b.lat) / 2) * rad);
  const y = (b.lat - a.lat) * rad;
  return Math.sqrt(x * x + y * y) * 6371;
}

/** Smoothing: a category never booked still weighs like half a trip in it. */
const PSEUDO_TRIPS = 0.5;
/** A price twice (or half) the median costs as much as this many nats. */
const PRICE_WEIGHT = 1.5;
/** Each km from the usual pickup area costs this many nats. */
const KM_WEIGHT = 0.08;

/**
 * How likely the customer is to book each of `vs` (a log-likelihood, higher is likelier), into
 * `out` by position. Written as one loop with nothing called per vehicle, so that no number is
 * boxed: search scores every vehicle of a city with it and explains only the page.
 */
export function forYouScores(profile: CustomerProfile, vs: readonly Candidate[], out: Float64Array): void {
  const rad = Math.PI / 180;
  const trips = profile.trips;
  const median = profile.price ? Math.max(0.01, profile.price.median) : 0;
  const area = profile.area;
  // Trips per category by tier, read unboxed (a double read by a string key is boxed anew).
  const booked = new Float64Array(CATEGORIES.length);
  for (const [k, c] of CATEGORIES.entries()) booked[k] = (profile.categories[c] ?? 0) * trips;
  for (let i = 0; i < vs.length; i++) {
    if (trips === 0) {
      out[i] = 0;
      continue;
    }
    const v = vs[i] as Candidate;
    let score = Math.log(
      ((booked[CATEGORIES.indexOf(v.category)] ?? 0) + PSEUDO_TRIPS) / (trips + PSEUDO_TRIPS * CATEGORIES.length),
    );
    if (median > 0) {
      const ratio = Math.log(v.pricePerHour / median);
      score -= PRICE_WEIGHT * ratio * ratio;
    }
    if (area) {
      // km(area, v), written out.
      const x = (v.lng - area.lng) * rad * Math.cos(((area.lat + v.lat) / 2) * rad);
      const y = (v.lat - area.lat) * rad;
      score -= KM_WEIGHT * Math.sqrt(x * x + y * y) * 6371;
    }
    // Finite, so that a cursor carries it: a price of 0 (log 0) is the least likely, not -Infinity.
    out[i] = Number.isNaN(score) ? -1e9 : Math.min(1e9, Math.max(-1e9, score));
  }
}

export function forYouScore(profile: CustomerProfile, v: Candidate): number {
  const out = new Float64Array(1);
  forYouScores(profile, [v], out);
  return out[0] ?? 0;
}

/** The score with its reasons, one per part of it. */
export function forYou(profile: CustomerProfile, v: Candidate): Ranked {
  const score = forYouScore(profile, v);
  if (profile.trips === 0) return { score, reasons: ['no trips yet: every vehicle is as likely'] };
  const booked = (profile.categories[v.category] ?? 0) * profile.trips;
  const reasons = [
    booked > 0
      ? `${v.category}: ${Math.round(booked)} of your ${profile.trips} trips`
      : `${v.category}: none of your ${profile.trips} trips`,
  ];
  const band = profile.price;
  if (band)
    reasons.push(
      `${v.pricePerHour}/h: ${v.pricePerHour >= band.low && v.pricePerHour <= band.high ? 'in' : 'outside'} your usual band (${band.low}-${band.high})`,
    );
  if (profile.area) reasons.push(`${km(profile.area, v).toFixed(1)} km from where you usually pick up`);
  return { score, reasons };
}

/** A ranking as search uses it: the score of every vehicle (into `out`, by position), the reasons of the page's. */
export interface Ranking {
  scores(vs: readonly Candidate[], out: Float64Array): void;
  explain(v: Candidate): Ranked;
}

export function rankingFor(profile: CustomerProfile): Ranking {
  return {
    scores: (vs, out) => forYouScores(profile, vs, out),
    explain: (v) => forYou(profile, v),
  };
}
