/**
 * Customer profiles for `sort=for_you` (src/domain/ranking.ts): built from the trips a customer
 * booked, live ones from the read model and older ones from PostgreSQL, and remembered for a
 * minute (a profile moves with trips, not with every search).
 */
import type pg from 'pg';
import { customerTrips } from '../pg/history.ts';
import type { BookingEntry } from '../domain/calendar.ts';
import { profileOf, type CustomerProfile, type PastTrip } from '../domain/ranking.ts';
import { oneOf, CATEGORIES } from '../domain/vehicle.ts';
import type { ReadModel } from './read-model.ts';

/** Bookings that say what a customer chose (a conflict's or a cancellation's do too: they chose it). */
const CHOSEN = new Set(['confirmed', 'active', 'completed', 'reaccommodated', 'conflicted', 'cancelled']);
const HOUR = 3_600_000;

export class CustomerProfiles {
  private readonly cache = new Map<string, { profile: CustomerProfile; until: number }>();

  constructor(
    private readonly readModel: ReadModel,
    private readonly pool: pg.Pool | undefined,
    private readonly ttlMs = 60_000,
    private readonly maxCached = 50_000,
  ) {}

  async profile(customerId: string): Promise<CustomerProfile> {
    const now = Date.now();
    const hit = this.cache.get(customerId);
    if (hit && hit.until > now) return hit.profile;
    const trips = new Map<string, PastTrip>();
    for (const r of this.readModel.entries((e) => e.kind === 'booking' && e.customerId === customerId)) {
      const b = r.entry as BookingEntry;
      const v = this.readModel.vehicle(r.city, r.vehicleId);
      if (!v || !CHOSEN.has(b.status) || trips.has(b.id)) continue;
      trips.set(b.id, {
        category: v.category,
        pricePerHour: v.pricePerHour,
        lat: v.lat,
        lng: v.lng,
        hours: (b.to - b.from) / HOUR,
      });
    }
    if (this.pool) {
      const rows = await customerTrips(this.pool, customerId, [...CHOSEN]);
      for (const r of rows) {
        if (trips.has(r.id)) continue;
        trips.set(r.id, {
          category: oneOf(CATEGORIES, r.category, 'category'),
          pricePerHour: r.pricePerHour,
          lat: r.lat,
          lng: r.lng,
          hours: r.hours,
        });
      }
    }
    const profile = profileOf([...trips.values()]);
    if (this.cache.size >= this.maxCached) this.cache.clear();
    this.cache.set(customerId, { profile, until: now + this.ttlMs });
    return profile;
  }
}
