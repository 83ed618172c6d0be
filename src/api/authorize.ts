/**
 * Who may touch what — one rule, in one place (docs/api.md, "Authorization"); routes and the
 * WebSocket hub call these, and hold no rule of their own:
 * - a role that may never use a route is refused with 403 FORBIDDEN (`requireRole`);
 * - a resource of another tenant answers 404 NOT_FOUND, exactly as a missing one would, so ids of
 *   others are never confirmed: another customer's booking, another host's vehicle, calendar,
 *   blocks or fleet (`canSeeTrip`, `requireVehicleManager`, `requireHostScope`).
 * Staff (ops, admin) see and manage everything, except that ops whose token names `cities` see
 * only those: another city's resources are another tenant's (404). On top of the role, a token
 * that carries `scope` may use only the routes of those scopes (403, `requireScope`); admin alone
 * reads the configuration and manages every webhook (`requireAdmin`). The rules of particular
 * moves follow at the end: who writes the past, clears an accident, forces an extension, whose
 * bookings a list or an analytics answer covers, what a cancellation is put down to.
 */
import { DomainError } from '../domain/errors.ts';
import type { Vehicle } from '../domain/vehicle.ts';
import type { Actor, Role, Scope } from './auth.ts';

/** An actor of one of these roles. */
export type ActorOf<R extends Role> = Extract<Actor, { role: R }>;

/** Refuses a role that may never do this (403); past it, the actor is known to be one of `roles`. */
export function requireRole<R extends Role>(actor: Actor, ...roles: R[]): asserts actor is ActorOf<R> {
  if (!roles.some((r) => r === actor.role))
    throw new DomainError('FORBIDDEN', `role ${actor.role} may not do this`, { role: actor.role, allowed: roles });
}

export const isStaff = (actor: Actor): actor is ActorOf<'ops' | 'admin'> =>
  actor.role === 'ops' || actor.role === 'admin';

/** The cities a caller may see, or undefined for every city (only ops tokens are limited to cities). */
export const citiesOf = (actor: Actor): ReadonlySet<string> | undefined =>
  actor.role === 'ops' ? actor.cities : undefined;

/** Whether the city is one the caller may see (every city, unless its token names some). */
export const seesCity = (actor: Actor, city: string): boolean => citiesOf(actor)?.has(city) ?? true;

/** Staff, in this city: ops limited to cities cover only those. */
export const staffIn = (actor: Actor, city: string) => isStaff(actor) && seesCity(actor, city);

/** A city outside the caller's cities is, to them, a city that does not exist. */
export function requireCity(actor: Actor, city: string): void {
  if (!seesCity(actor, city)) throw notFound('city', city);
}

/** A token narrowed by `scope` must carry this one; a token without `scope` has all of its role's. */
export function requireScope(actor: Actor, scope: Scope): void {
  if (actor.scopes && !actor.scopes.has(scope))
    throw new DomainError('FORBIDDEN', `this token lacks the scope ${scope}`, { scope });
}

export function requireAdmin(actor: Actor): void {
  requireRole(actor, 'admin');
}

/** A customer's own booking or hold; the vehicle's host; staff of its city. */
export function canSeeTrip(
  actor: Actor,
  trip: { customerId: string },
  vehicle: Pick<Vehicle, 'hostId' | 'city'>,
): boolean {
  if (isStaff(actor)) return staffIn(actor, vehicle.city);
  if (actor.role === 'customer') return trip.customerId === actor.id;
  return actor.role === 'host' && vehicle.hostId === actor.hostId;
}

/** A vehicle's host, or staff of its city: who manages its spec, calendar and blocks. */
export function mayManageVehicle(actor: Actor, vehicle: Pick<Vehicle, 'hostId' | 'city'>): boolean {
  return staffIn(actor, vehicle.city) || (actor.role === 'host' && vehicle.hostId === actor.hostId);
}

/** Anyone else is told the vehicle (or what of it they asked for) does not exist. */
export function requireVehicleManager(
  actor: Actor,
  vehicle: Pick<Vehicle, 'hostId' | 'id' | 'city'>,
  what = 'vehicle',
): void {
  if (!mayManageVehicle(actor, vehicle)) throw notFound(what, vehicle.id);
}

/**
 * A host's own scope (its fleet, its trips), or staff; another host is told it does not exist.
 * Ops limited to cities see the part of a fleet in their cities (filter with `citiesOf`).
 */
export function requireHostScope(actor: Actor, hostId: string): void {
  if (!isStaff(actor) && !(actor.role === 'host' && actor.hostId === hostId)) throw notFound('host', hostId);
}

export function notFound(kind: string, id: string): DomainError {
  return new DomainError('NOT_FOUND', `${kind} ${id} not found`, { entity: kind, id });
}

/** The customer scope a script should enforce: the customer's own id, or any (staff, host). */
export const customerScope = (actor: Actor) => (actor.role === 'customer' ? actor.id : undefined);

/** A trip the caller may see (`canSeeTrip`); anyone else is told it does not exist. */
export function requireTripViewer(
  actor: Actor,
  trip: { id: string; customerId: string },
  vehicle: Pick<Vehicle, 'hostId' | 'city'>,
  what = 'booking',
): void {
  if (!canSeeTrip(actor, trip, vehicle)) throw notFound(what, trip.id);
}

/**
 * A conflicted booking's offers: whoever may see the booking, judged by the record's own host and
 * city (those of the original vehicle, which may be gone by now).
 */
export function requireOffersViewer(
  actor: Actor,
  record: { bookingId: string; customerId: string; hostId: string; city: string },
): void {
  if (!canSeeTrip(actor, record, record)) throw notFound('offers', record.bookingId);
}

/**
 * A city's live feed (`city:` topics): staff only (403: the feed names every customer), of a city
 * they may see (404, as a city that does not exist).
 */
export function requireCityWatcher(actor: Actor, city: string): void {
  requireRole(actor, 'ops', 'admin');
  requireCity(actor, city);
}

/**
 * A host's live fleet (`host:` topics): the host itself or staff, as its fleet over HTTP (another
 * host's: 404); it spans cities, so ops limited to some watch it city by city instead (403).
 */
export function requireHostWatcher(actor: Actor, hostId: string): void {
  requireHostScope(actor, hostId);
  if (citiesOf(actor))
    throw new DomainError('FORBIDDEN', "ops limited to cities watch a host's vehicles city by city", {
      hostId,
    });
}

/** Staff may place a block that starts in the past (correcting the record); a host's start now at the earliest. */
export const mayWriteThePast = (actor: Actor): boolean => isStaff(actor);

/** An accident is cleared by staff only (the host may clear its other blocks). */
export function requireBlockClearer(actor: Actor, block: { reason: string }): void {
  if (block.reason === 'accident') requireRole(actor, 'ops', 'admin');
}

/** Only staff may force an extension over the bookings after it. */
export function requireForceAllowed(actor: Actor, force: boolean | undefined): void {
  if (force) requireRole(actor, 'ops', 'admin');
}

/** A cancellation without a reason is put down to who cancelled: `customer`, or the staff role. */
export const cancelReason = (actor: Actor, given: string | undefined): string =>
  given ?? (actor.role === 'customer' ? 'customer' : actor.role);

/**
 * Whose bookings a list covers: a customer's own (asking for another's is 403), or for staff the
 * customer asked for (every one when none).
 */
export function listedCustomer(actor: ActorOf<'customer' | 'ops' | 'admin'>, asked: string | undefined) {
  if (actor.role !== 'customer') return asked;
  if (asked !== undefined && asked !== actor.id)
    throw new DomainError('FORBIDDEN', 'a customer lists only its own bookings', { field: 'customerId' });
  return actor.id;
}

/** Whose fleet an analytics answer covers: staff choose (or every one); a host always its own. */
export function analyticsHost(actor: Actor, asked: string | undefined): string | undefined {
  requireRole(actor, 'host', 'ops', 'admin');
  if (actor.role !== 'host') return asked;
  if (asked !== undefined) requireHostScope(actor, asked);
  return actor.hostId;
}
