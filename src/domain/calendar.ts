/**
 * Calendars: holds, bookings and blocks on half-open intervals [from, to) in epoch ms (UTC).
 *
 * These are the rules the Lua scripts enforce atomically in Redis. They are written here once
 * more, as pure functions, for everything that must reason about a calendar outside Redis:
 * the reference model of the property tests, the read models, the reconciler. The property test
 * keeps the two in agreement.
 */
import type { Price } from './pricing.ts';
import type { ListingState, VehicleStatus } from './vehicle.ts';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const MAX_INTERVAL_MS = 30 * 24 * HOUR_MS;
/** Timestamps must stay below this (year 5138) so Lua's cjson encodes them exactly. */
export const MAX_TIMESTAMP_MS = 99_999_999_999_999;
/** A trip may start this long before its window (customer early at the pickup point). */
export const START_EARLY_MS = 15 * MINUTE_MS;
export const IDEMPOTENCY_TTL_S = 24 * 3600;

export const HOLD_STATUSES = ['held', 'converted', 'released', 'expired'] as const;
export type HoldStatus = (typeof HOLD_STATUSES)[number];

export const BOOKING_STATUSES = [
  'confirmed',
  'active',
  'completed',
  'cancelled',
  'conflicted',
  'reaccommodated',
] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];

export const BLOCK_STATUSES = ['active', 'cleared', 'cancelled'] as const;
export type BlockStatus = (typeof BLOCK_STATUSES)[number];

export const BLOCK_REASONS = ['accident', 'maintenance', 'host'] as const;
export type BlockReason = (typeof BLOCK_REASONS)[number];

/** Why a booking became `conflicted`: the unrefusable fact that displaced it. */
export type ConflictCause = BlockReason | 'late_return' | 'forced_extension' | 'delisted' | 'retired' | 'overlap';

/** Allowed transitions; anything else is INVALID_STATE. */
export const HOLD_TRANSITIONS: Record<HoldStatus, readonly HoldStatus[]> = {
  held: ['converted', 'released', 'expired'],
  converted: [],
  released: [],
  expired: [],
};
export const BOOKING_TRANSITIONS: Record<BookingStatus, readonly BookingStatus[]> = {
  confirmed: ['active', 'cancelled', 'conflicted'],
  active: ['completed'],
  conflicted: ['reaccommodated', 'cancelled'],
  completed: [],
  cancelled: [],
  reaccommodated: [],
};
export const BLOCK_TRANSITIONS: Record<BlockStatus, readonly BlockStatus[]> = {
  active: ['cleared', 'cancelled'],
  cleared: [],
  cancelled: [],
};

interface EntryBase {
  id: string;
  from: number;
  createdAt: number;
  updatedAt: number;
}

export interface HoldEntry extends EntryBase {
  kind: 'hold';
  status: HoldStatus;
  to: number;
  customerId: string;
  expiresAt: number;
  bookingId?: string;
  releaseReason?: string;
  /** An offer's hold, placed by the conflict resolver for this conflicted booking. */
  offerFor?: string;
  offerId?: string;
  /** A vehicle held quietly for this at-risk booking (the customer may switch to it). */
  standbyFor?: string;
  /** The conflict reserve's hold (customer `system:reserve`): kept back for the resolver for this area, category and hour. */
  reserve?: { area: string; category: string; hour: number };
  /** Fixed when placed (absent on the service's own holds: reserve, standby; and on holds older than prices). */
  price?: Price;
}

export interface BookingEntry extends EntryBase {
  kind: 'booking';
  status: BookingStatus;
  to: number;
  customerId: string;
  holdId?: string;
  startedAt?: number;
  completedAt?: number;
  /** The end that was booked, when a completion (early or late) moved `to`. */
  scheduledTo?: number;
  completion?: 'early' | 'on_time' | 'late';
  conflictCause?: ConflictCause;
  /** Minutes the customer allows the trip to move if displaced: offers may then shift its window. */
  flexMinutes?: number;
  conflictedBy?: string;
  conflictedAt?: number;
  cancelReason?: string;
  /** Set when a conflict ended in cancellation: the customer is refunded in full. */
  refund?: 'full';
  /** A credit given with the cancellation (NO_ALTERNATIVE). */
  credit?: Incentive;
  /** While offers are open for this conflicted booking. */
  offers?: { count: number; expiresAt: number };
  /** A booking moved here by accepting an offer: where it came from. */
  reaccommodatedFrom?: {
    vehicleId: string;
    cause?: ConflictCause | 'late_return_risk';
    /** The accepted offer (or, for a switch from an at-risk booking, its standby hold). */
    offerId: string;
    at: number;
  };
  /** The trip before it may not be back in time (src/services/late-returns.ts, docs/prediction.md). */
  atRisk?: AtRisk;
  incentive?: Incentive;
  /** Fixed when booked (the hold's), grown by extensions, replaced by an accepted offer; absent on bookings older than prices. */
  price?: Price;
  /** Only in the event a booking leaves its vehicle with: where it went. */
  movedTo?: string;
}

/** A confirmed booking whose car may come back late from the trip before it. */
export interface AtRisk {
  /** Probability the car is not back by the booking's start, turnaround included. */
  probability: number;
  /** The trip under way that may run late. */
  tripId: string;
  /** When that trip is expected back (its end plus the expected overrun). */
  expectedReturn: number;
  since: number;
  /** The vehicle held for the customer meanwhile, if one was free. */
  standby?: { vehicleId: string; holdId: string; expiresAt: number };
  /** Set once the risk is over: trip_back, conflicted or ended. */
  cleared?: string;
  clearedAt?: number;
}

/** What the marketplace gives a displaced customer (policy: src/domain/offers.ts). */
export interface Incentive {
  /** `refund`: a downgrade's price difference given back, with a credit. */
  kind: 'free_upgrade' | 'credit' | 'refund';
  /** What it costs the marketplace, in the vehicles' price currency. */
  amount: number;
  reason: string;
  /** The multiple of the policy's credit the learning offer policy chose (src/domain/incentives.ts). */
  level?: number;
}

export interface BlockEntry extends EntryBase {
  kind: 'block';
  status: BlockStatus;
  reason: BlockReason;
  /** Absent for an open-ended block (an accident until cleared). */
  to?: number;
  note?: string;
}

export type CalendarEntry = HoldEntry | BookingEntry | BlockEntry;
export type EntryKind = CalendarEntry['kind'];

/** Where a booking is in its life, as a customer or host lists it. */
export const TRIP_PHASES = ['upcoming', 'active', 'past'] as const;
export type TripPhase = (typeof TRIP_PHASES)[number];

/**
 * Upcoming: confirmed (or conflicted, awaiting its offers) and not yet over; active: under way;
 * past: everything else. The SQL twin is `TRIP_PHASE_SQL` in src/pg/bookings.ts.
 */
export function tripPhase(b: Pick<BookingEntry, 'status' | 'to'>, now: number): TripPhase {
  if (b.status === 'active') return 'active';
  if ((b.status === 'confirmed' || b.status === 'conflicted') && b.to > now) return 'upcoming';
  return 'past';
}

/** Holds and bookings are trips: the turnaround buffer separates them from each other. */
export function isTrip(e: CalendarEntry): boolean {
  return e.kind !== 'block';
}

/**
 * Does the entry take the vehicle's time at `now`? Lapsed holds and displaced or cancelled
 * bookings do not; a completed trip does, so its turnaround buffer still follows it.
 */
export function occupies(e: CalendarEntry, now: number): boolean {
  switch (e.kind) {
    case 'hold':
      return e.status === 'held' && e.expiresAt > now;
    case 'booking':
      return e.status === 'confirmed' || e.status === 'active' || e.status === 'completed';
    case 'block':
      return e.status === 'active';
  }
}

/** Where the entry's occupation ends: an overdue trip keeps the car until it is completed. */
export function occupiedUntil(e: CalendarEntry, now: number): number {
  if (e.to === undefined) return Number.POSITIVE_INFINITY;
  if (e.kind === 'booking' && e.status === 'active' && e.to < now) return now;
  return e.to;
}

export function overlapsWindow(
  e: CalendarEntry,
  from: number,
  to: number,
  tripCandidate: boolean,
  turnaroundMs: number,
  now: number,
): boolean {
  const pad = tripCandidate && isTrip(e) ? turnaroundMs : 0;
  return e.from < to + pad && from < occupiedUntil(e, now) + pad;
}

/**
 * The windows from `now` on in which a new trip fits: the complement of every occupying entry,
 * padded by the turnaround around trips (the rule of `overlapsWindow`). The last window is open
 * (no `until`) unless an open-ended entry (an accident) takes the vehicle for good.
 */
export function freeWindows(
  entries: readonly CalendarEntry[],
  turnaroundMs: number,
  now: number,
): { from: number; until?: number }[] {
  const busy = entries
    .filter((e) => occupies(e, now))
    .map((e) => {
      const pad = isTrip(e) ? turnaroundMs : 0;
      return { from: e.from - pad, to: occupiedUntil(e, now) + pad };
    })
    .filter((b) => b.to > now)
    .sort((a, b) => a.from - b.from);
  const out: { from: number; until?: number }[] = [];
  let cursor = now;
  for (const b of busy) {
    if (b.from > cursor) out.push({ from: cursor, until: b.from });
    cursor = Math.max(cursor, b.to);
    if (cursor === Number.POSITIVE_INFINITY) return out;
  }
  out.push({ from: cursor });
  return out;
}

/** The first occupying entry (by start) that a new window would collide with, if any. */
export function firstOverlap(
  entries: readonly CalendarEntry[],
  from: number,
  to: number,
  tripCandidate: boolean,
  turnaroundMs: number,
  now: number,
  exceptId?: string,
): CalendarEntry | undefined {
  return sortEntries(entries).find(
    (e) => e.id !== exceptId && occupies(e, now) && overlapsWindow(e, from, to, tripCandidate, turnaroundMs, now),
  );
}

/** Final states: nothing can happen to such an entry any more (the scripts' FINAL_STATUS, held equal by a test). */
export const FINAL_STATUSES = [
  'completed',
  'cancelled',
  'reaccommodated',
  'converted',
  'released',
  'expired',
  'cleared',
] as const;
const FINAL: ReadonlySet<string> = new Set(FINAL_STATUSES);

/**
 * May this entry leave Redis (architecture.md §3: Redis holds the present and the future; history lives
 * in PostgreSQL)? Only a final one whose window ended before `before`. The caller adds the other
 * condition: its last change is already in PostgreSQL.
 */
export function isArchivable(e: CalendarEntry, before: number): boolean {
  return FINAL.has(e.status) && e.to !== undefined && e.to < before;
}

export function sortEntries<T extends CalendarEntry>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => a.from - b.from || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export type IntervalProblem = 'missing' | 'minute' | 'order' | 'too_long' | 'past' | 'range';

/** The rule each interval problem breaks, as the refusal's `detail` states it. */
export const INTERVAL_RULES: Record<IntervalProblem, string> = {
  missing: 'a window needs both from and to',
  range: 'instants are between 1970-01-01 and the year 9999',
  minute: 'windows start and end on whole minutes (no seconds); blocks from now round down themselves',
  order: 'to must be after from',
  too_long: 'a window is at most 30 days',
  past: 'a window may not start before the current minute',
};

/** "from 2026-12-01T10:00:30.000Z: windows start and end on whole minutes …" */
export function describeInterval(d: { problem?: unknown; field?: unknown; value?: unknown }): string {
  const rule =
    Object.entries(INTERVAL_RULES).find(([problem]) => problem === d.problem)?.[1] ??
    `invalid interval (${String(d.problem)})`;
  const value = typeof d.value === 'number' && Number.isFinite(d.value) ? ` ${iso(d.value)}` : '';
  return typeof d.field === 'string' ? `${d.field}${value}: ${rule}` : rule;
}

const iso = (t: number) => (t >= 0 && t <= 253402300799999 ? new Date(t).toISOString() : String(t));

/** The problem of a window, with the field at fault and its value (for the refusal's detail). */
export function intervalFault(
  from: number,
  to: number | undefined,
  now: number,
  opts: { allowPast?: boolean; openEnded?: boolean } = {},
): { problem: IntervalProblem; field: 'from' | 'to'; value?: number } | undefined {
  const problem = intervalProblem(from, to, now, opts);
  if (!problem) return undefined;
  const fromAtFault =
    problem === 'past' ||
    (problem === 'minute' && from % MINUTE_MS !== 0) ||
    (problem === 'range' && (from < 0 || from > MAX_TIMESTAMP_MS)) ||
    (problem === 'missing' && !Number.isFinite(from));
  const field = fromAtFault ? 'from' : 'to';
  const value = field === 'from' ? from : to;
  return { problem, field, ...(value !== undefined && Number.isFinite(value) ? { value } : {}) };
}

/**
 * Time rules for a requested window: minute granularity, `to > from`, at most 30 days, and not
 * starting before the current minute unless the caller may write the past (ops).
 */
export function intervalProblem(
  from: number,
  to: number | undefined,
  now: number,
  opts: { allowPast?: boolean; openEnded?: boolean } = {},
): IntervalProblem | undefined {
  if (!Number.isFinite(from) || (to === undefined && !opts.openEnded)) return 'missing';
  if (from < 0 || from > MAX_TIMESTAMP_MS || (to !== undefined && (!Number.isFinite(to) || to > MAX_TIMESTAMP_MS)))
    return 'range';
  if (from % MINUTE_MS !== 0 || (to !== undefined && to % MINUTE_MS !== 0)) return 'minute';
  if (to !== undefined && to <= from) return 'order';
  if (to !== undefined && to - from > MAX_INTERVAL_MS) return 'too_long';
  if (!opts.allowPast && from < now - (now % MINUTE_MS)) return 'past';
  return undefined;
}

export interface DerivedStatus {
  status: VehicleStatus;
  /** The next instant at which the status may change by time alone, if any. */
  due: number | undefined;
}

/** The status a vehicle shows during each kind of block (engine.lua: BLOCK_STATUS; a test holds them equal). */
export const BLOCK_STATUS: Record<BlockReason, VehicleStatus> = {
  accident: 'accident',
  maintenance: 'maintenance',
  host: 'blocked',
};

/** Which status wins when several apply at once (engine.lua: STATUS_ORDER; a test holds them equal). */
export const STATUS_PRECEDENCE: readonly VehicleStatus[] = [
  'accident',
  'in_trip',
  'maintenance',
  'delisted',
  'blocked',
  'booked',
  'held',
];

/** "Status now" from the listing and the calendar (architecture.md §3); precedence as STATUS_PRECEDENCE. */
export function deriveStatus(listing: ListingState, entries: readonly CalendarEntry[], now: number): DerivedStatus {
  const present = new Set<VehicleStatus>();
  if (listing !== 'active') present.add('delisted');
  let due: number | undefined;
  const consider = (t: number | undefined) => {
    if (t !== undefined && t > now && (due === undefined || t < due)) due = t;
  };
  for (const e of entries) {
    // A hold that lapsed but was not yet expired is due at once: the sweeper must expire it.
    if (e.kind === 'hold' && e.status === 'held' && e.expiresAt <= now) due = now;
    if (!occupies(e, now) || (e.kind === 'booking' && e.status === 'completed')) continue;
    if (e.kind === 'booking' && e.status === 'active') {
      present.add('in_trip');
    } else if (e.from <= now && (e.to === undefined || now < e.to)) {
      present.add(e.kind === 'block' ? BLOCK_STATUS[e.reason] : e.kind === 'booking' ? 'booked' : 'held');
    }
    consider(e.from);
    consider(e.to);
    if (e.kind === 'hold') consider(e.expiresAt);
  }
  return { status: STATUS_PRECEDENCE.find((s) => present.has(s)) ?? 'available', due };
}

/**
 * The confirmed bookings of one calendar that overlap another booking or an active block
 * (turnaround included): of two bookings the later-made one, a booking before a block or a trip
 * under way (which, past its end, keeps the car until now).
 */
export function overlapLosers(entries: readonly CalendarEntry[], turnaround: number, now: number): BookingEntry[] {
  const live = entries
    .filter((e) => e.kind !== 'hold' && occupies(e, now))
    .map((e) => (e.kind === 'booking' && e.status === 'active' && e.to < now ? { ...e, to: now } : e))
    .filter((e) => (e.to ?? Infinity) > now);
  const losers: BookingEntry[] = [];
  for (const b of live) {
    if (b.kind !== 'booking' || b.status !== 'confirmed') continue;
    const rival = live.find(
      (o) =>
        o.id !== b.id &&
        overlapsWindow(o, b.from, b.to, true, turnaround, now) &&
        (o.kind === 'block' ||
          o.status !== 'confirmed' ||
          o.createdAt < b.createdAt ||
          (o.createdAt === b.createdAt && o.id < b.id)),
    );
    if (rival) losers.push(b);
  }
  return losers;
}
