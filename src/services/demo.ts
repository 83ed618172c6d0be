/**
 * Demo data: every reference city gets a fleet from a handful of hosts, some of it booked,
 * some in maintenance, a few accidents. Seeding goes through the engine's commands, so the
 * demo city is in exactly the state real traffic would leave it in (events included).
 */
import { CATEGORIES, FUELS, TRANSMISSIONS, type Category, type VehicleSpec } from '../domain/vehicle.ts';
import { HOUR_MS } from '../domain/calendar.ts';
import type { City } from '../domain/cities.ts';
import { currencyExponent, minorRound } from '../domain/pricing.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import type { Inventory } from './inventory.ts';
import { pick, rng } from '../domain/random.ts';

const MODELS: Record<Category, [string, string, number][]> = {
  hatchback: [
    ['Maruti', 'Swift', 5],
    ['Hyundai', 'i20', 5],
    ['VW', 'Polo', 5],
  ],
  sedan: [
    ['Honda', 'City', 5],
    ['Toyota', 'Corolla', 5],
    ['Skoda', 'Octavia', 5],
  ],
  suv: [
    ['Mahindra', 'XUV700', 7],
    ['Toyota', 'RAV4', 5],
    ['Kia', 'Seltos', 5],
  ],
  premium: [
    ['BMW', '3 Series', 5],
    ['Audi', 'A4', 5],
    ['Tesla', 'Model 3', 5],
  ],
  luxury: [
    ['Mercedes', 'S-Class', 5],
    ['BMW', '7 Series', 5],
    ['Porsche', 'Cayenne', 5],
  ],
};
const PRICE: Record<Category, number> = { hatchback: 6, sedan: 9, suv: 14, premium: 25, luxury: 60 };

async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export interface SeedReport {
  city: string;
  vehicles: number;
  bookings: number;
  blocks: number;
  skipped: boolean;
}

export async function seedCity(
  inventory: Inventory,
  redis: RedisConnection,
  city: City,
  vehiclesPerCity: number,
): Promise<SeedReport> {
  if ((await redis.scard(keys.vehicles(city.id))) > 0)
    return { city: city.id, vehicles: 0, bookings: 0, blocks: 0, skipped: true };
  const rand = rng([...city.id].reduce((a, c) => a * 31 + c.charCodeAt(0), 7));
  const specs: VehicleSpec[] = Array.from({ length: vehiclesPerCity }, (_, i) => {
    const category = CATEGORIES[
      Math.min(CATEGORIES.length - 1, Math.floor(rand() ** 1.6 * CATEGORIES.length))
    ] as Category;
    const [make, model, seats] = MODELS[category][Math.floor(rand() * 3)] as [string, string, number];
    return {
      hostId: `host-${city.id}-${1 + (i % 10)}`,
      category,
      seats,
      make,
      model,
      transmission: rand() < 0.6 ? TRANSMISSIONS[1] : TRANSMISSIONS[0],
      fuel: pick(FUELS, rand),
      location: {
        lat: round(city.center.lat + (rand() - 0.5) * 0.3),
        lng: round(city.center.lng + (rand() - 0.5) * 0.3),
      },
      // A whole number of the city's minor units (no fraction of a yen).
      pricePerHour: minorRound(PRICE[category] + rand() * 4, currencyExponent(city.currency)),
    };
  });
  const ids: string[] = [];
  await pool(specs, 32, async (spec) => {
    ids.push((await inventory.createVehicle(city.id, spec)).vehicleId);
  });

  const start = Math.ceil(Date.now() / HOUR_MS) * HOUR_MS + HOUR_MS;
  let bookings = 0;
  let blocks = 0;
  await pool(ids, 32, async (vehicleId) => {
    const r = rand();
    if (r < 0.35) {
      const from = start + Math.floor(rand() * 72) * HOUR_MS;
      await inventory.book({
        vehicleId,
        customerId: `demo-customer-${Math.floor(rand() * 500)}`,
        from,
        to: from + (2 + Math.floor(rand() * 46)) * HOUR_MS,
      });
      bookings++;
    } else if (r < 0.4) {
      const from = start + Math.floor(rand() * 48) * HOUR_MS;
      await inventory.placeBlock({
        vehicleId,
        reason: 'maintenance',
        from,
        to: from + 4 * HOUR_MS,
        note: 'demo service',
      });
      blocks++;
    } else if (r < 0.41) {
      await inventory.placeBlock({ vehicleId, reason: 'accident', note: 'demo accident' });
      blocks++;
    }
  });
  return { city: city.id, vehicles: ids.length, bookings, blocks, skipped: false };
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;
