/**
 * Late-return risk: how likely an active trip is to come back late, and by how much, learnt from
 * the trips that already ended. Pure rules; the watcher (src/services/late-returns.ts) reads the
 * history and acts on the estimate.
 *
 * The model is deliberately simple and explainable: each factor of a trip (its host, vehicle,
 * customer, the hour its window ends, its length) has a late rate shrunk towards the overall
 * rate by how many trips it has seen (a Beta prior worth `strength` trips), and the factors'
 * log-odds against the overall rate add up (naive Bayes). Every estimate comes with each
 * factor's share of it, so an operator sees why a trip is at risk. An overrun's size is
 * exponential, with a mean taken from the late trips of the same factors, shrunk the same way.
 */

export interface EndedTrip {
  hostId: string;
  vehicleId: string;
  customerId: string;
  /** The window's end as booked (ms). */
  scheduledEnd: number;
  /** Window length as booked (hours). */
  hours: number;
  /** Minutes after the booked end the car came back (≤ 0: on time or early). */
  lateMinutes: number;
}

export interface TripFeatures {
  hostId: string;
  vehicleId: string;
  customerId: string;
  scheduledEnd: number;
  hours: number;
}

interface FactorStats {
  trips: number;
  late: number;
  overrunMinutes: number;
}

export interface LateReturnModel {
  trips: number;
  lateRate: number;
  meanOverrunMinutes: number;
  strength: number;
  factors: Map<string, FactorStats>;
}

export interface LateRisk {
  /** Probability the trip comes back after its booked end. */
  pLate: number;
  /** Expected minutes late, when late. */
  meanOverrunMinutes: number;
  /** Each factor's effect on the log-odds (positive: riskier than the average trip). */
  reasons: { factor: string; trips: number; lateRate: number; effect: number }[];
}

/** A late return within this many minutes of the booked end counts as on time (completion rule). */
export const LATE_AFTER_MINUTES = 1;

function lengthBucket(hours: number): string {
  if (hours <= 4) return 'up to 4 h';
  if (hours <= 24) return 'up to a day';
  if (hours <= 72) return 'up to 3 days';
  return 'longer';
}

/** The factors a trip is judged by, named as an operator reads them. */
export function factorsOf(t: TripFeatures): string[] {
  const endHour = new Date(t.scheduledEnd).getUTCHours();
  return [
    `host ${t.hostId}`,
    `vehicle ${t.vehicleId}`,
    `customer ${t.customerId}`,
    `ends ${String(Math.floor(endHour / 3) * 3).padStart(2, '0')}:00-${String(Math.floor(endHour / 3) * 3 + 3).padStart(2, '0')}:00 UTC`,
    `trip ${lengthBucket(t.hours)}`,
  ];
}

export function fitLateReturns(history: readonly EndedTrip[], strength = 5): LateReturnModel {
  const factors = new Map<string, FactorStats>();
  let late = 0;
  let overrun = 0;
  for (const t of history) {
    const isLate = t.lateMinutes > LATE_AFTER_MINUTES;
    if (isLate) {
      late++;
      overrun += t.lateMinutes;
    }
    for (const f of factorsOf(t)) {
      const s = factors.get(f) ?? { trips: 0, late: 0, overrunMinutes: 0 };
      s.trips++;
      if (isLate) {
        s.late++;
        s.overrunMinutes += t.lateMinutes;
      }
      factors.set(f, s);
    }
  }
  // With no history at all, a small prior: one trip in twenty late, by half an hour.
  const n = history.length;
  return {
    trips: n,
    lateRate: (late + 0.05 * strength) / (n + strength),
    meanOverrunMinutes: (overrun + 30 * strength) / (late + strength),
    strength,
    factors,
  };
}

const logit = (p: number) => Math.log(p / (1 - p));
const clamp = (p: number) => Math.min(0.999, Math.max(0.001, p));

export function lateRisk(model: LateReturnModel, trip: TripFeatures): LateRisk {
  const k = model.strength;
  const base = logit(clamp(model.lateRate));
  let logOdds = base;
  let weighted = 0;
  let weights = 0;
  const reasons: LateRisk['reasons'] = [];
  for (const f of factorsOf(trip)) {
    const s = model.factors.get(f);
    if (!s) continue;
    const rate = clamp((s.late + k * model.lateRate) / (s.trips + k));
    const effect = logit(rate) - base;
    logOdds += effect;
    reasons.push({ factor: f, trips: s.trips, lateRate: rate, effect });
    const mean = (s.overrunMinutes + k * model.meanOverrunMinutes) / (s.late + k);
    weighted += mean * (s.late + 1);
    weights += s.late + 1;
  }
  reasons.sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
  return {
    pLate: 1 / (1 + Math.exp(-logOdds)),
    meanOverrunMinutes: weights ? weighted / weights : model.meanOverrunMinutes,
    reasons,
  };
}

/**
 * Probability the car is not back `gapMinutes` after the booked end (the next trip's start minus
 * the turnaround, measured from the end): late, and late by more than the gap.
 */
export function pOverrunPast(risk: LateRisk, gapMinutes: number): number {
  if (gapMinutes <= 0) return risk.pLate;
  return risk.pLate * Math.exp(-gapMinutes / Math.max(1, risk.meanOverrunMinutes));
}

/** Area under the ROC curve: the chance a random positive scores above a random negative (ties half). */
export function auc(scores: readonly number[], positive: readonly boolean[]): number {
  const order = scores.map((s, i) => ({ s, p: positive[i] === true })).sort((a, b) => a.s - b.s);
  let rankSum = 0;
  let pos = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && order[j]?.s === order[i]?.s) j++;
    const meanRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (order[k]?.p) {
        rankSum += meanRank;
        pos++;
      }
    }
    i = j;
  }
  const neg = order.length - pos;
  if (pos === 0 || neg === 0) return 0.5;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export interface AtRiskPolicy {
  /** Probability (car not back by the next booking's start, turnaround included) that marks it at risk. */
  threshold: number;
  /** Only bookings starting within this long are looked at (ms). */
  leadMs: number;
  /** The standby hold lapses this long after the booking's start (ms). */
  standbyAfterStartMs: number;
  /** Vehicles tried for the standby, most similar first. */
  candidates: number;
  /** How often the model is fitted again on PostgreSQL's history (ms). */
  refitMs: number;
  /** Standby holds at most per area and category of a city at once: standbys never starve the offers of conflicts. */
  standbyCap: number;
}

/** The parts of the at-risk policy that are not settings (config.ts atRiskPolicy adds the rest). */
export const AT_RISK_FIXED: Omit<AtRiskPolicy, 'threshold' | 'leadMs' | 'standbyCap'> = {
  standbyAfterStartMs: HOUR_MS,
  candidates: 6,
  refitMs: 10 * MINUTE_MS,
};
