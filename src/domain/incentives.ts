/**
 * Incentives that learn (docs/prediction.md): for each city and kind of alternative, the offer
 * policy chooses the credit's level — a multiple of the configured credit — by Thompson sampling
 * over what each level has converted so far: the cheapest level whose sampled conversion reaches
 * the target, or, when none does, the one that converts best. Levels above `maxLevel` are never
 * tried (the cost budget). Pure rules; src/services/incentives.ts keeps the counts.
 */

export const LEVELS = [0.5, 1, 1.5, 2, 3] as const;

export interface ArmStats {
  level: number;
  /** Offers made at this level whose conflict ended (accepted, or the customer declined / let them lapse). */
  offers: number;
  accepted: number;
}

export interface LearningPolicy {
  /** The conversion to reach (0.8: four conflicts in five end with an accepted offer). */
  target: number;
  /** The highest level allowed: the cost budget per offer, as a multiple of the configured credit. */
  maxLevel: number;
}

/** Gamma(shape, 1) by Marsaglia and Tsang (shape >= 1; smaller shapes boosted). */
function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * rand() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      // A standard normal by Box–Muller.
      x = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function betaSample(a: number, b: number, rand: () => number): number {
  const x = gamma(a, rand);
  return x / (x + gamma(b, rand));
}

/** The arms a policy may use, with their counts (zero for a level never tried). */
export function armsOf(stats: readonly ArmStats[], policy: LearningPolicy): ArmStats[] {
  return LEVELS.filter((l) => l <= policy.maxLevel).map(
    (level) => stats.find((s) => s.level === level) ?? { level, offers: 0, accepted: 0 },
  );
}

/** The level to offer next: cheapest sampled at or above target, else the best sampled. */
export function chooseLevel(stats: readonly ArmStats[], policy: LearningPolicy, rand: () => number): number {
  const arms = armsOf(stats, policy);
  const sampled = arms.map((a) => ({ level: a.level, p: betaSample(1 + a.accepted, 1 + a.offers - a.accepted, rand) }));
  const enough = sampled.filter((s) => s.p >= policy.target).sort((x, y) => x.level - y.level)[0];
  if (enough) return enough.level;
  return sampled.sort((x, y) => y.p - x.p || x.level - y.level)[0]?.level ?? 1;
}

/** What the policy has learnt, per arm: conversion so far and its posterior mean. */
export function summarize(stats: readonly ArmStats[], policy: LearningPolicy) {
  return armsOf(stats, policy).map((a) => ({
    level: a.level,
    offers: a.offers,
    accepted: a.accepted,
    conversion: a.offers ? a.accepted / a.offers : null,
    posteriorMean: (1 + a.accepted) / (2 + a.offers),
  }));
}
