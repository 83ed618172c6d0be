/**
 * The conflict reserve (docs/conflicts.md): a few vehicles per area, category and hour kept back
 * from instant booking for the conflict resolver, sized by Littlewood's rule from revenue
 * management. Protect the k-th vehicle while the chance that k or more conflicts will need one
 * there, times what a saved conflict is worth, is at least what the booking it refuses is worth:
 *
 *   P(D >= k) * conflictValue >= bookingValue,   D ~ Poisson(expected conflicts)
 *
 * Pure rules; src/services/reserve.ts places the reserve, src/redis/lua/place_reserve.lua holds it.
 */

/** P(D >= k) for D ~ Poisson(mean). */
export function poissonAtLeast(mean: number, k: number): number {
  if (k <= 0) return 1;
  if (mean <= 0) return 0;
  let term = Math.exp(-mean);
  let below = term;
  for (let i = 1; i < k; i++) {
    term *= mean / i;
    below += term;
  }
  return Math.max(0, 1 - below);
}

/** How many vehicles to protect (at most `most`): Littlewood's rule. */
export function protectionLevel(
  expectedConflicts: number,
  values: { conflictValue: number; bookingValue: number },
  most: number,
): number {
  if (values.conflictValue <= 0) return 0;
  const threshold = values.bookingValue / values.conflictValue;
  let k = 0;
  while (k < most && poissonAtLeast(expectedConflicts, k + 1) >= threshold) k++;
  return k;
}

export interface ReserveValues {
  /** What a conflict saved is worth: the booking kept, the NO_ALTERNATIVE credit not paid, less the incentive that converts it. */
  conflictValue: number;
  /** What the booking a reserved vehicle refuses is worth. */
  bookingValue: number;
}

/** The values Littlewood's rule weighs, derived from the market's average booking and the offer policy, unless configured. */
export function reserveValues(
  averageBooking: number,
  policy: { credit: number; noAlternativeCredit: number },
  configured: { conflictValue?: number; bookingValue?: number } = {},
): ReserveValues {
  return {
    conflictValue: configured.conflictValue || Math.max(0, averageBooking + policy.noAlternativeCredit - policy.credit),
    bookingValue: configured.bookingValue || averageBooking,
  };
}

/**
 * Conflicts expected per booking: what the market showed (conflicts over bookings), pulled towards
 * a prior when it has shown little (a prior worth `weight` bookings).
 */
export function conflictRate(conflicts: number, bookings: number, prior = 0.05, weight = 50): number {
  return (conflicts + prior * weight) / (bookings + weight);
}
