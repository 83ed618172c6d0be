/**
 * The conflict reserve (docs/conflicts.md): per city, area, category and hour ahead, keep back
 * from instant booking the few vehicles Littlewood's rule says a conflict is likelier to need than
 * a new booking (src/domain/reserve.ts). Each is a hold of the service's, placed by
 * `place_reserve.lua` with its event, lapsing `releaseMinutes` before its hour so that the vehicle
 * goes back to search; until then only the conflict resolver takes it (make_offers).
 *
 * Inputs, all from the read model: the bookings starting in each hour, the market's conflicts per
 * booking, and the average booking's value.
 */
import { randomUUID } from 'node:crypto';
import type { BookingEntry, HoldEntry } from '../domain/calendar.ts';
import { occupies, overlapsWindow } from '../domain/calendar.ts';
import { conflictRate, protectionLevel, reserveValues, type ReserveValues } from '../domain/reserve.ts';
import { CATEGORIES } from '../domain/vehicle.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, runScript, type RedisConnection } from '../redis/scripts.ts';
import { areaOf, type Area } from './forecast.ts';
import type { Inventory } from './inventory.ts';
import type { ReadModel, ReadVehicle } from './read-model.ts';

const HOUR = 3_600_000;
const AREAS: readonly Area[] = ['NE', 'NW', 'SE', 'SW'];

export interface ReservePolicy {
  /** The reserve lapses this long before its hour: the vehicle is searchable again. */
  releaseMinutes: number;
  /** Hours ahead planned, from the first hour whose release is still to come. */
  horizonHours: number;
  /** At most this share of an area's vehicles of a category is ever kept back. */
  maxShare: number;
  /** Littlewood's values; 0: derived from the average booking and the offer policy. */
  conflictValue: number;
  bookingValue: number;
}

export interface ReservePlan {
  placed: number;
  /** Reserve slots already held (placed by an earlier run). */
  kept: number;
  values: ReserveValues;
  rate: number;
}

export interface ReserveSlot {
  holdId: string;
  vehicleId: string;
  area: string;
  category: string;
  hour: number;
  releasesAt: number;
}

export class ReservePlanner {
  constructor(
    private readonly redis: RedisConnection,
    private readonly inventory: Inventory,
    private readonly readModel: ReadModel,
    private readonly policy: ReservePolicy,
    private readonly offers: { credit: number; noAlternativeCredit: number },
  ) {}

  /** One planning pass over `city`: the reserve of every area, category and hour ahead topped up. */
  async plan(city: string): Promise<ReservePlan> {
    await this.readModel.catchUp([city]);
    const c = this.inventory.cities.get(city);
    if (!c) return { placed: 0, kept: 0, values: { conflictValue: 0, bookingValue: 0 }, rate: 0 };
    const now = this.inventory.clock.now();
    const vehicles = [...this.readModel.vehiclesOf(city)].filter((v) => v.listing === 'active');
    const bookings = vehicles.flatMap((v) =>
      [...v.entries.values()].filter((e): e is BookingEntry => e.kind === 'booking').map((b) => ({ b, v })),
    );
    const conflicts = bookings.filter(({ b }) => b.conflictedAt !== undefined).length;
    const rate = conflictRate(conflicts, bookings.length);
    const values = reserveValues(averageBooking(bookings), this.offers, {
      conflictValue: this.policy.conflictValue,
      bookingValue: this.policy.bookingValue,
    });
    const first = Math.ceil((now + this.policy.releaseMinutes * 60_000 + 60_000) / HOUR) * HOUR;
    let placed = 0;
    let kept = 0;
    // Taken in this pass: the read model hears of a reserve a moment after it is placed.
    const taken = new Set<string>();
    for (let h = first; h < first + this.policy.horizonHours * HOUR; h += HOUR) {
      for (const area of AREAS) {
        for (const [ci, category] of CATEGORIES.entries()) {
          const fleet = vehicles.filter((v) => v.category === category && areaOf(c, v) === area);
          if (fleet.length < 2) continue;
          const starting = bookings.filter(
            ({ b, v }) =>
              b.status === 'confirmed' &&
              b.from >= h &&
              b.from < h + HOUR &&
              v.category === category &&
              areaOf(c, v) === area,
          ).length;
          const most = Math.floor(fleet.length * this.policy.maxShare);
          const k = protectionLevel(rate * starting, values, most);
          for (let slot = 0; slot < k; slot++) {
            const holdId = `hld_${city}_rsv${h / HOUR}${AREAS.indexOf(area)}${ci}${slot}`;
            if (fleet.some((v) => v.entries.has(holdId))) {
              kept++;
              continue;
            }
            const free = fleet.find((v) => !taken.has(`${v.id}|${h}`) && freeFor(v, h, h + HOUR, c.turnaroundMs, now));
            if (!free) break;
            taken.add(`${free.id}|${h}`);
            if (await this.place(city, free.id, holdId, h, area, category, c.turnaroundMs)) placed++;
          }
        }
      }
    }
    return { placed, kept, values, rate };
  }

  private async place(
    city: string,
    vehicleId: string,
    holdId: string,
    hour: number,
    area: string,
    category: string,
    turnaroundMs: number,
  ): Promise<boolean> {
    const raw = await runScript(
      this.redis,
      'place_reserve',
      [...keys.vehicleKeys(city, vehicleId), ...keys.cityScriptKeys(city)],
      [
        randomUUID(),
        city,
        vehicleId,
        turnaroundMs,
        holdId,
        hour,
        hour + HOUR,
        hour - this.policy.releaseMinutes * 60_000,
        area,
        category,
      ],
    );
    return fromScript<{ outcome: string }>(raw).outcome === 'placed';
  }

  /** The reserve held now in `city` (ops: GET /v1/cities/{city}/reserve). */
  async held(city: string): Promise<ReserveSlot[]> {
    await this.readModel.catchUp([city]);
    const now = this.inventory.clock.now();
    return this.readModel
      .entries(
        (e, v) => v.city === city && e.kind === 'hold' && !!e.reserve && e.status === 'held' && e.expiresAt > now,
      )
      .map(({ entry, vehicleId }) => {
        const h = entry as HoldEntry & { reserve: NonNullable<HoldEntry['reserve']> };
        return {
          holdId: h.id,
          vehicleId,
          area: h.reserve.area,
          category: h.reserve.category,
          hour: h.reserve.hour,
          releasesAt: h.expiresAt,
        };
      })
      .sort((a, b) => a.hour - b.hour || a.holdId.localeCompare(b.holdId));
  }
}

/** Nothing occupies [from, to) on the vehicle (turnaround included), by the read model. */
function freeFor(v: ReadVehicle, from: number, to: number, turnaroundMs: number, now: number): boolean {
  for (const e of v.entries.values())
    if (occupies(e, now) && overlapsWindow(e, from, to, true, turnaroundMs, now)) return false;
  return true;
}

/** What a booking of this market is worth on average (price per hour times hours); 0 with none. */
function averageBooking(bookings: readonly { b: BookingEntry; v: ReadVehicle }[]): number {
  if (!bookings.length) return 0;
  const total = bookings.reduce((n, { b, v }) => n + v.pricePerHour * ((b.to - b.from) / HOUR), 0);
  return total / bookings.length;
}
