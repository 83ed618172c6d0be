/**
 * The one step both the late-return watch and the conflict desk take on an at-risk booking: its
 * risk ends and its standby vehicle goes back (`clear_at_risk.lua`). A module of its own, below
 * both, so that neither imports the other.
 */
import { randomUUID } from 'node:crypto';
import type { BookingEntry } from '../domain/calendar.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, runScript, type RedisConnection } from '../redis/scripts.ts';
import type { Inventory } from './inventory.ts';

/**
 * Ends a booking's risk and releases its standby hold if still held; `reason`: trip_back,
 * conflicted, ended or risk_fell. Harmless when the booking is not (or no longer) at risk.
 */
export async function clearAtRisk(
  redis: RedisConnection,
  inventory: Inventory,
  city: string,
  booking: BookingEntry,
  vehicleId: string,
  reason: 'trip_back' | 'conflicted' | 'ended' | 'risk_fell',
): Promise<{ outcome: string; released: number }> {
  const standby = booking.atRisk?.standby?.vehicleId ?? '';
  const c = inventory.cities.get(city);
  const raw = await runScript(
    redis,
    'clear_at_risk',
    [
      ...keys.vehicleKeys(city, vehicleId),
      ...keys.cityScriptKeys(city),
      ...keys.vehicleKeys(city, standby || vehicleId),
    ],
    [randomUUID(), city, c?.turnaroundMs ?? 0, booking.id, vehicleId, reason, standby],
  );
  return fromScript<{ outcome: string; released: number }>(raw);
}
