/**
 * Memory of the search read model: its bytes per vehicle, and whether they stay flat while the
 * marketplace runs. A city is seeded, a read model loads it in this process, then an hour of the
 * simulator's time runs — the simulator plays a marketplace day a minute, so sixty days — on a
 * shifted clock (redis/clock.ts): every simulated hour customers book windows in the next three
 * days, trips whose window has begun start and come back, one booking in ten is cancelled, and
 * each simulated day the past leaves Redis (trim) as it does once PostgreSQL has it. The read
 * model tails the stream throughout and answers searches; after each day it is caught up, the
 * garbage collector runs, and the heap and what the model holds are sampled. (Redis's own memory
 * is not a figure of this compressed run: the TTLs of its idempotency records run in real time.)
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { CityCatalog, REFERENCE_CITIES } from '../../src/domain/cities.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { keys } from '../../src/redis/keys.ts';
import { seedCity } from '../../src/services/demo.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { C, privateRedis, rng } from './harness.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export interface MemorySample {
  day: number;
  heapBytes: number;
  entries: number;
}

export async function memory() {
  const city = REFERENCE_CITIES[1] ?? REFERENCE_CITIES[0]!;
  const { redis } = await privateRedis();
  const clock = new ShiftedClock(redis);
  const cities = new CityCatalog([city]);
  const inventory = new Inventory(redis, { clock, cities });
  await seedCity(inventory, redis, city, C.memoryVehicles);
  const ids = await redis.smembers(keys.vehicles(city.id));

  const before = heapAfterGc();
  const model = new ReadModel(redis, inventory, cities);
  await model.start();
  const held = () => {
    let n = 0;
    for (const v of model.vehiclesOf(city.id)) n += v.entries.size;
    return n;
  };
  const loaded = heapAfterGc();
  const start = { bytesPerVehicle: (loaded - before) / ids.length, entriesPerVehicle: held() / ids.length };

  const rand = rng(7);
  const samples: MemorySample[] = [];
  const booked: { id: string; customer: string; from: number }[] = [];
  let bookings = 0;
  let refused = 0;
  let trips = 0;
  let cancelled = 0;
  const perHour = Math.max(1, Math.round(ids.length / 24));
  for (let day = 1; day <= C.memoryDays; day++) {
    for (let h = 0; h < 24; h++) {
      clock.advance(HOUR);
      const now = clock.now();
      const hour = now - (now % HOUR);
      for (let k = 0; k < perHour; k++) {
        const from = hour + (1 + Math.floor(rand() * 72)) * HOUR;
        const customer = `mem-customer-${Math.floor(rand() * 300)}`;
        try {
          const r = await inventory.book({
            vehicleId: ids[Math.floor(rand() * ids.length)]!,
            customerId: customer,
            from,
            to: from + (2 + Math.floor(rand() * 47)) * HOUR,
          });
          bookings++;
          if (rand() < 0.1) {
            await inventory.cancelBooking(r.booking.id, customer);
            cancelled++;
          } else booked.push({ id: r.booking.id, customer, from });
        } catch {
          refused++;
        }
      }
      // Trips whose window has begun: picked up and brought back (early: the rest of the window frees).
      for (let i = booked.length - 1; i >= 0; i--) {
        const b = booked[i]!;
        if (b.from > now) continue;
        booked.splice(i, 1);
        try {
          await inventory.startTrip(b.id, b.customer);
          await inventory.completeTrip(b.id, b.customer);
          trips++;
        } catch {
          // A trip the clock left behind (its window ended between two hours): it stays a no-show.
        }
      }
      await model.search(city.id, {
        from: hour + 2 * HOUR,
        to: hour + 26 * HOUR,
        sort: 'price',
        limit: 20,
      });
    }
    await inventory.trimCity(city.id, clock.now() - DAY, clock.now());
    await model.catchUp([city.id]);
    samples.push({ day, heapBytes: heapAfterGc(), entries: held() });
  }
  await model.stop();
  const end = heapAfterGc();
  // Flat: the second half of the run against the first half after the calendars filled (day 7 on:
  // three days ahead, two-day trips and a day of past are all held by then).
  const settled = samples.filter((s) => s.day >= Math.min(7, Math.ceil(C.memoryDays / 2)));
  const half = Math.floor(settled.length / 2);
  const mean = (xs: MemorySample[], f: (s: MemorySample) => number) =>
    xs.length ? xs.reduce((a, s) => a + f(s), 0) / xs.length : 0;
  const early = settled.slice(0, half);
  const late = settled.slice(half);
  return {
    city: city.id,
    vehicles: ids.length,
    days: C.memoryDays,
    bookings,
    refused,
    trips,
    cancelled,
    start,
    end: {
      bytesPerVehicle: (end - before) / ids.length,
      entriesPerVehicle: (samples.at(-1)?.entries ?? 0) / ids.length,
    },
    heapDrift: mean(early, (s) => s.heapBytes)
      ? mean(late, (s) => s.heapBytes) / mean(early, (s) => s.heapBytes) - 1
      : 0,
    samples,
  };
}
