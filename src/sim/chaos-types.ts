/** What a chaos run is asked to do, and what it records (src/sim/chaos.ts runs it). */
import type { FailoverParts } from './failover-parts.ts';

export const FAULTS = [
  'redis-primary-kill',
  'redis-replica-kill',
  'redis-primary-stop',
  'postgres-primary-crash',
  'api-process-kill',
  'sync-worker-kill',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface ChaosOptions {
  durationMs: number;
  /** Time between faults. */
  faultEveryMs: number;
  faults: readonly Fault[];
  cities: number;
  vehiclesPerCity: number;
  rate: number;
  concurrency: number;
  seed: number;
  out: string;
  /** Rewrite the generated section of this file (docs/reliability.md). */
  updateDoc?: string;
  progress: boolean;
  /** Targets: the run fails (exit 1) below this availability, or when a failover window is longer. */
  minAvailability: number;
  maxFailoverWindowMs: number;
  /** Run past `durationMs` (up to three times it) until each kind of fault was injected once. */
  everyFault?: boolean;
  /** Stop after this many faults (once the last one's repair is `faultEveryMs` behind): bench/failover.ts. */
  maxFaults?: number;
  /** Clients that do nothing but book, back to back, besides the marketplace's traffic (a booking storm). */
  bookingStorm?: number;
}

export const DEFAULT_CHAOS: ChaosOptions = {
  durationMs: 600_000,
  faultEveryMs: 60_000,
  faults: FAULTS,
  cities: 3,
  vehiclesPerCity: 200,
  rate: 150,
  concurrency: 24,
  seed: 7,
  out: 'chaos-report',
  progress: true,
  minAvailability: 0.999,
  maxFailoverWindowMs: 10_000,
};

export interface FaultRecord {
  kind: Fault;
  /** When the fault struck (the signal sent, the process stopped). */
  at: number;
  /** The Redis node it struck, for the Redis faults. */
  port?: number;
  /** A Redis primary's kill: where the window went (the Sentinels' logs, src/sim/failover-parts.ts). */
  parts?: FailoverParts;
  detail: string;
  recoveredAt?: number;
  windowMs?: number;
}

/** An exit of a supervised process that no fault caused: a bug (a store dying must never end a process). */
export interface UnexpectedExit {
  process: 'fleet serve' | 'fleet worker';
  atSecond: number;
  code: number | null;
  signal: string | null;
  /** The last lines it printed. */
  lastWords: string;
}
