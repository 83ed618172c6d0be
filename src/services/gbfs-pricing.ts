/**
 * GBFS `system_pricing_plans` of a city, from the same rates the engine prices with
 * (domain/pricing.ts): one plan per distinct hourly rate and daily cap among the listed vehicles,
 * each charged per started hour (`per_min_pricing`, a 60-minute interval) and, with a cap, capped
 * per 24 h (`fare_capping`: 1,440 minutes). `vehicle_types`, `vehicle_status` and
 * `vehicle_availability` name each vehicle's plan (services/gbfs.ts).
 */
import type { City } from '../domain/cities.ts';
import { PRICE_PERIOD_MS, pricingOf, ratesOf } from '../domain/pricing.ts';

const en = (text: string) => [{ text, language: 'en' }];

interface Rated {
  id: string;
  pricePerHour: number;
  pricePerDay?: number | undefined;
}

export interface PricingPlans {
  /** The plans, by plan id. */
  plans: Record<string, unknown>[];
  /** The plan of a listed vehicle (by id). */
  planOf: Map<string, string>;
}

/** The plans of the listed vehicles, and which plan each vehicle is on. */
export function pricingPlans(city: City, listed: readonly Rated[]): PricingPlans {
  const { currency, exponent } = pricingOf(city);
  const major = (minor: number) => minor / 10 ** exponent;
  const text = (minor: number) => `${major(minor).toFixed(exponent)} ${currency}`;
  const plans = new Map<string, Record<string, unknown>>();
  const planOf = new Map<string, string>();
  for (const v of listed) {
    const { hour, day } = ratesOf(v, exponent);
    const id = day === undefined ? `hourly-${hour}` : `hourly-${hour}-daily-${day}`;
    planOf.set(v.id, id);
    if (plans.has(id)) continue;
    const name = day === undefined ? `${text(hour)} an hour` : `${text(hour)} an hour, at most ${text(day)} a day`;
    plans.set(id, {
      plan_id: id,
      name: en(name),
      currency,
      price: 0,
      is_taxable: false,
      description: en(
        `Charged per started hour from the start of the booking${
          day === undefined ? '' : `, and never more than ${text(day)} for each 24 hours`
        }. The price is fixed when the vehicle is held or booked.`,
      ),
      per_min_pricing: [{ start: 0, rate: major(hour), interval: 60 }],
      ...(day === undefined ? {} : { fare_capping: { duration: PRICE_PERIOD_MS / 60_000, price: major(day) } }),
    });
  }
  return { plans: [...plans.values()].sort((a, b) => (String(a.plan_id) < String(b.plan_id) ? -1 : 1)), planOf };
}

/** A vehicle type's plans: every plan of its vehicles, and the one most of them are on (ties: the first by id). */
export function typePlans(vehicleIds: readonly string[], planOf: ReadonlyMap<string, string>) {
  const count = new Map<string, number>();
  for (const id of vehicleIds) {
    const plan = planOf.get(id);
    if (plan) count.set(plan, (count.get(plan) ?? 0) + 1);
  }
  const ids = [...count.keys()].sort();
  const best = ids.reduce<string | undefined>(
    (b, p) => (b === undefined || (count.get(p) ?? 0) > (count.get(b) ?? 0) ? p : b),
    undefined,
  );
  return best === undefined ? {} : { default_pricing_plan_id: best, pricing_plan_ids: ids };
}
