/**
 * The write workload shared by the three booking services: the same vehicles (same ids) in one
 * city, and the same sequence of requests. Request `i` books vehicle `i mod V` for two hours,
 * in the `floor(i / V)`-th three-hour slot after `base`: every request is a distinct
 * vehicle/window, so every booking can succeed (turnaround of 30 min included) and the three
 * services do the same work.
 */
import type { City } from '../../src/domain/cities.ts';
import type { VehicleSpec } from '../../src/domain/vehicle.ts';

export const HOUR = 3_600_000;

/** The one city of the engine-level benches (bench/sync.ts, bench/event-log.ts): UTC, 30 min turnaround. */
export const BENCH_CITY: City = {
  id: 'bench',
  name: 'Bench',
  timeZone: 'UTC',
  turnaroundMs: 30 * 60_000,
  center: { lat: 0, lng: 0 },
  currency: 'INR',
};

/** Their vehicle: every one alike, so a booking costs the same on any of them. */
export const BENCH_VEHICLE: VehicleSpec = {
  hostId: 'h1',
  category: 'sedan',
  seats: 5,
  transmission: 'automatic',
  fuel: 'petrol',
  make: 'B',
  model: 'C',
  location: { lat: 1, lng: 1 },
  pricePerHour: 10,
};
export const WRITE_CITY = 'blr';

export function vehicleIds(n: number, city = WRITE_CITY): string[] {
  return Array.from({ length: n }, (_, i) => `veh_${city}_BENCH${String(i).padStart(7, '0')}`);
}

/** The first slot: the next whole hour, plus one, so no window is ever in the past. */
export function firstSlot(now = Date.now()): number {
  return Math.ceil(now / HOUR) * HOUR + HOUR;
}

export function bookingBody(i: number, ids: readonly string[], base: number): string {
  const from = base + Math.floor(i / ids.length) * 3 * HOUR;
  return JSON.stringify({
    vehicleId: ids[i % ids.length],
    from: new Date(from).toISOString(),
    to: new Date(from + 2 * HOUR).toISOString(),
  });
}
