/** What a disaster drill is asked to do and what it measures (src/sim/dr-drill.ts runs it). */
import type { BurstFigures, PhaseP99 } from './dr-traffic.ts';

export type AckMode = 'local' | 'remote';

export interface DrillOptions {
  rttMs: number;
  vehiclesPerCity: number;
  /** Closed-loop bookings on region a, for the price of the mode. */
  priceMs: number;
  priceConcurrency: number;
  /** Open-loop traffic on both regions before the loss, and after it. */
  baselineMs: number;
  outageMs: number;
  /** Operations per second per region (half of a's are bookings, a fifth of b's). */
  rate: number;
  modes: readonly AckMode[];
  updateDoc?: string;
  progress: boolean;
}

export const DEFAULT_DRILL: DrillOptions = {
  rttMs: 60,
  vehiclesPerCity: 10,
  priceMs: 10_000,
  priceConcurrency: 16,
  baselineMs: 20_000,
  outageMs: 20_000,
  rate: 40,
  modes: ['local', 'remote'],
  progress: true,
};

/** Targets (docs/regions.md): reported whether met or not. */
export const DRILL_TARGETS = { rtoMs: 60_000, remoteLost: 0, bP99Ratio: 1.5 } as const;

export interface ModeFigures {
  mode: AckMode;
  price: BurstFigures;
  rtoMs: number | null;
  acknowledgedInA: number;
  lost: number;
  /** ms before the kill of the earliest and latest lost acknowledgement. */
  lostWindowMs: { earliest: number; latest: number } | null;
  syncLagAtKillMs: number | null;
  replicationLagAtKillMs: number | null;
  bP99: PhaseP99;
  invariants: { overlappingConfirmedBookings: number; driftAfterSync: number };
  failover: { promotedMs: number; rebuiltMs: number; publishedMs: number } | null;
}
