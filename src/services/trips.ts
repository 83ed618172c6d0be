/**
 * Lists of trips (a customer's bookings and holds, the bookings on a host's fleet), across the
 * live calendars and PostgreSQL's history (docs/api.md, "Lists").
 *
 * The read model is caught up with the streams first, so a list shows every change acknowledged
 * before it was asked for; PostgreSQL adds what the read model no longer keeps (trips past for
 * more than a day). Where both know a booking, the read model's state wins: it is the fresher.
 * Pages follow the keyset (from, id), so writes between pages never repeat or skip an item.
 */
import type pg from 'pg';
import {
  tripPhase,
  type BookingEntry,
  type BookingStatus,
  type HoldEntry,
  type TripPhase,
} from '../domain/calendar.ts';
import { decodeCursor, encodeCursor } from '../domain/cursor.ts';
import { listBookings } from '../pg/bookings.ts';

/** A booking no longer in Redis (past, trimmed): its history, from PostgreSQL. */
export { bookingFromHistory } from '../pg/bookings.ts';
import type { ReadModel } from './read-model.ts';

export interface TripFilter {
  customerId?: string;
  hostId?: string;
  statuses?: readonly BookingStatus[];
  phase?: TripPhase;
  /** Only these cities (staff limited to cities). */
  cities?: ReadonlySet<string>;
  from?: number;
  to?: number;
}

export interface Trip {
  booking: BookingEntry;
  vehicleId: string;
  city: string;
  hostId: string;
}

export interface TripPage {
  trips: Trip[];
  /** Opaque; absent on the last page. */
  cursor: string | null;
}

type Key = { from: number; id: string };
const after = (a: Key, b: Key) => a.from > b.from || (a.from === b.from && a.id > b.id);
const byKey = (a: Trip, b: Trip) =>
  a.booking.from - b.booking.from || (a.booking.id < b.booking.id ? -1 : a.booking.id > b.booking.id ? 1 : 0);

export class TripLists {
  constructor(
    private readonly readModel: ReadModel,
    private readonly pool: pg.Pool | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async bookings(filter: TripFilter, page: { limit: number; cursor?: string }): Promise<TripPage> {
    const at = page.cursor ? decodeCursor(page.cursor) : undefined;
    const start = at ? { from: at.key, id: at.id } : undefined;
    const now = this.now();
    await this.readModel.catchUp(filter.cities ? [...filter.cities] : undefined);
    // Every booking of the owner the read model knows, whatever its state: it decides for those.
    const known = new Map<string, Trip>();
    for (const r of this.readModel.entries(
      (e, v) =>
        e.kind === 'booking' &&
        (filter.customerId === undefined || e.customerId === filter.customerId) &&
        (filter.hostId === undefined || v.hostId === filter.hostId),
      filter.cities,
    )) {
      const booking = r.entry as BookingEntry;
      const prior = known.get(booking.id);
      // An accepted offer leaves a `reaccommodated` copy on the old vehicle: the moved one is the booking.
      if (prior && booking.status === 'reaccommodated') continue;
      known.set(booking.id, { booking, vehicleId: r.vehicleId, city: r.city, hostId: r.hostId });
    }
    const wanted = (t: Trip) =>
      (!filter.statuses || filter.statuses.includes(t.booking.status)) &&
      (!filter.phase || tripPhase(t.booking, now) === filter.phase) &&
      (filter.from === undefined || t.booking.to > filter.from) &&
      (filter.to === undefined || t.booking.from < filter.to) &&
      (!start || after({ from: t.booking.from, id: t.booking.id }, start));
    const live = [...known.values()].filter(wanted);
    const durable = this.pool
      ? (
          await listBookings(this.pool, {
            ...(filter.customerId !== undefined ? { customerId: filter.customerId } : {}),
            ...(filter.hostId !== undefined ? { hostId: filter.hostId } : {}),
            ...(filter.statuses ? { statuses: filter.statuses } : {}),
            ...(filter.phase ? { phase: filter.phase } : {}),
            ...(filter.cities ? { cities: [...filter.cities] } : {}),
            ...(filter.from !== undefined ? { from: filter.from } : {}),
            ...(filter.to !== undefined ? { to: filter.to } : {}),
            ...(start ? { after: start } : {}),
            limit: page.limit + 1,
            now,
          })
        )
          .filter((r) => !known.has(r.booking.id))
          .map((r) => ({ ...r, booking: r.booking }))
      : [];
    const merged = [...live, ...durable].sort(byKey);
    const trips = merged.slice(0, page.limit);
    const last = trips.at(-1);
    return {
      trips,
      cursor: merged.length > page.limit && last ? encodeCursor({ key: last.booking.from, id: last.booking.id }) : null,
    };
  }

  /** A customer's live holds (held, not lapsed), soonest first. */
  async holds(customerId: string): Promise<{ hold: HoldEntry; vehicleId: string; city: string }[]> {
    await this.readModel.catchUp();
    const now = this.now();
    return this.readModel
      .entries((e) => e.kind === 'hold' && e.customerId === customerId && e.status === 'held' && e.expiresAt > now)
      .map((r) => ({ hold: r.entry as HoldEntry, vehicleId: r.vehicleId, city: r.city }))
      .sort((a, b) => a.hold.from - b.hold.from || (a.hold.id < b.hold.id ? -1 : 1));
  }
}
