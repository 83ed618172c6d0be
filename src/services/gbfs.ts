/**
 * GBFS 3.1 (schemas: MobilityData gbfs-json-schema v3.1-RC3) feeds of one city, built from the
 * read model after it has caught up with the city's stream (docs/api.md, "GBFS").
 *
 * Cars here are round-trip car sharing: each vehicle has a home spot, published as a virtual
 * station of its own (`station_information`), which is what `vehicle_availability` (the future
 * windows, GBFS 3.1) refers to. Vehicles off the market (delisted, retired) are not published;
 * vehicles on a rental are left out of `vehicle_status`, as GBFS requires. `system_pricing_plans`
 * states the engine's own rates (services/gbfs-pricing.ts); every vehicle and type names its plans.
 */
import { deriveStatus, freeWindows } from '../domain/calendar.ts';
import type { City } from '../domain/cities.ts';
import type { Fuel, VehicleStatus } from '../domain/vehicle.ts';
import type { ReadModel, ReadVehicle } from './read-model.ts';
import { pricingPlans, typePlans } from './gbfs-pricing.ts';

export const GBFS_VERSION = '3.1-RC3';
export const GBFS_FEEDS = [
  'system_information',
  'vehicle_types',
  'system_pricing_plans',
  'station_information',
  'station_status',
  'vehicle_status',
  'vehicle_availability',
] as const;
export type GbfsFeed = (typeof GBFS_FEEDS)[number];

/** Seconds a consumer may cache a feed. */
const TTL_S = 60;
const en = (text: string) => [{ text, language: 'en' }];

const PROPULSION: Record<Fuel, string> = {
  petrol: 'combustion',
  diesel: 'combustion_diesel',
  cng: 'combustion',
  electric: 'electric',
  hybrid: 'hybrid',
};
/** Nominal full ranges (the service does not track fuel levels); GBFS requires one for motors. */
const NOMINAL_RANGE_M: Record<Fuel, number> = {
  petrol: 600_000,
  diesel: 800_000,
  cng: 350_000,
  electric: 300_000,
  hybrid: 800_000,
};

const typeId = (v: Pick<ReadVehicle, 'category' | 'fuel'>) => `${v.category}-${v.fuel}`;
const stationId = (v: Pick<ReadVehicle, 'id'>) => `home-${v.id}`;
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A built feed is served again, without rebuilding, while its city has no new event and for at most this long. */
const REUSE_MS = 1_000;

export class GbfsFeeds {
  /** The last build of each feed: public feeds are polled by many; a flood costs one build a second. */
  private readonly built = new Map<
    string,
    { position: string | undefined; at: number; doc: Record<string, unknown> }
  >();

  constructor(
    private readonly readModel: ReadModel,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every feed of the city; `base` is the absolute URL prefix of `/gbfs/<city>`. */
  async feed(city: City, name: GbfsFeed | 'gbfs', base: string): Promise<Record<string, unknown>> {
    await this.readModel.catchUp([city.id]);
    const key = `${city.id}|${name}|${base}`;
    const position = this.readModel.position(city.id);
    const last = this.built.get(key);
    if (last && last.position === position && this.now() - last.at < REUSE_MS) return last.doc;
    const doc = this.build(city, name, base);
    if (this.built.size > 1_000) this.built.clear();
    this.built.set(key, { position, at: this.now(), doc });
    return doc;
  }

  private build(city: City, name: GbfsFeed | 'gbfs', base: string): Record<string, unknown> {
    const now = this.now();
    const listed = [...this.readModel.vehiclesOf(city.id)].filter((v) => v.listing === 'active');
    // Each listed vehicle's plan (services/gbfs-pricing.ts), named by the vehicle feeds.
    const pricing = pricingPlans(city, listed);
    const envelope = (data: unknown) => ({ last_updated: rfc3339(now), ttl: TTL_S, version: GBFS_VERSION, data });
    switch (name) {
      case 'gbfs':
        return envelope({
          feeds: ['gbfs', ...GBFS_FEEDS].map((f) => ({ name: f, url: `${base}/${f}.json` })),
        });
      case 'system_information':
        return envelope({
          system_id: `fleet-inventory-${city.id}`,
          languages: ['en'],
          name: en(`fleet-inventory ${city.name}`),
          opening_hours: '24/7',
          feed_contact_email: 'gbfs@fleet-inventory.example',
          timezone: city.timeZone,
        });
      case 'vehicle_types':
        return envelope({ vehicle_types: vehicleTypes(listed, pricing.planOf) });
      case 'system_pricing_plans':
        return envelope({ plans: pricing.plans });
      case 'station_information':
        return envelope({
          stations: listed.map((v) => ({
            station_id: stationId(v),
            name: en(`${v.make} ${v.model} home spot`),
            lat: v.lat,
            lon: v.lng,
            is_virtual_station: true,
            capacity: 1,
          })),
        });
      case 'station_status':
        return envelope({
          stations: listed.map((v) => {
            const { status } = deriveStatus('active', [...v.entries.values()], now);
            const here = status !== 'in_trip';
            const disabled = here && isDisabled(status);
            return {
              station_id: stationId(v),
              num_vehicles_available: here && !disabled && status === 'available' ? 1 : 0,
              num_vehicles_disabled: disabled ? 1 : 0,
              is_installed: true,
              is_renting: true,
              is_returning: true,
              last_reported: rfc3339(now),
            };
          }),
        });
      case 'vehicle_status':
        return envelope({ vehicles: vehicleStatus(listed, now, pricing.planOf) });
      case 'vehicle_availability':
        return envelope({
          vehicles: listed.map((v) => ({
            vehicle_id: v.id,
            vehicle_type_id: typeId(v),
            station_id: stationId(v),
            ...planField(pricing.planOf, v),
            availabilities: freeWindows([...v.entries.values()], city.turnaroundMs, now).map((w) => ({
              from: rfc3339(w.from),
              ...(w.until !== undefined ? { until: rfc3339(w.until) } : {}),
            })),
          })),
        });
    }
  }
}

function vehicleTypes(listed: readonly ReadVehicle[], planOf: ReadonlyMap<string, string>) {
  const types = new Map<string, { seats: number; v: ReadVehicle; ids: string[] }>();
  for (const v of listed) {
    const t = types.get(typeId(v));
    if (!t) types.set(typeId(v), { seats: v.seats, v, ids: [v.id] });
    else {
      t.ids.push(v.id);
      if (v.seats > t.seats) Object.assign(t, { seats: v.seats, v });
    }
  }
  return [...types.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, { seats, v, ids }]) => ({
      vehicle_type_id: id,
      form_factor: 'car',
      propulsion_type: PROPULSION[v.fuel],
      max_range_meters: NOMINAL_RANGE_M[v.fuel],
      name: en(`${v.category} (${v.fuel})`),
      rider_capacity: seats,
      ...typePlans(ids, planOf),
    }));
}

/** The vehicle's own plan (it may differ from its type's default). */
const planField = (planOf: ReadonlyMap<string, string>, v: Pick<ReadVehicle, 'id'>) => {
  const plan = planOf.get(v.id);
  return plan === undefined ? {} : { pricing_plan_id: plan };
};

/** Off the road now: an accident, maintenance or the host's own block. */
const isDisabled = (status: VehicleStatus) => status === 'accident' || status === 'maintenance' || status === 'blocked';

/** Status now, derived from the calendar as the engine derives it; vehicles on a rental are left out. */
function vehicleStatus(listed: readonly ReadVehicle[], now: number, planOf: ReadonlyMap<string, string>) {
  const out = [];
  for (const v of listed) {
    const { status } = deriveStatus('active', [...v.entries.values()], now);
    if (status === 'in_trip') continue;
    out.push({
      vehicle_id: v.id,
      lat: v.lat,
      lon: v.lng,
      station_id: stationId(v),
      vehicle_type_id: typeId(v),
      ...planField(planOf, v),
      is_reserved: status === 'booked' || status === 'held',
      is_disabled: isDisabled(status),
      last_reported: rfc3339(now),
    });
  }
  return out;
}
