/** The reference set of cities: the unit of consistency and of placement (architecture.md §1). */
import { currencyExponent } from './pricing.ts';

export interface City {
  /** Short, stable id; part of every Redis key of the city (`{c:<id>}`) and of every entity id. */
  readonly id: string;
  readonly name: string;
  /** IANA time zone, for display and day boundaries. */
  readonly timeZone: string;
  /** Minimum gap between two consecutive trips on one vehicle. */
  readonly turnaroundMs: number;
  readonly center: { readonly lat: number; readonly lng: number };
  /** ISO 4217 code of the local currency: every price of the city is in it (domain/pricing.ts). */
  readonly currency: string;
}

export const DEFAULT_TURNAROUND_MS = 30 * 60_000;

/** City ids are lowercase letters and digits, so they are safe inside keys and ids. */
export const CITY_ID_PATTERN = /^[a-z0-9]{2,16}$/;

const city = (id: string, name: string, timeZone: string, lat: number, lng: number, currency: string): City => ({
  id,
  name,
  timeZone,
  turnaroundMs: DEFAULT_TURNAROUND_MS,
  center: { lat, lng },
  currency,
});

export const REFERENCE_CITIES: readonly City[] = [
  city('blr', 'Bengaluru', 'Asia/Kolkata', 12.9716, 77.5946, 'INR'),
  city('del', 'Delhi', 'Asia/Kolkata', 28.6139, 77.209, 'INR'),
  city('bom', 'Mumbai', 'Asia/Kolkata', 19.076, 72.8777, 'INR'),
  city('hyd', 'Hyderabad', 'Asia/Kolkata', 17.385, 78.4867, 'INR'),
  city('maa', 'Chennai', 'Asia/Kolkata', 13.0827, 80.2707, 'INR'),
  city('pnq', 'Pune', 'Asia/Kolkata', 18.5204, 73.8567, 'INR'),
  city('dxb', 'Dubai', 'Asia/Dubai', 25.2048, 55.2708, 'AED'),
  city('sin', 'Singapore', 'Asia/Singapore', 1.3521, 103.8198, 'SGD'),
  city('bkk', 'Bangkok', 'Asia/Bangkok', 13.7563, 100.5018, 'THB'),
  city('jkt', 'Jakarta', 'Asia/Jakarta', -6.2088, 106.8456, 'IDR'),
  city('syd', 'Sydney', 'Australia/Sydney', -33.8688, 151.2093, 'AUD'),
  city('tyo', 'Tokyo', 'Asia/Tokyo', 35.6762, 139.6503, 'JPY'),
  city('ist', 'Istanbul', 'Europe/Istanbul', 41.0082, 28.9784, 'TRY'),
  city('ber', 'Berlin', 'Europe/Berlin', 52.52, 13.405, 'EUR'),
  city('par', 'Paris', 'Europe/Paris', 48.8566, 2.3522, 'EUR'),
  city('lon', 'London', 'Europe/London', 51.5074, -0.1278, 'GBP'),
  city('mad', 'Madrid', 'Europe/Madrid', 40.4168, -3.7038, 'EUR'),
  city('ams', 'Amsterdam', 'Europe/Amsterdam', 52.3676, 4.9041, 'EUR'),
  city('nyc', 'New York', 'America/New_York', 40.7128, -74.006, 'USD'),
  city('chi', 'Chicago', 'America/Chicago', 41.8781, -87.6298, 'USD'),
  city('lax', 'Los Angeles', 'America/Los_Angeles', 34.0522, -118.2437, 'USD'),
  city('mex', 'Mexico City', 'America/Mexico_City', 19.4326, -99.1332, 'MXN'),
  city('sao', 'São Paulo', 'America/Sao_Paulo', -23.5505, -46.6333, 'BRL'),
  city('jnb', 'Johannesburg', 'Africa/Johannesburg', -26.2041, 28.0473, 'ZAR'),
  city('cai', 'Cairo', 'Africa/Cairo', 30.0444, 31.2357, 'EGP'),
];

/** Cities known to one process. Tests and deployments may add their own beside the reference set. */
export class CityCatalog {
  private readonly byId = new Map<string, City>();

  constructor(cities: readonly City[] = REFERENCE_CITIES) {
    for (const c of cities) this.add(c);
  }

  add(c: City): void {
    if (!CITY_ID_PATTERN.test(c.id)) throw new Error(`invalid city id ${JSON.stringify(c.id)}`);
    currencyExponent(c.currency);
    this.byId.set(c.id, c);
  }

  get(id: string): City | undefined {
    return this.byId.get(id);
  }

  all(): City[] {
    return [...this.byId.values()];
  }
}
