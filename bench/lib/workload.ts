/**
 * The write workload shared by the three booking services: the same vehicles (same ids) in one
 * city, and the same sequence of requests. Request `i` books vehicle `i mod V` for two hours,
 * in the `floor(i / V)`-th three-hour slot after `base`: every request is a distinct
 * vehicle/window, so every booking can succeed (turnaround of 30 min included) and the three
 * services do the same work.
 */
export const HOUR = 3_600_000;
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
