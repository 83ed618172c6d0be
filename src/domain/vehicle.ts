/** Vehicles and hosts: what a marketplace lists. */
import { isWholeMinor } from './pricing.ts';

/** Tier order matters: an upgrade is any category later in this list. */
export const CATEGORIES = ['hatchback', 'sedan', 'suv', 'premium', 'luxury'] as const;
export type Category = (typeof CATEGORIES)[number];

export const TRANSMISSIONS = ['manual', 'automatic'] as const;
export type Transmission = (typeof TRANSMISSIONS)[number];

export const FUELS = ['petrol', 'diesel', 'electric', 'hybrid', 'cng'] as const;
export type Fuel = (typeof FUELS)[number];

/** `retired` is final: delisted for good, kept for its history. */
export const LISTING_STATES = ['active', 'delisted', 'retired'] as const;
export type ListingState = (typeof LISTING_STATES)[number];

/**
 * "Status now", derived from the calendar at the server's time (architecture.md §3). The order is the
 * precedence when several apply: an accident outranks a trip, a trip outranks maintenance, ...
 */
export const VEHICLE_STATUSES = [
  'accident',
  'in_trip',
  'maintenance',
  'delisted',
  'blocked',
  'booked',
  'held',
  'available',
] as const;
export type VehicleStatus = (typeof VEHICLE_STATUSES)[number];

export function tierOf(category: Category): number {
  return CATEGORIES.indexOf(category);
}

/** True when `candidate` is the same category as `wanted` or a higher one. */
export function isSameOrBetter(candidate: Category, wanted: Category): boolean {
  return tierOf(candidate) >= tierOf(wanted);
}

export interface Host {
  readonly id: string;
  readonly name: string;
}

export interface VehicleSpec {
  hostId: string;
  category: Category;
  seats: number;
  transmission: Transmission;
  fuel: Fuel;
  make: string;
  model: string;
  location: { lat: number; lng: number };
  /**
   * Price of one hour, in the city's currency's major unit (a decimal: a whole number of its minor
   * units, so two places at most in INR, none in JPY). Prices are computed in minor units
   * (domain/pricing.ts).
   */
  pricePerHour: number;
  /** The most one 24 h period costs (the daily cap), in the same unit; absent: no cap. */
  pricePerDay?: number;
}

export interface Vehicle extends VehicleSpec {
  id: string;
  city: string;
  listing: ListingState;
  /** Status as last derived by a script; `deriveStatus` recomputes it for any instant. */
  status: VehicleStatus;
  /** Bumped by every script that changes the vehicle or its calendar. */
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** Fields a vehicle update may change (owner and city never change); `pricePerDay: null` removes the cap. */
export type VehiclePatch = Partial<Omit<VehicleSpec, 'hostId' | 'pricePerDay'>> & { pricePerDay?: number | null };

/** A price field: finite, 0 to 10^7, and a whole number of minor units at `exponent` (2 unless a city says). */
function isPrice(v: number, exponent: number): boolean {
  return Number.isFinite(v) && v >= 0 && v <= 1e7 && isWholeMinor(v, exponent);
}

export function validateVehiclePatch(patch: VehiclePatch, exponent = 2): string[] {
  const problems: string[] = [];
  if (patch.category !== undefined && !CATEGORIES.includes(patch.category)) problems.push('category');
  if (patch.transmission !== undefined && !TRANSMISSIONS.includes(patch.transmission)) problems.push('transmission');
  if (patch.fuel !== undefined && !FUELS.includes(patch.fuel)) problems.push('fuel');
  if (patch.seats !== undefined && !(Number.isInteger(patch.seats) && patch.seats >= 1 && patch.seats <= 60))
    problems.push('seats');
  if (patch.pricePerHour !== undefined && !isPrice(patch.pricePerHour, exponent)) problems.push('pricePerHour');
  if (patch.pricePerDay !== undefined && patch.pricePerDay !== null && !isPrice(patch.pricePerDay, exponent))
    problems.push('pricePerDay');
  for (const f of ['make', 'model'] as const) {
    const v = patch[f];
    if (v !== undefined && !(typeof v === 'string' && v.length >= 1 && v.length <= 64)) problems.push(f);
  }
  if (patch.location !== undefined) {
    const { lat, lng } = patch.location;
    if (!(Number.isFinite(lat) && lat >= -90 && lat <= 90 && Number.isFinite(lng) && lng >= -180 && lng <= 180))
      problems.push('location');
  }
  return problems;
}

/** `value` as one of `values`, read back from a store; anything else is a corrupted record, not input. */
/**
 * The one decoder of a stored vehicle: a Redis hash, or the whole state a vehicle event carries
 * (the same fields). A field outside its enum is a fault of the store, not of the caller: it throws.
 */
export function vehicleOf(s: Readonly<Record<string, unknown>>): Vehicle {
  const text = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  return {
    id: text(s.id),
    city: text(s.city),
    hostId: text(s.hostId),
    category: oneOf(CATEGORIES, s.category, 'category'),
    seats: Number(s.seats),
    transmission: oneOf(TRANSMISSIONS, s.transmission, 'transmission'),
    fuel: oneOf(FUELS, s.fuel, 'fuel'),
    make: text(s.make),
    model: text(s.model),
    location: { lat: Number(s.lat), lng: Number(s.lng) },
    pricePerHour: Number(s.pricePerHour),
    ...(s.pricePerDay === undefined || s.pricePerDay === null || s.pricePerDay === ''
      ? {}
      : { pricePerDay: Number(s.pricePerDay) }),
    listing: oneOf(LISTING_STATES, s.listing, 'listing'),
    status: oneOf(VEHICLE_STATUSES, s.status, 'status'),
    version: Number(s.version),
    createdAt: Number(s.createdAt),
    updatedAt: Number(s.updatedAt ?? s.createdAt),
  };
}

export function oneOf<T extends string>(values: readonly T[], value: unknown, field: string): T {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new Error(`stored ${field} ${String(value)} is not one of ${values.join(', ')}`);
  return found;
}
