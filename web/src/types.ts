/**
 * The console's shapes and enums, every one derived from the generated API types (openapi.d.ts):
 * nothing here is declared by hand, so when the API changes a shape or an enum, `tsc -p web`
 * fails where the console uses it.
 */
import type { paths } from './openapi.d.ts';

type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
/** An operation's JSON answer (200, else 201). */
type Answer<Op> = Op extends { responses: { 200: infer R } }
  ? Json<R>
  : Op extends { responses: { 201: infer R } }
    ? Json<R>
    : never;
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
type Body<Op> = Op extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

export type City = Answer<paths['/v1/cities']['get']>['cities'][number];

export type SearchQuery = Query<paths['/v1/cities/{city}/availability']['get']>;
export type Hit = Answer<paths['/v1/cities/{city}/availability']['get']>['vehicles'][number];
export type Hold = Answer<paths['/v1/holds']['post']>;

export type Booking = Answer<paths['/v1/bookings']['get']>['bookings'][number];
export type BookingStatus = Booking['status'];
/** `when` of the bookings lists: upcoming, active (under way) or past. */
export type TripPhase = NonNullable<Query<paths['/v1/bookings']['get']>['when']>;
/** A conflicted booking's offers, as the API answers them. */
export type OffersDoc = Answer<paths['/v1/bookings/{id}/offers']['get']>;

export type Vehicle = Answer<paths['/v1/vehicles/{id}']['get']>;
export type Category = Vehicle['category'];
export type Fuel = Vehicle['fuel'];
export type Transmission = Vehicle['transmission'];
export type VehicleStatus = Vehicle['status'];
export type NewVehicle = Body<paths['/v1/vehicles']['post']>;
export type HostVehicle = Answer<paths['/v1/hosts/{hostId}/vehicles']['get']>['vehicles'][number];
export type CalendarEntry = Answer<paths['/v1/vehicles/{id}/calendar']['get']>['entries'][number];
export type BlockReason = Body<paths['/v1/vehicles/{id}/blocks']['post']>['reason'];
export type BatchResult = Answer<paths['/v1/vehicles/batch']['post']>['results'][number];

export type CityCounts = Answer<paths['/v1/analytics/cities']['get']>['cities'][number];
export type CityVehicle = Answer<paths['/v1/cities/{city}/vehicles']['get']>['vehicles'][number];
export type AuditEntry = Answer<paths['/v1/audit']['get']>['events'][number];
export type ReserveSlot = Answer<paths['/v1/cities/{city}/reserve']['get']>['reserve'][number];
/** An event as `/v1/events` and the `/v1/live` WebSocket give it (CloudEvents 1.0). */
export type CloudEvent = Answer<paths['/v1/events']['get']>['events'][number];

/**
 * Every member of an API enum, once, in the order given: the object is keyed by the enum, so a
 * member the API adds or drops fails to compile here instead of going missing from a menu.
 */
export function members<T extends string>(all: Record<T, true>): readonly T[] {
  return Object.keys(all).filter((k): k is T => k in all);
}

export const CATEGORIES = members<Category>({ hatchback: true, sedan: true, suv: true, premium: true, luxury: true });
export const FUELS = members<Fuel>({ petrol: true, diesel: true, electric: true, hybrid: true, cng: true });
export const TRANSMISSIONS = members<Transmission>({ automatic: true, manual: true });
export const BLOCK_REASONS = members<BlockReason>({ maintenance: true, accident: true, host: true });
export const VEHICLE_STATUSES = members<VehicleStatus>({
  available: true,
  held: true,
  booked: true,
  in_trip: true,
  maintenance: true,
  accident: true,
  blocked: true,
  delisted: true,
});
/** The statuses a booking may be cancelled in (cancel_booking.lua: confirmed, or conflicted awaiting offers). */
export const CANCELLABLE: readonly BookingStatus[] = ['confirmed', 'conflicted'];

/** A value (a form field, a CSV cell) as a member of an enum, or an error naming what was expected. */
export function memberOf<T extends string>(values: readonly T[], value: unknown, what: string): T {
  const found = values.find((v) => v === value);
  if (found === undefined) throw new Error(`${what} must be one of ${values.join(', ')} (not ${String(value)})`);
  return found;
}
