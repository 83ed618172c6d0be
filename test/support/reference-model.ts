/**
 * A small in-memory reference model of one city's calendars: the rules of architecture.md §3 written
 * plainly in TypeScript, to be compared with the Lua scripts command by command. It reuses the
 * domain's pure predicates (what occupies, what overlaps, interval rules) and states every
 * command's checks, in the order the scripts make them, and its effects.
 *
 * Time: each command is evaluated at the instant the script ran (`at` from its reply or its
 * error), so the model and Redis judge by the same clock.
 */
import {
  MINUTE_MS,
  START_EARLY_MS,
  intervalProblem,
  occupies,
  overlapsWindow,
  sortEntries,
  type BlockEntry,
  type BlockReason,
  type BookingEntry,
  type CalendarEntry,
  type ConflictCause,
  type HoldEntry,
} from '../../src/domain/calendar.ts';
import type { ErrorCode } from '../../src/domain/errors.ts';
import { extendPrice, priceWindow, type Price } from '../../src/domain/pricing.ts';
import type { ListingState } from '../../src/domain/vehicle.ts';

export type ModelOutcome = { ok: true } | { error: ErrorCode };

const FOREVER = Number.POSITIVE_INFINITY;
const refuse = (error: ErrorCode): ModelOutcome => ({ error });
const OK: ModelOutcome = { ok: true };

/** A vehicle's rates in minor units (`day` undefined: no daily cap). */
export interface ModelRates {
  hour: number;
  day: number | undefined;
}

interface ModelVehicle {
  listing: ListingState;
  entries: Map<string, CalendarEntry>;
  rates: ModelRates;
}

export class ReferenceModel {
  readonly vehicles = new Map<string, ModelVehicle>();
  /** entry id -> vehicle id */
  readonly where = new Map<string, string>();

  constructor(
    readonly turnaroundMs: number,
    readonly holdTtlMs: number,
    readonly maxLiveHolds: number,
    /** Prices are in this currency (domain/pricing.ts). */
    readonly currency = 'INR',
  ) {}

  addVehicle(id: string, rates: ModelRates = { hour: 0, day: undefined }): void {
    this.vehicles.set(id, { listing: 'active', entries: new Map(), rates });
  }

  /** A vehicle's new rates: what is held or booked keeps its price; what comes next is priced at these. */
  setRates(id: string, rates: ModelRates): void {
    const v = this.vehicles.get(id);
    if (v) v.rates = rates;
  }

  /** [from, to) on the vehicle at its rates now. */
  private price(v: ModelVehicle, from: number, to: number): Price {
    return priceWindow(this.currency, v.rates.hour, v.rates.day, from, to);
  }

  private sorted(v: ModelVehicle): CalendarEntry[] {
    return sortEntries([...v.entries.values()]);
  }

  private firstTaking(v: ModelVehicle, from: number, to: number, trip: boolean, now: number, except?: string) {
    return this.sorted(v).find(
      (e) => e.id !== except && occupies(e, now) && overlapsWindow(e, from, to, trip, this.turnaroundMs, now),
    );
  }

  /** Facts displace: confirmed bookings they overlap become conflicted, live holds there released. */
  private displace(
    v: ModelVehicle,
    from: number,
    to: number,
    trip: boolean,
    cause: ConflictCause,
    by: string,
    now: number,
  ): void {
    for (const e of this.sorted(v)) {
      if (e.id === by || !occupies(e, now) || !overlapsWindow(e, from, to, trip, this.turnaroundMs, now)) continue;
      if (e.kind === 'booking' && e.status === 'confirmed')
        Object.assign(e, { status: 'conflicted', conflictCause: cause });
      else if (e.kind === 'hold') Object.assign(e, { status: 'released', releaseReason: cause });
    }
  }

  private entryOf<K extends CalendarEntry['kind']>(
    id: string,
    kind: K,
    customer?: string,
  ): Extract<CalendarEntry, { kind: K }> | undefined {
    const vid = this.where.get(id);
    const e = vid ? this.vehicles.get(vid)?.entries.get(id) : undefined;
    if (!e || e.kind !== kind) return undefined;
    if (customer !== undefined && 'customerId' in e && e.customerId !== customer) return undefined;
    return e as Extract<CalendarEntry, { kind: K }>;
  }

  private add(vehicleId: string, e: CalendarEntry): void {
    this.vehicles.get(vehicleId)!.entries.set(e.id, e);
    this.where.set(e.id, vehicleId);
  }

  placeHold(now: number, vehicleId: string, id: string, customerId: string, from: number, to: number): ModelOutcome {
    const v = this.vehicles.get(vehicleId);
    if (!v) return refuse('NOT_FOUND');
    if (intervalProblem(from, to, now)) return refuse('INVALID_INTERVAL');
    if (v.listing !== 'active' || this.firstTaking(v, from, to, true, now)) return refuse('NOT_AVAILABLE');
    const live = [...this.vehicles.values()]
      .flatMap((x) => [...x.entries.values()])
      .filter(
        (e) => e.kind === 'hold' && e.customerId === customerId && e.status === 'held' && e.expiresAt > now,
      ).length;
    if (live >= this.maxLiveHolds) return refuse('HOLD_LIMIT');
    this.add(vehicleId, {
      id,
      kind: 'hold',
      status: 'held',
      from,
      to,
      customerId,
      expiresAt: now + this.holdTtlMs,
      createdAt: now,
      updatedAt: now,
      price: this.price(v, from, to),
    });
    return OK;
  }

  releaseHold(now: number, holdId: string, customerId: string): ModelOutcome {
    const h = this.entryOf(holdId, 'hold', customerId);
    if (!h) return refuse('NOT_FOUND');
    if (h.status !== 'held') return refuse('INVALID_STATE');
    if (h.expiresAt <= now) return refuse('HOLD_EXPIRED');
    Object.assign(h, { status: 'released', releaseReason: 'customer' });
    return OK;
  }

  book(
    now: number,
    vehicleId: string,
    id: string,
    customerId: string,
    from: number,
    to: number,
    allowPast: boolean,
  ): ModelOutcome {
    const v = this.vehicles.get(vehicleId);
    if (!v) return refuse('NOT_FOUND');
    if (intervalProblem(from, to, now, { allowPast })) return refuse('INVALID_INTERVAL');
    if (v.listing !== 'active' || this.firstTaking(v, from, to, true, now)) return refuse('NOT_AVAILABLE');
    this.add(vehicleId, {
      id,
      kind: 'booking',
      status: 'confirmed',
      from,
      to,
      customerId,
      createdAt: now,
      updatedAt: now,
      price: this.price(v, from, to),
    });
    return OK;
  }

  bookHold(now: number, holdId: string, id: string, customerId: string): ModelOutcome {
    const h = this.entryOf(holdId, 'hold', customerId);
    if (!h) return refuse('NOT_FOUND');
    if (h.status !== 'held') return refuse('INVALID_STATE');
    if (h.expiresAt <= now) return refuse('HOLD_EXPIRED');
    const vid = this.where.get(holdId)!;
    const v = this.vehicles.get(vid)!;
    if (v.listing !== 'active' || this.firstTaking(v, h.from, h.to, true, now, h.id)) return refuse('NOT_AVAILABLE');
    Object.assign(h, { status: 'converted', bookingId: id });
    this.add(vid, {
      id,
      kind: 'booking',
      status: 'confirmed',
      from: h.from,
      to: h.to,
      customerId,
      holdId,
      createdAt: now,
      updatedAt: now,
      // The hold's price, fixed when it was placed.
      price: h.price ?? this.price(v, h.from, h.to),
    });
    return OK;
  }

  cancel(_now: number, bookingId: string, customerId: string | undefined): ModelOutcome {
    const b = this.entryOf(bookingId, 'booking', customerId);
    if (!b) return refuse('NOT_FOUND');
    if (b.status !== 'confirmed' && b.status !== 'conflicted') return refuse('INVALID_STATE');
    b.status = 'cancelled';
    return OK;
  }

  start(now: number, bookingId: string, customerId: string | undefined): ModelOutcome {
    const b = this.entryOf(bookingId, 'booking', customerId);
    if (!b) return refuse('NOT_FOUND');
    if (b.status !== 'confirmed') return refuse('INVALID_STATE');
    if (now < b.from - START_EARLY_MS || now >= b.to) return refuse('INVALID_STATE');
    const v = this.vehicles.get(this.where.get(bookingId)!)!;
    const busy = this.sorted(v).some(
      (e) =>
        e.id !== b.id &&
        occupies(e, now) &&
        ((e.kind === 'booking' && e.status === 'active') ||
          (e.kind === 'block' && e.from <= now && now < (e.to ?? FOREVER))),
    );
    if (busy) return refuse('NOT_AVAILABLE');
    b.status = 'active';
    return OK;
  }

  complete(now: number, bookingId: string, customerId: string | undefined): ModelOutcome {
    const b = this.entryOf(bookingId, 'booking', customerId);
    if (!b) return refuse('NOT_FOUND');
    if (b.status !== 'active') return refuse('INVALID_STATE');
    const scheduled = b.to;
    const completion = now < scheduled - MINUTE_MS ? 'early' : now > scheduled ? 'late' : 'on_time';
    Object.assign(b, { status: 'completed', completion });
    if (completion !== 'on_time') b.to = Math.max(now, b.from);
    if (completion === 'late')
      this.displace(this.vehicles.get(this.where.get(bookingId)!)!, scheduled, now, true, 'late_return', b.id, now);
    return OK;
  }

  extend(now: number, bookingId: string, customerId: string | undefined, newTo: number, force: boolean): ModelOutcome {
    const b = this.entryOf(bookingId, 'booking', customerId);
    if (!b) return refuse('NOT_FOUND');
    if (b.status !== 'confirmed' && b.status !== 'active') return refuse('INVALID_STATE');
    if (newTo <= b.to || intervalProblem(b.from, newTo, now, { allowPast: true })) return refuse('INVALID_INTERVAL');
    const v = this.vehicles.get(this.where.get(bookingId)!)!;
    for (const e of this.sorted(v)) {
      if (e.id === b.id || !occupies(e, now) || !overlapsWindow(e, b.to, newTo, true, this.turnaroundMs, now)) continue;
      const overridable = force && ((e.kind === 'booking' && e.status === 'confirmed') || e.kind === 'hold');
      if (!overridable) return refuse('NOT_AVAILABLE');
    }
    const oldTo = b.to;
    // The added time at the rates of now, added to what was fixed.
    b.price = b.price
      ? extendPrice(b.price, v.rates.hour, v.rates.day, oldTo, newTo).price
      : this.price(v, b.from, newTo);
    b.to = newTo;
    if (force) this.displace(v, oldTo, newTo, true, 'forced_extension', b.id, now);
    return OK;
  }

  placeBlock(
    now: number,
    vehicleId: string,
    id: string,
    reason: BlockReason,
    from: number | undefined,
    to: number | undefined,
    allowPast: boolean,
  ): ModelOutcome {
    const v = this.vehicles.get(vehicleId);
    if (!v) return refuse('NOT_FOUND');
    if (reason !== 'accident' && (from === undefined || to === undefined)) return refuse('INVALID_INTERVAL');
    const start = from ?? now - (now % MINUTE_MS);
    if (intervalProblem(start, to, now, { allowPast, openEnded: reason === 'accident' }))
      return refuse('INVALID_INTERVAL');
    const block: BlockEntry = {
      id,
      kind: 'block',
      status: 'active',
      reason,
      from: start,
      createdAt: now,
      updatedAt: now,
      ...(to === undefined ? {} : { to }),
    };
    this.add(vehicleId, block);
    this.displace(v, start, to ?? FOREVER, false, reason, id, now);
    return OK;
  }

  removeBlock(now: number, blockId: string): ModelOutcome {
    const k = this.entryOf(blockId, 'block');
    if (!k) return refuse('NOT_FOUND');
    if (k.status !== 'active') return refuse('INVALID_STATE');
    if (k.from <= now) {
      k.status = 'cleared';
      if (k.to === undefined || k.to > now) k.to = now;
    } else {
      k.status = 'cancelled';
    }
    return OK;
  }

  setListing(now: number, vehicleId: string, listing: ListingState): ModelOutcome {
    const v = this.vehicles.get(vehicleId);
    if (!v) return refuse('NOT_FOUND');
    if (v.listing === listing) return refuse('INVALID_STATE');
    v.listing = listing;
    if (listing === 'delisted') this.displace(v, now, FOREVER, false, 'delisted', vehicleId, now);
    return OK;
  }

  /** The sweeper at `now`: lapsed holds expire. */
  sweep(now: number): void {
    for (const v of this.vehicles.values()) {
      for (const e of v.entries.values())
        if (e.kind === 'hold' && e.status === 'held' && e.expiresAt <= now) e.status = 'expired';
    }
  }

  /** A vehicle's calendar in the comparable shape. */
  calendar(vehicleId: string): ComparableEntry[] {
    return comparable([...this.vehicles.get(vehicleId)!.entries.values()]);
  }
}

export interface ComparableEntry {
  id: string;
  kind: string;
  status: string;
  from: number;
  to: number | null;
  cause: string | null;
  price: Price | null;
}

export function comparable(entries: readonly CalendarEntry[]): ComparableEntry[] {
  return sortEntries(entries).map((e) => ({
    id: e.id,
    kind: e.kind,
    status: e.status,
    from: e.from,
    to: e.to ?? null,
    cause: (e as BookingEntry).conflictCause ?? (e as HoldEntry).releaseReason ?? (e as BlockEntry).reason ?? null,
    price: e.kind === 'block' ? null : (e.price ?? null),
  }));
}
